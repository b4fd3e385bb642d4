"""Run an entity over a frame of legacy rows and split it into valid rows and rejects.

pandera (polars backend) judges the transformed rows against the entity's contract; its
failure cases carry the row position, which we map back to the untouched source row so every
reject says which rules it broke, in the order the contract declares them.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import NamedTuple

import pandera.errors
import pandera.polars as pa
import polars as pl

from columnar_etl.declare import FILTERED, ROW_ID, SOURCE_ERRORS, TRANSFORM_ERRORS, Entity
from columnar_etl.errors import ContractError

__all__ = [
    "ERROR_MESSAGE",
    "ERROR_TYPE",
    "MESSAGE_FROM_VALUE",
    "Split",
    "in_memory_collects",
    "split",
    "validation_messages",
]

ERROR_TYPE = "error_type"
ERROR_MESSAGE = "error_message"
#: A check whose ``error`` is this takes each failing value as the message itself, for rules
#: whose wording depends on the row (e.g. "Item 2: invalid price").
MESSAGE_FROM_VALUE = "{value}"


class Split(NamedTuple):
    """The three places a batch of legacy rows can go (duplicates are the loader's call)."""

    valid: pl.DataFrame
    """Target rows that passed the contract, in source order."""
    rejects: pl.DataFrame
    """Untouched source rows plus ``error_type`` and ``error_message``."""
    filtered: int
    """How many rows the entity's filter put out of scope."""
    valid_rows: pl.Series
    """Each valid row's position in the source frame (UInt32): which source row a valid row
    came from when the source repeats an id."""


class _EngineAffinity:
    """The in-memory affinity while anyone is inside :func:`in_memory_collects`: counted, so
    runs that overlap in one process keep it until the last one leaves, which puts back the
    affinity found by the first (only that setting, not the rest of Polars' config; a named
    affinity, not an engine object set with ``pl.Config.set_engine_affinity``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._before: str | None = None

    def enter(self) -> None:
        with self._lock:
            if not self._users:
                self._before = os.environ.get(_AFFINITY)
                pl.Config.set_engine_affinity("in-memory")
            self._users += 1

    def leave(self) -> None:
        with self._lock:
            self._users -= 1
            if not self._users:
                try:
                    pl.Config.set_engine_affinity(self._before)  # type: ignore[arg-type]
                except ValueError:  # not a name Polars knows: put the text back as it was
                    os.environ[_AFFINITY] = str(self._before)


_AFFINITY = "POLARS_ENGINE_AFFINITY"
_ENGINE = _EngineAffinity()


@contextmanager
def in_memory_collects() -> Iterator[None]:
    """Polars' in-memory engine for every ``collect()`` that names none, as pandera's do.

    pandera collects each check on its own, about 30 times per ``validate``; on a batch held
    in memory the streaming engine (Polars 2's default) costs more to set up each time than
    the check itself: 2M orders took 0.4 s less CPU to split with this. The setting is
    process-wide (Polars has no per-thread one), so a run enters this once, around all its
    threads; processes it starts meanwhile (a local Ray instance) inherit it.
    """
    _ENGINE.enter()
    try:
        yield
    finally:
        _ENGINE.leave()


def _message_ranks(schema: pa.DataFrameSchema, entity: Entity) -> pl.DataFrame:
    """(column, check) -> message and rank, in the order the contract declares its rules."""
    rows: list[tuple[str | None, str, str]] = []
    for name, column in schema.columns.items():
        if not column.nullable:
            default = f"{name} is required"
            rows.append((name, "not_nullable", entity.required_messages.get(name, default)))
        rows.extend((name, check.error, check.error) for check in column.checks)
    rows.extend((None, check.error, check.error) for check in schema.checks)
    return pl.DataFrame(
        {
            "column": [r[0] for r in rows],
            "check": [r[1] for r in rows],
            "message": [r[2] for r in rows],
            "rank": list(range(len(rows))),
        },
        schema={"column": pl.String, "check": pl.String, "message": pl.String, "rank": pl.Int64},
    )


def _types_and_nulls_only(schema: pa.DataFrameSchema) -> bool:
    """Whether ``schema`` asks nothing of a frame but its columns' dtypes and nullability: no
    check, parser, uniqueness, coercion, default or dropping, on it or on any column."""
    if schema.checks or schema.parsers or schema.unique or schema.coerce:
        return False
    if schema.drop_invalid_rows:
        return False
    return not any(
        c.checks
        or c.parsers
        or c.unique
        or c.coerce
        or c.regex
        or c.drop_invalid_rows
        or c.default is not None
        for c in schema.columns.values()
    )


def _null_cases(frame: pl.DataFrame, schema: pa.DataFrameSchema) -> pl.DataFrame:
    """pandera's ``not_nullable`` failure cases, found with one Polars pass: a row per null
    (or, in a float column, NaN) value of a column the contract declares not nullable."""
    cases = []
    for name, column in schema.columns.items():
        if column.nullable:
            continue
        missing = pl.col(name).is_null()
        if frame.schema[name].is_float():
            missing = missing | pl.col(name).is_nan()
        found = frame.select(pl.arg_where(missing).cast(pl.Int64).alias("index"))
        if found.height:
            labels = {"column": pl.lit(name), "check": pl.lit("not_nullable")}
            cases.append(found.with_columns(**labels, failure_case=pl.lit(None, pl.String)))
    return pl.concat(cases) if cases else pl.DataFrame()


def _failure_cases(
    frame: pl.DataFrame, contract: Callable[[datetime], pa.DataFrameSchema], as_of: datetime
) -> pl.DataFrame:
    """Every failure case of ``frame`` against ``contract(as_of)`` (empty when it passes).

    A contract of dtypes and nullability alone (an identity copy's) is judged without running
    pandera over the rows: pandera checks the dtypes on no rows, once per job clock and set of
    dtypes, and Polars finds the nulls. The same cases come out, for a fraction of pandera's
    30-odd collects per batch (building the contract and judging its dtypes anew for every
    batch was half of an identity copy's transform and validation)."""
    schema, lean = _contract(contract, as_of)
    if not lean:
        # A schema of its own per batch, as before: batches validate in several threads, and
        # pandera does not promise that a shared schema is safe (its pandas backend changed
        # one while checking: pandera issue 1940).
        return _pandera_cases(frame, contract(as_of))
    if _hashable(contract):
        typed = _dtype_cases(contract, as_of, tuple(frame.schema.items()))
    else:
        typed = _pandera_cases(frame.head(0), schema)
    return typed if typed.height else _null_cases(frame, schema)


def _pandera_cases(frame: pl.DataFrame, schema: pa.DataFrameSchema) -> pl.DataFrame:
    try:
        schema.validate(frame, lazy=True)
    except pandera.errors.SchemaErrors as exc:
        return exc.failure_cases
    return pl.DataFrame()


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:  # a callable object defining equality alone
        return False
    return True


def _build(
    contract: Callable[[datetime], pa.DataFrameSchema], as_of: datetime
) -> tuple[pa.DataFrameSchema, bool]:
    """``contract(as_of)``, and whether it asks nothing but dtypes and nullability."""
    schema = contract(as_of)
    return schema, _types_and_nulls_only(schema)


_built = functools.lru_cache(maxsize=64)(_build)


def _contract(
    contract: Callable[[datetime], pa.DataFrameSchema], as_of: datetime
) -> tuple[pa.DataFrameSchema, bool]:
    """:func:`_build`, once per job clock where the callable has a hash (a function does)."""
    return _built(contract, as_of) if _hashable(contract) else _build(contract, as_of)


@functools.lru_cache(maxsize=256)
def _dtype_cases(
    contract: Callable[[datetime], pa.DataFrameSchema],
    as_of: datetime,
    dtypes: tuple[tuple[str, pl.DataType], ...],
) -> pl.DataFrame:
    """pandera's failure cases of an empty frame of ``dtypes``: its dtype checks alone."""
    schema, _ = _built(contract, as_of)
    return _pandera_cases(pl.DataFrame(schema=dict(dtypes)), schema)


#: The engine's own columns beside the transform's output.
_OURS = frozenset({ROW_ID, FILTERED, TRANSFORM_ERRORS, SOURCE_ERRORS})


def validation_messages(frame: pl.DataFrame, entity: Entity, as_of: datetime) -> pl.DataFrame:
    """Validate ``frame`` and return (row position ``index``, ``error_message``) per failing row."""
    contract = entity.contract
    schema, _ = _contract(contract, as_of)
    missing = [c for c in schema.columns if c not in frame.columns]
    if missing:
        raise ContractError(
            f"{entity.name}: the contract's columns {', '.join(map(repr, missing))} are not in "
            f"the transform's output ({', '.join(c for c in frame.columns if c not in _OURS)})"
        )
    cases = _failure_cases(frame.select(list(schema.columns)), contract, as_of)
    if not cases.height:
        return pl.DataFrame(schema={"index": pl.Int64, ERROR_MESSAGE: pl.String})
    if cases["index"].null_count():
        whole = cases.filter(pl.col("index").is_null()).unique(["column", "check"], keep="first")
        problems = "; ".join(
            f"{column}: {check}, got {got}"
            for column, check, got in whole.select("column", "check", "failure_case").rows()
        )
        raise ContractError(f"{entity.name}: transform output breaks its contract: {problems}")
    ranked = cases.join(_message_ranks(schema, entity), on=["column", "check"], how="left")
    message = (
        pl.when(pl.col("check") == MESSAGE_FROM_VALUE)
        .then(pl.col("failure_case"))
        .otherwise(pl.col("message"))
    )
    # Gather each row's messages as a list and join them after: an expression inside agg (when/
    # then, str.join) is evaluated group by group, which costs more than the validation itself.
    return (
        ranked.with_columns(message.alias(ERROR_MESSAGE))
        .sort("index", "rank")
        .group_by("index", maintain_order=True)
        .agg(ERROR_MESSAGE)
        .select(pl.col("index").cast(pl.Int64), pl.col(ERROR_MESSAGE).list.join("; "))
    )


def _unreadable(source: pl.DataFrame) -> pl.DataFrame:
    """Rows the source could not give faithfully (see SOURCE_ERRORS): rejected as they are."""
    if SOURCE_ERRORS not in source.columns:
        return pl.DataFrame(
            schema={ROW_ID: pl.UInt32, ERROR_TYPE: pl.String, ERROR_MESSAGE: pl.String}
        )
    return source.filter(pl.col(SOURCE_ERRORS).is_not_null()).select(
        ROW_ID,
        pl.lit("transformation_error").alias(ERROR_TYPE),
        pl.col(SOURCE_ERRORS).alias(ERROR_MESSAGE),
    )


def check_contract(entity: Entity, as_of: datetime) -> None:
    """Raise ContractError where ``entity``'s transform cannot give its contract's columns
    and dtypes, found on no rows: before the target table is created from the contract."""
    split(pl.DataFrame(schema=entity.source.schema), entity, as_of)


def _where(frame: pl.DataFrame, condition: pl.Expr) -> pl.DataFrame:
    """``frame.filter(condition)``, without copying the frame when every row passes (nearly
    every batch of a clean table: the copies were a third of an identity copy's split)."""
    keep = frame.select(condition.alias("keep")).to_series()
    return frame if keep.sum() == frame.height else frame.filter(keep)


def split(source: pl.DataFrame, entity: Entity, as_of: datetime) -> Split:
    """Transform and validate a frame of legacy rows; every row lands in exactly one place."""
    source = source.with_row_index(ROW_ID)
    unreadable = _unreadable(source)
    # The in-memory engine: for a batch held in memory it does the same work with less CPU than
    # the streaming one, which Polars 2 picks by default.
    out = entity.transform(source.lazy()).collect(engine="in-memory")
    if unreadable.height:
        out = out.filter(~pl.col(ROW_ID).is_in(unreadable[ROW_ID].implode()))
    in_scope = _where(out, ~pl.col(FILTERED))
    broken = in_scope.filter(pl.col(TRANSFORM_ERRORS).is_not_null()).select(
        ROW_ID,
        pl.lit("transformation_error").alias(ERROR_TYPE),
        pl.col(TRANSFORM_ERRORS).alias(ERROR_MESSAGE),
    )
    candidates = _where(in_scope, pl.col(TRANSFORM_ERRORS).is_null())
    failed = validation_messages(candidates, entity, as_of)
    invalid = failed.select(
        candidates[ROW_ID].gather(failed["index"]).alias(ROW_ID),
        pl.lit("validation_error").alias(ERROR_TYPE),
        pl.col(ERROR_MESSAGE),
    )
    bad = pl.concat([unreadable, broken, invalid]).sort(ROW_ID)
    kept = _where(candidates, ~pl.col(ROW_ID).is_in(bad[ROW_ID].implode()))
    rejects = (
        (source if bad.height else source.head(0))
        .drop(SOURCE_ERRORS, strict=False)
        .join(bad, on=ROW_ID, how="inner")
        .sort(ROW_ID)
        .drop(ROW_ID)
    )
    return Split(
        valid=kept.select(entity.target_columns),
        rejects=rejects,
        filtered=out.height - in_scope.height,
        valid_rows=kept[ROW_ID],
    )
