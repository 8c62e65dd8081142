"""Append val_groups (movie index of each validation review) to data.npz (same split as prep.py)."""
import sys
from pathlib import Path
import numpy as np
sys.path.insert(0, "/work/main")
from trainer.data import load_dataset
ds = load_dataset(Path("/work/shared/data/imdb/aclImdb_v1_labeled.tar.gz"))
_, rest = ds.train.hold_out(2000)
fit, val = rest.sample(None, 1).split_validation(0.1, 1)
p = Path("/work/main/.gpu_explore/data.npz")
d = dict(np.load(p))
assert (d["val_y"] == np.asarray(val.labels)).all() and len(d["fit_y"]) == len(fit.labels)
movies = {m: i for i, m in enumerate(sorted(set(val.groups)))}
d["val_groups"] = np.asarray([movies[g] for g in val.groups], np.int32)
print("val movies", len(movies), "overlap with fit movies", len(set(val.groups) & set(fit.groups)))
np.savez_compressed(p, **d)
print(p.stat().st_size / 2**20, "MiB")
