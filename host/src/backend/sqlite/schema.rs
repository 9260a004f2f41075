//! The embedded database's tables.

use rusqlite::Connection;

/// Column layout of the seed's tables, plus the queue and module registry.
/// `IF NOT EXISTS` everywhere: opening an existing data directory is a no-op.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id               TEXT PRIMARY KEY,
    workflow         TEXT NOT NULL,
    module_digest    TEXT NOT NULL,
    status           TEXT NOT NULL,
    input            TEXT NOT NULL,
    output           TEXT,
    error            TEXT,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    version          INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    step_names       TEXT NOT NULL,
    wake_at          INTEGER,
    deadline         INTEGER,
    awaiting         TEXT,
    parent_run_id    TEXT,
    parent_step      TEXT,
    parent_detached  INTEGER,
    expires_at       INTEGER
);
CREATE INDEX IF NOT EXISTS runs_by_status ON runs (status, created_at);

-- Running runs by the time they next need the recovery sweep
-- (RunRecord::attention_at): a sweep reads the quiet ones, not all. The
-- expression is rows::ATTENTION_AT's, letter for letter, or SQLite will not
-- use the index.
CREATE INDEX IF NOT EXISTS runs_quiet ON runs (max(updated_at, coalesce(wake_at, 0), coalesce(lease_expires_at, 0)), id) WHERE status = 'running';

CREATE TABLE IF NOT EXISTS steps (
    run_step_key     TEXT PRIMARY KEY,
    run_id           TEXT NOT NULL,
    step_name        TEXT NOT NULL,
    seq              INTEGER NOT NULL,
    kind             TEXT NOT NULL,
    rpc_name         TEXT,
    input            TEXT,
    status           TEXT NOT NULL,
    result           TEXT,
    error            TEXT,
    attempt_count    INTEGER NOT NULL,
    options          TEXT NOT NULL,
    wake_at          INTEGER,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    completed_at     INTEGER,
    host_losses      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS steps_by_run ON steps (run_id, seq);

CREATE TABLE IF NOT EXISTS step_history (
    step_id       TEXT NOT NULL,
    attempt_count INTEGER NOT NULL,
    status        TEXT NOT NULL,
    error         TEXT,
    started_at    INTEGER NOT NULL,
    ended_at      INTEGER,
    PRIMARY KEY (step_id, attempt_count)
);

CREATE TABLE IF NOT EXISTS run_logs (
    run_id   TEXT NOT NULL,
    position INTEGER NOT NULL,
    idx      INTEGER NOT NULL,
    at       INTEGER NOT NULL,
    level    TEXT NOT NULL,
    message  TEXT NOT NULL,
    PRIMARY KEY (run_id, position, idx)
);

CREATE TABLE IF NOT EXISTS queue (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    body          TEXT NOT NULL,
    visible_at    INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT,
    dead          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS queue_ready ON queue (dead, visible_at);

CREATE TABLE IF NOT EXISTS modules (
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL,
    digest      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    size        INTEGER NOT NULL,
    uploaded_at INTEGER NOT NULL,
    allowed_hosts TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (name, version)
);

-- The journal index (the run's step names in order), one row per step: a
-- run's index grows by one row per step instead of being rewritten whole,
-- which kept long runs linear. (runs.step_names is no longer read.)
CREATE TABLE IF NOT EXISTS journal (
    run_id    TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    step_name TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
) WITHOUT ROWID;

-- Run inboxes: events sent to a run, numbered per (run, name) in the
-- order they were stored, each taken by at most one wait step. The sender's
-- id makes a re-send the same event.
CREATE TABLE IF NOT EXISTS events (
    run_id   TEXT NOT NULL,
    name     TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    payload  TEXT NOT NULL,
    sent_at  INTEGER NOT NULL,
    taken_by TEXT,
    PRIMARY KEY (run_id, name, seq),
    UNIQUE (run_id, name, event_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_waiting ON events (run_id, name, seq) WHERE taken_by IS NULL;

-- Callbacks by the sha256 of their token (the token itself is not kept
-- here). state: waiting, completed or expired; it leaves waiting once.
CREATE TABLE IF NOT EXISTS callbacks (
    hash         TEXT PRIMARY KEY,
    run_id       TEXT NOT NULL,
    step         TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    state        TEXT NOT NULL,
    result       TEXT,
    error        TEXT,
    completed_at INTEGER
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS artifacts (
    module_digest   TEXT NOT NULL,
    engine_hash     TEXT NOT NULL,
    artifact_digest TEXT NOT NULL,
    PRIMARY KEY (module_digest, engine_hash)
);

-- Schedules: the record as JSON; the next fire time indexed while unpaused,
-- so the tick reads the due ones only.
CREATE TABLE IF NOT EXISTS schedules (
    name         TEXT PRIMARY KEY,
    next_fire_at INTEGER,
    version      INTEGER NOT NULL,
    body         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS schedules_due ON schedules (next_fire_at) WHERE next_fire_at IS NOT NULL;
";

/// Configures durability and creates missing tables.
pub(super) fn prepare(conn: &Connection) -> rusqlite::Result<()> {
    // WAL + FULL: every commit is fsynced before it returns, and readers do
    // not block the writer.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.execute_batch(SCHEMA)?;
    add_column_if_missing(conn, "steps", "host_losses", "INTEGER NOT NULL DEFAULT 0")?;
    add_column_if_missing(conn, "runs", "awaiting", "TEXT")?;
    add_column_if_missing(conn, "runs", "parent_run_id", "TEXT")?;
    add_column_if_missing(conn, "runs", "parent_step", "TEXT")?;
    add_column_if_missing(conn, "runs", "parent_detached", "INTEGER")?;
    add_column_if_missing(conn, "runs", "expires_at", "INTEGER")?;
    // After the column exists in a data directory from an older Weft: the
    // retention sweep reads finished runs by expiry through this.
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS runs_expiring ON runs (expires_at) WHERE expires_at IS NOT NULL;",
    )
}

/// Brings a data directory made by an older Weft up to date: `CREATE TABLE
/// IF NOT EXISTS` leaves an existing table as it was.
fn add_column_if_missing(
    conn: &Connection,
    table: &str,
    column: &str,
    definition: &str,
) -> rusqlite::Result<()> {
    let present = conn
        .prepare(&format!(
            "SELECT 1 FROM pragma_table_info('{table}') WHERE name = ?1"
        ))?
        .exists([column])?;
    if !present {
        conn.execute_batch(&format!(
            "ALTER TABLE {table} ADD COLUMN {column} {definition}"
        ))?;
    }
    Ok(())
}
