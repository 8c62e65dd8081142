"""Why a model gave its score: each word's signed part in it, and the score sentence by sentence.

Weights are in log-odds, the units the model adds in: a positive weight pushes the score toward
positive. Two methods, by what the model allows:

- `integrated-gradients`, on the compiled path (sentiment_inference/fastpath.py): the n-gram
  branch's exact terms (each bigram's split evenly between its two words), plus integrated
  gradients (Sundararajan et al. 2017) on the LSTM's word vectors, from all-zero vectors. The
  weights add up to the logit less what an all-zero review of the same length scores. One
  forward and backward pass over ATTRIBUTION_STEPS copies of the review (a 230-word review's
  explanation takes about 20 ms on the `best` model, 2 cores).
- `occlusion`, for any other model: each word's weight is what leaving it out changes; one
  forward pass over as many copies of the review as it has words.

Limits: a weight says what one word does with all the others in place. Words that act only
together ("not" and "good") share the effect between them. A repeated word's n-gram term goes
to its first copy (the bag holds each n-gram once); its LSTM part spreads over its copies.
Words outside the vocabulary, and words before the last `max_len` the model reads, have weight
0: the model never sees them. The model reads a word with letters outside ASCII by its ASCII
pieces ("Café" as "caf"); the explanation gives the word as written, with the weights of its
pieces added up.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass

from sentiment_core.text import token_spans
from sentiment_inference.scoring import Scorer, attribution_width

SENTENCE_END = re.compile(r"[.!?]|<br\s*/?>", re.IGNORECASE)
# A word as written, in any script: the model's words are its ASCII pieces ("Café" is "caf").
WORD = re.compile(r"\w+(?:'\w+)*")


@dataclass(frozen=True)
class Explanation:
    method: str
    score: float  # the model's probability that the review is positive
    tokens: list[dict]  # {"text", "start", "end", "weight"}, in the order of the text
    # the score of the review read up to the end of each sentence: {"end", "score"}
    running_scores: list[dict]


def logit(p: float) -> float:
    p = min(max(p, 1e-7), 1 - 1e-7)
    return math.log(p / (1 - p))


def explain(scorer: Scorer, text: str) -> Explanation:
    """Each word of `text` with its weight in `scorer`'s score, and the running score."""
    preprocessor = scorer.preprocessor
    spans = token_spans(text)
    known = {
        k: i
        for k, (word, _, _) in enumerate(spans)
        if (i := preprocessor.index_of(word)) is not None
    }
    seen = list(known)[-preprocessor.max_len :]  # the positions of the words the model reads
    window = [known[k] for k in seen]
    ends = [k for k in range(len(spans)) if k == len(spans) - 1 or ends_sentence(text, spans, k)]
    # Each read as the model reads a review: its last `max_len` known words.
    prefixes = [[i for k, i in known.items() if k <= end][-preprocessor.max_len :] for end in ends]
    rows = prefixes or [window]  # the last prefix is the whole review
    if scorer.attribute is not None:
        method, weights = "integrated-gradients", attributions(scorer, window)
        scores = scorer.score_sequences(rows)
    else:
        method = "occlusion"
        scores = scorer.score_sequences(
            rows + [window[:k] + window[k + 1 :] for k in range(len(window))]
        )
        weights = [logit(scores[len(rows) - 1]) - logit(s) for s in scores[len(rows) :]]
    score, running = scores[len(rows) - 1], scores[: len(prefixes)]
    weight_of = dict(zip(seen, weights, strict=True))
    written = [(m.start(), m.end()) for m in WORD.finditer(text)]

    def as_written(k: int) -> tuple[int, int]:
        """The offsets of the word as written that holds token k (an ASCII piece of it)."""
        _, start, end = spans[k]
        around = written[bisect.bisect_right(written, (start, len(text))) - 1]
        return around if around[0] <= start and end <= around[1] else (start, end)

    tokens: dict[tuple[int, int], float] = {}  # each word as written, with its pieces' weights
    for k in range(len(spans)):
        word = as_written(k)
        tokens[word] = tokens.get(word, 0.0) + weight_of.get(k, 0.0)
    return Explanation(
        method=method,
        score=float(score),
        tokens=[
            {"text": text[start:end], "start": start, "end": end, "weight": weight}
            for (start, end), weight in tokens.items()
        ],
        running_scores=[
            {"end": as_written(k)[1], "score": float(s)} for k, s in zip(ends, running, strict=True)
        ],
    )


def ends_sentence(text: str, spans: list[tuple[str, int, int]], k: int) -> bool:
    """Whether a sentence ends between word k and the next."""
    return SENTENCE_END.search(text, spans[k][2], spans[k + 1][1]) is not None


def attributions(scorer: Scorer, window: list[int]) -> list[float]:
    """Each word's weight, on the compiled path."""
    tokens = scorer.preprocessor.pad([window], attribution_width(len(window)), right=True)
    return [float(w) for w in scorer.attribute(tokens).numpy()[: len(window)]]
