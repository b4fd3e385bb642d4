"""The exceptions columnar-etl raises; the CLI turns each into one line and an exit code."""

from __future__ import annotations

__all__ = ["ConfigError", "ContractError", "EtlError", "SourceError", "TargetError"]


class EtlError(Exception):
    """Base class: a problem the user can act on, with a message that says how."""

    exit_code = 1


class ConfigError(EtlError):
    """Bad options, environment variables or URLs."""

    exit_code = 2


class SourceError(EtlError):
    """The legacy database cannot be reached or does not look as expected."""


class TargetError(EtlError):
    """The target database cannot be reached or refused a write."""


class ContractError(EtlError):
    """A transform produced a frame that does not have the contract's columns or types."""
