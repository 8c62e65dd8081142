"""Load shedding in the shared operation, called directly: what fits the backlog's limit is
accepted, what would pass it is refused whole with the seconds to wait, and nothing is stored."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from sentiment_core.backlog import RATE_WINDOW_S, Backlog
from sentiment_core.db import Review, ReviewStatus, utcnow
from sentiment_core.errors import TooLarge, Unavailable
from sentiment_core.operations import submit_reviews
from sentiment_core.queue import SCORING_QUEUE, create_celery


@pytest.fixture
def celery(settings, fake_redis):
    return create_celery(settings)


@pytest.fixture
def refusals() -> list[None]:
    """One entry per submission a backlog refused for being full."""
    return []


def counting(limit: int, refusals: list[None], refresh_s: float = 0) -> Backlog:
    """A backlog against `limit`; by default it counts the database on every submission."""
    return Backlog(limit, on_refused=lambda: refusals.append(None), refresh_s=refresh_s)


def add_reviews(sessions, n: int, status: ReviewStatus, scored_ago_s: float | None = None) -> None:
    scored_at = None if scored_ago_s is None else utcnow() - timedelta(seconds=scored_ago_s)
    with sessions() as session:
        session.add_all(
            Review(text="r", status=status, scored_at=scored_at, submission="seed")
            for _ in range(n)
        )
        session.commit()


def stored(sessions) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(Review))


def submit(sessions, celery, backlog: Backlog, reviews: int):
    texts = [f"review {i}" for i in range(reviews)]
    return submit_reviews(sessions=sessions, celery=celery, backlog=backlog, texts=texts)


def test_below_the_limit_is_accepted_and_at_it_refused_with_nothing_stored(
    sessions, celery, fake_redis, tiny_model, refusals
) -> None:
    add_reviews(sessions, 3, ReviewStatus.queued)
    add_reviews(sessions, 1, ReviewStatus.scoring)
    add_reviews(sessions, 5, ReviewStatus.done, scored_ago_s=1)  # scored: not waiting
    add_reviews(sessions, 5, ReviewStatus.failed)
    backlog = counting(5, refusals)
    submit(sessions, celery, backlog, 1)  # 4 waiting: room for one
    assert stored(sessions) == 15 and fake_redis.llen(SCORING_QUEUE) == 1
    with pytest.raises(Unavailable) as refused:
        submit(sessions, celery, backlog, 1)  # 5 waiting: at the limit
    assert refused.value.code == "overloaded"
    assert "5 of at most 5 reviews are waiting" in refused.value.message
    assert isinstance(refused.value.retry_after_s, int) and refused.value.retry_after_s >= 1
    assert stored(sessions) == 15 and fake_redis.llen(SCORING_QUEUE) == 1
    assert len(refusals) == 1


def test_a_batch_that_would_cross_the_limit_is_refused_whole(
    sessions, celery, fake_redis, tiny_model, refusals
) -> None:
    add_reviews(sessions, 997, ReviewStatus.queued)
    backlog = counting(1_000, refusals)
    with pytest.raises(Unavailable):
        submit(sessions, celery, backlog, 1_000)
    assert stored(sessions) == 997 and fake_redis.llen(SCORING_QUEUE) == 0
    assert len(submit(sessions, celery, backlog, 3).review_ids) == 3  # exactly fills it


def test_a_batch_larger_than_the_limit_is_too_large_rather_than_refused_for_now(
    sessions, celery, tiny_model, refusals
) -> None:
    with pytest.raises(TooLarge) as refused:
        submit(sessions, celery, counting(5, refusals), 6)  # it would never fit
    assert refused.value.code == "too_many_reviews" and refused.value.retry_after_s is None
    assert stored(sessions) == 0 and refusals == []


def test_a_limit_of_0_takes_everything(sessions, celery, tiny_model, refusals) -> None:
    add_reviews(sessions, 50, ReviewStatus.queued)
    assert len(submit(sessions, celery, counting(0, refusals), 50).review_ids) == 50


def test_a_process_counts_at_most_once_a_refresh_and_adds_what_it_admitted(
    sessions, celery, tiny_model, refusals
) -> None:
    backlog = counting(3, refusals, refresh_s=3600)
    submit(sessions, celery, backlog, 1)  # counted: nothing waiting before it
    add_reviews(sessions, 10, ReviewStatus.queued)  # another process's, unseen until a count
    submit(sessions, celery, backlog, 1)  # still counted as 2 waiting
    with pytest.raises(Unavailable):
        submit(sessions, celery, backlog, 2)  # its own 2, and these 2, are past 3
    assert stored(sessions) == 12
    backlog.refresh_s = 0
    with pytest.raises(Unavailable) as refused:
        submit(sessions, celery, backlog, 1)
    assert "12 of at most 3 reviews are waiting" in refused.value.message  # counted again


@pytest.mark.parametrize(
    ("scored", "excess", "retry_after_s"),
    [
        (120, 5, 3),  # 2 reviews/s: 5 more take 2.5 s, rounded up
        (600, 1, 1),  # 10 reviews/s: a tenth of a second is at least 1 s
        (1, 5, RATE_WINDOW_S),  # 5 minutes at this rate: no longer than the rate's window
        (0, 5, RATE_WINDOW_S),  # nothing scored lately: no rate to go by
    ],
)
def test_retry_after_is_the_time_to_score_the_excess_at_the_recent_rate(
    sessions, celery, tiny_model, refusals, scored, excess, retry_after_s
) -> None:
    add_reviews(sessions, 10, ReviewStatus.queued)
    add_reviews(sessions, scored, ReviewStatus.done, scored_ago_s=RATE_WINDOW_S / 2)
    add_reviews(sessions, 500, ReviewStatus.done, scored_ago_s=RATE_WINDOW_S * 2)  # too old
    with pytest.raises(Unavailable) as refused:
        submit(sessions, celery, counting(10, refusals), excess)
    assert refused.value.retry_after_s == retry_after_s
    assert f"try again in {retry_after_s} s" in refused.value.message
