"""experiments/textures.py and its shipped record data/textures_finetune.json (notebook 11)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest

from experiments import textures
from vitlib.course_files import CLASSIFIER, sha256
from vitlib.data import TEXTURES, write_texture_folder

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "data" / "textures_finetune.json"
pytest.importorskip("sklearn")
pytest.importorskip("skimage")


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as tmp:
        yield textures.load_textures(write_texture_folder(Path(tmp) / "t"))


def test_the_texture_folder_is_mixed_and_never_overwritten(tmp_path):
    from PIL import Image

    root = write_texture_folder(tmp_path / "t")
    assert sorted(p.name for p in root.iterdir()) == list(TEXTURES)
    files = sorted((root / "brick").iterdir())
    assert len(files) == 64
    modes = {Image.open(f).mode for f in files}
    assert modes == {"L", "RGB", "RGBA"}
    rgba = next(f for f in files if Image.open(f).mode == "RGBA")
    assert np.asarray(Image.open(rgba))[0, 0, 3] == 0  # a transparent corner
    with pytest.raises(FileExistsError, match="not empty"):
        write_texture_folder(root)


def test_tile_statistics_are_what_they_say():
    x = np.zeros((2, 4, 4, 1), "uint8")
    x[1, :, ::2] = 255  # vertical stripes: every horizontal step changes by 1, no vertical step
    s = textures.tile_statistics(x)
    np.testing.assert_allclose(s[0], 0.0)
    np.testing.assert_allclose(s[1], [0.5, 0.5, 1.0, 0.0])


@pytest.mark.single_backend
def test_shipped_record_is_complete_and_its_baselines_reproduce(folder):
    record = json.loads(RECORD.read_text())
    assert record["command"].startswith("python -m experiments.textures")
    assert record["checkpoint_sha256"] == sha256(ROOT / "data" / CLASSIFIER)
    assert sorted((r["seed"], r["start"]) for r in record["runs"]) == sorted(
        (s, start) for s in record["seeds"] for start in ("pretrained", "scratch"))
    assert len(record["seeds"]) >= 3 and record["settings"] == textures.SETTINGS
    assert textures.summarise(record["runs"]) == record["summary"]
    data, train_idx, val_idx = folder
    assert (len(train_idx), len(val_idx)) == (record["train_images"], record["validation_images"])
    # No training randomness in the baselines: they are recomputed here.
    again = textures.baselines(data, train_idx, val_idx, ROOT / "data" / CLASSIFIER)
    for name, value in record["baselines"].items():
        assert again[name] == pytest.approx(value, abs=0.03), name
