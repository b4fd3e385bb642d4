"""Which differences between a table and its declaration stop a run (columnar_etl.shape)."""

from __future__ import annotations

from columnar_etl.shape import Column, TableShape, differences

DECLARED = TableShape(
    {
        "id": Column("bigint", True, True),
        "legacy_id": Column("text", True, False),
        "phone": Column("text", False, False),
        "etl_job_id": Column("bigint", True, False),
    },
    frozenset({"primary key (id)", "unique (legacy_id)"}),
)


def _with(**changes: Column | None) -> dict[str, Column]:
    columns = {**DECLARED.columns, **changes}
    return {name: column for name, column in columns.items() if column is not None}


def test_the_declared_shape_has_no_differences() -> None:
    assert differences(DECLARED, DECLARED) == []


def test_looser_than_declared_is_accepted() -> None:
    looser = _with(
        etl_job_id=Column("bigint", False, False),  # takes NULL where we say NOT NULL
        note=Column("text", False, False),  # extra, nullable
        region=Column("text", True, True),  # extra, NOT NULL with a default
    )
    assert differences(DECLARED, TableShape(looser, DECLARED.keys)) == []


def test_what_refuses_our_rows_or_our_keys_is_named() -> None:
    stricter = _with(
        legacy_id=Column("integer", True, False),
        phone=Column("text", True, False),
        tenant_id=Column("integer", True, False),
        etl_job_id=None,
    )
    keys = frozenset({"unique (legacy_id)", "unique (phone)"})
    assert differences(DECLARED, TableShape(stricter, keys)) == [
        "column legacy_id is integer, declared text",
        "column phone is NOT NULL, declared nullable",
        "column etl_job_id (bigint) is missing",
        "column tenant_id (integer NOT NULL, no default) is not declared",
        "primary key (id) is missing",
        "unique (phone) is not declared",
    ]
