"""Reading the schema files: statements split where the database would split them."""

from __future__ import annotations

import importlib.resources

import pytest

from columnar_etl.target import _statements

DDL = """-- a comment; with a semicolon
CREATE TABLE a (x int);
CREATE INDEX IF NOT EXISTS i ON a (x);
-- another comment
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1) THEN
        ALTER TABLE a ADD PRIMARY KEY (x);
    END IF;
END $$;

"""


def test_statements_split_at_semicolons_outside_dollar_quoted_bodies() -> None:
    assert list(_statements(DDL)) == [
        "CREATE TABLE a (x int)",
        "CREATE INDEX IF NOT EXISTS i ON a (x)",
        "DO $$\nBEGIN\n    IF NOT EXISTS (SELECT 1) THEN\n"
        "        ALTER TABLE a ADD PRIMARY KEY (x);\n    END IF;\nEND $$",
    ]


@pytest.mark.parametrize("name", ["postgres/target.sql", "sqlite/target.sql"])
def test_every_table_and_index_of_a_schema_file_is_a_statement_of_its_own(name: str) -> None:
    ddl = importlib.resources.files("columnar_etl.schemas").joinpath(name).read_text()
    statements = list(_statements(ddl))
    creates = ddl.count("CREATE TABLE") + ddl.count("CREATE INDEX") + ddl.count("CREATE UNIQUE")
    assert sum(s.startswith("CREATE") for s in statements) == creates
    assert all(s.count("CREATE") <= 1 and not s.startswith("--") for s in statements)
