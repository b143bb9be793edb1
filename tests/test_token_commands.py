"""The commands of notebook 15 refuse bad arguments and existing outputs before any work; their
data preparation is what the notebook recomputes."""

from __future__ import annotations

import numpy as np
import pytest

from experiments import image_transformer, videobert
from vitlib import tokens

pytestmark = pytest.mark.single_backend


@pytest.mark.parametrize("module", [image_transformer, videobert])
def test_existing_output_is_refused_before_any_work(module, tmp_path, capsys):
    out = tmp_path / "model.keras"
    out.write_bytes(b"keep me")
    with pytest.raises(SystemExit) as stop:
        module.main(["--out", str(out)])
    assert stop.value.code == 2 and "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"keep me"


@pytest.mark.parametrize("module, argv, says", [
    (image_transformer, ["--levels", "1"], "--levels"),
    (image_transformer, ["--dim", "30", "--num-heads", "4"], "--num-heads"),
    (image_transformer, ["--epochs", "0"], "--epochs"),
    (image_transformer, ["--seeds", "-1"], "--seeds"),
    (videobert, ["--encoder", "no_such_file.keras"], "--encoder"),
    (videobert, ["--dim", "30", "--num-heads", "4"], "--num-heads"),
    (videobert, ["--words", "0"], "--words"),
])
def test_usage_errors_name_the_option(module, argv, says, capsys):
    with pytest.raises(SystemExit) as stop:
        module.main(argv)
    assert stop.value.code == 2 and says in capsys.readouterr().err


class _Data:  # a stand-in for vitlib.data.FashionMNIST, 40 training and 10 test images
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (40, 28, 28)).astype(np.uint8)
    x_test = rng.integers(0, 256, (10, 28, 28)).astype(np.uint8)


def test_image_transformer_splits_are_the_notebooks_recipe():
    settings = {**image_transformer.SETTINGS, "train_images": 20, "val_images": 5,
                "test_images": 10}
    data = image_transformer.splits(settings, _Data)
    assert {k: v.shape for k, v in data.items()} == {"train": (20, 196), "val": (5, 196),
                                                     "test": (10, 196)}
    order = np.random.default_rng(settings["split_seed"]).permutation(40)  # as the notebook does
    want = tokens.quantise(tokens.downsample(_Data.x_train[order[:20]], 2), 4).reshape(20, -1)
    assert np.array_equal(data["train"], want)
    with pytest.raises(ValueError, match="train_images"):
        image_transformer.splits({**settings, "train_images": 40}, _Data)


def test_videobert_clips_come_from_disjoint_pools():
    settings = {**videobert.SETTINGS, "held_out_images": 10, "train_clips": 6, "val_clips": 3,
                "test_clips": 4}
    data = videobert.clips(settings, _Data)
    assert data["train"].x.shape == (6, 8, 28, 28) and data["test"].x.shape == (4, 8, 28, 28)
    assert data["train"].items.max() < 30 and data["val"].items.max() < 10  # indices in each pool
    again = tokens.make_clips(_Data.x_test, 4, seed=settings["clip_seeds"]["test"])
    assert np.array_equal(again.x, data["test"].x)  # what the notebook rebuilds
