"""The operational failures a user meets at the command line, each said in one line.

A database that cannot be reached, a database without Treegate's tables (or at another schema
revision), a file that is missing or not accessible: `treegate` prints what happened and what to
do, and exits with a code of its own (sysexits(3), so that scripts can tell them apart). The
traceback is shown only with `--debug` or TREEGATE_LOG_LEVEL=debug. Anything else is a bug, and
keeps its traceback.
"""

from __future__ import annotations

import enum
import os
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.engine import make_url

from db.faults import causes, fault_of, is_connectivity


class ExitCode(enum.IntEnum):
    """What `treegate` exits with, besides 0 (done), 1 (refused: see its message) and 2 (a
    command line it does not understand)."""

    NO_INPUT = 66
    """A file to read does not exist."""
    UNAVAILABLE = 69
    """The database cannot be reached."""
    NO_PERMISSION = 77
    """A file or directory is not accessible."""
    CONFIG = 78
    """The database's schema is not the one this Treegate needs (run `treegate migrate`), or a
    setting is invalid."""


class OperationalFailure(Exception):
    """An expected failure: its message says what to do; `code` is the exit status."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.code = code


def safe_url(url: str) -> str:
    """The database URL without its password, for messages."""
    return make_url(url).render_as_string(hide_password=True)


def sqlite_file_problem(database_url: str) -> OperationalFailure | None:
    """Why an SQLite database file cannot be opened, found before trying: a connection attempt
    that fails leaves aiosqlite's thread to finish after the command's event loop has closed."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    path = Path(url.database)
    if path.exists():
        if os.access(path, os.R_OK | os.W_OK):
            return None
        why = "the file must be readable and writable by this user"
    elif path.parent.is_dir() and os.access(path.parent, os.W_OK | os.X_OK):
        return None
    else:
        why = "its directory must exist and be writable"
    return OperationalFailure(
        f"cannot open the SQLite database {path}: {why} (TREEGATE_DATABASE_URL)",
        ExitCode.UNAVAILABLE,
    )


def explain(error: BaseException, database_url: str | None) -> OperationalFailure | None:
    """`error` as an operational failure, or None if it is not one of those (a bug)."""
    for current in causes(error):
        if isinstance(current, OperationalFailure):
            return current
        if isinstance(current, BrokenPipeError):
            return None  # the reader of our output went away (`| head`): not the database
        if isinstance(current, ValidationError) and current.title == "Settings":
            return OperationalFailure(_invalid_settings(current), ExitCode.CONFIG)
        if isinstance(current, FileNotFoundError) and current.filename is not None:
            return OperationalFailure(
                f"{current.filename}: no such file or directory", ExitCode.NO_INPUT
            )
        if isinstance(current, PermissionError) and current.filename is not None:
            return OperationalFailure(
                f"{current.filename}: permission denied", ExitCode.NO_PERMISSION
            )
        if isinstance(current, IsADirectoryError) and current.filename is not None:
            return OperationalFailure(f"{current.filename}: is a directory", ExitCode.NO_INPUT)
    fault = fault_of(error)
    if database_url is not None and is_connectivity(fault):
        url = make_url(database_url)
        if url.get_backend_name() == "sqlite":
            return OperationalFailure(
                f"cannot open the SQLite database {url.database}: its directory must exist "
                "and be writable (TREEGATE_DATABASE_URL)",
                ExitCode.UNAVAILABLE,
            )
        return OperationalFailure(
            f"cannot reach the database at {safe_url(database_url)} ({_cause(error)}): is it "
            "running, and is TREEGATE_DATABASE_URL right?",
            ExitCode.UNAVAILABLE,
        )
    return None


def _cause(error: BaseException) -> str:
    """The innermost exception's own words, on one line."""
    innermost = list(causes(error))[-1]
    text = str(innermost).strip().splitlines()
    return text[0] if text else type(innermost).__name__


def _invalid_settings(error: ValidationError) -> str:
    # A rule over several settings (a model validator) has no location: its message names them.
    problems = [
        f"TREEGATE_{'_'.join(str(part) for part in e['loc']).upper()}: {e['msg']}"
        if e["loc"]
        else e["msg"]
        for e in error.errors()
    ]
    return "invalid setting: " + "; ".join(problems)
