"""What each database's catalog says about a table, as the queries that ask it.

The target reads a table's columns, keys, indexes and dependents to compare it with its
declaration and to plan the fast path; each :class:`Catalog` holds one database's queries
(``?`` placeholders, each naming the table, then a column or index where there is one).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["POSTGRES", "POSTGRES_KEY_INDEX", "POSTGRES_RESTORE", "SQLITE", "Catalog"]


@dataclass(frozen=True)
class Catalog:
    """One database's catalog queries."""

    columns: str
    """A table's columns as (name, type, not_null, has_default). On SQLite the type is the
    declared type's affinity, which is all SQLite makes of it (sqlite.org datatype3 3.1), so
    ``INT`` and ``bigint`` are the same type there, as they behave."""
    keys: str
    """A table's primary and unique keys, one row per key column: (index_name, kind,
    partial, seq, key_column); an expression's column is ``(expression)``."""
    dependents: str
    """Columns of other tables (``table.column``) whose foreign keys point at a table."""
    unique_index: str
    """The valid, whole-table unique index on one column alone (table, column), if any."""
    has_table: str
    has_column: str
    has_index: str
    free_text_indexes: str | None
    """Indexes of a table over a text column of any length, where an index entry has a size
    limit (PostgreSQL's btree), but for one column's (table, column); None where it has
    none."""
    lock_holders: str | None
    """Granted locks on the tables ``{tables}`` (our own names, pasted: connectorx takes no
    parameters) held by other sessions: (table, pid, mode, user, application, state,
    seconds); None where a writer locks the whole database file."""


#: Each session's strongest lock per table, the strongest first.
_POSTGRES_HOLDERS = """
SELECT * FROM (
    SELECT DISTINCT ON (c.relname, l.pid) c.relname AS "table", l.pid, l.mode,
           a.usename AS "user", a.application_name AS application, a.state,
           CAST(EXTRACT(EPOCH FROM now() - a.xact_start) AS bigint) AS seconds,
           array_position(ARRAY['AccessExclusiveLock', 'ExclusiveLock',
               'ShareRowExclusiveLock', 'ShareLock', 'ShareUpdateExclusiveLock',
               'RowExclusiveLock', 'RowShareLock', 'AccessShareLock']::text[],
               l.mode::text) AS strength
    FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
    LEFT JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'relation' AND l.granted AND l.pid IS DISTINCT FROM pg_backend_pid()
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND pg_table_is_visible(c.oid) AND c.relname IN ({tables})
    ORDER BY c.relname, l.pid, strength
) AS held ORDER BY strength, seconds DESC NULLS LAST
"""

POSTGRES = Catalog(
    columns=(
        "SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, "
        "a.attnotnull AS not_null, "
        "(a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '') AS has_default "
        "FROM pg_attribute a WHERE a.attrelid = CAST(? AS regclass) AND a.attnum > 0 "
        "AND NOT a.attisdropped ORDER BY a.attnum"
    ),
    keys=(
        "SELECT i.relname AS index_name, "
        "CASE WHEN x.indisprimary THEN 'primary key' ELSE 'unique' END AS kind, "
        "x.indpred IS NOT NULL AS partial, k.n AS seq, "
        "COALESCE(a.attname, '(expression)') AS key_column "
        "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "CROSS JOIN LATERAL unnest(CAST(x.indkey AS int2[])) WITH ORDINALITY AS k(attnum, n) "
        "LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum "
        "WHERE x.indrelid = CAST(? AS regclass) AND x.indisunique AND k.n <= x.indnkeyatts"
    ),
    dependents=(
        "SELECT DISTINCT CAST(CAST(c.conrelid AS regclass) AS text) || '.' || a.attname AS name "
        "FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid "
        "AND a.attnum = ANY (c.conkey) WHERE c.contype = 'f' "
        "AND c.confrelid = CAST(? AS regclass) ORDER BY 1"
    ),
    unique_index=(
        "SELECT i.relname AS name FROM pg_index x "
        "JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = x.indkey[0] "
        "WHERE t.relname = ? AND pg_table_is_visible(t.oid) AND a.attname = ? "
        "AND x.indisunique AND x.indisvalid AND x.indnatts = 1 "
        "AND x.indpred IS NULL AND x.indexprs IS NULL"
    ),
    has_table="SELECT to_regclass(?) IS NOT NULL",
    has_column=(
        "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = current_schema() "
        "AND table_name = ? AND column_name = ?"
    ),
    has_index="SELECT to_regclass(?) IS NOT NULL",
    free_text_indexes=(
        "SELECT DISTINCT i.relname AS name FROM pg_index x "
        "JOIN pg_class i ON i.oid = x.indexrelid "
        "JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = ANY (x.indkey) "
        "WHERE x.indrelid = CAST(? AS regclass) AND a.attname <> ? "
        "AND a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, "
        "'bytea'::regtype, 'jsonb'::regtype)"
    ),
    lock_holders=_POSTGRES_HOLDERS,
)

SQLITE = Catalog(
    columns=(
        "SELECT name, CASE WHEN type LIKE '%INT%' THEN 'integer' "
        "WHEN type LIKE '%CHAR%' OR type LIKE '%CLOB%' OR type LIKE '%TEXT%' THEN 'text' "
        "WHEN type LIKE '%BLOB%' OR type = '' THEN 'blob' "
        "WHEN type LIKE '%REAL%' OR type LIKE '%FLOA%' OR type LIKE '%DOUB%' THEN 'real' "
        "ELSE 'numeric' END AS type, \"notnull\" AS not_null, "
        "dflt_value IS NOT NULL AS has_default FROM pragma_table_info(?) ORDER BY cid"
    ),
    # The primary key from the columns (an INTEGER PRIMARY KEY is the rowid: no index).
    keys=(
        "SELECT 'primary key' AS index_name, 'primary key' AS kind, 0 AS partial, pk AS seq, "
        "name AS key_column FROM pragma_table_info(?) WHERE pk > 0 UNION ALL "
        "SELECT l.name, 'unique', l.partial, i.seqno, COALESCE(i.name, '(expression)') "
        'FROM pragma_index_list(?) AS l, pragma_index_info(l.name) AS i WHERE l."unique" = 1 '
        "AND l.origin <> 'pk'"
    ),
    dependents=(
        "SELECT DISTINCT m.name || '.' || f.\"from\" AS name FROM sqlite_master AS m, "
        "pragma_foreign_key_list(m.name) AS f WHERE m.type = 'table' "
        'AND f."table" = ? COLLATE NOCASE ORDER BY 1'
    ),
    unique_index=(
        "SELECT l.name AS name FROM pragma_index_list(?) AS l "
        'WHERE l."unique" = 1 AND l.partial = 0 '
        "AND (SELECT COUNT(*) FROM pragma_index_info(l.name)) = 1 "
        "AND (SELECT i.name FROM pragma_index_info(l.name) AS i) = ?"
    ),
    has_table="SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?",
    has_column="SELECT COUNT(*) FROM pragma_table_info(?) WHERE name = ?",
    has_index="SELECT COUNT(*) > 0 FROM sqlite_master WHERE type = 'index' AND name = ?",
    free_text_indexes=None,
    lock_holders=None,
)

#: A job loading an empty table (the fast path, load.py) drops the table's primary key with its
#: indexes, and pauses autovacuum on it: vacuuming the growing table cost CPU, and held up the
#: index builds at the end for a second (deadlock_timeout) before it gave way. At the job's
#: end, or in the next run after a kill, this brings both back on the entity tables; not while
#: the job runs (columnar_etl.busy_tables, set by Target.apply_schema), and only on the tables
#: of the run (columnar_etl.schema_tables, likewise). ``{tables}`` are [table, its generated
#: key] pairs of declared identifiers.
POSTGRES_RESTORE = """DO $$
DECLARE
    pair text[];
    t text;
BEGIN
    FOREACH pair SLICE 1 IN ARRAY ARRAY[{tables}]::text[] LOOP
        t := pair[1];
        CONTINUE WHEN t = ANY (string_to_array(
            current_setting('columnar_etl.busy_tables', true), ','));
        CONTINUE WHEN NOT t = ANY (string_to_array(
            current_setting('columnar_etl.schema_tables', true), ','));
        IF EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = t::regclass AND contype = 'p') THEN
            NULL;
        ELSIF EXISTS (SELECT 1 FROM pg_index x
                      JOIN pg_class i ON i.oid = x.indexrelid
                      JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0]
                      WHERE x.indrelid = t::regclass AND i.relname = t || '_pkey'
                      AND x.indisunique AND x.indisvalid AND x.indnkeyatts = 1
                      AND x.indpred IS NULL AND a.attname = pair[2]) THEN
            -- Built beside the other indexes (POSTGRES_KEY_INDEX): made the key as it is.
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY USING INDEX %I',
                           t, t || '_pkey', t || '_pkey');
        ELSE
            EXECUTE format('ALTER TABLE %I ADD CONSTRAINT %I PRIMARY KEY (%I)',
                           t, t || '_pkey', pair[2]);
        END IF;
        IF EXISTS (SELECT 1 FROM pg_class WHERE oid = t::regclass
                   AND reloptions @> ARRAY['autovacuum_enabled=false']) THEN
            EXECUTE format('ALTER TABLE %I RESET (autovacuum_enabled)', t);
        END IF;
    END LOOP;
END $$"""


#: A fast job's primary key as the unique index it rests on, built at the job's end at once
#: with the table's other indexes, each on its own connection (Target.build_indexes): each
#: build scans the whole table, and one at a time they left a server core idle. The
#: restore above then makes it the key without building it again.
POSTGRES_KEY_INDEX = "CREATE UNIQUE INDEX IF NOT EXISTS {name} ON {table} ({column})"
