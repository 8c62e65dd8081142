"""A pool process gets ready: it loads the active version, warms it up, and (serving the
scoring queue) records itself ready in Redis with the version it holds."""

import logging

import pytest

from sentiment_core.queue import EXPLANATION_QUEUE, MAINTENANCE_QUEUE, SCORING_QUEUE
from sentiment_core.readiness import READY_KEY, count_ready, worker_name
from sentiment_core.registry import activate_version
from tests.conftest import add_model
from worker.app import ProcessState

SCORER = [SCORING_QUEUE, MAINTENANCE_QUEUE]  # what `sentiment up` and compose run


@pytest.fixture
def process_state(settings, fake_redis):
    """Makes pool processes' states on the fake Redis; closes their database connections after."""
    states: list[ProcessState] = []

    def make(queues) -> ProcessState:
        state = ProcessState(settings, queues)
        state.redis = fake_redis
        states.append(state)
        return state

    yield make
    for state in states:
        if "sessions" in vars(state):  # the cached property was used
            state.sessions.kw["bind"].dispose()


def test_a_scoring_process_is_ready_once_warm_and_again_after_a_new_version(
    settings, sessions, fake_redis, tiny_model, tiny_artifact, process_state
) -> None:
    state = process_state(SCORER)
    state.get_ready()
    scorer = state.models.scorer
    assert scorer is not None and scorer.version == tiny_model
    # Warm: the fallback traced, nothing compiled yet (each shape compiles when a batch needs it).
    assert scorer.fallback.experimental_get_tracing_count() == 1
    assert scorer.forward.experimental_get_tracing_count() == 0
    assert scorer.attribute.experimental_get_tracing_count() == 0  # it never explains
    assert fake_redis.get(READY_KEY + worker_name()) == tiny_model.encode()
    second = add_model(settings, tiny_artifact, activate=False)
    with sessions() as session:
        activate_version(session, second)
    assert count_ready(fake_redis, version=second) == 0
    state.get_ready()
    assert state.models.scorer is not scorer
    assert state.models.scorer.fallback.experimental_get_tracing_count() == 1
    assert count_ready(fake_redis, version=second) == 1
    assert count_ready(fake_redis, version=tiny_model) == 0


def test_an_explaining_process_compiles_attributions_and_is_not_counted(
    fake_redis, tiny_model, process_state
) -> None:
    state = process_state([EXPLANATION_QUEUE])
    state.start()
    assert state.models.scorer is not None
    assert state.models.scorer.attribute.experimental_get_tracing_count() == 1
    assert count_ready(fake_redis, version=tiny_model) == 0


def test_without_an_active_model_a_process_says_so_once_and_records_nothing(
    fake_redis, caplog, process_state
) -> None:
    state = process_state(SCORER)
    with caplog.at_level(logging.WARNING, logger="worker.app"):
        state.get_ready()
        state.get_ready()
    assert [r.getMessage() for r in caplog.records] == [
        "not ready, will try again: no model version is active; train one with `sentiment train`"
    ]
    assert fake_redis.keys(READY_KEY + "*") == []
