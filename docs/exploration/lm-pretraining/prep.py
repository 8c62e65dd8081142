"""Prepare compact IMDb data for the GPU exploration (run locally, CPU).

Split exactly as bench/models.py does for seed 1: the gate's 2,000 reviews held out
(hold_out(settings.gate_imdb_reviews)), then rest.sample(None, 1).split_validation(0.1, 1)
(validation = whole held-out movies).

Writes .gpu_explore/data.npz:
  vocab: 0 = pad, 1 = unk, words from 2 by falling frequency over train + unlabeled (no test).
  {fit,val,test,unsup}_ids (uint16 flat) / _off (int64 offsets) : last <= 1000 tokens per review
  {fit,val,test}_y ; fit_groups (movie index, for folds)
  tfidf_val (LR fitted on fit part), tfidf_test (LR fitted on all 25k train, as the bench),
  tfidf_oof (5-fold by movie on fit part)
  w2v: float16 [V, 128] word2vec rows (zeros + flag where missing), w2v_has
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, "/work/main")
from sentiment_core.settings import Settings  # noqa: E402
from sentiment_core.text import tokenize  # noqa: E402
from trainer.data import load_dataset, load_unlabeled  # noqa: E402
from trainer.pretrain import load_latest  # noqa: E402

DATA = Path("/work/shared/data/imdb/aclImdb_v1_labeled.tar.gz")
OUTDIR = Path("/work/main/.gpu_explore")
V = 30000
MAXTOK = 1000
SEED = 1
t0 = time.time()


def log(*a):
    print(f"[{time.time() - t0:6.1f}s]", *a, flush=True)


ds = load_dataset(DATA)
gate = Settings().gate_imdb_reviews if hasattr(Settings(), "gate_imdb_reviews") else 2000
_, rest = ds.train.hold_out(gate)
fit, val = rest.sample(None, SEED).split_validation(0.1, SEED)
log("gate", gate, "fit", len(fit.texts), "val", len(val.texts), "test", len(ds.test.texts))
unsup = load_unlabeled(DATA.parent / "aclImdb_v1_unsup.tar.gz", exclude=ds.test.texts)
log("unsup", len(unsup))

tok = {}
for name, texts in [("fit", fit.texts), ("val", val.texts), ("test", ds.test.texts),
                    ("unsup", unsup), ("all_train", ds.train.texts)]:
    tok[name] = [tokenize(t) for t in texts]
log("tokenized")
counts: Counter[str] = Counter()
for seqs in (tok["all_train"], tok["unsup"]):
    for s in seqs:
        counts.update(s)
ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: V - 2]
vocab = ["<pad>", "<unk>"] + [w for w, _ in ranked]
index = {w: i for i, w in enumerate(vocab)}
log("vocab", len(vocab), "coverage of last word count", ranked[-1])

arrays = {}
for name in ("fit", "val", "test", "unsup"):
    ids, off = [], [0]
    for s in tok[name]:
        s = [index.get(w, 1) for w in s][-MAXTOK:]
        ids.extend(s)
        off.append(len(ids))
    arrays[f"{name}_ids"] = np.asarray(ids, dtype=np.uint16)
    arrays[f"{name}_off"] = np.asarray(off, dtype=np.int64)
    lens = np.diff(arrays[f"{name}_off"])
    log(name, "tokens", len(ids), "mean len", lens.mean().round(1), ">400:",
        (lens > 400).mean().round(3), ">800:", (lens >= 800).mean().round(3))
arrays["fit_y"] = np.asarray(fit.labels, np.int8)
arrays["val_y"] = np.asarray(val.labels, np.int8)
arrays["test_y"] = np.asarray(ds.test.labels, np.int8)
movies = {m: i for i, m in enumerate(sorted(set(fit.groups)))}
arrays["fit_groups"] = np.asarray([movies[g] for g in fit.groups], np.int32)

# word2vec rows
wv = load_latest(Path("/tmp/bench/models/pretrained"))
w_index = {w: i for i, w in enumerate(wv.words)}
mat = np.zeros((len(vocab), wv.vectors.shape[1]), np.float32)
has = np.zeros(len(vocab), bool)
for i, w in enumerate(vocab):
    j = w_index.get(w)
    if j is not None:
        mat[i] = wv.vectors[j]
        has[i] = True
arrays["w2v"] = mat.astype(np.float16)
arrays["w2v_has"] = has
log("w2v", wv.version, "has", has.mean().round(4), "mean abs", np.abs(wv.vectors).mean())

# TF-IDF bigram LR exactly as the bench
from sklearn.feature_extraction.text import TfidfVectorizer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import GroupKFold  # noqa: E402


def ident(x):
    return x


def lr_fit_predict(train_tok, train_y, pred_toks):
    vec = TfidfVectorizer(tokenizer=ident, preprocessor=ident, lowercase=False, token_pattern=None,
                          ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    X = vec.fit_transform(train_tok)
    m = LogisticRegression(C=10, max_iter=1000).fit(X, train_y)
    return [m.predict_proba(vec.transform(p))[:, 1] for p in pred_toks]


(pv,) = lr_fit_predict(tok["fit"], fit.labels, [tok["val"]])
arrays["tfidf_val"] = pv.astype(np.float32)
log("tfidf val acc", ((pv > 0.5) == np.asarray(val.labels)).mean())
(pt,) = lr_fit_predict(tok["all_train"], ds.train.labels, [tok["test"]])
arrays["tfidf_test"] = pt.astype(np.float32)
log("tfidf test acc (fit on all 25k train)", ((pt > 0.5) == np.asarray(ds.test.labels)).mean())
(pt2,) = lr_fit_predict(tok["fit"], fit.labels, [tok["test"]])
arrays["tfidf_test_fitpart"] = pt2.astype(np.float32)
oof = np.zeros(len(fit.texts), np.float32)
y = np.asarray(fit.labels)
for k, (tr, te) in enumerate(GroupKFold(5).split(np.zeros(len(y)), y, arrays["fit_groups"])):
    (p,) = lr_fit_predict([tok["fit"][i] for i in tr], y[tr], [[tok["fit"][i] for i in te]])
    oof[te] = p
    log("oof fold", k, ((p > 0.5) == y[te]).mean())
arrays["tfidf_oof"] = oof
log("oof acc", ((oof > 0.5) == y).mean())

np.savez_compressed(OUTDIR / "data.npz", **arrays)
(OUTDIR / "vocab.json").write_text(json.dumps(vocab))
log("saved", (OUTDIR / "data.npz").stat().st_size / 2**20, "MiB")
