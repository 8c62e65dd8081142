"""Input as clients send it, cleaned or refused: review texts, idempotency keys, list filters
and pages. The same rules for the API, the pages and the OpenAPI document (web/openapi.py
reads the limits from here)."""

from __future__ import annotations

import enum
import re

from sentiment_core.errors import Invalid, TooLarge, Unacceptable
from sentiment_core.settings import MAX_BATCH_REVIEWS, MAX_REVIEW_CHARS

MAX_IDEMPOTENCY_KEY = 128  # characters; a UUID or a client's own request id fits easily
# Visible ASCII only: what any HTTP stack carries in a header unchanged.
IDEMPOTENCY_KEY = re.compile(f"[!-~]{{1,{MAX_IDEMPOTENCY_KEY}}}")
MAX_PER_PAGE = 100  # rows in one page of a list
MAX_PAGE = 1_000_000  # far past any real history, and keeps the row offset in a 64-bit integer
DIGITS = re.compile("[0-9]{1,9}")  # a page number or size as sent; longer is out of range anyway
MAX_ID = 2**31 - 1  # the largest id an Integer column holds (PostgreSQL's is 32-bit)
MAX_SUBMISSION = 32  # characters in a submission id: a UUID's hex digits
# The longest a request may wait for a result, in seconds: well inside the 60 s after which
# common proxies drop an idle request.
MAX_WAIT_S = 30
# A wait as sent: a decimal number, as JSON writes one (float() would also take "nan", signs,
# spaces, underscores and other scripts' digits).
NUMBER = re.compile(r"[0-9]{1,20}(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?")
# Characters that show nothing: whitespace, controls and zero-width or direction marks. A review
# needs one character outside them. Spelled so that Python's and JSON Schema's regexes agree.
INVISIBLE = r"\s\x00-\x1f\x7f-\x9f\xad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff"
VISIBLE = re.compile(f"[^{INVISIBLE}]")


def clean_text(value: object, where: str = "text") -> str:
    """`value` without surrounding whitespace, or an OperationError saying what is wrong."""
    if not isinstance(value, str):
        raise Invalid("invalid_type", f"{where} must be a string")
    if len(value) > MAX_REVIEW_CHARS:
        message = f"{where} has {len(value)} characters; the limit is {MAX_REVIEW_CHARS}"
        raise TooLarge("text_too_long", message)
    if not VISIBLE.search(value):
        raise Unacceptable("empty_text", f"{where} is empty")
    # A NUL cannot be stored in a PostgreSQL text column, nor a lone surrogate in UTF-8.
    if "\x00" in value or not _encodes(value):
        raise Unacceptable("invalid_text", f"{where} contains a character that is not text")
    return value.strip()


def _encodes(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def clean_texts(values: list[object], where: str = "reviews") -> list[str]:
    if not values:
        raise Unacceptable("no_reviews", f"{where}: there are no reviews to score")
    if len(values) > MAX_BATCH_REVIEWS:
        message = f"{where}: {len(values)} reviews; at most {MAX_BATCH_REVIEWS} at once"
        raise TooLarge("too_many_reviews", message)
    return [clean_text(value, where=f"{where}[{i}]") for i, value in enumerate(values)]


def check_idempotency_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(key):
        message = f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
        raise Invalid("invalid_idempotency_key", message)
    return key


def parse_choice(value: str | None, choices: type[enum.Enum], name: str):
    """`value` as a member of `choices`, None when absent; Invalid for anything else."""
    if value is None:
        return None
    try:
        return choices(value)
    except ValueError:
        allowed = ", ".join(member.value for member in choices)
        raise Invalid("invalid_parameter", f"{name} must be one of {allowed}") from None


def parse_page(page: str | None, per_page: str | None, default: int = 20) -> tuple[int, int]:
    """Page number and size from query parameters, as decimal digits (int() would also take
    signs, spaces, underscores and other scripts' digits)."""
    number, size = _whole_number(page, 1), _whole_number(per_page, default)
    if not 1 <= number <= MAX_PAGE or not 1 <= size <= MAX_PER_PAGE:
        message = f"page must be an integer from 1 to {MAX_PAGE}, per_page from 1 to {MAX_PER_PAGE}"
        raise Invalid("invalid_parameter", message)
    return number, size


def _whole_number(value: str | None, default: int) -> int:
    """`value` as an int; 0 (out of every range) when it is not a short run of digits."""
    if value is None:
        return default
    return int(value) if DIGITS.fullmatch(value) else 0


def parse_submission(value: str | None) -> str | None:
    if value and not storable_submission(value):
        message = f"submission is an id of at most {MAX_SUBMISSION} characters, without NUL"
        raise Invalid("invalid_parameter", message)
    return value or None


def storable_submission(value: str) -> bool:
    """Whether a submission id could be stored, so looked up (PostgreSQL's text holds no NUL)."""
    return len(value) <= MAX_SUBMISSION and "\x00" not in value


def parse_wait(value: str | None) -> float:
    """Seconds to wait for a result, from 0 to MAX_WAIT_S; 0 when absent."""
    if value is None:
        return 0.0
    seconds = float(value) if NUMBER.fullmatch(value) else -1.0
    if not 0 <= seconds <= MAX_WAIT_S:
        message = f"wait must be a number of seconds from 0 to {MAX_WAIT_S}"
        raise Invalid("invalid_parameter", message)
    return seconds
