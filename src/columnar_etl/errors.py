"""The exceptions columnar-etl raises; the CLI turns each into one line and an exit code."""

from __future__ import annotations

__all__ = [
    "AlreadyCommittedError",
    "CommandInterruptedError",
    "ConfigError",
    "ConservationError",
    "ContractError",
    "EtlError",
    "ForeignRowsError",
    "InterruptedRunError",
    "LockTimeoutError",
    "RollbackRefusedError",
    "RunLockedError",
    "SourceError",
    "TargetError",
    "TargetFullError",
    "TargetShapeError",
]


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


class AlreadyCommittedError(TargetError):
    """A batch's transaction found the batch committed by another attempt: it rolls back, and
    the batch counts once (the ledger row is the batch's commit marker)."""


class TargetFullError(TargetError):
    """The target cannot take writes (disk full, I/O error, read-only): the run stops."""


class TargetShapeError(TargetError):
    """A target table is not as declared (columns, types, nullability, keys), or refused every
    row of a batch with one error: the table's doing, not the rows'. Nothing is written."""


class ForeignRowsError(TargetError):
    """A target table holds rows the tool did not write with keys of source records, and the
    run was not told what to do with them (``--on-conflict update`` takes them over)."""


class KeylessChangedError(TargetError):
    """A keyless table was loaded by an earlier job from rows that have changed since: without
    a key its rows cannot be matched one by one, so loading again could only duplicate them."""


class RunLockedError(TargetError):
    """Another ``etl run`` holds the target (same entity on PostgreSQL, any on SQLite)."""


class LockTimeoutError(EtlError):
    """A lock another session held (in the source or the target) outlasted ``--lock-timeout``
    on every try; the message names the table and the holder's pid where the database tells
    them. Committed batches are kept and the job, if one was created, resumes on a rerun."""


class CommandInterruptedError(EtlError):
    """The user stopped a command (Ctrl-C); the message says what was kept."""

    exit_code = 130

    def __init__(self, message: str, exit_code: int = 130) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        """128 + the signal that stopped it: 130 (Ctrl-C) or 143 (SIGTERM, a run)."""


class InterruptedRunError(CommandInterruptedError):
    """The user (Ctrl-C) or an orchestrator (SIGTERM) stopped the run; committed batches
    stay, the job can be resumed."""


class ContractError(EtlError):
    """A transform was given a frame without its legacy columns, or produced one without the
    contract's columns or types."""


class ConservationError(EtlError):
    """A batch's rows do not each land in exactly one place; it is not committed."""


class RollbackRefusedError(EtlError):
    """``etl rollback`` would leave loaded orders pointing at deleted customers (or the job is
    already rolled back); ``blocking`` maps each orders job to its count of such orders."""

    def __init__(self, message: str, blocking: dict[int, int] | None = None) -> None:
        super().__init__(message)
        self.blocking = dict(blocking or {})
