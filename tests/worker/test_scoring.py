from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from sentiment_core.db import Review, ReviewStatus, Sentiment
from sentiment_core.finished import CHANNEL, read_announcement
from sentiment_core.registry import activate_version
from sentiment_core.text import Reading, tokenize
from tests.conftest import add_model
from tests.factories import NEGATIVE, POSITIVE
from worker.scoring import ModelCache, score_batch


def add_reviews(sessions, texts, status=ReviewStatus.queued) -> list[int]:
    with sessions() as session:
        rows = [Review(text=t, status=status) for t in texts]
        session.add_all(rows)
        session.commit()
        return [r.id for r in rows]


def reviews(sessions, ids):
    with sessions() as session:
        return {r.id: r for r in session.scalars(select(Review).where(Review.id.in_(ids)))}


def test_a_batch_is_scored_and_attributed_to_its_model(sessions, tiny_model) -> None:
    ids = add_reviews(sessions, [POSITIVE[0], NEGATIVE[0], POSITIVE[1]])
    assert score_batch(sessions, ModelCache(), ids) == 3
    rows = reviews(sessions, ids)
    assert [rows[i].sentiment for i in ids] == [
        Sentiment.positive,
        Sentiment.negative,
        Sentiment.positive,
    ]
    for row in rows.values():
        assert row.status is ReviewStatus.done
        assert row.model_version == tiny_model
        assert 0 <= row.score <= 1 and row.scored_at is not None and row.attempts == 1
        assert (row.score >= 0.5) == (row.sentiment is Sentiment.positive)


def test_a_batch_records_the_words_its_model_does_not_know(sessions, tiny_model) -> None:
    ids = add_reviews(sessions, [f"{POSITIVE[0]} zorgly blorft", "Zorgly blorft, zorgly!", ""])
    models = ModelCache()
    assert score_batch(sessions, models, ids) == 3
    rows = reviews(sessions, ids)
    words = tokenize(POSITIVE[0])
    outside = [w for w in words if not models.scorer.preprocessor.knows(w)]
    assert len(outside) < len(words)
    assert rows[ids[0]].unknown_words == len(outside) + 2
    assert rows[ids[0]].unknown_share == pytest.approx((len(outside) + 2) / (len(words) + 2))
    assert rows[ids[0]].new_words.split() == list(dict.fromkeys([*outside, "zorgly", "blorft"]))
    assert [(rows[i].unknown_words, rows[i].unknown_share, rows[i].new_words) for i in ids[1:]] == [
        (3, 1.0, "zorgly blorft"),
        (0, 0.0, ""),
    ]


def test_a_batch_of_more_ids_than_one_statement_takes_is_claimed_whole(
    sessions, tiny_model
) -> None:
    """A worker's batch joins up to BATCH_SIZE messages of up to 1,000 ids: more values than
    PostgreSQL takes in one statement (65,535)."""
    ids = add_reviews(sessions, [POSITIVE[0], NEGATIVE[0]])
    absent = range(max(ids) + 1, max(ids) + 70_001)  # gone, or never there: claimed as none
    assert score_batch(sessions, ModelCache(), [ids[0], *absent, ids[1]]) == 2
    assert {r.status for r in reviews(sessions, ids).values()} == {ReviewStatus.done}


def test_scoring_twice_changes_nothing(sessions, tiny_model) -> None:
    ids = add_reviews(sessions, [POSITIVE[2]])
    models = ModelCache()
    score_batch(sessions, models, ids)
    first = reviews(sessions, ids)[ids[0]]
    assert score_batch(sessions, models, ids) == 0
    again = reviews(sessions, ids)[ids[0]]
    assert (again.score, again.scored_at, again.attempts) == (
        first.score,
        first.scored_at,
        first.attempts,
    )


def test_a_review_left_scoring_by_a_dead_worker_is_sent_again_and_scored(
    settings, sessions, fake_redis, tiny_model
) -> None:
    from sentiment_core.queue import create_celery
    from worker.scoring import requeue_pending

    ids = add_reviews(sessions, [NEGATIVE[1]], status=ReviewStatus.scoring)
    assert score_batch(sessions, ModelCache(), ids) == 0  # held by the dead worker's claim
    app = create_celery(settings)
    later = timedelta(minutes=5)
    assert requeue_pending(sessions, app, queued_for=later, scoring_for=later) == 0
    assert requeue_pending(sessions, app, queued_for=later, scoring_for=timedelta(0)) == 1
    assert score_batch(sessions, ModelCache(), ids) == 1
    assert reviews(sessions, ids)[ids[0]].status is ReviewStatus.done


def test_a_batch_without_its_claim_writes_nothing(sessions, tiny_model) -> None:
    from worker.scoring import write_results

    ids = add_reviews(sessions, [POSITIVE[0]], status=ReviewStatus.scoring)
    models = ModelCache()
    result = (ids[0], 0.9, Reading([1], 0, 0.0, ""))
    with sessions() as session:
        assert write_results(session, "not-the-claim", models.current(session), [result]) == 0
        session.commit()
    assert reviews(sessions, ids)[ids[0]].status is ReviewStatus.scoring


class Poisoned:
    """A scorer that cannot score any review containing POISON."""

    def __init__(self, scorer) -> None:
        self.scorer, self.version, self.preprocessor = scorer, scorer.version, scorer.preprocessor

    def read_and_score(self, texts):
        if any("POISON" in text for text in texts):
            raise ValueError("cannot score this review")
        return self.scorer.read_and_score(texts)


def test_a_review_that_fails_is_retried_then_failed_and_spares_its_batch(
    settings, sessions, fake_redis, tiny_model
) -> None:
    from sentiment_core.queue import create_celery
    from tests.web.test_api import queued_messages

    app = create_celery(settings)
    models = ModelCache()
    with sessions() as session:
        models.scorer = Poisoned(models.current(session))
    good, bad, other = add_reviews(sessions, [POSITIVE[0], "POISON pill", NEGATIVE[0]])
    assert score_batch(sessions, models, [good, bad, other], 3, app) == 2
    rows = reviews(sessions, [good, bad, other])
    assert [rows[i].status for i in (good, other)] == [ReviewStatus.done] * 2
    assert rows[bad].status is ReviewStatus.queued and rows[bad].attempts == 1
    assert rows[bad].error == "ValueError: cannot score this review"
    assert [args for _, args in queued_messages(fake_redis)] == [[[bad]]]
    for _ in range(2):
        score_batch(sessions, models, [bad], 3, app)
    failed = reviews(sessions, [bad])[bad]
    assert failed.status is ReviewStatus.failed and failed.attempts == 3
    assert failed.error == "failed on attempt 3 of 3: ValueError: cannot score this review"
    assert len(queued_messages(fake_redis)) == 2  # sent again after attempts 1 and 2 only


def listening(redis):
    listener = redis.pubsub()
    listener.subscribe(CHANNEL)
    return listener


def heard(listener) -> list[list]:
    """The announcements published since `listener` subscribed, each as its reviews."""
    messages = []
    while (message := listener.get_message(timeout=0.2)) is not None:
        if message["type"] == "message":
            messages.append(read_announcement(message["data"]))
    return messages


def test_a_batch_announces_what_it_finished_once_after_its_commit(
    sessions, fake_redis, tiny_model, monkeypatch
) -> None:
    models = ModelCache()
    with sessions() as session:
        models.scorer = Poisoned(models.current(session))
        rows = [
            Review(text=POSITIVE[0], submission="a" * 32),
            Review(text="POISON pill", submission="a" * 32),
            Review(text=NEGATIVE[0], submission="b" * 32, attempts=1),  # its workers kept dying
            Review(text=NEGATIVE[1]),
        ]
        session.add_all(rows)
        session.commit()
    good, bad, dying, other = (row.id for row in rows)
    seen_at_publish: list[dict] = []
    publish = fake_redis.publish

    def publish_and_look(channel, message):
        seen_at_publish.append({i: r.status for i, r in reviews(sessions, [good, bad]).items()})
        return publish(channel, message)

    monkeypatch.setattr(fake_redis, "publish", publish_and_look)
    listener = listening(fake_redis)
    assert score_batch(sessions, models, [good, bad, dying, other], 1, redis=fake_redis) == 2
    (announcement,) = heard(listener)  # one message for the batch
    assert sorted(announcement) == [
        (good, "a" * 32),
        (bad, "a" * 32),  # failed for good: its only attempt
        (dying, "b" * 32),
        (other, None),
    ]
    # Published after the commit: another connection already read the results.
    assert seen_at_publish == [{good: ReviewStatus.done, bad: ReviewStatus.failed}]


def test_a_review_queued_again_is_not_announced(sessions, fake_redis, tiny_model) -> None:
    models = ModelCache()
    with sessions() as session:
        models.scorer = Poisoned(models.current(session))
    (bad,) = add_reviews(sessions, ["POISON pill"])
    listener = listening(fake_redis)
    score_batch(sessions, models, [bad], 3, redis=fake_redis)
    assert reviews(sessions, [bad])[bad].status is ReviewStatus.queued
    assert heard(listener) == []


def test_an_announcement_that_fails_neither_fails_nor_repeats_the_batch(
    sessions, tiny_model, caplog
) -> None:
    import redis

    unreachable = redis.Redis(port=1, socket_connect_timeout=0.2)
    ids = add_reviews(sessions, [POSITIVE[0], NEGATIVE[0]])
    assert score_batch(sessions, ModelCache(), ids, redis=unreachable) == 2
    rows = reviews(sessions, ids)
    assert all(r.status is ReviewStatus.done and r.attempts == 1 for r in rows.values())
    assert "could not announce 2 finished reviews" in caplog.text


def test_a_review_whose_workers_keep_dying_is_failed(sessions, tiny_model) -> None:
    with sessions() as session:
        review = Review(text="x", status=ReviewStatus.queued, attempts=3)
        session.add(review)
        session.commit()
    assert score_batch(sessions, ModelCache(), [review.id], 3) == 0
    row = reviews(sessions, [review.id])[review.id]
    assert row.status is ReviewStatus.failed
    assert row.error == "gave up after 3 attempts: the worker scoring it stopped"


def test_the_next_batch_uses_a_newly_activated_version(
    settings,
    sessions,
    tiny_model,
    tiny_artifact: Path,
) -> None:
    models = ModelCache()
    first = add_reviews(sessions, [POSITIVE[3]])
    score_batch(sessions, models, first)
    second_version = add_model(settings, tiny_artifact, activate=False)
    with sessions() as session:
        activate_version(session, second_version)
    later = add_reviews(sessions, [POSITIVE[3]])
    score_batch(sessions, models, later)
    assert reviews(sessions, first)[first[0]].model_version == tiny_model
    assert reviews(sessions, later)[later[0]].model_version == second_version
    assert models.scorer is not None and models.scorer.version == second_version


class Meanwhile:
    """A scorer that runs `meanwhile` (what another thread might do) before it scores."""

    def __init__(self, scorer, meanwhile) -> None:
        self.scorer, self.version, self.preprocessor = scorer, scorer.version, scorer.preprocessor
        self.meanwhile = meanwhile

    def read_and_score(self, texts):
        self.meanwhile()
        return self.scorer.read_and_score(texts)


def test_results_name_the_version_that_scored_them_though_another_is_activated_meanwhile(
    settings, sessions, tiny_model, tiny_artifact: Path
) -> None:
    models = ModelCache()
    second_version = add_model(settings, tiny_artifact, activate=False)

    def activate_and_heartbeat() -> None:
        with sessions() as session:
            activate_version(session, second_version)
            models.current(session)  # the readiness heartbeat loads it into the shared cache

    with sessions() as session:
        models.scorer = Meanwhile(models.current(session), activate_and_heartbeat)
    ids = add_reviews(sessions, [POSITIVE[0]])
    assert score_batch(sessions, models, ids) == 1
    assert models.scorer.version == second_version
    assert reviews(sessions, ids)[ids[0]].model_version == tiny_model


def test_a_review_given_up_on_is_failed_before_its_batch_scores(sessions, tiny_model) -> None:
    """On SQLite an open write locks out every other writer, so it must not last a batch."""
    with sessions() as session:
        given_up = Review(text="x", status=ReviewStatus.queued, attempts=3)
        session.add(given_up)
        session.commit()
    seen = []
    models = ModelCache()
    with sessions() as session:
        models.scorer = Meanwhile(
            models.current(session),
            lambda: seen.append(reviews(sessions, [given_up.id])[given_up.id].status),
        )
    assert score_batch(sessions, models, [given_up.id, *add_reviews(sessions, ["fine"])], 3) == 1
    assert seen == [ReviewStatus.failed]


def test_without_an_active_model_the_batch_fails_with_the_reason(sessions) -> None:
    ids = add_reviews(sessions, ["fine"])
    assert score_batch(sessions, ModelCache(), ids, max_attempts=1) == 0
    row = reviews(sessions, ids)[ids[0]]
    assert row.status is ReviewStatus.failed
    assert "no model version is active" in row.error


@pytest.mark.parametrize("damage", ["corrupt", "delete"])
def test_a_damaged_artifact_fails_the_batch_with_the_reason(
    settings,
    sessions,
    tiny_model,
    damage,
) -> None:
    model_file = settings.model_dir / tiny_model / "model.keras"
    if damage == "corrupt":
        model_file.write_bytes(b"not the registered weights")
    else:
        model_file.unlink()
    ids = add_reviews(sessions, [POSITIVE[0]])
    score_batch(sessions, ModelCache(), ids, max_attempts=1)
    row = reviews(sessions, ids)[ids[0]]
    assert row.status is ReviewStatus.failed and row.error.startswith("failed on attempt 1 of 1")
    assert ("checksum" if damage == "corrupt" else "no artifact") in row.error


def sample(name: str, labels: dict | None = None) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def test_scoring_records_its_metrics(sessions, tiny_model) -> None:
    before = {
        "scored": sample("sentiment_reviews_scored_total", {"model_version": tiny_model}),
        "batches": sample("sentiment_batch_size_count"),
        "sizes": sample("sentiment_batch_size_sum"),
        "waits": sample("sentiment_queue_wait_seconds_count"),
        "timed": sample("sentiment_scoring_seconds_count", {"model_version": tiny_model}),
    }
    score_batch(sessions, ModelCache(), add_reviews(sessions, POSITIVE[:3]))
    assert sample("sentiment_reviews_scored_total", {"model_version": tiny_model}) == (
        before["scored"] + 3
    )
    assert sample("sentiment_batch_size_count") == before["batches"] + 1
    assert sample("sentiment_batch_size_sum") == before["sizes"] + 3
    assert sample("sentiment_queue_wait_seconds_count") == before["waits"] + 3
    labels = {"model_version": tiny_model}
    assert sample("sentiment_scoring_seconds_count", labels) == before["timed"] + 1


def test_failures_are_counted_by_reason(sessions) -> None:
    before = sample("sentiment_reviews_failed_total", {"reason": "NoActiveModel"})
    score_batch(sessions, ModelCache(), add_reviews(sessions, ["a", "b"]))
    assert sample("sentiment_reviews_failed_total", {"reason": "NoActiveModel"}) == before + 2


def test_pending_reviews_are_enqueued_again(settings, sessions, fake_redis) -> None:
    import base64
    import json

    from sentiment_core.queue import SCORING_QUEUE, create_celery
    from worker.scoring import requeue_pending

    queued = add_reviews(sessions, ["a", "b", "c"])
    add_reviews(sessions, ["d"], status=ReviewStatus.scoring)  # a live batch holds it
    add_reviews(sessions, ["e"], status=ReviewStatus.done)
    add_reviews(sessions, ["f"], status=ReviewStatus.failed)
    app = create_celery(settings)
    sent = requeue_pending(
        sessions, app, queued_for=timedelta(0), scoring_for=timedelta(hours=1), chunk=2
    )
    assert sent == 3
    sent = [
        json.loads(base64.b64decode(json.loads(raw)["body"]))[0][0]
        for raw in reversed(fake_redis.lrange(SCORING_QUEUE, 0, -1))
    ]
    assert sent == [queued[:2], [queued[2]]]


def test_a_candidate_in_shadow_scores_its_share_of_batches(sessions, tiny_model) -> None:
    from sentiment_core.db import RunStatus, TrainingRun

    with sessions() as session:
        session.add(
            TrainingRun(trigger="admin", reason="x", status=RunStatus.shadow,
                        base_version=tiny_model, candidate_version=tiny_model)
        )  # fmt: skip
        session.commit()
    never, always = add_reviews(sessions, [POSITIVE[0]]), add_reviews(sessions, [NEGATIVE[0]])
    assert score_batch(sessions, ModelCache(), never) == 1  # a share of 0: none
    assert score_batch(sessions, ModelCache(shadow_share=1.0), always) == 1
    unshadowed, shadowed = reviews(sessions, never)[never[0]], reviews(sessions, always)[always[0]]
    assert (unshadowed.shadow_score, unshadowed.shadow_version) == (None, None)
    assert shadowed.shadow_version == tiny_model
    assert shadowed.shadow_score == pytest.approx(shadowed.score)  # the same model, in shadow
