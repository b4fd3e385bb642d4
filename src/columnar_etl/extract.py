"""Reading the legacy database with connectorx: batch planning from sorted ids, one batch as Arrow.

Identifiers come from the entity's SourceSpec and are checked against the source table's real
columns before any query runs; the only values in the SQL are integers we computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from columnar_etl.config import DatabaseUrl, redact
from columnar_etl.entities import SourceSpec
from columnar_etl.errors import SourceError

__all__ = ["BatchRange", "Source"]


@dataclass(frozen=True)
class BatchRange:
    """Ids ``start_id..end_id`` inclusive of a source table, holding ``records_count`` rows."""

    batch_number: int
    start_id: int
    end_id: int
    records_count: int


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class Source:
    """The legacy database."""

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url

    def probe(self) -> None:
        """Connect once with libpq: a wrong password or a dead server fails here in well under
        a second, where connectorx's pool would retry for 30 s before giving up."""
        if self.url.dialect != "postgresql":
            return
        import adbc_driver_postgresql.dbapi as driver

        try:
            driver.connect(self.url.url).close()
        except Exception as exc:  # the driver's own error classes
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SourceError(f"cannot connect to source {self.url}: {redact(message)}") from None

    def read(self, sql: str) -> pl.DataFrame:
        """Run a query through connectorx into a Polars frame."""
        import connectorx as cx

        if self.url.dialect == "sqlite" and not self.url.path.exists():
            raise SourceError(f"source database file not found: {self.url.path}")
        try:
            table = cx.read_sql(self.url.url, sql, return_type="arrow")
        except Exception as exc:
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SourceError(f"cannot read source {self.url}: {redact(message)}") from None
        return pl.from_arrow(table)  # type: ignore[return-value]

    def check(self, spec: SourceSpec) -> None:
        """Fail clearly when the source is unreachable, or a table or column is missing."""
        self.probe()
        if self.url.dialect == "sqlite":
            sql = f"SELECT name FROM pragma_table_info('{spec.table}')"
        else:
            sql = (
                "SELECT column_name AS name FROM information_schema.columns "
                f"WHERE table_name = '{spec.table}' AND table_schema = current_schema()"
            )
        # spec.table is ours (a registered entity), never user input.
        found = set(self.read(sql)["name"].to_list())
        if not found:
            raise SourceError(f"source table {spec.table!r} not found in {self.url}")
        missing = [c for c in spec.columns if c not in found]
        if missing:
            raise SourceError(
                f"source table {spec.table!r} is missing columns: {', '.join(missing)}"
            )

    def plan(self, spec: SourceSpec, batch_size: int) -> list[BatchRange]:
        """Cut the table into ranges of exactly ``batch_size`` rows (the last may be smaller).

        Boundaries are every batch_size-th id in sorted order, so gaps and skew in the ids
        never make a batch empty or oversized.
        """
        table, key = _quote(spec.table), _quote(spec.id_column)
        size = int(batch_size)
        sql = (
            f"SELECT id, rn FROM (SELECT {key} AS id, "
            f"ROW_NUMBER() OVER (ORDER BY {key}) AS rn FROM {table}) AS numbered "
            f"WHERE (rn - 1) % {size} = 0 ORDER BY id"
        )
        starts = self.read(sql)
        total = self.count(spec)
        if total == 0:
            return []
        last_id = int(self.read(f"SELECT MAX({key}) AS m FROM {table}")["m"][0])
        ids = [int(v) for v in starts["id"].to_list()]
        batches = []
        for number, start in enumerate(ids, 1):
            end = ids[number] - 1 if number < len(ids) else last_id
            count = size if number < len(ids) else total - size * (len(ids) - 1)
            batches.append(BatchRange(number, start, end, count))
        return batches

    def count(self, spec: SourceSpec) -> int:
        """Rows in the source table."""
        return int(self.read(f"SELECT COUNT(*) AS n FROM {_quote(spec.table)}")["n"][0])

    def read_batch(self, spec: SourceSpec, batch: BatchRange) -> pl.DataFrame:
        """The rows of one batch, with the legacy dtypes of ``spec``."""
        columns = ", ".join(_quote(c) for c in spec.columns)
        key = _quote(spec.id_column)
        sql = (
            f"SELECT {columns} FROM {_quote(spec.table)} "
            f"WHERE {key} >= {int(batch.start_id)} AND {key} <= {int(batch.end_id)} ORDER BY {key}"
        )
        frame = self.read(sql)
        return frame.cast(dict(spec.schema), strict=False)  # type: ignore[arg-type]
