"""One small hierarchy of errors, mapped to CLI exit codes."""

from __future__ import annotations


class OsservatorioError(Exception):
    """Base class of every error raised on purpose by osservatorio."""

    exit_code = 1


class InputError(OsservatorioError):
    """Bad input (theme file, option, data file) detected before any notebook starts.

    Exit code 2. The message names the file, and where it applies the row, column or
    key, and what is allowed.
    """

    exit_code = 2


class ThemeError(InputError):
    """A theme file is missing, unreadable or invalid."""


class DataValidationError(InputError):
    """A source table failed its schema."""

    def __init__(self, message: str, failures: list[dict] | None = None):
        super().__init__(message)
        self.failures = failures or []


class RunError(OsservatorioError):
    """A theme run failed while executing its notebooks (exit code 1)."""


class EstimationError(OsservatorioError):
    """An estimator cannot be computed on the data given (e.g. no treated units)."""


class DesignError(InputError):
    """A theme's design cannot work on its data (e.g. randomization inference when
    adoption varies within clusters); found by ``validate`` before any notebook starts."""


class StageOrderError(OsservatorioError):
    """A stage needs a file that an earlier stage, run with the same parameters, writes."""


QUOTE_LIMIT = 60


def quoted(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr`` of a value for a message, cut to about ``limit`` characters: a message
    quotes what it judged, never pages of it (a 3 MB value stays one short line)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit - 1]}… ({len(text):,} characters)"
