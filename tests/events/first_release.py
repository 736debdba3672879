"""An event log as the first release wrote it, for the tests of reading and migrating older logs."""

from __future__ import annotations

# The events table as the first release created it: no client fingerprints, no signal columns.
FIRST_RELEASE_EVENTS = (
    "CREATE TABLE events (event_id TEXT NOT NULL, ts_us INTEGER NOT NULL, account_id TEXT NOT NULL, key_id TEXT,"
    " org_id TEXT, client_ip TEXT, user_agent TEXT, endpoint TEXT NOT NULL, model TEXT, upstream TEXT,"
    " stream INTEGER NOT NULL, request BLOB NOT NULL, status INTEGER NOT NULL, prompt_tokens INTEGER,"
    " completion_tokens INTEGER, finish_reason TEXT, text TEXT, text_sha256 TEXT, latency_ms REAL,"
    " ttft_ms REAL, error_code TEXT, extra BLOB, schema_version INTEGER NOT NULL)"
)
