-- The migration ledger, SQLite flavour: JSON as text, timestamps as ISO text, booleans as 0/1.
-- Applied idempotently at the start of every run; entity tables are rendered from their
-- declarations (ddl.py).
-- The ledger mirrors the reference's MigrationJob / MigrationBatch / MigrationError models.

CREATE TABLE IF NOT EXISTS migration_jobs (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    name              text NOT NULL,
    entity            text NOT NULL,
    source_system     text NOT NULL,
    target_table      text NOT NULL,
    total_records     bigint NOT NULL DEFAULT 0,
    processed_records bigint NOT NULL DEFAULT 0,
    failed_records    bigint NOT NULL DEFAULT 0,
    extracted         bigint NOT NULL DEFAULT 0,
    loaded            bigint NOT NULL DEFAULT 0,
    rejected          bigint NOT NULL DEFAULT 0,
    filtered          bigint NOT NULL DEFAULT 0,
    skipped_existing  bigint NOT NULL DEFAULT 0,
    updated           bigint NOT NULL DEFAULT 0,
    status            text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'in_progress', 'completed', 'failed', 'rolled_back',
                          'interrupted')),
    started_at        text,
    completed_at      text,
    error_message     text,
    configuration     text NOT NULL DEFAULT '{}',
    created_at        text NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at        text NOT NULL DEFAULT CURRENT_TIMESTAMP,
    deleted_at        text
);
CREATE INDEX IF NOT EXISTS idx_migration_jobs_status ON migration_jobs (status);
CREATE INDEX IF NOT EXISTS idx_migration_jobs_source_system ON migration_jobs (source_system);

CREATE TABLE IF NOT EXISTS migration_batches (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    migration_job_id  bigint NOT NULL REFERENCES migration_jobs (id),
    batch_number      integer NOT NULL,
    start_id          bigint NOT NULL,
    end_id            bigint NOT NULL,
    records_count     bigint NOT NULL,
    status            text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'in_progress', 'completed', 'failed', 'rolled_back')),
    extracted         bigint NOT NULL DEFAULT 0,
    loaded            bigint NOT NULL DEFAULT 0,
    rejected          bigint NOT NULL DEFAULT 0,
    filtered          bigint NOT NULL DEFAULT 0,
    skipped_existing  bigint NOT NULL DEFAULT 0,
    updated           bigint NOT NULL DEFAULT 0,
    started_at        text,
    completed_at      text,
    error_details     text,
    retry_count       integer NOT NULL DEFAULT 0,
    created_at        text NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at        text NOT NULL DEFAULT CURRENT_TIMESTAMP,
    UNIQUE (migration_job_id, batch_number)
);
CREATE INDEX IF NOT EXISTS idx_migration_batches_status ON migration_batches (status);
-- The source keys a batch extracted, recorded with its counts (extracted is their number):
-- sha256 of the ids sorted, as 8-byte little-endian integers (extract.key_hash). `etl verify`
-- hashes the source's ids again per batch range to find ranges changed since. Added after
-- the table, so that a ledger of an earlier version gains it (NULL in its batches).
-- Target.apply_schema skips the statement when the column exists: SQLite has no IF NOT
-- EXISTS for columns, and PostgreSQL would lock the table to find out.
ALTER TABLE migration_batches ADD COLUMN source_key_hash text;
-- A batch of a table keyed by text or by several columns (or keyless) is a range of keys,
-- not of ids: {"start": [...], "stop": [...], "through": bool} (extract.KeyRange), with
-- start_id..end_id its rows' positions in key order when planned. NULL for integer ids.
ALTER TABLE migration_batches ADD COLUMN key_range text;

-- No foreign keys here: PostgreSQL checks one per inserted row (a query and a row lock),
-- which cost more server time than the rejects themselves. Each reject is written in its
-- batch's own transaction, and `etl verify` checks that it names a batch of its job.
CREATE TABLE IF NOT EXISTS migration_errors (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    migration_job_id  bigint NOT NULL,
    batch_id          bigint NOT NULL,
    record_id         text NOT NULL,
    error_type        text NOT NULL,
    error_message     text NOT NULL,
    source_data       text NOT NULL DEFAULT '{}',
    attempted_at      text NOT NULL DEFAULT CURRENT_TIMESTAMP,
    retry_count       integer NOT NULL DEFAULT 0,
    resolved          integer NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS idx_migration_errors_job ON migration_errors (migration_job_id, error_type);
