"""The one place a refusal becomes an HTTP status.

Operations (sentiment_core/operations.py) refuse with an `OperationError` whose class says what
kind of refusal it is; STATUSES gives each kind its status, and web/app.py's error handler
answers every refusal with it. The two refusals only HTTP has, about the admin token, are the
web's own kinds beside them.
"""

from __future__ import annotations

from sentiment_core.errors import (
    Conflict,
    Invalid,
    NotFound,
    OperationError,
    TooLarge,
    Unacceptable,
    Unavailable,
)


class Unauthorized(OperationError):
    """An admin action without a valid admin token."""


class Forbidden(OperationError):
    """An admin action while admin actions are off."""


STATUSES: dict[type[OperationError], int] = {
    Invalid: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooLarge: 413,
    Unacceptable: 422,
    Unavailable: 503,
}


def status_of(error: OperationError) -> int:
    """The HTTP status of `error`'s kind, the nearest one its class inherits from."""
    for kind in type(error).__mro__:
        if kind in STATUSES:
            return STATUSES[kind]
    raise TypeError(f"{type(error).__name__} has no HTTP status")
