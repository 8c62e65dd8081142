"""Fine-tuning variants of the `lstm` preset, chosen on seed 1's validation movies (issue 11).

Run on the 2-core machine from the repository root, one variant at a time (about 15 minutes
each), with the language model `sentiment pretrain` wrote:

    PYTHONPATH=. .venv/bin/python docs/exploration/fine-tuning/explore.py NAME '{"patience": 2}' \\
        --data ../shared/data/imdb/aclImdb_v1_labeled.tar.gz --pretrained /tmp/bench9/models/pretrained

The JSON holds `Preset` fields to change, and two knobs the product does not have: "freeze"
(the word vectors stay as pretraining left them) and "embedding_rate" (the word vectors'
learning rate as a share of the rest's, Howard & Ruder 2018). Prints the validation accuracy
and each epoch's figures; the model is trained exactly as `sentiment train --preset lstm
--seed 1` trains it otherwise (the gate's 2,000 reviews held out, validation by movie).
"""

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import keras

import trainer.train as train
from sentiment_inference.scoring import WORDS
from trainer.data import Dataset, load_dataset
from trainer.model import PRESETS
from trainer.pretrain import load_latest

parser = argparse.ArgumentParser()
parser.add_argument("name")
parser.add_argument("changes", type=json.loads)
parser.add_argument("--data", type=Path, required=True)
parser.add_argument("--pretrained", type=Path, required=True)
args = parser.parse_args()

changes = dict(args.changes)
freeze = changes.pop("freeze", False)
share = changes.pop("embedding_rate", 1.0)
PRESETS[args.name] = dataclasses.replace(PRESETS["lstm"], **changes)

build = train.build_model


def frozen(preset):
    model = build(preset)
    model.get_layer(WORDS).trainable = False
    return model


@keras.saving.register_keras_serializable(package="exploration")  # the trained model is cloned
class LayerwiseAdam(keras.optimizers.Adam):
    def build(self, variables):
        super().build(variables)
        self._shares = [share if v.path.split("/")[0] == WORDS else 1.0 for v in variables]

    def update_step(self, gradient, variable, learning_rate):
        scale = self._shares[self._get_variable_index(variable)]
        super().update_step(gradient, variable, learning_rate * scale)


if freeze:
    train.build_model = frozen
keras.optimizers.Adam = LayerwiseAdam

data = load_dataset(args.data)
_, rest = data.train.hold_out(2000)
request = train.TrainRequest(preset=args.name, seed=1, pretrained=load_latest(args.pretrained))
started = time.time()
with tempfile.TemporaryDirectory() as folder:
    (Path(folder) / "report").mkdir()
    metrics, _, _ = train.train_into(Path(folder), Dataset(rest, data.test), request)
print(
    args.name,
    json.dumps(args.changes),
    "validation",
    round(metrics["validation"]["accuracy"], 4),
    "minutes",
    round((time.time() - started) / 60, 1),
)
print(json.dumps(metrics["history"]))
