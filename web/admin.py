"""The admin token: who may move the active model or start retraining. The actions themselves
are operations (sentiment_core/operations.py)."""

from __future__ import annotations

import hmac

from web.errors import Forbidden, Unauthorized
from web.services import get_services


def check_admin(token: str | None) -> None:
    expected = get_services().settings.admin_token
    if not expected:
        raise Forbidden("admin_disabled", "admin actions are off: ADMIN_TOKEN is not set")
    if not token or not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("unauthorized", "a valid admin token is required")


def bearer_token(header: str | None) -> str | None:
    scheme, _, token = (header or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None
