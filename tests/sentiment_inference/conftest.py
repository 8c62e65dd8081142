"""A model of each shape the scorer serves, trained once for the session's tests."""

import dataclasses

import pytest

from tests.factories import tiny_dataset
from trainer.model import PRESETS
from trainer.train import TrainRequest, train_into


@pytest.fixture(scope="session", params=["tiny", "tiny-forward", "seed"])
def trained(request, tmp_path_factory):
    """Masked models (tiny, and tiny with a forward LSTM as the `lstm` and `best` presets read)
    and an unmasked one (seed), trained briefly."""
    folder = tmp_path_factory.mktemp(request.param)
    (folder / "report").mkdir()
    forward = dataclasses.replace(PRESETS["tiny"], bidirectional=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(PRESETS, "tiny-forward", forward)
        train_into(folder, tiny_dataset(), TrainRequest(preset=request.param, epochs=2))
    return request.param, folder
