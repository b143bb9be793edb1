"""vitlib.folders, vitlib.finetune.fit_in_two_stages and the commands experiments.finetune_folder
and experiments.predict_image, on folders generated here (notebook 11)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from PIL import Image

from experiments import finetune_folder, predict_image
from vitlib import folders
from vitlib.finetune import fit_in_two_stages, with_new_head
from vitlib.model import make_vit


def _save(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path) if mode else Image.fromarray(array).save(path)


@pytest.fixture
def mixed(tmp_path):
    """Two classes: bright squares and dark squares, in every mode, size and format."""
    root = tmp_path / "images"
    rng = np.random.default_rng(0)
    for name, level in (("bright", 220), ("dark", 30)):
        for i in range(6):
            size = (20 + 7 * i, 16 + 5 * i)  # (width, height): sizes differ, none square
            grey = np.clip(level + rng.normal(0, 5, size[::-1]), 0, 255).astype("uint8")
            if i % 3 == 0:
                _save(root / name / f"{i}.png", grey)  # grey PNG
            elif i % 3 == 1:
                _save(root / name / f"{i}.jpg", np.stack([grey] * 3, -1))  # RGB JPEG
            else:
                rgba = np.stack([grey] * 3 + [np.full_like(grey, 255)], -1)
                _save(root / name / f"{i}.png", rgba)  # RGBA PNG
    (root / "dark" / ".DS_Store").write_bytes(b"\0\1")  # hidden: ignored
    return root


def test_a_mixed_folder_loads_as_one_array(mixed):
    data = folders.load_folder(mixed, image_size=12, channels=1)
    assert data.x.shape == (12, 12, 12, 1) and data.x.dtype == np.uint8
    assert data.class_names == ["bright", "dark"] and data.skipped == []
    np.testing.assert_array_equal(data.y, [0] * 6 + [1] * 6)
    # The classes stay what they were: bright images bright, dark ones dark, in every mode.
    means = data.x.reshape(12, -1).mean(axis=1)
    assert means[:6].min() > 180 and means[6:].max() < 70
    rgb = folders.load_folder(mixed, image_size=8, channels=3)
    assert rgb.x.shape == (12, 8, 8, 3)
    np.testing.assert_array_equal(rgb.x[..., 0], rgb.x[..., 2])  # grey sources stay grey


def test_crop_keeps_the_centre_and_pad_keeps_everything(tmp_path):
    wide = np.zeros((10, 30), "uint8")
    wide[:, :10] = 255  # the left third is white, the rest black
    _save(tmp_path / "wide.png", wide)
    crop = folders.load_image(tmp_path / "wide.png", 10, channels=1, fit="crop")[..., 0]
    pad = folders.load_image(tmp_path / "wide.png", 30, channels=1, fit="pad", background=128)[..., 0]
    assert crop.max() == 0  # the centred 10x10 square is all black: the white third is cut off
    assert pad[:10].mean() == pytest.approx(128, abs=1) and pad[-10:].mean() == pytest.approx(128, abs=1)
    assert pad[10:20, :10].mean() > 250 and pad[10:20, 10:].mean() < 5  # the whole image, in the middle


def test_transparent_pixels_lie_on_the_background(tmp_path):
    rgba = np.zeros((8, 8, 4), "uint8")
    rgba[..., :3] = 255
    rgba[:, :4, 3] = 255  # left half opaque white, right half fully transparent
    _save(tmp_path / "t.png", rgba)
    out = folders.load_image(tmp_path / "t.png", 8, channels=1, background=0)[..., 0]
    assert out[:, :3].min() > 250 and out[:, 5:].max() < 5


@pytest.mark.parametrize("make, match", [
    (lambda r: None, "does not exist"),
    (lambda r: r.write_text("x"), "is a file, not a folder"),
    (lambda r: (r / "only").mkdir(parents=True), r"at least 2 class sub-folders .* got 1 .*\['only'\]"),
    (lambda r: [(r / c).mkdir(parents=True) for c in ("a", "b")], r"\['a', 'b'\] .* hold no images"),
])
def test_folder_errors_say_what_is_wrong(tmp_path, make, match):
    root = tmp_path / "images"
    make(root)
    with pytest.raises(folders.FolderError, match=match):
        folders.load_folder(root, 8)


def test_files_that_are_not_images_are_named_or_skipped(mixed):
    (mixed / "dark" / "notes.txt").write_text("not an image")
    (mixed / "bright" / "broken.png").write_bytes(b"this is not a PNG")
    with pytest.raises(folders.FolderError, match=r"dark/notes.txt\. Move them out"):
        folders.load_folder(mixed, 8)
    (mixed / "dark" / "notes.txt").unlink()
    with pytest.raises(folders.FolderError, match="broken.png cannot be read as an image"):
        folders.load_folder(mixed, 8)
    (mixed / "dark" / "notes.txt").write_text("not an image")
    data = folders.load_folder(mixed, 8, skip_bad=True)
    assert sorted(p.name for p in data.skipped) == ["broken.png", "notes.txt"]
    assert len(data.y) == 12 and "broken.png" not in {p.name for p in data.paths}


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="`fit` must be one of"):
        folders.load_image("x.png", 8, fit="stretch")
    with pytest.raises(ValueError, match="`channels` must be one of"):
        folders.load_image("x.png", 8, channels=4)
    with pytest.raises(ValueError, match=r"`background` must be an integer grey level in \[0, 255\], got 300"):
        folders.load_image("x.png", 8, background=300)
    with pytest.raises(ValueError, match="`validation_fraction` must be in"):
        folders.split([0, 1], 1.0)


def test_split_is_stratified_disjoint_and_seeded():
    labels = np.array([0] * 10 + [1] * 5 + [2] * 2)
    train, val = folders.split(labels, 0.2, seed=3)
    assert set(train) | set(val) == set(range(17)) and not set(train) & set(val)
    assert [int(np.sum(labels[val] == k)) for k in range(3)] == [2, 1, 1]  # >= 1 per class
    assert np.array_equal(folders.split(labels, 0.2, seed=3)[1], val)


def test_example_folder_round_trips_and_never_overwrites(tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (4, 9, 9), dtype=np.uint8)
    root = folders.write_example_folder(tmp_path / "ex", x, [0, 1, 0, 1], ["a", "b"])
    data = folders.load_folder(root, 9, channels=1)
    np.testing.assert_array_equal(data.x[..., 0], x[[0, 2, 1, 3]])  # PNG is lossless
    with pytest.raises(FileExistsError, match="not empty"):
        folders.write_example_folder(root, x, [0, 1, 0, 1], ["a", "b"])


def test_two_stages_train_the_head_first_then_everything():
    keras.utils.set_random_seed(0)
    model = with_new_head(make_vit("fashion-tiny"), num_classes=2)
    encoder_before = [w.copy() for w in model.blocks[0].get_weights()]
    head_before = [w.copy() for w in model.head.get_weights()]
    x = np.random.default_rng(0).random((16, 28, 28, 1)).astype("float32")
    y = np.arange(16) % 2
    h = fit_in_two_stages(model, x, y, (x, y), head_epochs=1, full_epochs=0, verbose=0)
    assert set(h["head"]) >= {"loss", "accuracy", "val_accuracy"} and h["full"] == {}
    assert all(np.array_equal(a, b) for a, b in zip(model.blocks[0].get_weights(), encoder_before, strict=True))
    assert not np.allclose(model.head.get_weights()[0], head_before[0])
    fit_in_two_stages(model, x, y, head_epochs=0, full_epochs=1, verbose=0)
    assert not np.allclose(model.blocks[0].get_weights()[0], encoder_before[0])
    assert all(layer.trainable for layer in model.blocks)  # ends unfrozen


@pytest.mark.parametrize("kwargs, match", [
    ({"head_epochs": 0, "full_epochs": 0}, "must be at least 1"),
    ({"full_learning_rate": 0.0}, "`full_learning_rate` must be a finite number > 0"),
    ({"y": np.array([0, 5])}, r"`y` must hold class indices in \[0, 2\)"),
])
def test_two_stages_refuse_bad_arguments_before_training(kwargs, match):
    model = with_new_head(make_vit("fashion-tiny"), num_classes=2)
    y = kwargs.pop("y", np.array([0, 1]))
    with pytest.raises(ValueError, match=match):
        fit_in_two_stages(model, np.zeros((2, 28, 28, 1), "float32"), y, verbose=0, **kwargs)


@pytest.fixture
def tiny_encoder(tmp_path):
    keras.utils.set_random_seed(0)
    model = make_vit("fashion-tiny")
    path = tmp_path / "tiny.keras"
    model.save(path)
    return path


def test_the_command_fine_tunes_saves_and_predicts(mixed, tiny_encoder, tmp_path, capsys):
    out = tmp_path / "mine.keras"
    assert finetune_folder.main([str(mixed), "--out", str(out), "--encoder", str(tiny_encoder),
                                 "--head-epochs", "1", "--full-epochs", "1", "--batch-size", "4"]) == 0
    printed = capsys.readouterr().out
    assert "read 12 images of 2 classes" in printed and "stage 'full'" in printed
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["class_names"] == ["bright", "dark"] and record["prepare"]["scale"] == "unit"
    assert np.sum(record["validation_confusion"]) == record["validation_images"] == 2  # 1 of 6 per class
    assert predict_image.main([str(out), str(mixed / "dark" / "1.jpg")]) == 0
    assert "1.jpg: " in capsys.readouterr().out
    # Nothing is overwritten: a second run stops before training.
    with pytest.raises(SystemExit):
        finetune_folder.main([str(mixed), "--out", str(out), "--encoder", str(tiny_encoder)])
    assert "exists; pass --overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("make, match", [
    (lambda r: (r / "only").mkdir(parents=True), "at least 2 class sub-folders"),
    (lambda r: [(r / c).mkdir(parents=True) for c in ("a", "b")], "hold no images"),
])
def test_the_command_stops_on_a_bad_folder_with_a_usage_error(tmp_path, tiny_encoder, capsys,
                                                              make, match):
    root = tmp_path / "bad"
    make(root)
    with pytest.raises(SystemExit):
        finetune_folder.main([str(root), "--out", str(tmp_path / "m.keras"),
                              "--encoder", str(tiny_encoder)])
    assert match in capsys.readouterr().err and not (tmp_path / "m.keras").exists()


def test_the_command_checks_its_options(tmp_path, capsys):
    for argv, match in ((["f"], "--out must name the model file"),
                        (["f", "--out", "m.keras", "--val-fraction", "1.5"], "--val-fraction"),
                        (["f", "--out", "m.keras", "--head-epochs", "0", "--full-epochs", "0"],
                         "not both 0")):
        with pytest.raises(SystemExit):
            finetune_folder.main(argv)
        assert match in capsys.readouterr().err


def test_save_classifier_refuses_to_overwrite_and_predicts_as_trained(mixed, tmp_path):
    keras.utils.set_random_seed(0)
    model = with_new_head(make_vit("fashion-tiny"), num_classes=2)
    prepare = {"image_size": 28, "channels": 1, "fit": "pad", "background": 0, "scale": "unit"}
    path = folders.save_classifier(model, tmp_path / "m.keras", ["bright", "dark"], prepare)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="exists; pass overwrite=True"):
        folders.save_classifier(model, path, ["bright", "dark"], prepare)
    assert path.read_bytes() == before
    with pytest.raises(ValueError, match="`class_names` has 3 names, but the model has 2 outputs"):
        folders.save_classifier(model, tmp_path / "n.keras", ["a", "b", "c"], prepare)
    loaded, info = folders.load_classifier(path)
    files = [mixed / "dark" / "1.jpg", mixed / "bright" / "2.png"]
    top = folders.predict_files(loaded, info, files, k=2)
    # The same numbers as the original model on the same preparation, done by hand.
    x = np.stack([folders.load_image(f, 28, 1, "pad") for f in files]).astype("float32") / 255.0
    want = keras.ops.convert_to_numpy(keras.ops.softmax(model(x)))
    for row, probs in zip(top, want, strict=True):
        assert row[0][1] == pytest.approx(probs.max(), abs=1e-5) and len(row) == 2
    with pytest.raises(FileNotFoundError, match="does not exist: was the model saved by save_classifier"):
        folders.load_classifier(tmp_path / "other.keras")


def test_scale_images_matches_each_encoders_training():
    x = np.array([0, 255], "uint8")
    np.testing.assert_allclose(folders.scale_images(x, "unit"), [0.0, 1.0])
    np.testing.assert_allclose(folders.scale_images(x, "symmetric"), [-1.0, 1.0])
    with pytest.raises(ValueError, match="`scale` must be one of"):
        folders.scale_images(x, "imagenet")
