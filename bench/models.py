"""Every preset, its ablations and the linear baseline on the official split, one row each.

    .venv/bin/python bench/models.py --data ../shared/data/imdb/aclImdb_v1_labeled.tar.gz \\
        --var /tmp/models-bench --presets best lstm --seeds 1 2 3

Each preset is trained once per seed exactly as `sentiment train --preset P --seed S` trains it
(the retraining gate's slice held out, validation by movie, the latest pretrained vectors where
the preset starts from them; `sentiment pretrain` runs first when there are none); a model VAR
already holds for that preset and seed is reused, so a run cut short resumes. For each
model: accuracy on its validation movies and on the test split, test F1, training minutes,
parameters, size on disk, and reviews/s in-process (the worker's scorer against Keras' batched
`predict`, on the same 4,096 test reviews); a two-branch model again with each branch silenced
(`sentiment evaluate --without`); and accuracy on test reviews cut short, where a bag of words
has the least to go on: each review's first 20 words, and its last sentence. The TF-IDF bigram
regression gets the same figures. Prints a markdown table of means and spreads (min-max over
seeds); every figure is also written as a JSON line to VAR/results.jsonl as each model's
figures are done.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sentiment_core.settings import Settings
from sentiment_core.text import tokenize
from trainer.data import Dataset, Split, load_dataset
from trainer.evaluation import classification_metrics
from trainer.model import PRESETS

ROOT = Path(__file__).resolve().parent.parent
SPEED_REVIEWS = 4096
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def first_words(text: str, n: int = 20) -> str:
    return " ".join(text.replace("<br />", " ").split()[:n])


def last_sentence(text: str) -> str:
    sentences = [s for s in _SENTENCE_END.split(text.replace("<br />", " ").strip()) if s]
    return sentences[-1] if sentences else text


def shifted_sets(test: Split) -> dict[str, Split]:
    return {
        "first 20 words": Split([first_words(t) for t in test.texts], list(test.labels)),
        "last sentence": Split([last_sentence(t) for t in test.texts], list(test.labels)),
    }


def validation_of(dataset: Dataset, settings: Settings, preset: str, seed: int) -> Split:
    """The validation movies a model trained by `train_and_register` with `seed` chose on."""
    _, rest = dataset.train.hold_out(settings.gate_imdb_reviews)
    return rest.sample(None, seed).split_validation(PRESETS[preset].validation_split, seed)[1]


def accuracy(score, split: Split) -> float:
    return classification_metrics(split.labels, score(split.texts))["accuracy"]


def speed(model_dir: Path, texts: list[str]) -> dict:
    import keras

    from sentiment_inference.scoring import Scorer

    scorer = Scorer.load(model_dir.name, model_dir)
    scorer.compile_all()  # every shape, as a worker has them after its first minutes
    model = keras.saving.load_model(model_dir / "model.keras", compile=False)
    pre = scorer.preprocessor
    model.predict(pre.pad(pre.encode(texts[:256])), batch_size=256, verbose=0)
    started = time.perf_counter()
    model.predict(pre.pad(pre.encode(texts)), batch_size=256, verbose=0)
    keras_seconds = time.perf_counter() - started
    started = time.perf_counter()
    for start in range(0, len(texts), 1024):
        scorer.score(texts[start : start + 1024])
    scorer_seconds = time.perf_counter() - started
    return {
        "reviews_per_s": len(texts) / scorer_seconds,
        "keras_reviews_per_s": len(texts) / keras_seconds,
        "size_mb": sum(f.stat().st_size for f in model_dir.iterdir() if f.is_file()) / 1e6,
    }


def trained(dataset: Dataset, settings: Settings, preset: str, seed: int):
    """The version of `preset` trained with `seed` already registered in this var (a run cut
    short is resumed), else a newly trained one."""
    from sqlalchemy import select

    from sentiment_core.db import ModelVersion, make_engine, make_sessionmaker
    from trainer.train import TrainRequest, train_and_register

    engine = make_engine(settings.database_url)
    with make_sessionmaker(engine)() as session:
        rows = session.scalars(select(ModelVersion).where(ModelVersion.preset == preset))
        done = next((r for r in rows if r.metrics.get("seed") == seed), None)
    engine.dispose()
    return done or train_and_register(settings, dataset, TrainRequest(preset=preset, seed=seed))


def model_rows(dataset: Dataset, settings: Settings, preset: str, seed: int) -> list[dict]:
    from sentiment_inference.scoring import Scorer

    row = trained(dataset, settings, preset, seed)
    folder, metrics = Path(row.artifact_path), row.metrics
    validation = validation_of(dataset, settings, preset, seed)
    common = {
        "seed": seed,
        "train_min": metrics["train_seconds"] / 60,
        "parameters": metrics["parameters"],
        "pretrained": metrics["pretrained"],
    } | speed(folder, dataset.test.texts[:SPEED_REVIEWS])
    branches = [None, "lstm", "ngrams"] if PRESETS[preset].ngram_buckets else [None]
    rows = []
    for without in branches:
        scorer = Scorer.load(row.version, folder, without=without)
        own = common if without is None else {"seed": seed}  # the model's own figures once
        test = classification_metrics(dataset.test.labels, scorer.score(dataset.test.texts))
        figures = {
            "model": preset + (f" --without {without}" if without else ""),
            "validation": accuracy(scorer.score, validation),
            "test": test["accuracy"],
            "f1": test["f1"],
        } | {
            name: accuracy(scorer.score, split)
            for name, split in shifted_sets(dataset.test).items()
        }
        if (
            without is None
            and abs(figures["validation"] - metrics["validation"]["accuracy"]) > 1e-9
        ):
            raise SystemExit("the validation split differs from the one the model was trained on")
        rows.append(own | figures)
    return rows


def baseline_rows(dataset: Dataset, settings: Settings, seeds: list[int]) -> list[dict]:
    """The TF-IDF uni+bigram logistic regression (bench/baseline_tfidf.py), validated on the
    same movies as the first preset's first seed, then trained on all training reviews."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    def fit(split: Split):
        vectorizer = TfidfVectorizer(
            tokenizer=tokenize, lowercase=False, token_pattern=None, ngram_range=(1, 2),
            min_df=2, sublinear_tf=True,
        )  # fmt: skip
        model = make_pipeline(vectorizer, LogisticRegression(C=10, max_iter=1000))
        model.fit(split.texts, split.labels)
        return lambda texts: model.predict_proba(texts)[:, 1].tolist()

    _, rest = dataset.train.hold_out(settings.gate_imdb_reviews)
    fit_part, validation = rest.sample(None, seeds[0]).split_validation(0.1, seeds[0])
    started = time.monotonic()
    score = fit(dataset.train)
    minutes = (time.monotonic() - started) / 60
    test = classification_metrics(dataset.test.labels, score(dataset.test.texts))
    return [
        {
            "model": "TF-IDF bigram logistic regression",
            "seed": seeds[0],
            "validation": accuracy(fit(fit_part), validation),
            "test": test["accuracy"],
            "f1": test["f1"],
            "train_min": minutes,
        }
        | {name: accuracy(score, split) for name, split in shifted_sets(dataset.test).items()}
    ]


def spread(values: list[float], digits: int) -> str:
    """The mean, and the range over seeds where they differ."""
    mean = f"{statistics.fmean(values):,.{digits}f}"
    if min(values) == max(values):
        return mean
    return f"{mean} ({min(values):,.{digits}f}–{max(values):,.{digits}f})"


def table(rows: list[dict], pretrain_min: float | None) -> str:
    columns = [
        ("validation", "validation (movies)", 4), ("test", "test", 4), ("f1", "F1", 4),
        ("first 20 words", "first 20 words", 4), ("last sentence", "last sentence", 4),
        ("train_min", "train min", 1), ("parameters", "parameters", 0),
        ("reviews_per_s", "reviews/s", 0), ("keras_reviews_per_s", "Keras predict/s", 0),
        ("size_mb", "MB", 1),
    ]  # fmt: skip
    lines = [
        "| model | seeds | " + " | ".join(title for _, title, _ in columns) + " | pretrain min |",
        "| --- | ---: |" + " ---: |" * (len(columns) + 1),
    ]
    for model in dict.fromkeys(row["model"] for row in rows):
        group = [row for row in rows if row["model"] == model]
        cells = [
            spread([row[key] for row in group], digits) if key in group[0] else "—"
            for key, _, digits in columns
        ]
        pretrained = pretrain_min is not None and group[0].get("pretrained")
        pretrain = f"{pretrain_min:.1f}" if pretrained else "—"
        lines.append(f"| {model} | {len(group)} | " + " | ".join(cells) + f" | {pretrain} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--var", required=True, type=Path, help="A folder for models and results.")
    parser.add_argument("--presets", nargs="+", default=["best", "lstm"], choices=sorted(PRESETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    args = parser.parse_args()

    from sentiment_core.migrate import upgrade_database
    from trainer.pretrain import META_FILE, latest_artifact

    settings = Settings(var_dir=args.var.resolve())
    upgrade_database(settings)
    if any(PRESETS[p].pretrained for p in args.presets) and not latest_artifact(
        settings.pretrained_dir
    ):
        env = dict(
            os.environ, SENTIMENT_VAR=str(settings.var_dir), MODEL_DIR=str(settings.model_dir)
        )
        command = [sys.executable, "-m", "sentiment_cli.main", "pretrain", "--data", str(args.data)]
        subprocess.run(command, env=env, cwd=ROOT, check=True)
    pretrained = latest_artifact(settings.pretrained_dir)
    pretrain_min = None
    if pretrained:
        pretrain_min = json.loads((pretrained / META_FILE).read_text())["seconds"] / 60

    rows: list[dict] = []

    def record(new: list[dict]) -> None:
        """Keep `new` for the table, and in results.jsonl at once: a run cut short keeps them."""
        rows.extend(new)
        with (settings.var_dir / "results.jsonl").open("a") as out:
            out.writelines(json.dumps(row) + "\n" for row in new)
        print(json.dumps(new[-1]), file=sys.stderr, flush=True)

    dataset = load_dataset(args.data)
    record(baseline_rows(dataset, settings, args.seeds))
    for preset in args.presets:
        for seed in args.seeds:
            record(model_rows(dataset, settings, preset, seed))
    print(table(rows, pretrain_min))


if __name__ == "__main__":
    main()
