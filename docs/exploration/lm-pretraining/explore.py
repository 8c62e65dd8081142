"""GPU exploration: which recurrent model earns its place beside TF-IDF bigram LR on IMDb.

    python explore.py [--data .gpu_explore/data.npz] [--out DIR] [--budget SECONDS] [--tiny]

Each experiment is time-boxed; results (val acc, blend with TF-IDF, wall time, params) are
appended to OUT/results.json after every experiment, and val/test probabilities to OUT/probs.npz.
Choice is by validation (held-out movies); test figures are recorded, not used for choosing.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
import traceback

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

T0 = time.time()
P = argparse.ArgumentParser()
P.add_argument("--data", default=".gpu_explore/data.npz")
P.add_argument("--out", default=os.environ.get("OUT", "/tmp/explore_out"))
P.add_argument("--budget", type=float, default=420.0)  # whole-script wall-clock target
P.add_argument("--tiny", action="store_true")  # CPU smoke test on a slice
P.add_argument("--only", default="")
P.add_argument("--set", type=int, default=1)  # 1: first run; 2: CPU-feasible LM frontier  # comma-separated experiment names
ARGS = P.parse_args()
os.makedirs(ARGS.out, exist_ok=True)
DEV = torch.device("cuda" if torch.cuda.is_available() else "cpu")
torch.backends.cuda.matmul.allow_tf32 = True
torch.backends.cudnn.allow_tf32 = True
torch.backends.cudnn.benchmark = False
SCALE = 0.02 if ARGS.tiny else 1.0  # time boxes shrink for the smoke test


def log(*a):
    print(f"[{time.time() - T0:6.1f}s]", *a, flush=True)


def left():
    return ARGS.budget - (time.time() - T0)


# ---------------------------------------------------------------- data
D = np.load(ARGS.data)
V = int(D["w2v"].shape[0])  # 0 pad, 1 unk, words from 2
EOS = V  # LM separator, an extra row


def split(name, n=None):
    ids, off = D[f"{name}_ids"], D[f"{name}_off"]
    seqs = [ids[off[i]:off[i + 1]].astype(np.int64) for i in range(len(off) - 1)]
    return seqs[:n] if n else seqs


NT = 600 if ARGS.tiny else None
fit_x, val_x, test_x = split("fit", NT), split("val", NT // 2 if NT else None), split("test", NT)
fit_y = D["fit_y"][: len(fit_x)].astype(np.float32)
val_y = D["val_y"][: len(val_x)].astype(np.float32)
test_y = D["test_y"][: len(test_x)].astype(np.float32)
val_groups = D["val_groups"][: len(val_x)] if "val_groups" in D else np.arange(len(val_x))
tf_val = D["tfidf_val"][: len(val_x)].astype(np.float64)
tf_test = D["tfidf_test_fitpart"][: len(test_x)].astype(np.float64)
tf_test_all = D["tfidf_test"][: len(test_x)].astype(np.float64)
log("device", DEV, torch.cuda.get_device_name() if DEV.type == "cuda" else "",
    "fit", len(fit_x), "val", len(val_x), "test", len(test_x), "V", V)
RESULTS = {"tfidf": {"val_acc": float(((tf_val > .5) == val_y).mean()),
                     "test_acc_fitpart": float(((tf_test > .5) == test_y).mean()),
                     "test_acc_alltrain": float(((tf_test_all > .5) == test_y).mean())},
           "experiments": {}}
PROBS = {}


def save():
    with open(os.path.join(ARGS.out, "results.json"), "w") as f:
        json.dump(RESULTS, f, indent=1)
    np.savez_compressed(os.path.join(ARGS.out, "probs.npz"), **PROBS)


def w2v_table(extra_rows=0, seed=0):
    mat = D["w2v"].astype(np.float32)
    has = D["w2v_has"]
    rng = np.random.default_rng(seed)
    table = rng.uniform(-0.05, 0.05, (V + extra_rows, mat.shape[1])).astype(np.float32)
    scale = 0.05 / np.abs(mat[has]).mean()
    table[:V][has] = mat[has] * scale
    table[0] = 0
    return torch.tensor(table)


REVERSE = [False]  # backward models read each review from its end


def pad_window(seqs, L):
    """Right-padded [N, L] of each review's last L tokens, and lengths (>= 1)."""
    x = np.zeros((len(seqs), L), np.int64)
    lens = np.ones(len(seqs), np.int64)
    for i, s in enumerate(seqs):
        s = s[-L:]
        if REVERSE[0]:
            s = s[::-1]
        x[i, : len(s)] = s
        lens[i] = max(1, len(s))
    return torch.tensor(x), torch.tensor(lens)


def batches(lens, bs, shuffle, rng):
    """Length-bucketed batches: sort by length in chunks of 50 batches, shuffle batch order."""
    n = len(lens)
    idx = rng.permutation(n) if shuffle else np.arange(n)
    out = []
    chunk = bs * 50
    for s in range(0, n, chunk):
        part = idx[s:s + chunk]
        part = part[np.argsort(-lens[part], kind="stable")]
        out += [part[j:j + bs] for j in range(0, len(part), bs)]
    if shuffle:
        rng.shuffle(out)
    return out


# ---------------------------------------------------------------- models
class Classifier(nn.Module):
    def __init__(self, emb, hidden, layers, bidir, pools, emb_drop=0.4, head_drop=0.3,
                 lstm=None, mlp=0):
        super().__init__()
        self.emb = emb
        E = emb.weight.shape[1]
        self.lstm = lstm or nn.LSTM(E, hidden, layers, batch_first=True, bidirectional=bidir,
                                    dropout=0.2 if layers > 1 else 0.0)
        self.bidir = bidir
        self.pools = pools
        self.emb_drop = emb_drop
        width = hidden * (2 if bidir else 1) * len(pools)
        self.drop = nn.Dropout(head_drop)
        self.head = (nn.Sequential(nn.Linear(width, mlp), nn.ReLU(), nn.Dropout(head_drop),
                                   nn.Linear(mlp, 1)) if mlp else nn.Linear(width, 1))

    def forward(self, x, lens):
        e = self.emb(x)
        if self.training and self.emb_drop:  # SpatialDropout1D: whole channels over time
            m = e.new_empty(e.shape[0], 1, e.shape[2]).bernoulli_(1 - self.emb_drop)
            e = e * m / (1 - self.emb_drop)
        packed = pack_padded_sequence(e, lens, batch_first=True, enforce_sorted=False)
        out, (h, _) = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        lens_d = lens.to(out.device)
        mask = (torch.arange(x.shape[1], device=out.device)[None] < lens_d[:, None])
        feats = []
        for p in self.pools:
            if p == "mean":
                feats.append((out * mask[..., None]).sum(1) / lens_d[:, None])
            elif p == "max":
                feats.append(out.masked_fill(~mask[..., None], -1e4).max(1).values)
            elif p == "last":
                if self.bidir:
                    feats.append(torch.cat([h[-2], h[-1]], -1))
                else:
                    feats.append(h[-1])
        return self.head(self.drop(torch.cat(feats, -1))).squeeze(-1)


class LM(nn.Module):
    def __init__(self, hidden, layers, emb_dim=128):
        super().__init__()
        self.emb = nn.Embedding(V + 1, emb_dim, padding_idx=0)
        with torch.no_grad():
            self.emb.weight.copy_(w2v_table(extra_rows=1))
        self.lstm = nn.LSTM(emb_dim, hidden, layers, batch_first=True,
                            dropout=0.2 if layers > 1 else 0.0)
        self.proj = nn.Linear(hidden, emb_dim)
        self.bias = nn.Parameter(torch.zeros(V + 1))
        self.edrop, self.odrop = nn.Dropout(0.1), nn.Dropout(0.25)

    def forward(self, x, state=None):
        out, state = self.lstm(self.edrop(self.emb(x)), state)
        logits = F.linear(self.proj(self.odrop(out)), self.emb.weight, self.bias)
        return logits, state


def nparams(m):
    return int(sum(p.numel() for p in m.parameters()))


# ---------------------------------------------------------------- train / eval
@torch.no_grad()
def predict(model, X, lens, bs=512):
    model.eval()
    probs = np.zeros(len(X), np.float64)
    ln = lens.numpy()
    for b in batches(ln, bs, False, None):
        bt = torch.as_tensor(b)
        Lmax = int(ln[b].max())
        logit = model(X[bt, :Lmax].to(DEV, non_blocking=True), lens[bt])
        probs[b] = torch.sigmoid(logit.float()).cpu().numpy()
    return probs


def train_classifier(name, model, L, groups_lr, epochs, budget, bs=64, warm_frac=0.0,
                     patience=1, seed=0):
    """Adam, bucketed batches, early stopping on val loss (keeps the best epoch's weights)."""
    started = time.time()
    deadline = started + budget
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    Xf, lf = pad_window(fit_x, L)
    Xv, lv = pad_window(val_x, L)
    yf = torch.tensor(fit_y)
    model.to(DEV)
    opt = torch.optim.Adam([{"params": ps, "lr": lr} for ps, lr in groups_lr])
    base = [g["lr"] for g in opt.param_groups]
    steps_per_epoch = math.ceil(len(fit_x) / bs)
    total = steps_per_epoch * epochs
    step = 0
    best = (float("inf"), None, None, -1)
    hist = []
    for ep in range(epochs):
        model.train()
        tl, n = 0.0, 0
        stopped = False
        for b in batches(lf.numpy(), bs, True, rng):
            if time.time() > deadline:
                stopped = True
                break
            # slanted schedule: optional warmup then linear decay to 10%
            frac = step / max(1, total)
            w = frac / warm_frac if warm_frac and frac < warm_frac else (
                1.0 - 0.9 * (frac - warm_frac) / max(1e-9, 1 - warm_frac) if warm_frac else 1.0)
            for g, lr0 in zip(opt.param_groups, base):
                g["lr"] = lr0 * w
            bt = torch.as_tensor(b)
            Lmax = int(lf[bt].max())
            logit = model(Xf[bt, :Lmax].to(DEV, non_blocking=True), lf[bt])
            loss = F.binary_cross_entropy_with_logits(logit.float(), yf[bt].to(DEV))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            tl += loss.item() * len(b)
            n += len(b)
            step += 1
        pv = predict(model, Xv, lv)
        vl = float(F.binary_cross_entropy(torch.tensor(pv).clamp(1e-7, 1 - 1e-7),
                                          torch.tensor(val_y, dtype=torch.float64)))
        va = float(((pv > .5) == val_y).mean())
        hist.append({"epoch": ep + 1, "train_loss": tl / max(n, 1), "val_loss": vl, "val_acc": va,
                     "partial": stopped, "t": round(time.time() - started, 1)})
        log(f"  {name} ep{ep + 1} train_loss {tl / max(n, 1):.4f} val_loss {vl:.4f} "
            f"val_acc {va:.4f}{' (partial epoch)' if stopped else ''} t={time.time() - started:.0f}s")
        if vl < best[0]:
            best = (vl, copy.deepcopy(model.state_dict()), pv, ep + 1)
        elif ep + 1 - best[3] >= patience:
            break
        if stopped or time.time() > deadline:
            break
    model.load_state_dict(best[1])
    return best[2], best[3], hist, time.time() - started


def blend_report(pv, pt):
    """Blend of the model's val probability with TF-IDF's: equal logit average (no fitting), and a
    2-feature logistic regression scored by 10-fold cross-validation on val (folds by movie)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    def lg(p):
        p = np.clip(p, 1e-6, 1 - 1e-6)
        return np.log(p / (1 - p))

    Xv = np.stack([lg(pv), lg(tf_val)], 1)
    Xt = np.stack([lg(pt), lg(tf_test)], 1)
    eq = float((((Xv[:, 0] + Xv[:, 1]) > 0) == val_y).mean())
    correct = np.zeros(len(val_y), bool)
    k = min(10, len(np.unique(val_groups)))
    for tr, te in GroupKFold(k).split(Xv, val_y, val_groups):
        m = LogisticRegression(C=1.0).fit(Xv[tr], val_y[tr])
        correct[te] = m.predict(Xv[te]) == val_y[te]
    cv = float(correct.mean())
    m = LogisticRegression(C=1.0).fit(Xv, val_y)
    tf_acc = RESULTS["tfidf"]["val_acc"]
    return {"blend_eq_val": eq, "blend_cv_val": cv, "gain_cv_pts": round(100 * (cv - tf_acc), 2),
            "gain_eq_pts": round(100 * (eq - tf_acc), 2),
            "blend_weights": [float(c) for c in m.coef_[0]] + [float(m.intercept_[0])],
            "test_acc": float(((pt > .5) == test_y).mean()),
            "blend_eq_test": float((((Xt[:, 0] + Xt[:, 1]) > 0) == test_y).mean()),
            "blend_lr_test": float((m.predict(Xt) == test_y).mean())}


def finish(name, model, L, pv, best_ep, hist, secs, extra=None):
    Xt, lt = pad_window(test_x, L)
    pt = predict(model, Xt, lt)
    r = {"val_acc": float(((pv > .5) == val_y).mean()), "best_epoch": best_ep,
         "train_seconds": round(secs, 1), "params": nparams(model), "window": L,
         "history": hist} | blend_report(pv, pt) | (extra or {})
    RESULTS["experiments"][name] = r
    PROBS[f"{name}_val"] = pv.astype(np.float32)
    PROBS[f"{name}_test"] = pt.astype(np.float32)
    save()
    log(f"RESULT {name}: val {r['val_acc']:.4f} blend_cv {r['blend_cv_val']:.4f} "
        f"(gain {r['gain_cv_pts']:+.2f} pts, eq {r['gain_eq_pts']:+.2f}) params {r['params']:,} "
        f"train {secs:.0f}s")


# ---------------------------------------------------------------- experiments
def w2v_classifier(hidden, bidir, pools, layers=1, emb_drop=0.4, head_drop=0.3):
    emb = nn.Embedding(V, 128, padding_idx=0)
    with torch.no_grad():
        emb.weight.copy_(w2v_table())
    return Classifier(emb, hidden, layers, bidir, pools, emb_drop, head_drop)


def exp_w2v(name, hidden, L, pools, epochs, budget, lr=1e-3, bs=64):
    model = w2v_classifier(hidden, True, pools)
    pv, be, hist, secs = train_classifier(name, model, L, [(model.parameters(), lr)], epochs,
                                          budget, bs=bs)
    finish(name, model, L, pv, be, hist, secs)


def lm_stream(seed=0):
    """unsup + fit reviews (never val/test), shuffled, each followed by EOS."""
    rng = np.random.default_rng(seed)
    seqs = split("unsup", 3 * NT if NT else None) + fit_x
    order = rng.permutation(len(seqs))
    parts = []
    for i in order:
        parts.append(seqs[i][::-1] if REVERSE[0] else seqs[i])
        parts.append(np.array([EOS]))
    return torch.tensor(np.concatenate(parts))


def pretrain_lm(name, hidden, layers, budget, max_tokens, B=256, bptt=80, lr=2e-3):
    if ARGS.tiny:
        B, bptt = 8, 20
    started = time.time()
    deadline = started + budget
    torch.manual_seed(0)
    stream = lm_stream()
    n = (len(stream) - 1) // B * B
    X = stream[:n].view(B, -1).to(DEV)
    Y = stream[1:n + 1].view(B, -1).to(DEV)
    lm = LM(hidden, layers).to(DEV)
    opt = torch.optim.Adam(lm.parameters(), lr=lr, betas=(0.9, 0.99))
    chunks = X.shape[1] // bptt
    step, tokens, state = 0, 0, None
    total = max(1, int(max_tokens // (B * bptt)))
    warm = 50
    t_measure = None
    losses = []
    ep = 0
    while True:
        for c in range(chunks):
            if step == 20:
                torch.cuda.synchronize() if DEV.type == "cuda" else None
                t_measure = time.time()
            if step == 60 and t_measure:
                torch.cuda.synchronize() if DEV.type == "cuda" else None
                per = (time.time() - t_measure) / 40
                total = min(total, step + int((deadline - time.time()) / per))
                log(f"  {name} LM {per * 1000:.1f} ms/step, {B * bptt / per / 1e6:.2f} Mtok/s, "
                    f"planned steps {total} ({total * B * bptt / 1e6:.0f}M tokens, "
                    f"{total * B * bptt / n:.1f} epochs)")
            if step >= total or time.time() > deadline:
                break
            w = min(1.0, (step + 1) / warm) * max(0.05, 1 - step / total)
            for g in opt.param_groups:
                g["lr"] = lr * w
            x = X[:, c * bptt:(c + 1) * bptt]
            y = Y[:, c * bptt:(c + 1) * bptt]
            if state is not None:
                state = tuple(s.detach() for s in state)
            logits, state = lm(x, state)
            loss = F.cross_entropy(logits.reshape(-1, V + 1), y.reshape(-1))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
            opt.step()
            step += 1
            tokens += B * bptt
            if step % 200 == 0:
                losses.append((step, float(loss)))
                log(f"  {name} LM step {step}/{total} loss {float(loss):.3f} "
                    f"ppl {math.exp(float(loss)):.1f}")
        else:
            ep += 1
            state = None
            continue
        break
    # perplexity on validation reviews (held-out movies)
    lm.eval()
    with torch.no_grad():
        vs = []
        for s in val_x[:1000]:
            vs += [s[::-1] if REVERSE[0] else s, np.array([EOS])]
        vstream = torch.tensor(np.concatenate(vs)).to(DEV)
        nv = (len(vstream) - 1) // 16 * 16
        vx, vy = vstream[:nv].view(16, -1), vstream[1:nv + 1].view(16, -1)
        tot, cnt, st = 0.0, 0, None
        for c in range(0, vx.shape[1], 200):
            logits, st = lm(vx[:, c:c + 200], st)
            tot += float(F.cross_entropy(logits.reshape(-1, V + 1), vy[:, c:c + 200].reshape(-1),
                                         reduction="sum"))
            cnt += vy[:, c:c + 200].numel()
        vloss = tot / cnt
    secs = time.time() - started
    info = {"lm_hidden": hidden, "lm_layers": layers, "lm_steps": step, "lm_tokens": tokens,
            "lm_epochs": round(tokens / n, 2), "lm_seconds": round(secs, 1),
            "lm_val_ppl": round(math.exp(vloss), 1), "lm_params": nparams(lm), "lm_curve": losses}
    log(f"  {name} LM done: {tokens / 1e6:.0f}M tokens in {secs:.0f}s, val ppl {math.exp(vloss):.1f}")
    return lm, info


def exp_lm(name, hidden, layers, lm_budget, max_tokens, L, ft_budget, epochs=4,
           lrs=(4e-4, 1e-3, 2e-3), reverse=False):
    REVERSE[0] = reverse
    try:
        _exp_lm(name, hidden, layers, lm_budget, max_tokens, L, ft_budget, epochs, lrs)
    finally:
        REVERSE[0] = False


def _exp_lm(name, hidden, layers, lm_budget, max_tokens, L, ft_budget, epochs, lrs):
    lm, info = pretrain_lm(name, hidden, layers, lm_budget, max_tokens,
                           lr=1.5e-3 if hidden >= 1024 else 2e-3)
    RESULTS["experiments"][name + "_lm"] = info
    save()
    model = Classifier(lm.emb, hidden, layers, False, ("last", "mean", "max"), emb_drop=0.1,
                       head_drop=0.3, lstm=lm.lstm, mlp=50)
    head = [p for n_, p in model.named_parameters() if n_.startswith("head")]
    groups = [([model.emb.weight], lrs[0]), (list(model.lstm.parameters()), lrs[1]),
              (head, lrs[2])]
    pv, be, hist, secs = train_classifier(name, model, L, groups, epochs, ft_budget,
                                          warm_frac=0.1, patience=2)
    finish(name, model, L, pv, be, hist, secs, info | {"reverse": REVERSE[0]})


# name -> (share of the budget it may use, function)
EXPERIMENTS = [
    ("A_bilstm64_w400_mean", 25, lambda b: exp_w2v("A_bilstm64_w400_mean", 64, 400, ("mean",), 4, b)),
    ("C1_lm1024_w800", 190, lambda b: exp_lm("C1_lm1024_w800", 1024, 1, b * 0.62, 400e6, 800,
                                             b * 0.38)),
    ("C2_lm256_w800", 80, lambda b: exp_lm("C2_lm256_w800", 256, 1, b * 0.4, 15e6, 800,
                                           b * 0.6)),
    ("B_bilstm256_w800_meanmax", 50,
     lambda b: exp_w2v("B_bilstm256_w800_meanmax", 256, 800, ("mean", "max"), 5, b)),
    ("B2_bilstm128_w800_meanmax", 40,
     lambda b: exp_w2v("B2_bilstm128_w800_meanmax", 128, 800, ("mean", "max"), 5, b)),
]


def lm_exp(name, share, hidden, tokens, L=800, reverse=False, lm_frac=0.5):
    return (name, share, lambda b: exp_lm(name, hidden, 1, b * lm_frac, tokens, L,
                                          b * (1 - lm_frac), reverse=reverse))


EXPERIMENTS2 = [
    lm_exp("D1_lm256_40M_w800", 70, 256, 40e6),
    lm_exp("D4_lm256bwd_40M_w800", 70, 256, 40e6, reverse=True),
    lm_exp("D2_lm512_40M_w800", 75, 512, 40e6),
    lm_exp("D3_lm1024_40M_w800", 80, 1024, 40e6),
    lm_exp("D5_lm256_100M_w800", 100, 256, 100e6, lm_frac=0.7),
]
if ARGS.set == 2:
    EXPERIMENTS = EXPERIMENTS2


def main():
    only = set(ARGS.only.split(",")) - {""}
    todo = [e for e in EXPERIMENTS if not only or e[0] in only]
    share_total = sum(s for _, s, _ in todo)
    for i, (name, share, fn) in enumerate(todo):
        rest = sum(s for _, s, _ in todo[i:])
        budget = max(5.0, (left() - 8) * share / rest) * (SCALE if ARGS.tiny else 1)
        if ARGS.tiny:
            budget = 3.0 * share / share_total * 10
        log(f"=== {name}: budget {budget:.0f}s (left {left():.0f}s)")
        try:
            fn(budget)
        except Exception as exc:  # keep the others
            traceback.print_exc()
            sys.stdout.flush()
            RESULTS["experiments"][name] = {"error": repr(exc)}
            save()
        if DEV.type == "cuda":
            torch.cuda.empty_cache()
    log("SUMMARY tfidf val", RESULTS["tfidf"])
    for k, r in RESULTS["experiments"].items():
        if "val_acc" in r:
            log(f"SUMMARY {k}: val {r['val_acc']:.4f} blend_cv {r['blend_cv_val']:.4f} "
                f"gain {r['gain_cv_pts']:+.2f} eq {r['gain_eq_pts']:+.2f} params {r['params']:,} "
                f"train {r['train_seconds']}s lm {r.get('lm_seconds', 0)}s")
    save()


if __name__ == "__main__":
    main()
