"""Conventional metavars in ``etl --help``: TEXT, INTEGER, FLOAT, PATH, [a|b], none on a flag.

Typer 0.2x prints a parameter's Python type (``<str>``, ``<int>``, ``<bool>``, even on
``--help``) where a reader of command-line help expects click's upper-case names. An option
that names its own ``metavar`` (URL, say) keeps it.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import get_args

from typer._click import Command, Context
from typer.core import TyperGroup, TyperOption

__all__ = ["ConventionalHelpGroup", "conventional_metavar"]

_BY_TYPE: dict[type, str] = {int: "INTEGER", float: "FLOAT", str: "TEXT"}


def conventional_metavar(option: TyperOption) -> str | None:
    """The metavar click would print for ``option``; None for a type it has no name for."""
    if option.is_flag:
        return ""  # a flag takes no value: nothing to name
    described = option.type_descriptor
    if described.is_choice:  # click's [a|b|c], not typer's <a|b|c>
        return "[" + "|".join(str(getattr(c, "value", c)) for c in described.choices or ()) + "]"
    annotation = described.annotation
    if described.is_list:  # an option given many times: click names one value
        [annotation] = get_args(annotation) or (str,)
    return _type_name(annotation)


def _type_name(annotation: object) -> str | None:
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return "PATH"
    return _BY_TYPE.get(annotation) if isinstance(annotation, type) else None


def _name_values(options: list[TyperOption]) -> None:
    """Name each option's value, unless it names its own; idempotent."""
    for option in options:
        if option.metavar is None:
            option.metavar = conventional_metavar(option)


class ConventionalHelpGroup(TyperGroup):
    """The ``etl`` group: its commands' options, ``--help`` included, get conventional
    metavars, so a command added with a plain ``@app.command()`` gets them too."""

    def get_help_option(self, ctx: Context) -> TyperOption | None:
        option = super().get_help_option(ctx)
        _name_values([option] if option is not None else [])
        return option

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            helper = command.get_help_option(ctx)
            options = [p for p in command.params if isinstance(p, TyperOption)]
            _name_values([*options, *([helper] if helper is not None else [])])
        return command
