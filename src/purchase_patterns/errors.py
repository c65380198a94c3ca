"""Exceptions that carry a user-facing one-line message and a CLI exit code."""

from __future__ import annotations

#: Exit codes of the CLI.
EXIT_OK = 0
EXIT_DATA_QUALITY = 1
EXIT_BAD_INPUT = 2


def one_line(text: str) -> str:
    """``text`` with control characters escaped (a file name may hold a line break), so that
    a message naming it stays one line."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode()
                   for ch in text)


class PurchasePatternsError(Exception):
    """Base error: ``str(err)`` is the one line shown to the user."""

    exit_code = EXIT_BAD_INPUT


class InputFileError(PurchasePatternsError):
    """A file cannot be used at all (missing, empty, not delimited text, no usable header)."""

    def __init__(self, path: object, problem: str, *, line: int | None = None,
                 column: str | None = None) -> None:
        where = one_line(str(path))
        if line is not None:
            where += f":{line}"
        if column:
            where += f" (column {column!r})"
        super().__init__(f"{where}: {problem}")
        self.path = str(path)
        self.problem = problem
        self.line = line
        self.column = column


class UsageError(PurchasePatternsError):
    """Bad options or configuration."""


class DataQualityError(PurchasePatternsError):
    """An error-severity data-quality check failed."""

    exit_code = EXIT_DATA_QUALITY


class StageError(PurchasePatternsError):
    """A pipeline stage failed for a reason other than data quality."""

    exit_code = EXIT_DATA_QUALITY
