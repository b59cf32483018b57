"""Errors a user can read: one sentence, no traceback."""
from __future__ import annotations


class UserError(Exception):
    """An error whose message is written for a sales leader, not an engineer."""


def user_message(exc: BaseException) -> str:
    """The sentence to show for an exception."""
    from revops.store import StoreBusy
    if isinstance(exc, (UserError, StoreBusy)):
        return str(exc)
    if isinstance(exc, FileNotFoundError):
        return f"The file {exc.filename} does not exist."
    if isinstance(exc, PermissionError):
        return f"The file {exc.filename} cannot be read or written (permission denied)."
    return f"Something went wrong ({type(exc).__name__}: {exc})."
