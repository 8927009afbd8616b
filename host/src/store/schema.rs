//! The SQLite schema, upgraded in order; `PRAGMA user_version` says how far.

/// Each entry upgrades the schema from its index to the next version.
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE streams (
    id          INTEGER PRIMARY KEY,
    connection  TEXT NOT NULL,
    name        TEXT NOT NULL,
    UNIQUE (connection, name)
);

-- The local copy of partner records, raw JSON kept as the connector gave it.
CREATE TABLE records (
    stream_id   INTEGER NOT NULL REFERENCES streams (id),
    key         TEXT NOT NULL,
    version     INTEGER,
    deleted     INTEGER NOT NULL DEFAULT 0,
    data        TEXT NOT NULL,
    stored_at   INTEGER NOT NULL,
    PRIMARY KEY (stream_id, key)
);

CREATE TABLE runs (
    id              INTEGER PRIMARY KEY,
    flow            TEXT NOT NULL,
    status          TEXT NOT NULL,
    full_refresh    INTEGER NOT NULL,
    plugin          TEXT NOT NULL,
    started_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    pages           INTEGER NOT NULL DEFAULT 0,
    records_read    INTEGER NOT NULL DEFAULT 0,
    records_written INTEGER NOT NULL DEFAULT 0,
    records_failed  INTEGER NOT NULL DEFAULT 0,
    error_code      TEXT,
    error           TEXT
);
CREATE INDEX runs_by_flow ON runs (flow, id);

CREATE TABLE checkpoints (
    flow        TEXT NOT NULL,
    stream      TEXT NOT NULL,
    format      INTEGER NOT NULL,
    state       TEXT NOT NULL,
    run_id      INTEGER,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (flow, stream)
);

-- Write flows: which source record became which partner object.
CREATE TABLE id_links (
    flow            TEXT NOT NULL,
    source_key      TEXT NOT NULL,
    external_id     TEXT NOT NULL,
    version         INTEGER,
    idempotency_key TEXT NOT NULL,
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (flow, source_key)
);

CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY,
    flow        TEXT NOT NULL,
    run_id      INTEGER NOT NULL,
    source_key  TEXT NOT NULL,
    data        TEXT NOT NULL,
    error_kind  TEXT NOT NULL,
    error       TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);
CREATE INDEX dead_letters_by_flow ON dead_letters (flow, id);
"#,
    r#"
-- Every outbound request attempt of every connection.
CREATE TABLE http_audit (
    id              INTEGER PRIMARY KEY,
    at              INTEGER NOT NULL,
    connection      TEXT NOT NULL,
    method          TEXT NOT NULL,
    origin          TEXT NOT NULL,
    path            TEXT NOT NULL,
    status          INTEGER,
    outcome         TEXT NOT NULL,
    bytes_sent      INTEGER NOT NULL,
    bytes_received  INTEGER NOT NULL,
    duration_ms     INTEGER NOT NULL,
    attempt         INTEGER NOT NULL,
    budget_tokens   REAL,
    budget_today    INTEGER
);
CREATE INDEX http_audit_by_connection ON http_audit (connection, id);

-- Rate budget state per connection, so a restart cannot burst past a quota.
CREATE TABLE rate_budgets (
    connection  TEXT PRIMARY KEY,
    state       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);
"#,
    r#"
-- Records reshaped by a flow's mapping and transforms, per flow.
CREATE TABLE mapped_records (
    flow        TEXT NOT NULL,
    key         TEXT NOT NULL,
    version     INTEGER,
    deleted     INTEGER NOT NULL DEFAULT 0,
    data        TEXT NOT NULL,
    mapped_at   INTEGER NOT NULL,
    PRIMARY KEY (flow, key)
);

ALTER TABLE dead_letters ADD COLUMN stage TEXT NOT NULL DEFAULT 'destination';
ALTER TABLE dead_letters ADD COLUMN version INTEGER;
"#,
    r#"
-- Customers' installations of the integration, as JSON documents.
CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    document    TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Bumped by every change of a tenant, so a running daemon sees changes
-- made by another process (the CLI) without a restart.
CREATE TABLE tenants_generation (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    generation  INTEGER NOT NULL
);
INSERT INTO tenants_generation VALUES (1, 0);

-- What the scheduler knows of each tenant's flow.
CREATE TABLE flow_states (
    flow        TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL,
    template    TEXT NOT NULL,
    enabled     INTEGER NOT NULL,
    schedule    TEXT,
    next_run_at INTEGER,
    failures    INTEGER NOT NULL DEFAULT 0,
    healthy     INTEGER NOT NULL DEFAULT 1,
    last_error  TEXT,
    updated_at  INTEGER NOT NULL
);
"#,
    r#"
-- The webhook endpoint of each tenant's connection: an unguessable token.
CREATE TABLE webhook_endpoints (
    token       TEXT PRIMARY KEY,
    tenant      TEXT NOT NULL,
    connection  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    UNIQUE (tenant, connection)
);

-- Which path saw which version of a record, and when: what webhook
-- coverage is measured from.
CREATE TABLE change_log (
    connection  TEXT NOT NULL,
    stream      TEXT NOT NULL,
    key         TEXT NOT NULL,
    version     INTEGER,
    via         TEXT NOT NULL,
    seen_at     INTEGER NOT NULL
);
CREATE INDEX change_log_by_record ON change_log (connection, stream, key, via);
CREATE INDEX change_log_by_time ON change_log (connection, seen_at);

-- Copies of one version with different content, kept for operators.
CREATE TABLE merge_conflicts (
    id          INTEGER PRIMARY KEY,
    connection  TEXT NOT NULL,
    stream      TEXT NOT NULL,
    key         TEXT NOT NULL,
    version     INTEGER,
    kept        TEXT NOT NULL,
    refused     TEXT NOT NULL,
    seen_at     INTEGER NOT NULL
);
"#,
    r#"
-- Webhook handshakes answered (subscription checks, challenges): audit
-- rows, never data.
CREATE TABLE webhook_handshakes (
    id          INTEGER PRIMARY KEY,
    tenant      TEXT NOT NULL,
    connection  TEXT NOT NULL,
    method      TEXT NOT NULL,
    path        TEXT NOT NULL,
    at_ms       INTEGER NOT NULL
);
CREATE INDEX webhook_handshakes_by_endpoint ON webhook_handshakes (tenant, connection, at_ms);
"#,
    r#"
-- Streams that do not report deletes: when a read from scratch last saw
-- each record, and since when the read in progress runs (see `Sweep`).
ALTER TABLE records ADD COLUMN seen_at INTEGER;
ALTER TABLE checkpoints ADD COLUMN sweep_from INTEGER;
"#,
    r#"
-- Which process runs each run (see `presence`), so that the runs of a
-- process that died are told from the live ones; when a run last
-- committed, its end if it dies; and how many records came with the
-- stored version but other content.
ALTER TABLE runs ADD COLUMN owner TEXT;
ALTER TABLE runs ADD COLUMN committed_at INTEGER;
ALTER TABLE runs ADD COLUMN conflicts INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_running ON runs (owner) WHERE status = 'running';
"#,
    r#"
-- Connector versions that served (or were approved), with their wasm, so
-- that a version waiting for approval, a rollback and a pin to an older
-- version hold across restarts and in every command, daemon or not.
CREATE TABLE plugin_versions (
    content_hash TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    version      TEXT NOT NULL,
    hosts        TEXT NOT NULL,
    wasm         BLOB NOT NULL,
    approved_at  INTEGER NOT NULL
);
CREATE INDEX plugin_versions_by_name ON plugin_versions (name, approved_at);

-- An operator's rollback: `serving` serves while the plugin file is still
-- the version `file_hash` that was rolled back.
CREATE TABLE plugin_rollbacks (
    name      TEXT PRIMARY KEY,
    file_hash TEXT NOT NULL,
    serving   TEXT NOT NULL
);
"#,
    r#"
-- The change log is forgotten by age (see `CHANGES_KEPT`).
CREATE INDEX change_log_by_age ON change_log (seen_at);
"#,
];
