"""The migration ``etl init`` writes: Python source declaring one entity per legacy table.

:func:`plan` decides, from what the catalog says (:mod:`columnar_etl.introspect`), each
entity's names, key, indexes and references; :func:`render` writes them as a module that
uses only the public declaration API, formatted as ``ruff format`` would. Source names go
into the declarations as string literals, whatever they hold; the target's names are plain
SQL names derived from them (lower case, letters, digits and ``_``, no reserved word).
"""

from __future__ import annotations

import hashlib
import keyword
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import polars as pl

from columnar_etl.introspect import SourceIndex, SourceTable
from columnar_etl.typemap import Carry

__all__ = [
    "EntityPlan",
    "Plan",
    "Ref",
    "choose_key",
    "describe",
    "plan",
    "py_string",
    "render",
    "sql_name",
]

#: The generated key of every target table: ``id`` is a common legacy column name.
SURROGATE_KEY = "etl_id"
#: Target columns the engine writes itself.
ENGINE_COLUMNS = frozenset({"legacy_id", "etl_job_id", SURROGATE_KEY})
#: The ledger's tables, in the same target database.
LEDGER_TABLES = frozenset({"migration_jobs", "migration_batches", "migration_errors"})
#: PostgreSQL's reserved key words and SQLite's, which the target's DDL (names unquoted)
#: cannot take as a name.
RESERVED = frozenset(
    """
    abort add all alter analyse analyze and any array as asc asymmetric authorization between
    binary both by case cast check collate collation column commit concurrently constraint
    create cross current_catalog current_date current_role current_schema current_time
    current_timestamp current_user default deferrable delete desc distinct do drop else end
    escape except exists false fetch for foreign freeze from full grant group having if ilike
    in index initially inner insert intersect into is isnull join lateral leading left like
    limit localtime localtimestamp natural not nothing notnull null offset on only or order
    outer overlaps placing primary references returning right select session_user set similar
    some symmetric system_user table tablesample then to trailing transaction true union
    unique update user using values variadic verbose when where window with
    """.split()  # noqa: SIM905 (a list of 130 words reads better as words)
)
#: Module-level names of the generated file other than the entities' own.
MODULE_NAMES = frozenset(
    {"annotations", "pa", "pl", "ENTITIES", "FILTERED", "TRANSFORM_ERRORS"}
    | {"Entity", "Index", "Reference", "SourceSpec", "carry_row_id", "reads", "rule", "copy"}
)
#: PostgreSQL keeps this many bytes of a name.
MAX_NAME = 63
#: ``ruff format``'s default line length: the generated folder has no settings of its own.
LINE = 88


def sql_name(text: str, taken: Iterable[str] = (), fallback: str = "column") -> str:
    """A plain SQL name for ``text`` (a legacy table or column name), unlike every name of
    ``taken``: ASCII lower case, letters, digits and ``_``, not starting with a digit or
    ``_``, no reserved word, at most 63 characters."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    name = re.sub(r"[^a-z0-9]+", "_", ascii_text.lower()).strip("_") or fallback
    if name[0].isdigit():
        name = f"{fallback[0]}_{name}"
    if name in RESERVED or keyword.iskeyword(name):
        name += "_"
    name = _short(name)
    taken = set(taken)
    found, n = name, 1
    while found in taken:
        n += 1
        found = _short(name, f"_{n}")
    return found


def _short(name: str, suffix: str = "") -> str:
    """``name`` + ``suffix`` within MAX_NAME: a cut name keeps a hash of the whole."""
    if len(name) + len(suffix) <= MAX_NAME:
        return name + suffix
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - len(suffix) - 9].rstrip('_')}_{digest}{suffix}"


def py_string(text: str) -> str:
    """``text`` as a Python string literal, quoted as ``ruff format`` quotes it: double
    quotes unless the text holds more of them than of single quotes."""
    quote = "'" if text.count('"') > text.count("'") else '"'
    escaped = []
    for char in text:
        if char == "\\" or char == quote:
            escaped.append("\\" + char)
        elif char in "\n\r\t":
            escaped.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char])
        elif not char.isprintable():
            escaped.append(repr(char)[1:-1])
        else:
            escaped.append(char)
    return quote + "".join(escaped) + quote


@dataclass(frozen=True)
class Ref:
    """A foreign key as a declaration: ``column`` (a target name) points at ``entity.key``."""

    column: str
    entity: str
    key: str


@dataclass(frozen=True)
class EntityPlan:
    """One entity to write: what it reads, how its names map, what it declares."""

    table: SourceTable
    name: str
    """The entity's name, its target table's and (lower case) its Python variable's."""
    columns: Mapping[str, str]
    """Source column -> target column, in the table's order."""
    key: tuple[str, ...]
    """Source columns of the entity's key; empty: keyless."""
    key_note: str
    """Which key it is, or why there is none."""
    indexes: tuple[tuple[str, tuple[str, ...], bool], ...]
    """(name, target columns, unique) of each declared index."""
    references: tuple[Ref, ...]

    @property
    def constant(self) -> str:
        """The Python name of its SourceSpec."""
        return self.name.upper()

    @property
    def record_key(self) -> str | None:
        """The target column the engine knows a record by where the key is one column, which
        the transform carries unchanged (an integer or text, whose text is the record id);
        None for a composite key (a ``legacy_id`` column then holds it) or none."""
        return self.columns[self.key[0]] if len(self.key) == 1 else None

    @property
    def rules(self) -> dict[str, Carry]:
        """Each source column's rule (a refused type never reaches a plan); a key column's
        as a key is read."""
        rules = {c.name: c.rule for c in self.table.columns if isinstance(c.rule, Carry)}
        return rules | {c: self.table.column(c).key_rule for c in self.key}  # type: ignore[dict-item]


@dataclass(frozen=True)
class Plan:
    """The entities of a migration in dependency order, and what was left out, and why."""

    entities: tuple[EntityPlan, ...]
    notes: tuple[str, ...]


def choose_key(table: SourceTable) -> tuple[tuple[str, ...], str]:
    """The table's key: its primary key; else its narrowest unique key whose columns are
    all NOT NULL; each column read as it is, as an integer or text. With what it is, or why
    the table has none."""
    candidates = [("primary key", table.primary_key)] if table.primary_key else []
    not_null = [u for u in table.uniques if all(table.column(c).not_null for c in u)]
    candidates += [("unique, not null", u) for u in sorted(not_null, key=len)]
    refused = []
    for label, columns in candidates:
        unusable = [table.column(c) for c in columns if table.column(c).key_rule is None]
        if not unusable:
            return columns, label
        why = ", ".join(f"{c.name} {c.why_not_a_key}" for c in unusable)
        refused.append(f"{label} ({', '.join(columns)}): {why}")
    if refused:
        return (), "keyless: " + "; ".join(refused)
    return (), "keyless: no primary key, no unique key of NOT NULL columns"


def plan(tables: Sequence[SourceTable]) -> Plan:
    """The entities ``tables`` become, each after the entities it references."""
    names: dict[str, str] = {}
    for table in tables:
        names[table.name] = _entity_name(table.name, set(names.values()))
    columns = {t.name: _column_names(t) for t in tables}
    by_name = {t.name: t for t in tables}
    notes: list[str] = []
    # Indexes and tables share PostgreSQL's namespace of relations.
    index_names = {*names.values(), *LEDGER_TABLES}
    drafts = {t.name: _entity(t, names, columns, by_name, index_names, notes) for t in tables}
    return Plan(_dependency_order(drafts, notes), tuple(notes))


#: Entity names are kept short: the Python lines derived from them stay within LINE.
MAX_ENTITY = 30


def _entity_name(table: str, taken: set[str]) -> str:
    """A plain SQL name for ``table``, unlike the ledger's tables and the names ``taken``,
    whose Python names (``name``, ``NAME``, ``name_transform``, ``name_contract``) clash
    with no other of the generated module."""
    clashes = set(LEDGER_TABLES) | {n.lower() for n in MODULE_NAMES}
    for name in taken:
        clashes |= {name, f"{name}_transform", f"{name}_contract"}
        clashes |= {name.removesuffix(s) for s in ("_transform", "_contract")}
    name = sql_name(table, clashes, fallback="table")
    return name if len(name) <= MAX_ENTITY else sql_name(_short(name[:MAX_ENTITY]), clashes)


def _column_names(table: SourceTable) -> dict[str, str]:
    """Source column -> target column, none of them a column the engine writes."""
    columns: dict[str, str] = {}
    for column in table.columns:
        columns[column.name] = sql_name(column.name, {*columns.values(), *ENGINE_COLUMNS})
    return columns


def _entity(
    table: SourceTable,
    names: Mapping[str, str],
    all_columns: Mapping[str, Mapping[str, str]],
    tables: Mapping[str, SourceTable],
    index_names: set[str],
    notes: list[str],
) -> EntityPlan:
    name = names[table.name]
    columns = all_columns[table.name]
    key, key_note = choose_key(table)
    declared = []
    for index in _distinct(table.indexes):
        unique = index.kind != "index"
        target = tuple(columns[c] for c in index.columns)
        if len(key) == 1 and target == (columns[key[0]],):
            continue  # the record key's own unique index covers it
        suffix = "key" if unique else "idx"
        label = sql_name("_".join((name, *target, suffix)), index_names, "index")
        index_names.add(label)
        declared.append((label, target, unique))
    references = []
    for fk in table.foreign_keys:
        where = f"{table.name}({', '.join(fk.columns)}) -> {fk.table}"
        pointed = tables.get(fk.table)
        to = fk.to or (pointed.primary_key if pointed else ())
        if pointed is None:
            notes.append(f"{where}: not declared ({fk.table} is not among the tables read)")
        elif fk.table == table.name:
            notes.append(f"{where}: not declared (the table references itself)")
        elif len(fk.columns) != 1 or len(to) != 1:
            notes.append(f"{where}: not declared (a foreign key of several columns)")
        else:
            target = all_columns[fk.table][to[0]]
            references.append(Ref(columns[fk.columns[0]], names[fk.table], target))
    return EntityPlan(table, name, columns, key, key_note, tuple(declared), tuple(references))


def _distinct(indexes: Iterable[SourceIndex]) -> list[SourceIndex]:
    """One index per list of columns: a unique one where there is one."""
    kept: dict[tuple[str, ...], SourceIndex] = {}
    for index in indexes:
        if index.columns not in kept or kept[index.columns].kind == "index":
            kept[index.columns] = index
    return list(kept.values())


def _dependency_order(drafts: Mapping[str, EntityPlan], notes: list[str]) -> tuple[EntityPlan, ...]:
    """The entities, each after those it references; a reference closing a cycle is left
    out (the migration could not order it), with a note."""
    by_entity = {d.name: d for d in drafts.values()}
    ordered: dict[str, EntityPlan] = {}
    visiting: list[str] = []

    def visit(entity: EntityPlan) -> None:
        if entity.name in ordered:
            return
        visiting.append(entity.name)
        kept = []
        for ref in entity.references:
            if ref.entity in visiting:
                cycle = " -> ".join([*visiting[visiting.index(ref.entity) :], ref.entity])
                pointed = by_entity[ref.entity].table.name
                notes.append(
                    f"{entity.table.name}({ref.column}) -> {pointed}: not declared "
                    f"(a cycle: {cycle})"
                )
                continue
            visit(by_entity[ref.entity])
            kept.append(ref)
        visiting.pop()
        ordered[entity.name] = replace(entity, references=tuple(kept))

    for entity in drafts.values():
        visit(entity)
    return tuple(ordered.values())


# -- rendering ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Code:
    """Python code that may be written on one line or, where it does not fit, with its
    ``items`` one per line between ``head`` + ``open`` and ``close`` (a trailing comma
    keeping it so for ``ruff format``)."""

    head: str
    items: tuple[Code | Text | Pair | str, ...]
    open: str = "("
    close: str = ")"
    exploded: bool = False
    """Written one item per line even where it fits on one."""

    tuple: bool = False
    """A tuple (of one item: ``(x,)``), not a call."""
    receiver: Code | None = None
    """The call whose result ``head`` (``.alias``) is a method of."""

    def flat(self) -> str | None:
        """On one line, or None where an item must be written over several."""
        if self.exploded:
            return None
        items = [i if isinstance(i, str) else i.flat() for i in self.items]
        if any(i is None for i in items):
            return None
        inner = ", ".join(i for i in items if i is not None)
        if self.tuple and len(self.items) == 1:
            inner += ","
        receiver = "" if self.receiver is None else self.receiver.flat()
        if receiver is None:
            return None
        return f"{receiver}{self.head}{self.open}{inner}{self.close}"


@dataclass(frozen=True)
class Text:
    """A string literal; too long for its line, implicitly concatenated parts in
    parentheses, as ``ruff format`` leaves them."""

    value: str

    def flat(self) -> str:
        return py_string(self.value)


def _parts(value: str, width: int) -> list[str]:
    """``value`` cut into pieces whose literals fit ``width``, after a space where one is."""
    parts, rest = [], value
    while len(py_string(rest)) > width:
        cut = width - 2
        while len(py_string(rest[:cut])) > width:
            cut -= 1
        space = rest.rfind(" ", 0, cut)
        cut = space + 1 if space > 0 else cut
        parts.append(rest[:cut])
        rest = rest[cut:]
    return [*parts, rest]


def lines(code: Code | Text | str, indent: int, prefix: str = "", suffix: str = "") -> list[str]:
    """``code`` as ``ruff format`` writes it at ``indent``, after ``prefix``."""
    pad = " " * indent
    if isinstance(code, str):
        return [f"{pad}{prefix}{code}{suffix}"]
    if isinstance(code, Text):
        flat = f"{pad}{prefix}{py_string(code.value)}{suffix}"
        if len(flat) <= LINE:
            return [flat]
        parts = _parts(code.value, LINE - indent - 4)
        inner = [f"{pad}    {py_string(part)}" for part in parts]
        return [f"{pad}{prefix}(", *inner, f"{pad}){suffix}"]
    one_line = code.flat()
    if one_line is not None and len(flat := f"{pad}{prefix}{one_line}{suffix}") <= LINE:
        return [flat]
    out = [f"{pad}{prefix}{code.head}{code.open}"]
    if code.receiver is not None:
        receiver = code.receiver.flat()
        if receiver is not None and len(f"{pad}{prefix}{receiver}{code.head}(") <= LINE:
            out = [f"{pad}{prefix}{receiver}{code.head}{code.open}"]
        else:  # the receiver's own brackets first, as ruff format cuts a chain
            first = lines(replace(code.receiver, exploded=True), indent, prefix)
            out = [*first[:-1], f"{first[-1]}{code.head}{code.open}"]
    # A call of one argument written over lines takes no comma after it (ruff adds none).
    [only] = code.items if len(code.items) == 1 else [None]
    sole = isinstance(only, Code) and only.flat() is None and not (code.exploded or code.tuple)
    for item in code.items:
        if isinstance(item, Pair):
            out += lines(item.value, indent + 4, prefix=f"{item.key}: ", suffix=",")
        else:
            out += lines(item, indent + 4, suffix="" if sole else ",")
    return [*out, f"{pad}{code.close}{suffix}"]


def call(head: str, *args: Code | Text | str, exploded: bool = False) -> Code:
    return Code(head, args, exploded=exploded)


@dataclass(frozen=True)
class Pair:
    """A dict's ``key: value`` (the key already code)."""

    key: str
    value: Code | Text | str

    def flat(self) -> str | None:
        value = self.value if isinstance(self.value, str) else self.value.flat()
        return None if value is None else f"{self.key}: {value}"


def mapping(pairs: Iterable[tuple[str, Code | Text | str]], head: str = "") -> Code:
    """A dict, one item per line."""
    return Code(head, tuple(Pair(k, v) for k, v in pairs), "{", "}", exploded=True)


def strings(names: Iterable[str], head: str = "") -> Code:
    return Code(head, tuple(py_string(n) for n in names), tuple=True)


def dtype_code(dtype: pl.DataType) -> str:
    """``dtype`` as Polars code: ``pl.Int64``, ``pl.Decimal(38, 10)``."""
    if isinstance(dtype, pl.Decimal):
        return f"pl.Decimal({dtype.precision}, {dtype.scale})"
    return f"pl.{dtype.base_type().__name__}"


def render(migration: Plan, source_title: str) -> str:
    """The migration module's source."""
    entities = migration.entities
    used = ["FILTERED", "TRANSFORM_ERRORS", "Entity"]
    if any(e.indexes for e in entities):
        used.append("Index")
    if any(e.references for e in entities):
        used.append("Reference")
    used += ["SourceSpec", "carry_row_id", "reads"]
    if any(c.type.labels for e in entities for c in e.table.columns):
        used.append("rule")
    imports = lines(Code("from columnar_etl import ", tuple(used), exploded=True), 0)
    head = [
        f'"""The migration `etl init` wrote from a {source_title} database.',
        "",
        "One entity per legacy table, in dependency order. Each transform copies its rows",
        "as they are: edit it to parse, map or reject (see docs/writing-a-migration.md).",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "import pandera.polars as pa",
        "import polars as pl",
        *imports,
    ]
    # One blank line after the imports where a comment follows them (ruff's isort), two
    # between definitions.
    body = [line for entity in entities for line in ["", "", *_entity_lines(entity)]][1:]
    listed = Code("ENTITIES = ", tuple(e.name for e in entities), "[", "]", exploded=True)
    return "\n".join([*head, *body, "", "", *lines(listed, 0)]) + "\n"


def _entity_lines(entity: EntityPlan) -> list[str]:
    table, name, const = entity.table, entity.name, entity.constant
    rules = entity.rules
    key = entity.key
    key_code: Code | str = "None" if not key else py_string(key[0])
    if len(key) > 1:
        key_code = strings(key)
    spec_args: list[Code | str] = [
        py_string(table.name),
        key_code,
        mapping((py_string(c), dtype_code(r.dtype)) for c, r in rules.items()),
    ]
    if table.where is not None:
        spec_args.append(f"where={py_string(table.where)}")
        pairs = ((py_string(k), py_string(v)) for k, v in table.params.items())
        spec_args.append(mapping(pairs, head="params="))
    read_as = {c: r.read.replace("{c}", "{}") for c, r in rules.items() if r.as_text}
    if read_as:
        pairs = ((py_string(c), Text(sql)) for c, sql in read_as.items())
        spec_args.append(mapping(pairs, head="read_as="))
    spec = call(f"{const} = SourceSpec", *spec_args, exploded=True)
    selected: list[Code | str] = ["carry_row_id()"]
    composite = len(key) > 1
    if composite:
        selected.append(f'{const}.record_id().alias("legacy_id")')
    for source, target in entity.columns.items():
        column = call("pl.col", py_string(source))
        renamed = Code(".alias", (py_string(target),), receiver=column)
        selected.append(column if source == target else renamed)
    selected.append("**{FILTERED: pl.lit(False), TRANSFORM_ERRORS: pl.lit(None, pl.String)}")
    contract: list[tuple[str, Code | str]] = [("legacy_id", "pa.Column(pl.String)")] * composite
    for column in table.columns:
        target = entity.columns[column.name]
        # A null key (SQLite lets a primary key hold one) is a reject, not a record.
        required = column.not_null or target == entity.record_key
        nullable = [] if required else ["nullable=True"]
        dtype = dtype_code(rules[column.name].dtype)
        checks = [_enum_check(target, column.type.labels)] if column.type.labels else []
        contract.append((target, call("pa.Column", dtype, *nullable, *checks)))
    schema = mapping((py_string(c), code) for c, code in contract)
    rows = _rows(table.rows)
    return [
        *_comment(f"{name}: legacy table {py_string(table.name)}, {rows}, {_key(entity)}"),
        *lines(spec, 0),
        "",
        "",
        f"@reads({const})",
        f"def {name}_transform(lf: pl.LazyFrame) -> pl.LazyFrame:",
        '    """The legacy rows as they are: edit to parse, map or reject."""',
        *lines(call("lf.select", *selected, exploded=True), 4, "return "),
        "",
        "",
        f"def {name}_contract(as_of: object) -> pa.DataFrameSchema:",
        '    """Valid target rows: add checks with columnar_etl.rule."""',
        "    del as_of",
        *lines(call("pa.DataFrameSchema", schema), 4, "return "),
        "",
        "",
        *lines(_entity_call(entity), 0),
    ]


def _enum_check(column: str, labels: Sequence[str]) -> Code:
    """The contract's check that an enum's text is one of its values: the target column is
    text, so a value the source kept outside them (MySQL's '' in a non-strict mode) is a
    reject, not a new label."""
    is_in = Code(".is_in", (strings(labels),), receiver=call("pl.col", py_string(column)))
    message = Text(f"{column}: not one of the enum's values")
    return Code("checks=rule", (message, is_in))


def _entity_call(entity: EntityPlan) -> Code:
    name = entity.name
    args: list[Code | str] = [
        f"name={py_string(name)}",
        f"source={entity.constant}",
        f"transform={name}_transform",
        f"contract={name}_contract",
        f"target_table={py_string(name)}",
    ]
    if not entity.key:
        args.append("unique_keys=()")
    if entity.record_key is not None:
        args.append(Code("unique_keys=", (py_string(entity.record_key),), tuple=True))
        args.append(f"record_key={py_string(entity.record_key)}")
    if entity.indexes:
        indexes = (
            call("Index", py_string(label), strings(columns), *(["unique=True"] if unique else []))
            for label, columns, unique in entity.indexes
        )
        args.append(Code("indexes=", tuple(indexes), tuple=True))
    if entity.references:
        refs = (
            call("Reference", py_string(r.column), f"to={py_string(f'{r.entity}.{r.key}')}")
            for r in entity.references
        )
        args.append(Code("references=", tuple(refs), tuple=True))
    types = ((py_string(entity.columns[c]), py_string(r.target)) for c, r in entity.rules.items())
    args.append(mapping(types, head="sql_types="))
    # The legacy key is the table's primary key, as it was; a table without one key column
    # gets a generated one.
    surrogate = "None" if entity.record_key is not None else py_string(SURROGATE_KEY)
    args.append(f"surrogate_key={surrogate}")
    return call(f"{name} = Entity", *args, exploded=True)


def _comment(text: str) -> list[str]:
    """``text`` as comment lines within LINE."""
    words, out, line = text.split(" "), [], "#"
    for word in words:
        if len(line) + 1 + len(word) > LINE and line != "#":
            out.append(line)
            line = "#"
        line += " " + word
    return [*out, line]


def describe(migration: Plan) -> list[str]:
    """What ``etl init`` found and decided, as lines to print: each table with its estimated
    rows (``?`` where the database has no estimate) and key, every column carried as text
    and why, every table read with a condition and what it is, every foreign key left out
    and why."""
    out = ["tables (-> entity), estimated rows, key:"]
    for entity in migration.entities:
        table = entity.table
        named = table.name if table.name == entity.name else f"{table.name!r} -> {entity.name}"
        out.append(f"  {named}: {_rows(table.rows)}, {_key(entity)}")
    texts, keys = [], []
    for entity in migration.entities:
        for c in entity.table.columns:
            rule = entity.rules[c.name]
            spelled = c.type.spelled or c.type.name
            line = f"  {entity.table.name}.{c.name}: {spelled} -> {rule.target}: {rule.why}"
            if rule.as_text:
                texts.append(line)
            elif rule is c.as_key:
                keys.append(line)
    if texts:
        out += ["read as text, cast back to their type by the target:", *texts]
    if keys:
        out += ["keys read as they are:", *keys]
    own = [f"  {e.table.name}: {e.table.where}" for e in migration.entities if e.table.where]
    if own:
        out += ["read with a condition keeping only their own rows:", *own]
    if migration.notes:
        out += ["foreign keys left out:", *(f"  {note}" for note in migration.notes)]
    return out


def _rows(rows: int | None) -> str:
    return "? rows" if rows is None else "1 row" if rows == 1 else f"{rows:,} rows"


def _key(entity: EntityPlan) -> str:
    if not entity.key:
        return entity.key_note
    return "key " + ", ".join(entity.key) + f" ({entity.key_note})"
