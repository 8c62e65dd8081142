"""The one place a refusal becomes an HTTP status.

Operations (sentiment_core/operations.py) refuse with an `OperationError` whose class says what
kind of refusal it is; STATUSES gives each kind its status, and web/app.py's error handler
answers every refusal with it (the pages' forms with their own message), and with the wait
before a retry when the refusal has one. The two refusals only HTTP has, about the admin token
and about where a request comes from, are the web's own kinds beside them.
"""

from __future__ import annotations

from flask import Response, g

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
    """An admin action while admin actions are off, or a write from another site's page."""


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


def hold_retry_after(error: OperationError) -> None:
    """Keep the refusal's wait, when it has one, for `send_retry_after` to answer with."""
    if error.retry_after_s is not None:
        g.retry_after_s = error.retry_after_s


def send_retry_after(response: Response) -> Response:
    """Retry-After, in seconds, as the request's refusal gave it."""
    if "retry_after_s" in g:
        response.headers["Retry-After"] = str(g.retry_after_s)
    return response
