"""A real scoring worker whose model cannot score any review containing POISON: the fault tests
plant a failing review with it. Run as `python -m tests.poisoned_worker`."""

from sentiment_cli.main import cli
from sentiment_inference.scoring import Scorer

unpoisoned = Scorer.score


def score(self: Scorer, texts: list[str]) -> list[float]:
    if any("POISON" in text for text in texts):
        raise ValueError("cannot score this review")
    return unpoisoned(self, texts)


Scorer.score = score  # type: ignore[method-assign]

if __name__ == "__main__":
    cli(["worker", "--loglevel", "WARNING"])
