"""A real worker that takes at least 0.1 s per explanation, so that a fault test can kill it
with explanations still to do however fast the machine is. Run as `python -m
tests.slow_explainer`."""

import time

from sentiment_cli.main import cli
from worker import explaining

unhurried = explaining.explain


def explain(*args, **kwargs):
    time.sleep(0.1)
    return unhurried(*args, **kwargs)


explaining.explain = explain

if __name__ == "__main__":
    cli(["worker", "--loglevel", "WARNING"])
