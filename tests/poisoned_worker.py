"""A real scoring worker whose model cannot score any review containing POISON: the fault tests
plant a failing review with it. Run as `python -m tests.poisoned_worker`."""

from sentiment_cli.main import cli
from sentiment_core.text import Reading
from sentiment_inference.scoring import Scorer

unpoisoned = Scorer.read_and_score


def read_and_score(self: Scorer, texts: list[str]) -> list[tuple[float, Reading]]:
    if any("POISON" in text for text in texts):
        raise ValueError("cannot score this review")
    return unpoisoned(self, texts)


Scorer.read_and_score = read_and_score  # type: ignore[method-assign]

if __name__ == "__main__":
    cli(["worker", "--loglevel", "WARNING"])
