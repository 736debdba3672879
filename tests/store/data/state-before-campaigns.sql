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
INSERT INTO accounts VALUES('acme','acme-inc','free','2026-11-25 04:03:22.655650',0,NULL,NULL,'DE',NULL);
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
INSERT INTO cases VALUES('case_0e59dd84ca05','campaign','clu_legacy','["acme", "b2"]','open','block','block',0.96999999999999997335,'["shared_template"]','2026-11-25 04:03:22.659812','2026-11-25 04:03:22.672019');
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
	since DATETIME NOT NULL,
	last_support DATETIME NOT NULL,
	seq BIGINT NOT NULL,
	PRIMARY KEY (account_id)
);
INSERT INTO standings VALUES('acme','block',NULL,1,NULL,'case_0e59dd84ca05',0.96999999999999997335,'["shared_template"]','review','2026-11-25 04:03:22.667830','2026-11-25 04:03:22.667830',5);
INSERT INTO standings VALUES('b2','block',NULL,1,NULL,'case_0e59dd84ca05',0.96999999999999997335,'["shared_template"]','review','2026-11-25 04:03:22.667830','2026-11-25 04:03:22.667830',6);
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
INSERT INTO labels VALUES(5,'acme','attack','case_0e59dd84ca05','alice','same template','2026-11-25 04:03:22.667830');
INSERT INTO labels VALUES(6,'b2','attack','case_0e59dd84ca05','alice','same template','2026-11-25 04:03:22.667830');
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
INSERT INTO audit_log VALUES(1,'2026-11-25 04:03:22.662170','operator:seed','campaign_case_opened','case_0e59dd84ca05',NULL,'{"cluster_id": "clu_legacy", "members": 2, "proposed": "block", "applied": "degrade", "risk": 0.97, "reasons": ["shared_template"]}','0000000000000000000000000000000000000000000000000000000000000000','26aaf92f3daeb561637c4ad5d2319d98f17ac2b9d60159a7a6ad1966baa6c9cb');
INSERT INTO audit_log VALUES(2,'2026-11-25 04:03:22.664103','operator:seed','level_escalated','case_0e59dd84ca05','acme','{"from": "allow", "to": "degrade", "pending": "block", "risk": 0.97, "reasons": ["shared_template"], "source": "campaign"}','26aaf92f3daeb561637c4ad5d2319d98f17ac2b9d60159a7a6ad1966baa6c9cb','d0dab8f3a092568d8e1a84b15f8409390e5ad77508c2491b28107e91093f94dd');
INSERT INTO audit_log VALUES(3,'2026-11-25 04:03:22.666083','operator:seed','level_escalated','case_0e59dd84ca05','b2','{"from": "allow", "to": "degrade", "pending": "block", "risk": 0.97, "reasons": ["shared_template"], "source": "campaign"}','d0dab8f3a092568d8e1a84b15f8409390e5ad77508c2491b28107e91093f94dd','d53f83ee0d390a7f2bad2daac8bf55206afb3c5a6c1d63d519fadceb5958c49c');
INSERT INTO audit_log VALUES(4,'2026-11-25 04:03:22.668802','reviewer:alice','case_confirmed','case_0e59dd84ca05',NULL,'{"from": "open", "to": "confirmed", "reason": "same template", "applied": "block"}','d53f83ee0d390a7f2bad2daac8bf55206afb3c5a6c1d63d519fadceb5958c49c','8f4ad87968bfc7ad793afd313cb5ea48fb1f6dc35f53ea2932481cc0313aa377');
INSERT INTO audit_log VALUES(5,'2026-11-25 04:03:22.669411','reviewer:alice','level_confirmed','case_0e59dd84ca05','acme','{"from": "degrade", "to": "block", "reason": "same template", "source": "review"}','8f4ad87968bfc7ad793afd313cb5ea48fb1f6dc35f53ea2932481cc0313aa377','fa522a8fe2969025def92d78d398473219cf218727fd32d8d54fc21134d13205');
INSERT INTO audit_log VALUES(6,'2026-11-25 04:03:22.670644','reviewer:alice','level_confirmed','case_0e59dd84ca05','b2','{"from": "degrade", "to": "block", "reason": "same template", "source": "review"}','fa522a8fe2969025def92d78d398473219cf218727fd32d8d54fc21134d13205','fe22b452c6ac874d0c706ee4c5e51b78e0b078c4942fbfe361f2b773fa1bd405');
INSERT INTO audit_log VALUES(7,'2026-11-25 04:03:22.673621','customer:acme','appeal_filed','case_0e59dd84ca05','acme','{"appeal_id": "appeal_284efcce6d7c"}','fe22b452c6ac874d0c706ee4c5e51b78e0b078c4942fbfe361f2b773fa1bd405','58dcac3aac354f361a42503cd07a6a8d04b94e415e9940f5eebae224ba883f88');
INSERT INTO audit_log VALUES(8,'2026-11-25 04:03:22.674422','system:detector','case_reopened','case_0e59dd84ca05',NULL,'{"from": "confirmed", "to": "open"}','58dcac3aac354f361a42503cd07a6a8d04b94e415e9940f5eebae224ba883f88','470247675dc60ffaa6b6f4f5fcff2748d25002d25ac3b622b9ab1f0f6fdd2d2e');
INSERT INTO audit_log VALUES(9,'2026-11-25 04:03:22.675801','operator:seed','admin_token_created',NULL,NULL,'{"token_id": "dcd665408f2d", "name": "alice"}','470247675dc60ffaa6b6f4f5fcff2748d25002d25ac3b622b9ab1f0f6fdd2d2e','645b660d538146d02e7f203d7e745293f8be7b0b45ceb0384e66690fb2076e40');
CREATE TABLE audit_head (
	id INTEGER NOT NULL,
	seq BIGINT NOT NULL,
	hash VARCHAR(64) NOT NULL,
	PRIMARY KEY (id)
);
INSERT INTO audit_head VALUES(1,9,'645b660d538146d02e7f203d7e745293f8be7b0b45ceb0384e66690fb2076e40');
CREATE TABLE admin_tokens (
	token_id VARCHAR(32) NOT NULL,
	name VARCHAR(200) NOT NULL,
	token_hash VARCHAR(64) NOT NULL,
	created_at DATETIME NOT NULL,
	revoked_at DATETIME,
	PRIMARY KEY (token_id)
);
INSERT INTO admin_tokens VALUES('dcd665408f2d','alice','d1e7dfccbd7e4279a83037e611f4210e961f0e22fa02550c10136e7bef69907c','2026-11-25 04:03:22.675145',NULL);
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
INSERT INTO api_keys VALUES('a5d98a7eadb1','acme','97e0ff9f887d2d04cf59510bf6f33e672b275815b0156c13098c5ef63e41e4a3','ci','2026-11-25 04:03:22.657628',NULL);
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
INSERT INTO appeals VALUES('appeal_284efcce6d7c','case_0e59dd84ca05','acme','we are a reseller','ops@acme.example','2026-11-25 04:03:22.672019');
CREATE INDEX ix_accounts_org_id ON accounts (org_id);
CREATE INDEX ix_cases_subject ON cases (subject_id);
CREATE INDEX ix_cases_status ON cases (status, updated_at);
CREATE INDEX ix_standings_seq ON standings (seq);
CREATE INDEX ix_labels_account_id ON labels (account_id);
CREATE INDEX ix_audit_log_case_id ON audit_log (case_id);
CREATE INDEX ix_audit_log_account_id ON audit_log (account_id);
CREATE INDEX ix_api_keys_account ON api_keys (account_id);
CREATE INDEX ix_appeals_case_id ON appeals (case_id);
COMMIT;
