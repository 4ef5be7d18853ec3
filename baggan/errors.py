"""Errors a user can cause: the front ends (the CLI's click group, the annotator) print them as one line; the CLI exits
with code 2. hfc's errors (HFCError, and Diverged, a diverged fit or training) are the user's too: `USER_ERRORS` is
the one place that says so."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from hfc.errors import HFCError


class UserError(Exception):
    """A problem with the user's input (path, file format, value); printed as one line, exit 2."""


class ConfigError(UserError):
    """A configuration file or value is invalid; the message names the file and the key."""


class DataError(UserError):
    """A data file or record is invalid; the message names the file and the record."""


class TrainingDiverged(UserError):
    """A loss became NaN or Inf; the message names the loss and the iteration."""


USER_ERRORS = (UserError, HFCError)  # shown to the user as one line (exit 2), never as a trace


@contextmanager
def about(what: str) -> Iterator[None]:
    """Say what a user error raised inside is about (e.g. the option whose file was bad): the same error, its message
    prefixed with `what`."""
    try:
        yield
    except USER_ERRORS as e:
        raise type(e)(f"{what} {e}") from None
