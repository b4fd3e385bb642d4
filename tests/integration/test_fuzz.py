"""Hostile legacy rows through the whole pipeline into both targets: no crash, every row
accounted for (loaded or rejected with a reason, filtered, or skipped), counts conserved."""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from columnar_etl import entities, pipeline
from columnar_etl.config import DatabaseUrl, RunConfig
from columnar_etl.target import Target

AS_OF = datetime(2026, 1, 1)

HOSTILE = [
    "'; DROP TABLE orders; --",
    '" OR 1=1 --',
    "$1",
    "?",
    "%s %d",
    "\\",
    "NaN",
    "nan",
    "-0",
    "-0.0",
    "1e308",
    "-1e308",
    "1e309",
    "inf",
    "-Infinity",
    "1e-400",
    "0x1F",
    "١٢٣",
    "\x00",
    "a\x00b@c.de",
    "\u202e\u200b\ufeff",
    "2023-02-29",
    "9999-12-31 23:59:59",
    "[" * 5_000 + "]" * 5_000,
    '{"a":' * 2_000 + "1" + "}" * 2_000,
    json.dumps([{"product_id": "P1", "quantity": 1, "price": 1.5}] * 5_000),
    json.dumps([{"product_id": "\x00", "quantity": 1e308, "price": -0.0}]),
    '[{"product_id": "P1", "quantity": 1, "price": NaN}]',
    "P1:1:1e308|P2:-0:-0|P3:NaN:1",
    "k=v;" * 10_000,
    "x" * 1_000_000,
]
text = st.one_of(
    st.none(),
    st.sampled_from(HOSTILE),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40),
)
ids = st.integers(min_value=-(2**62), max_value=2**62)


def _rows(draw: st.DrawFn, spec, n: int) -> pl.DataFrame:
    keys = draw(st.lists(ids, min_size=n, max_size=n, unique=True))
    columns: dict[str, list[Any]] = {}
    for name, dtype in spec.schema.items():
        if name == spec.id_column:
            columns[name] = keys
        elif dtype == pl.String:
            columns[name] = [draw(text) for _ in range(n)]
        else:
            columns[name] = [
                draw(st.one_of(st.none(), st.sampled_from([0, 1, -1]), ids)) for _ in range(n)
            ]
    return pl.DataFrame(columns, schema=spec.schema)


@st.composite
def legacy_tables(draw: st.DrawFn) -> dict[str, pl.DataFrame]:
    return {
        name: _rows(draw, entities.get(name).source, draw(st.integers(1, 12)))
        for name in entities.names()
    }


def _write_source(path: Path, tables: dict[str, pl.DataFrame]) -> DatabaseUrl:
    url = DatabaseUrl.parse(f"sqlite://{path}", what="source")
    with Target(url) as t:
        t.apply_schema("legacy")
        for name, frame in tables.items():
            t.ingest(entities.get(name).source.table, frame, append=True)
        t.commit()
    return url


def _check(target: DatabaseUrl, tables: dict[str, pl.DataFrame], config: RunConfig) -> None:
    results = pipeline.run(config, "all")
    assert [r.status for r in results] == ["completed"] * 3, [r.error for r in results]
    with Target(target) as t:
        for result in results:
            frame = tables[result.entity]
            c = result.counts
            assert result.conserved, c
            assert c["extracted"] == frame.height
            loaded = t.scalar(f"SELECT COUNT(*) FROM {result.entity}")
            assert loaded == c["loaded"]
            errors = t.query(
                "SELECT record_id, error_message FROM migration_errors WHERE migration_job_id = ?",
                (result.job_id,),
            )
            assert errors.height == c["rejected"]
            # (SQLite types the columns of an empty result as it likes)
            assert (errors["error_message"].cast(pl.String).str.len_chars() > 0).all()
            ids = set(frame[entities.get(result.entity).source.id_column].cast(pl.String))
            assert set(errors["record_id"].cast(pl.String)) <= ids


FUZZ = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@FUZZ
@given(tables=legacy_tables())
def test_fuzz_into_sqlite(tables: dict[str, pl.DataFrame], tmp_path_factory) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    source = _write_source(folder / "legacy.db", tables)
    target = DatabaseUrl.parse(f"sqlite://{folder / 'target.db'}", what="target")
    config = RunConfig(source=source, target=target, batch_size=5, max_retries=0, as_of=AS_OF)
    _check(target, tables, config)


@FUZZ
@given(tables=legacy_tables())
def test_fuzz_into_postgresql(tables: dict[str, pl.DataFrame], tmp_path_factory, pg_server) -> None:
    folder = tmp_path_factory.mktemp("fuzz")
    source = _write_source(folder / "legacy.db", tables)
    name = pg_server.create_database(f"t_{uuid.uuid4().hex[:12]}")
    try:
        target = DatabaseUrl.parse(pg_server.url(name), what="target")
        config = RunConfig(source=source, target=target, batch_size=5, max_retries=0, as_of=AS_OF)
        _check(target, tables, config)
    finally:
        pg_server.drop_database(name)


def test_invalid_utf8_in_a_sqlite_source_is_rejected_not_fatal(tmp_path: Path) -> None:
    source = tmp_path / "legacy.db"
    _write_source(
        source,
        {name: pl.DataFrame(schema=entities.get(name).source.schema) for name in entities.names()},
    )
    with sqlite3.connect(source) as conn:
        conn.execute(
            "INSERT INTO orders VALUES (1, 1, CAST(X'4f52442dff' AS TEXT), '1.00', '1', "
            "'2023-01-01', 'P1:1:1.00'), (2, 1, 'ORD-2', '1.00', '1', '2023-01-01', 'P1:1:1.00')"
        )
    target = DatabaseUrl.parse(f"sqlite://{tmp_path / 'target.db'}", what="target")
    src = DatabaseUrl.parse(f"sqlite://{source}", what="source")
    [result] = pipeline.run(RunConfig(source=src, target=target, as_of=AS_OF), "orders")
    assert result.status == "completed" and result.conserved
    assert result.counts["loaded"] == 1 and result.counts["rejected"] == 1
    with Target(target) as t:
        [message] = t.query("SELECT error_message FROM migration_errors")["error_message"]
    assert "order_number" in message and "UTF-8" in message
