"""Each built-in entity's table rendered from its declaration equals the one the hand-written
SQL made before the declarations (kept in tests/fixtures/sql_before_declarations/).

Columns (type and nullability), the primary key and every index (its columns and whether it
is unique) are read back from the database's catalog, for PostgreSQL and SQLite; both the
statements ddl.py renders and the schema step a run applies are held to it.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from columnar_etl import ddl, entities
from columnar_etl.config import DatabaseUrl
from columnar_etl.dialects import DIALECTS
from columnar_etl.target import Target, _statements

BEFORE = Path(__file__).parent.parent / "fixtures" / "sql_before_declarations"

CATALOG = {
    "postgresql": {
        "columns": "SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, "
        "a.attnotnull AS not_null, pg_get_expr(d.adbin, d.adrelid) AS dflt FROM pg_attribute a "
        "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
        "WHERE a.attrelid = CAST(? AS regclass) AND a.attnum > 0 AND NOT a.attisdropped",
        "indexes": "SELECT i.relname AS name, x.indisunique AS is_unique, x.indisprimary AS pk, "
        "array_to_string(ARRAY(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(n, o) "
        "JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.n ORDER BY k.o), ',') "
        "AS columns FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
        "WHERE x.indrelid = CAST(? AS regclass)",
    },
    "sqlite": {
        "columns": 'SELECT name, lower(type) AS type, "notnull" OR pk AS not_null, '
        "dflt_value AS dflt FROM pragma_table_info(?)",
        "indexes": 'SELECT l.name AS name, l."unique" AS is_unique, 0 AS pk, '
        "(SELECT group_concat(i.name, ',') FROM pragma_index_info(l.name) i) AS columns "
        "FROM pragma_index_list(?) l WHERE l.origin = 'c'",
    },
}


@pytest.fixture(params=["sqlite", "postgresql"])
def two_databases(request: pytest.FixtureRequest, tmp_path) -> list[DatabaseUrl]:
    if request.param == "sqlite":
        return [DatabaseUrl.parse(f"sqlite://{tmp_path / f'{n}.db'}", what="t") for n in "ab"]
    server = request.getfixturevalue("pg_server")
    names = [server.create_database(f"t_{uuid.uuid4().hex[:12]}") for _ in range(2)]
    request.addfinalizer(lambda: [server.drop_database(n) for n in names])
    return [DatabaseUrl.parse(server.url(n), what="t") for n in names]


def _shape(target: Target, table: str) -> dict[str, object]:
    sql = CATALOG[target.dialect]
    columns = target.query(sql["columns"], (table,))
    indexes = target.query(sql["indexes"], (table,))
    return {
        "columns": {
            r["name"]: (r["type"], bool(r["not_null"]), r["dflt"])
            for r in columns.iter_rows(named=True)
        },
        "indexes": {
            r["name"]: (bool(r["is_unique"]), bool(r["pk"]), r["columns"])
            for r in indexes.iter_rows(named=True)
        },
    }


@pytest.mark.parametrize("name", entities.names())
def test_a_declared_entity_renders_the_table_today_s_sql_creates(
    two_databases: list[DatabaseUrl], name: str
) -> None:
    entity = entities.get(name)
    from_sql, from_declaration = two_databases
    with Target(from_sql) as t:
        sql = (BEFORE / ("postgres.sql" if t.dialect == "postgresql" else "sqlite.sql")).read_text()
        for statement in _statements(sql):
            t.execute(statement)
        t.commit()
        expected = _shape(t, entity.target_table)
    with Target(from_declaration) as t:
        for statement in ddl.table_statements(entity, DIALECTS[t.dialect]):
            t.execute(statement)
        t.commit()
        rendered = _shape(t, entity.target_table)
        t.execute(f"DROP TABLE {entity.target_table}")
        t.commit()
        t.apply_schema()
        applied = _shape(t, entity.target_table)
    assert expected["columns"], "the old SQL made no such table"
    assert rendered == expected
    assert applied == expected
