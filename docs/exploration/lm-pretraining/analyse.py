"""Local analysis of the device runs' val/test probabilities: ensembles and blends with TF-IDF."""
import json
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

D = np.load("data.npz")
yv, yt, g = D["val_y"].astype(int), D["test_y"].astype(int), D["val_groups"]
tv, tt = D["tfidf_val"].astype(float), D["tfidf_test_fitpart"].astype(float)
P = dict(np.load("run1/probs.npz")) | dict(np.load("run2/probs.npz"))
R = json.load(open("run1/results.json"))["experiments"] | json.load(open("run2/results.json"))["experiments"]
lg = lambda p: np.log(np.clip(p, 1e-6, 1 - 1e-6) / (1 - np.clip(p, 1e-6, 1 - 1e-6)))
acc = lambda z, y: float(((z > 0) == y).mean())
tf_acc = acc(lg(tv), yv)

def cv_blend(Xv, Xt):
    ok = np.zeros(len(yv), bool)
    for tr, te in GroupKFold(10).split(Xv, yv, g):
        ok[te] = LogisticRegression(C=1.0).fit(Xv[tr], yv[tr]).predict(Xv[te]) == yv[te]
    m = LogisticRegression(C=1.0).fit(Xv, yv)
    return ok.mean(), (m.predict(Xt) == yt).mean(), ok

def boot_gain(ok, base_ok, n=2000):
    rng = np.random.default_rng(0); movies = np.unique(g); idx = {m: np.where(g == m)[0] for m in movies}
    out = []
    for _ in range(n):
        s = np.concatenate([idx[m] for m in rng.choice(movies, len(movies))])
        out.append(ok[s].mean() - base_ok[s].mean())
    return np.percentile(out, [5, 95]) * 100

base_ok = (lg(tv) > 0) == yv
models = {k[:-4]: (lg(P[k]), lg(P[k[:-4] + "_test"])) for k in P if k.endswith("_val")}
models["ENS_D1fwd+D4bwd"] = tuple((models["D1_lm256_40M_w800"][i] + models["D4_lm256bwd_40M_w800"][i]) / 2 for i in (0, 1))
models["ENS_D5fwd+D4bwd"] = tuple((models["D5_lm256_100M_w800"][i] + models["D4_lm256bwd_40M_w800"][i]) / 2 for i in (0, 1))
print(f"TF-IDF val {tf_acc:.4f}  test(fit part) {acc(lg(tt), yt):.4f}")
print(f"{'model':32s} {'val':>6s} {'blendCV':>7s} {'gain':>6s} {'90%CI':>13s} {'test':>6s} {'blendT':>6s} {'eqT':>6s}")
for k, (zv, zt) in models.items():
    cv, bt, ok = cv_blend(np.stack([zv, lg(tv)], 1), np.stack([zt, lg(tt)], 1))
    lo, hi = boot_gain(ok, base_ok)
    print(f"{k:32s} {acc(zv, yv):.4f} {cv:.4f} {100*(cv-tf_acc):+5.2f} [{lo:+.2f},{hi:+.2f}] {acc(zt, yt):.4f} {bt:.4f} {acc(zt + lg(tt), yt):.4f}")
