PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE accounts (
	account_id VARCHAR(200) NOT NULL,
	org_id VARCHAR(200),
	tier VARCHAR(64),
	created_at DATETIME NOT NULL,
	verified BOOLEAN NOT NULL,
	payment_fingerprint VARCHAR(200),
	email_domain VARCHAR(255),
	country VARCHAR(8),
	limits_override JSON,
	PRIMARY KEY (account_id)
);
INSERT INTO accounts VALUES('acme','acme-inc','free','2026-11-25 04:03:23.137783',0,NULL,NULL,'DE',NULL);
CREATE TABLE cases (
	case_id VARCHAR(32) NOT NULL,
	subject_kind VARCHAR(16) NOT NULL,
	subject_id VARCHAR(200) NOT NULL,
	members JSON NOT NULL,
	status VARCHAR(16) NOT NULL,
	proposed VARCHAR(16) NOT NULL,
	applied VARCHAR(16) NOT NULL,
	risk FLOAT,
	reasons JSON NOT NULL,
	opened_at DATETIME NOT NULL,
	updated_at DATETIME NOT NULL,
	PRIMARY KEY (case_id)
);
INSERT INTO cases VALUES('case_2d058fde0bc9','campaign','clu_legacy','["acme", "b2"]','open','block','block',0.96999999999999997335,'["shared_template"]','2026-11-25 04:03:23.140980','2026-11-25 04:03:23.152433');
CREATE TABLE standings (
	account_id VARCHAR(200) NOT NULL,
	level VARCHAR(16) NOT NULL,
	pending VARCHAR(16),
	confirmed BOOLEAN NOT NULL,
	exempt_until DATETIME,
	case_id VARCHAR(32),
	risk FLOAT,
	reasons JSON NOT NULL,
	source VARCHAR(16) NOT NULL,
	campaign VARCHAR(64),
	since DATETIME NOT NULL,
	last_support DATETIME NOT NULL,
	seq BIGINT NOT NULL,
	PRIMARY KEY (account_id)
);
INSERT INTO standings VALUES('acme','block',NULL,1,NULL,'case_2d058fde0bc9',0.96999999999999997335,'["shared_template"]','review','clu_legacy','2026-11-25 04:03:23.148626','2026-11-25 04:03:23.148626',5);
INSERT INTO standings VALUES('b2','block',NULL,1,NULL,'case_2d058fde0bc9',0.96999999999999997335,'["shared_template"]','review','clu_legacy','2026-11-25 04:03:23.148626','2026-11-25 04:03:23.148626',6);
CREATE TABLE labels (
	seq BIGINT NOT NULL,
	account_id VARCHAR(200) NOT NULL,
	label VARCHAR(16) NOT NULL,
	case_id VARCHAR(32) NOT NULL,
	reviewer VARCHAR(200) NOT NULL,
	reason TEXT NOT NULL,
	at DATETIME NOT NULL,
	PRIMARY KEY (seq)
);
INSERT INTO labels VALUES(5,'acme','attack','case_2d058fde0bc9','alice','same template','2026-11-25 04:03:23.148626');
INSERT INTO labels VALUES(6,'b2','attack','case_2d058fde0bc9','alice','same template','2026-11-25 04:03:23.148626');
CREATE TABLE audit_log (
	seq BIGINT NOT NULL,
	at DATETIME NOT NULL,
	actor VARCHAR(200) NOT NULL,
	action VARCHAR(40) NOT NULL,
	case_id VARCHAR(32),
	account_id VARCHAR(200),
	detail JSON NOT NULL,
	prev_hash VARCHAR(64) NOT NULL,
	hash VARCHAR(64) NOT NULL,
	PRIMARY KEY (seq)
);
INSERT INTO audit_log VALUES(1,'2026-11-25 04:03:23.143213','operator:seed','campaign_case_opened','case_2d058fde0bc9',NULL,'{"cluster_id": "clu_legacy", "members": 2, "proposed": "block", "applied": "degrade", "risk": 0.97, "reasons": ["shared_template"]}','0000000000000000000000000000000000000000000000000000000000000000','5d8a1759e0e6e290845adf8e6d28635516fa1a922fdd54b4b98eba26a92a4484');
INSERT INTO audit_log VALUES(2,'2026-11-25 04:03:23.145152','operator:seed','level_escalated','case_2d058fde0bc9','acme','{"from": "allow", "to": "degrade", "pending": "block", "risk": 0.97, "reasons": ["shared_template"], "source": "campaign"}','5d8a1759e0e6e290845adf8e6d28635516fa1a922fdd54b4b98eba26a92a4484','60c125953938c4b2d945563f6490ef00f9968fce78ff92f50a16cfd1856af990');
INSERT INTO audit_log VALUES(3,'2026-11-25 04:03:23.147014','operator:seed','level_escalated','case_2d058fde0bc9','b2','{"from": "allow", "to": "degrade", "pending": "block", "risk": 0.97, "reasons": ["shared_template"], "source": "campaign"}','60c125953938c4b2d945563f6490ef00f9968fce78ff92f50a16cfd1856af990','67ca259aff1db0f2ffe86fb10830bd7d16f44818644bfacc50fae99a4bf7c116');
INSERT INTO audit_log VALUES(4,'2026-11-25 04:03:23.149467','reviewer:alice','case_confirmed','case_2d058fde0bc9',NULL,'{"from": "open", "to": "confirmed", "reason": "same template", "applied": "block"}','67ca259aff1db0f2ffe86fb10830bd7d16f44818644bfacc50fae99a4bf7c116','2e67d17898469c87a2537eef6a921aa2516d871b48fa6f2acb6520126c598926');
INSERT INTO audit_log VALUES(5,'2026-11-25 04:03:23.150129','reviewer:alice','level_confirmed','case_2d058fde0bc9','acme','{"from": "degrade", "to": "block", "reason": "same template", "source": "review"}','2e67d17898469c87a2537eef6a921aa2516d871b48fa6f2acb6520126c598926','bf2564fac810713addc1cee37530e88b5323b5e3f21b2cc18d34169344037d9a');
INSERT INTO audit_log VALUES(6,'2026-11-25 04:03:23.151328','reviewer:alice','level_confirmed','case_2d058fde0bc9','b2','{"from": "degrade", "to": "block", "reason": "same template", "source": "review"}','bf2564fac810713addc1cee37530e88b5323b5e3f21b2cc18d34169344037d9a','a2e21efcb7d30501221709b888711233b7b370ec614cd3726aeb4124dba21a1d');
INSERT INTO audit_log VALUES(7,'2026-11-25 04:03:23.154006','customer:acme','appeal_filed','case_2d058fde0bc9','acme','{"appeal_id": "appeal_7c389c22a6ac"}','a2e21efcb7d30501221709b888711233b7b370ec614cd3726aeb4124dba21a1d','d48647e752cd61b7413dab607d2ccd3b3da69f0c580b132e424f84e4cd604037');
INSERT INTO audit_log VALUES(8,'2026-11-25 04:03:23.154847','system:detector','case_reopened','case_2d058fde0bc9',NULL,'{"from": "confirmed", "to": "open"}','d48647e752cd61b7413dab607d2ccd3b3da69f0c580b132e424f84e4cd604037','8a69d95a4065abfd1dfac09b3c6415ca782d2a1c555b33c002edace418b7afe8');
INSERT INTO audit_log VALUES(9,'2026-11-25 04:03:23.156549','operator:seed','admin_token_created',NULL,NULL,'{"token_id": "f37ccf4ac0b8", "name": "alice"}','8a69d95a4065abfd1dfac09b3c6415ca782d2a1c555b33c002edace418b7afe8','6c4cd35a3ca86f3da3e905ff49981cb07466af3075ed2fc8cc62859fc26ba7ef');
CREATE TABLE audit_head (
	id INTEGER NOT NULL,
	seq BIGINT NOT NULL,
	hash VARCHAR(64) NOT NULL,
	PRIMARY KEY (id)
);
INSERT INTO audit_head VALUES(1,9,'6c4cd35a3ca86f3da3e905ff49981cb07466af3075ed2fc8cc62859fc26ba7ef');
CREATE TABLE admin_tokens (
	token_id VARCHAR(32) NOT NULL,
	name VARCHAR(200) NOT NULL,
	token_hash VARCHAR(64) NOT NULL,
	created_at DATETIME NOT NULL,
	revoked_at DATETIME,
	PRIMARY KEY (token_id)
);
INSERT INTO admin_tokens VALUES('f37ccf4ac0b8','alice','ed4f2482c10414c1c001a5cbcc89fa8420948d274e7801a847b847719a9d410b','2026-11-25 04:03:23.155618',NULL);
CREATE TABLE intel_objects (
	id VARCHAR(200) NOT NULL,
	version VARCHAR(40) NOT NULL,
	type VARCHAR(64) NOT NULL,
	signer VARCHAR(200) NOT NULL,
	received_at DATETIME NOT NULL,
	body JSON NOT NULL,
	PRIMARY KEY (id, version)
);
CREATE TABLE intel_cursors (
	source VARCHAR(400) NOT NULL,
	added_after VARCHAR(40) NOT NULL,
	updated_at DATETIME NOT NULL,
	PRIMARY KEY (source)
);
INSERT INTO intel_cursors VALUES('https://hub.example/api/c1','2026-01-01T00:00:00.000Z','2026-11-25 04:03:23.270992');
CREATE TABLE api_keys (
	key_id VARCHAR(32) NOT NULL,
	account_id VARCHAR(200) NOT NULL,
	key_hash VARCHAR(64) NOT NULL,
	name VARCHAR(200),
	created_at DATETIME NOT NULL,
	revoked_at DATETIME,
	PRIMARY KEY (key_id),
	FOREIGN KEY(account_id) REFERENCES accounts (account_id)
);
INSERT INTO api_keys VALUES('01573711ca07','acme','75c753043976dba4ee3a2ad87647ba246a2631257425747e666bfa49d5c6f849','ci','2026-11-25 04:03:23.139052',NULL);
CREATE TABLE appeals (
	appeal_id VARCHAR(32) NOT NULL,
	case_id VARCHAR(32) NOT NULL,
	account_id VARCHAR(200) NOT NULL,
	message TEXT NOT NULL,
	contact VARCHAR(320),
	filed_at DATETIME NOT NULL,
	PRIMARY KEY (appeal_id),
	FOREIGN KEY(case_id) REFERENCES cases (case_id)
);
INSERT INTO appeals VALUES('appeal_7c389c22a6ac','case_2d058fde0bc9','acme','we are a reseller','ops@acme.example','2026-11-25 04:03:23.152433');
CREATE INDEX ix_accounts_org_id ON accounts (org_id);
CREATE INDEX ix_cases_status ON cases (status, updated_at);
CREATE INDEX ix_cases_subject ON cases (subject_id);
CREATE INDEX ix_standings_seq ON standings (seq);
CREATE INDEX ix_labels_account_id ON labels (account_id);
CREATE INDEX ix_audit_log_case_id ON audit_log (case_id);
CREATE INDEX ix_audit_log_account_id ON audit_log (account_id);
CREATE INDEX ix_intel_objects_type ON intel_objects (type);
CREATE INDEX ix_api_keys_account ON api_keys (account_id);
CREATE INDEX ix_appeals_case_id ON appeals (case_id);
COMMIT;
