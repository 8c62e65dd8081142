import shutil
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

import trainer.retrain
from sentiment_core import labeling
from sentiment_core.db import (
    Feedback,
    Review,
    ReviewStatus,
    RunMode,
    RunStatus,
    RunTrigger,
    Sentiment,
    TrainingRun,
    utcnow,
)
from sentiment_core.gate import Difference
from sentiment_core.labeling import held_out
from sentiment_core.registry import (
    PREPROCESSOR_FILE,
    activate_version,
    active_version,
    get_version,
)
from sentiment_core.runs import STALE_RUN, close_run, running_run
from sentiment_core.settings import Settings
from sentiment_core.text import Preprocessor
from tests.conftest import add_model
from tests.databases import database_copy
from tests.factories import (
    NEGATIVE,
    POSITIVE,
    new_word_reviews,
    tiny_dataset,
    write_imdb_folder,
)
from trainer.data import load_dataset
from trainer.model import PRESETS
from trainer.retrain import (
    RunInProgress,
    cap_share,
    choose_mode,
    collect_feedback,
    fail_interrupted_runs,
    retrain,
    should_retrain,
    unlabeled_traffic,
)
from trainer.train import DEFAULT_SEED, TrainRequest, train_and_register, training_parts
from worker.scoring import ModelCache, score_batch


def add_labeled(sessions, texts, votes_per_text) -> list[int]:
    """Scored reviews with feedback: `votes_per_text[i]` is a list of labels, one per client."""
    with sessions() as session:
        reviews = [
            Review(text=t, status=ReviewStatus.done, sentiment=Sentiment.positive, score=0.6)
            for t in texts
        ]
        session.add_all(reviews)
        session.flush()
        for review, votes in zip(reviews, votes_per_text, strict=True):
            session.add_all(
                Feedback(review_id=review.id, label=Sentiment(label), client=f"client-{i}")
                for i, label in enumerate(votes)
            )
        session.commit()
        return [review.id for review in reviews]


def test_feedback_is_one_label_per_review_by_majority_and_ties_are_dropped(sessions) -> None:
    ids = add_labeled(
        sessions,
        ["two for one", "a tie", "alone"],
        [["positive", "positive", "negative"], ["positive", "negative"], ["negative"]],
    )
    with sessions() as session:
        labeled, ties = collect_feedback(session)
    assert [(item.review_id, item.label) for item in labeled] == [(ids[0], 1), (ids[2], 0)]
    assert ties == 1


def test_a_run_self_trains_on_the_recent_scored_reviews_nobody_labeled(
    sessions, monkeypatch
) -> None:
    add_labeled(sessions, ["labeled"], [["positive"]])
    with sessions() as session:
        session.add_all(
            [
                Review(text="scored", status=ReviewStatus.done, score=0.9),
                Review(text="waiting", status=ReviewStatus.queued),
                Review(text="failed", status=ReviewStatus.failed, error="no"),
                Review(text="scored later", status=ReviewStatus.done, score=0.2),
            ]
        )
        session.commit()
    add_labeled(sessions, ["labeled later"], [["negative"]])
    with sessions() as session:
        assert unlabeled_traffic(session) == ("scored later", "scored")
        monkeypatch.setattr(labeling, "QUEUE_WINDOW", 1)  # the label queue's window size
        assert unlabeled_traffic(session) == ("scored later",)  # a labeled review takes no place


def test_the_feedback_holdout_is_stable_and_near_its_share() -> None:
    chosen = [i for i in range(4000) if held_out(i, 0.3)]
    assert chosen == [i for i in range(4000) if held_out(i, 0.3)]
    assert 0.27 < len(chosen) / 4000 < 0.33
    assert not any(held_out(i, 0.0) for i in range(100))


def test_feedback_is_capped_to_its_share_of_the_training_data() -> None:
    items = list(range(100))
    assert cap_share(items, others=400, max_share=0.2) == items
    capped = cap_share(items, others=200, max_share=0.2)
    assert len(capped) == 50 and set(capped) <= set(items)
    assert cap_share(items, others=200, max_share=0.2) == capped


def test_new_words_in_the_feedback_grow_the_fine_tuned_vocabulary() -> None:
    preprocessor = Preprocessor.fit(POSITIVE + NEGATIVE, num_words=1000, max_len=50)
    texts = new_word_reviews("zorgly")[:5] + new_word_reviews("blorft")[:2]
    mode, why, words = choose_mode(preprocessor, texts, RunMode.fine_tune, "tiny")
    assert mode == "fine-tune" and "zorgly" in words and "blorft" not in words  # in 2 only
    assert "continues from the active model" in why and f"grows by {len(words)} words" in why
    assert "its LSTM learns only new words (3 epochs at learning rate 0.003)" in why
    assert choose_mode(preprocessor, POSITIVE, RunMode.fine_tune, "tiny")[2] == ()
    _, why, _ = choose_mode(preprocessor, POSITIVE, RunMode.fine_tune, "quick")
    assert why == "training continues from the active model (3 epochs at learning rate 0.0003)"
    mode, why, words = choose_mode(preprocessor, texts, RunMode.scratch, "tiny")
    assert mode == "scratch" and "trained anew" in why and words == ()


def test_a_scheduled_run_waits_for_enough_new_feedback(settings, sessions, tiny_model) -> None:
    settings = replace(settings, retrain_min_feedback=3)
    add_labeled(sessions, ["a", "b"], [["positive"], ["negative"]])
    with sessions() as session:
        assert should_retrain(session, settings) is None
    add_labeled(sessions, ["c"], [["positive"]])
    with sessions() as session:
        assert should_retrain(session, settings) == "3 new feedback labels (threshold 3)"
        session.add(TrainingRun(trigger="schedule", reason="x", status=RunStatus.rejected))
        session.commit()
        assert should_retrain(session, settings) is None
    assert retrain(settings, trigger=RunTrigger.schedule) is None


def test_the_gate_judges_imdb_on_the_slice_and_the_validation_movies(
    settings, sessions, tiny_model, tmp_path, monkeypatch
) -> None:
    monkeypatch.setitem(PRESETS, "tiny", replace(PRESETS["tiny"], validation_split=0.4))
    data = write_imdb_folder(tmp_path / "imdb", urls=True)
    settings = replace(
        settings, imdb_data=str(data), gate_imdb_reviews=2, feedback_max_share=0.5,
        feedback_holdout=0.5,
    )  # fmt: skip
    add_labeled(sessions, POSITIVE + NEGATIVE, [["positive"]] * 6 + [["negative"]] * 6)
    run = retrain(settings, trigger=RunTrigger.admin, reason="test")
    assert run.error is None
    with sessions() as session:
        seed = active_version(session).metrics.get("seed", DEFAULT_SEED)
    gate_slice, rest = load_dataset(data).train.hold_out(2)
    fitted, validation = training_parts(rest, TrainRequest(preset="tiny", seed=seed))
    assert len(gate_slice.texts) == 2 and validation.texts and all(validation.groups)
    assert not set(validation.groups) & set(fitted.groups)  # whole movies held out
    holdout = len(gate_slice.texts) + len(validation.texts)
    assert run.counts["imdb_holdout"] == run.metrics["imdb"]["reviews"] == holdout
    assert run.counts["imdb_train"] == len(fitted.texts) == len(rest.texts) - len(validation.texts)


def test_a_run_continues_from_the_active_model_when_the_vocabulary_suffices(
    settings, sessions, tiny_model, tmp_path
) -> None:
    settings = replace(
        settings,
        imdb_data=str(write_imdb_folder(tmp_path / "imdb")),
        feedback_max_share=0.5,
        feedback_holdout=0.5,
    )
    add_labeled(sessions, POSITIVE + NEGATIVE, [["positive"]] * 6 + [["negative"]] * 6)
    run = retrain(settings, trigger=RunTrigger.admin, reason="test")
    assert run.mode == "fine-tune" and run.error is None
    assert run.status in (RunStatus.promoted, RunStatus.rejected, RunStatus.waiting)
    assert run.decision
    assert run.counts["labeled_reviews"] == 12
    assert run.counts["feedback_train"] + run.counts["feedback_holdout"] == 12
    assert run.metrics["feedback"]["reviews"] == run.counts["feedback_holdout"]
    assert run.metrics["imdb"]["reviews"] == run.counts["imdb_holdout"]
    with sessions() as session:
        candidate = get_version(session, run.candidate_version)
        assert candidate.parent_version == tiny_model
        assert candidate.metrics["continued_from"].endswith(f"/{tiny_model}")
        active = active_version(session).version
        assert active == (candidate.version if run.status is RunStatus.promoted else tiny_model)
        (recorded,) = session.scalars(select(TrainingRun))
        assert recorded.finished_at is not None and recorded.counts["seconds"] > 0


def test_a_run_that_fails_is_recorded_with_its_reason(settings, sessions, tiny_model) -> None:
    settings = replace(settings, imdb_data=str(settings.var_dir / "missing.tar.gz"))
    run = retrain(settings, trigger=RunTrigger.admin, reason="test")
    assert run.status is RunStatus.failed and "missing.tar.gz" in run.error
    assert run.finished_at is not None and run.candidate_version is None
    assert not list(settings.model_dir.glob(".staging-*"))


def test_a_run_without_feedback_trains_nothing(settings, sessions, tiny_model, tmp_path) -> None:
    settings = replace(settings, imdb_data=str(write_imdb_folder(tmp_path / "imdb")))
    run = retrain(settings, trigger=RunTrigger.admin, reason="test")
    assert run.status is RunStatus.rejected and run.candidate_version is None
    assert run.decision.startswith("too little feedback")
    assert run.counts["labeled_reviews"] == 0


def test_an_interrupted_run_is_failed_and_blocks_no_later_run(
    settings, sessions, tiny_model, monkeypatch
) -> None:
    import trainer.retrain

    def interrupt(*args) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(trainer.retrain, "execute_run", interrupt)
    with pytest.raises(KeyboardInterrupt):
        retrain(settings, trigger=RunTrigger.admin, reason="test")
    with sessions() as session:
        (run,) = session.scalars(select(TrainingRun))
        assert run.status is RunStatus.failed and run.error.startswith("KeyboardInterrupt")
        assert run.finished_at is not None and running_run(session) is None


def test_a_starting_trainer_fails_the_runs_a_killed_one_left_running(settings, sessions) -> None:
    with sessions() as session:
        session.add_all(
            [
                TrainingRun(trigger="admin", reason="killed", status=RunStatus.running),
                TrainingRun(trigger="admin", reason="over", status=RunStatus.promoted),
            ]
        )
        session.commit()
    assert fail_interrupted_runs(settings) == 1
    with sessions() as session:
        session.add(
            TrainingRun(
                trigger="admin", reason="by hand", status=RunStatus.running, by_trainer=False
            )
        )
        session.commit()
    assert fail_interrupted_runs(settings) == 0
    with sessions() as session:
        runs = {run.reason: run for run in session.scalars(select(TrainingRun))}
        assert runs["killed"].status is RunStatus.failed and runs["killed"].finished_at
        assert runs["by hand"].status is RunStatus.running
        assert runs["killed"].error == "the trainer stopped during the run"
        assert runs["over"].status is RunStatus.promoted
        assert running_run(session).reason == "by hand"


def test_of_two_runs_started_at_once_one_is_refused(
    settings, sessions, tiny_model, monkeypatch
) -> None:
    """The other process's run started between this one's check and its insert."""
    with sessions() as session:
        session.add(TrainingRun(trigger="schedule", reason="first", status=RunStatus.running))
        session.commit()
    monkeypatch.setattr(trainer.retrain, "running_run", lambda session: None)
    with pytest.raises(RunInProgress):
        retrain(settings, trigger=RunTrigger.admin, reason="second")
    with sessions() as session:
        assert [run.reason for run in session.scalars(select(TrainingRun))] == ["first"]


def test_a_run_left_running_for_hours_is_failed_when_the_next_starts(
    settings, sessions, tiny_model, monkeypatch
) -> None:
    with sessions() as session:
        session.add(
            TrainingRun(
                trigger="admin",
                reason="died",
                status=RunStatus.running,
                by_trainer=False,
                started_at=utcnow() - STALE_RUN - timedelta(minutes=1),
            )
        )
        session.commit()
    monkeypatch.setattr(trainer.retrain, "execute_run", lambda *args: None)
    run = retrain(settings, trigger=RunTrigger.admin, reason="next")
    with sessions() as session:
        runs = {run.reason: run for run in session.scalars(select(TrainingRun))}
    assert runs["died"].status is RunStatus.failed and runs["died"].finished_at
    assert runs["died"].error == "still running after 6 h: its process died"
    assert runs["next"].id == run.id and runs["next"].status is RunStatus.running


def test_the_trainers_runs_are_its_own_and_a_hand_started_run_is_not(
    settings, sessions, tiny_model, fake_redis, monkeypatch
) -> None:
    import trainer.service
    from sentiment_core.queue import RETRAIN_TASK

    monkeypatch.setattr(trainer.service, "broker_redis", lambda _settings: fake_redis)
    trainer.service.create_trainer_app(settings).tasks[RETRAIN_TASK]("admin", "by the trainer")
    retrain(settings, trigger=RunTrigger.admin, reason="by hand")
    with sessions() as session:
        runs = {run.reason: run.by_trainer for run in session.scalars(select(TrainingRun))}
    assert runs == {"by the trainer": True, "by hand": False}


@pytest.fixture(scope="module")
def contrary_artifact(tmp_path_factory, migrated_db) -> Iterator[Path]:
    """A tiny model trained once per module on the tiny reviews labeled the wrong way."""
    flipped = tiny_dataset()
    flipped.train.labels[:] = [1 - label for label in flipped.train.labels]
    root = tmp_path_factory.mktemp("contrary")
    with database_copy(migrated_db, root) as url:
        settings = Settings(var_dir=root, database_url=url, model_dir=root)
        yield Path(train_and_register(settings, flipped, TrainRequest(preset="tiny")).artifact_path)


def contrary_model(settings, contrary_artifact: Path) -> str:
    """Registers the contrary model, inactive."""
    return add_model(settings, contrary_artifact, activate=False)


def add_waiting_run(sessions, settings, base: str, candidate: str) -> None:
    """A run that waits for held-out feedback, none judged yet; the IMDb side settled."""
    imdb = Difference.from_counts(10, 0, 0, settings.gate_confidence).as_dict()
    with sessions() as session:
        session.add(
            TrainingRun(
                trigger="admin",
                reason="test",
                status=RunStatus.waiting,
                base_version=base,
                candidate_version=candidate,
                counts={"feedback_holdout": 0},
                metrics={"imdb": imdb, "feedback": {"reviews": 0}},
            )
        )
        session.commit()


def test_an_admins_run_frees_the_request_once_it_ends(settings, sessions, fake_redis, monkeypatch):
    import trainer.service
    from sentiment_core.queue import RETRAIN_REQUESTED, RETRAIN_TASK

    monkeypatch.setattr(trainer.service, "broker_redis", lambda _settings: fake_redis)
    with sessions() as session:  # each task below skips its run: one is in progress
        session.add(TrainingRun(trigger="admin", reason="busy", status=RunStatus.running))
        session.commit()
    app = trainer.service.create_trainer_app(settings)
    for trigger, held in (("schedule", True), ("admin", False)):
        fake_redis.set(RETRAIN_REQUESTED, "1")
        app.tasks[RETRAIN_TASK](trigger, "test")
        assert bool(fake_redis.exists(RETRAIN_REQUESTED)) is held


def test_a_waiting_run_is_judged_again_as_held_out_labels_arrive(
    settings, sessions, tiny_model, contrary_artifact
) -> None:
    """The candidate answers every review the other way round from the active model; the
    held-out labels side with the candidate, two at first (too few to decide), then six."""
    candidate = contrary_model(settings, contrary_artifact)
    settings = replace(settings, feedback_holdout=0.999, gate_max_imdb_drop=1.0, shadow_period_s=0)
    add_waiting_run(sessions, settings, tiny_model, candidate)
    contrary_labels = [["negative"]] * 6 + [["positive"]] * 6
    add_labeled(sessions, POSITIVE[:1] + NEGATIVE[:1], [["negative"], ["positive"]])
    waiting = retrain(settings, trigger=RunTrigger.schedule)
    assert waiting.status is RunStatus.waiting and waiting.finished_at is None
    assert waiting.metrics["feedback"]["reviews"] == 2
    assert waiting.metrics["feedback"]["candidate_only"] == 2
    assert waiting.metrics["labels_needed"] > 0
    assert "not enough evidence yet: +100.0 [" in waiting.decision
    assert retrain(settings, trigger=RunTrigger.schedule).metrics == waiting.metrics  # no news
    add_labeled(sessions, POSITIVE[1:] + NEGATIVE[1:], contrary_labels[1:6] + contrary_labels[7:])
    decided = retrain(settings, trigger=RunTrigger.schedule)
    assert decided.status is RunStatus.promoted and decided.finished_at is not None
    assert decided.metrics["feedback"]["reviews"] == 12 and decided.metrics["labels_needed"] is None
    with sessions() as session:
        assert active_version(session).version == candidate
        assert len(session.scalars(select(TrainingRun)).all()) == 1  # judged again, not rerun


def test_a_candidate_that_passes_the_gate_scores_in_shadow_first(
    settings, sessions, tiny_model, contrary_artifact
) -> None:
    candidate = contrary_model(settings, contrary_artifact)
    settings = replace(settings, feedback_holdout=0.999, gate_max_imdb_drop=1.0)
    add_waiting_run(sessions, settings, tiny_model, candidate)
    add_labeled(sessions, POSITIVE + NEGATIVE, [["negative"]] * 6 + [["positive"]] * 6)
    passed = retrain(settings, trigger=RunTrigger.schedule)
    assert passed.status is RunStatus.shadow and passed.finished_at is None
    assert passed.decision.startswith("passed the gate (better on held-out feedback")
    assert "scoring 20% of the batches in shadow until" in passed.decision
    assert passed.metrics["shadow"]["share"] == settings.shadow_share
    with sessions() as session:
        assert active_version(session).version == tiny_model  # not live yet


def test_with_no_share_of_batches_in_shadow_a_candidate_that_passes_goes_live(
    settings, sessions, tiny_model, contrary_artifact
) -> None:
    candidate = contrary_model(settings, contrary_artifact)
    settings = replace(settings, feedback_holdout=0.999, gate_max_imdb_drop=1.0, shadow_share=0)
    add_waiting_run(sessions, settings, tiny_model, candidate)
    add_labeled(sessions, POSITIVE + NEGATIVE, [["negative"]] * 6 + [["positive"]] * 6)
    assert retrain(settings, trigger=RunTrigger.schedule).status is RunStatus.promoted
    with sessions() as session:
        assert active_version(session).version == candidate


def add_shadow_run(sessions, base: str, candidate: str, until) -> int:
    """A run whose candidate passed the gate and scores in shadow until `until`."""
    with sessions() as session:
        run = TrainingRun(
            trigger="admin",
            reason="test",
            status=RunStatus.shadow,
            base_version=base,
            candidate_version=candidate,
            metrics={"shadow": {"until": until.isoformat(), "share": 1}},
            decision="passed the gate",
        )
        session.add(run)
        session.commit()
        return run.id


def test_a_candidate_whose_artifact_is_gone_is_rejected_at_the_end_of_its_shadow_period(
    settings, sessions, tiny_model, contrary_artifact
) -> None:
    candidate = contrary_model(settings, contrary_artifact)
    add_shadow_run(sessions, tiny_model, candidate, until=utcnow())
    with sessions() as session:
        shutil.rmtree(get_version(session, candidate).artifact_path)
    decided = retrain(settings, trigger=RunTrigger.schedule)
    assert decided.status is RunStatus.rejected and decided.finished_at is not None
    assert f"not promoted: model {candidate}: its artifact at" in decided.decision
    with sessions() as session:
        assert active_version(session).version == tiny_model


@pytest.mark.parametrize("labels_side_with_candidate", [True, False])
def test_after_its_shadow_period_live_feedback_decides(
    settings, sessions, tiny_model, contrary_artifact, labels_side_with_candidate
) -> None:
    candidate = contrary_model(settings, contrary_artifact)
    run_id = add_shadow_run(sessions, tiny_model, candidate, until=utcnow() + timedelta(hours=1))
    with sessions() as session:
        queued = [Review(text=text) for text in POSITIVE + NEGATIVE]
        session.add_all(queued)
        session.commit()
        ids = [review.id for review in queued]
    assert score_batch(sessions, ModelCache(shadow_share=1.0), ids) == 12
    right = [Sentiment.positive] * 6 + [Sentiment.negative] * 6
    with sessions() as session:
        for review_id, label in zip(ids, right, strict=True):
            wrong = Sentiment.negative if label is Sentiment.positive else Sentiment.positive
            label = wrong if labels_side_with_candidate else label
            session.add(Feedback(review_id=review_id, label=label, client="someone"))
        session.commit()

    shadowing = retrain(settings, trigger=RunTrigger.schedule)  # the period is not over yet
    assert shadowing.status is RunStatus.shadow
    figures = shadowing.metrics["shadow"]
    assert (figures["scored"], figures["agreement"], figures["labeled"]) == (12, 0.0, 12)
    assert figures["candidate_right"] == (12 if labels_side_with_candidate else 0)
    with sessions() as session:  # the period ends
        session.get(TrainingRun, run_id).metrics = {
            "shadow": figures | {"until": utcnow().isoformat()}
        }
        session.commit()
    decided = retrain(settings, trigger=RunTrigger.schedule)
    assert decided.finished_at is not None
    assert (
        "in shadow it scored 12 reviews, agreeing with the active model on 0.0%" in decided.decision
    )
    with sessions() as session:
        active = active_version(session).version
    if labels_side_with_candidate:
        assert decided.status is RunStatus.promoted and active == candidate
        assert decided.decision.startswith("promoted after its shadow period")
    else:
        assert decided.status is RunStatus.rejected and active == tiny_model
        assert decided.decision.startswith("worse on live feedback")


def shadow_scored(sessions, texts) -> int:
    """Stores `texts` and scores them in one batch, every batch in shadow; how many were served."""
    with sessions() as session:
        queued = [Review(text=text) for text in texts]
        session.add_all(queued)
        session.commit()
    return score_batch(sessions, ModelCache(shadow_share=1.0), [review.id for review in queued])


def test_a_candidate_no_worker_could_load_is_rejected_after_its_shadow_period(
    settings, sessions, tiny_model, contrary_artifact
) -> None:
    candidate = contrary_model(settings, contrary_artifact)
    with sessions() as session:
        preprocessor = Path(get_version(session, candidate).artifact_path) / PREPROCESSOR_FILE
    preprocessor.write_text(preprocessor.read_text() + " ")  # its checksum no longer matches
    add_shadow_run(sessions, tiny_model, candidate, until=utcnow())
    assert shadow_scored(sessions, POSITIVE + NEGATIVE) == 12  # served; shadow scoring failed
    decided = retrain(settings, trigger=RunTrigger.schedule)
    assert decided.status is RunStatus.rejected and decided.metrics["shadow"]["scored"] == 0
    assert f"not promoted: model {candidate}: its artifact at" in decided.decision
    with sessions() as session:
        assert active_version(session).version == tiny_model


def test_a_shadow_period_goes_on_until_the_candidate_has_scored_a_review(
    settings, sessions, tiny_model, contrary_artifact
) -> None:
    candidate = contrary_model(settings, contrary_artifact)
    add_shadow_run(sessions, tiny_model, candidate, until=utcnow())
    waiting = retrain(settings, trigger=RunTrigger.schedule)  # no traffic in its period
    assert waiting.status is RunStatus.shadow and waiting.finished_at is None
    shadow_scored(sessions, POSITIVE[:1])
    decided = retrain(settings, trigger=RunTrigger.schedule)
    assert decided.status is RunStatus.promoted
    assert "in shadow it scored 1 reviews" in decided.decision


def test_a_candidate_that_scored_nothing_in_twice_its_shadow_period_is_rejected(
    settings, sessions, tiny_model, contrary_artifact
) -> None:
    candidate = contrary_model(settings, contrary_artifact)
    ended = utcnow() - timedelta(seconds=settings.shadow_period_s + 1)
    add_shadow_run(sessions, tiny_model, candidate, until=ended)
    decided = retrain(settings, trigger=RunTrigger.schedule)
    assert decided.status is RunStatus.rejected
    assert decided.decision.endswith("it scored no review in shadow, in twice its period")


@pytest.mark.parametrize("pending", ["waiting", "shadow"])
def test_a_candidate_an_admin_activated_meanwhile_closes_its_run_as_promoted(
    settings, sessions, tiny_model, contrary_artifact, pending
) -> None:
    candidate = contrary_model(settings, contrary_artifact)
    if pending == "waiting":
        add_waiting_run(sessions, settings, tiny_model, candidate)
    else:
        add_shadow_run(sessions, tiny_model, candidate, until=utcnow())
    with sessions() as session:
        activate_version(session, candidate)
    decided = retrain(settings, trigger=RunTrigger.schedule)
    assert decided.status is RunStatus.promoted and decided.finished_at is not None
    assert decided.decision.endswith("an admin activated its candidate meanwhile")
    with sessions() as session:
        assert active_version(session).version == candidate


@pytest.mark.parametrize("gone", ["the folder", PREPROCESSOR_FILE])
def test_a_waiting_run_whose_candidate_is_gone_is_rejected_when_judged_again(
    settings, sessions, tiny_model, contrary_artifact, gone
) -> None:
    candidate = contrary_model(settings, contrary_artifact)
    settings = replace(settings, feedback_holdout=0.999, gate_max_imdb_drop=1.0)
    add_waiting_run(sessions, settings, tiny_model, candidate)
    with sessions() as session:
        folder = Path(get_version(session, candidate).artifact_path)
    shutil.rmtree(folder) if gone == "the folder" else (folder / gone).unlink()
    add_labeled(sessions, POSITIVE + NEGATIVE, [["negative"]] * 6 + [["positive"]] * 6)
    decided = retrain(settings, trigger=RunTrigger.schedule)
    assert decided.status is RunStatus.rejected
    assert f"not judged again: model {candidate}: its artifact at" in decided.decision


def test_a_waiting_run_closed_while_it_is_judged_again_stays_closed(
    settings, sessions, tiny_model, contrary_artifact, monkeypatch
) -> None:
    """An admin's new run replaces the waiting run while the trainer scores its held-out
    labels, which side with the candidate."""
    candidate = contrary_model(settings, contrary_artifact)
    settings = replace(settings, feedback_holdout=0.999, gate_max_imdb_drop=1.0, shadow_period_s=0)
    add_waiting_run(sessions, settings, tiny_model, candidate)
    add_labeled(sessions, POSITIVE + NEGATIVE, [["negative"]] * 6 + [["positive"]] * 6)
    scored = trainer.retrain.compare

    def closed_meanwhile(*args):
        with sessions() as other:
            waiting = other.scalar(select(TrainingRun).where(TrainingRun.status == "waiting"))
            assert close_run(other, waiting, False, "replaced by a run started by hand")
        return scored(*args)

    monkeypatch.setattr(trainer.retrain, "compare", closed_meanwhile)
    retrain(settings, trigger=RunTrigger.schedule)
    with sessions() as session:
        (run,) = session.scalars(select(TrainingRun)).all()
        assert run.status is RunStatus.rejected and run.decision.startswith("replaced")
        assert active_version(session).version == tiny_model
