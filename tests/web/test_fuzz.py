"""Schema-driven fuzz of the API: every operation of the app's own OpenAPI document, generated
inside and outside its schemas, must answer without a 5xx and as the document says."""

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.config import SchemathesisConfig

from sentiment_core.errors import Invalid
from sentiment_core.inputs import parse_wait
from sentiment_core.settings import Settings
from tests.conftest import ADMIN_TOKEN

CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": 1,
        "generation": {"max-examples": 60, "deterministic": True, "database": "none"},
        # A too-large request is refused with 413, which every operation that takes one documents.
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
            }
        },
    }
)


def load_schema():
    """The document as the app serves it, read from an app that never connects to anything.

    Each test then calls its own `fuzz_app` (schemathesis's fixture loader does not run on
    pytest 9.2, which renamed the node attribute it rewrites).
    """
    from web.app import create_app

    unconnected = Settings(
        database_url="sqlite://", redis_url="redis://unused:1/0", ratelimit_storage_url="memory://"
    )
    app = create_app(unconnected)
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=CONFIG)


schema = load_schema()
# Each operation's examples share one app and database, on purpose: later requests meet the rows
# that earlier ones stored.
SHARED_APP = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture
def stored_keys() -> set[str]:
    """Idempotency-Keys of the submissions stored so far."""
    return set()


# A valid ?wait= holds a request on the stored queued review for up to 30 s, as nothing scores
# it here; the fuzz waits this long at most (waiting itself is tested in test_waiting.py).
FUZZ_WAIT_S = 0.05


def cap_the_wait(case) -> None:
    wait = (case.query or {}).get("wait")
    if not isinstance(wait, (int, float, str)) or isinstance(wait, bool):
        return
    try:
        seconds = parse_wait(str(wait))
    except Invalid:
        return
    case.query["wait"] = min(seconds, FUZZ_WAIT_S)


def call_and_validate(case, app, stored_keys: set[str], headers: dict | None = None) -> None:
    """Call the operation and run every check on the answer.

    The one schema-valid request the service may refuse is a reused Idempotency-Key (422, as the
    IETF draft has it): that is allowed only for a key whose earlier submission was stored.
    """
    cap_the_wait(case)
    response = case.call(app=app, headers=headers)
    key = case.headers.get("Idempotency-Key") if case.headers else None
    excluded = []
    if response.status_code == 422 and response.json()["error"]["code"] == "idempotency_key_reused":
        assert key in stored_keys
        excluded = [positive_data_acceptance]
    elif response.status_code == 202 and key is not None:
        stored_keys.add(key)
    case.validate_response(
        response,
        excluded_checks=excluded,
        headers=headers,
        transport_kwargs={"app": app, "headers": headers},
    )


@schema.parametrize()
@SHARED_APP
def test_every_operation_answers_as_documented(case, fuzz_app, stored_keys) -> None:
    call_and_validate(case, fuzz_app, stored_keys)


@schema.include(path_regex="/activate$|/rollback$").parametrize()
@SHARED_APP
def test_admin_operations_with_the_token_answer_as_documented(case, fuzz_app, stored_keys) -> None:
    call_and_validate(case, fuzz_app, stored_keys, {"Authorization": f"Bearer {ADMIN_TOKEN}"})
