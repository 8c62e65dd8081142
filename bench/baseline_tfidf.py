"""The linear baseline the served LSTM has to beat: TF-IDF of word unigrams and bigrams with
logistic regression, trained on the official 25k training reviews, scored on the 25k test ones.

    .venv/bin/python bench/baseline_tfidf.py --data ../shared/data/imdb/aclImdb_v1_labeled.tar.gz
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sentiment_core.text import tokenize
from trainer.data import load_dataset
from trainer.evaluation import classification_metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    args = parser.parse_args()

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    dataset = load_dataset(args.data)
    started = time.monotonic()
    vectorizer = TfidfVectorizer(
        tokenizer=tokenize, lowercase=False, token_pattern=None, ngram_range=(1, 2),
        min_df=2, sublinear_tf=True,
    )  # fmt: skip
    features = vectorizer.fit_transform(dataset.train.texts)
    model = LogisticRegression(C=10, max_iter=1000).fit(features, dataset.train.labels)
    train_seconds = time.monotonic() - started
    scores = model.predict_proba(vectorizer.transform(dataset.test.texts))[:, 1]
    metrics = classification_metrics(dataset.test.labels, scores.tolist())
    print(
        json.dumps(
            {"model": "tfidf-bigram-logreg", "train_seconds": round(train_seconds, 1), **metrics}
        )
    )


if __name__ == "__main__":
    main()
