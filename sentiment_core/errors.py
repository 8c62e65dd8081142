"""A refusal: what the service will not do, and why, in words that do not depend on HTTP.

Operations and input checks raise these; the web maps each kind to its status in one place
(web/errors.py), and the command line prints the message.
"""

from __future__ import annotations


class OperationError(Exception):
    """A request the service refuses: a stable code for programs and a message for people, and
    for a refusal that will pass, the seconds after which a retry may succeed."""

    def __init__(self, code: str, message: str, *, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.retry_after_s = code, message, retry_after_s


class Invalid(OperationError):
    """The input is malformed: the wrong type, or a parameter out of its range."""


class TooLarge(OperationError):
    """The input is well formed but more than the service takes at once."""


class Unacceptable(OperationError):
    """The input is well formed but cannot be used: empty text, a reused idempotency key."""


class NotFound(OperationError):
    """What the request names does not exist."""


class Conflict(OperationError):
    """The request clashes with the current state: an unscored review, a run in progress."""


class Unavailable(OperationError):
    """Something the operation needs is missing for now: a model, the queue, room in the
    backlog."""
