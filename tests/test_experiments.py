"""experiments/: the harness (arguments, records, outputs) and a tiny run of every command.

Each command is run as a learner would run it (``main(argv)``), on a few hundred images, and its
outputs are checked against an independent recomputation: the checkpoint reloaded and scored
again, the record's fields, and the refusal to overwrite.
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from keras import ops

import vitlib
from experiments import harness
from vitlib import segment
from vitlib.course_files import sha256
from vitlib.data import FashionMNIST, load_fashion_mnist
from vitlib.mae import MaskedAutoencoder, masked_autoencoder
from vitlib.train import RECIPE, accuracy, to_inputs

pytestmark = pytest.mark.single_backend  # commands read the data and train: once is enough


# --- the harness --------------------------------------------------------------------------------


def test_settings_parse_json_values_and_refuse_unknown_keys_and_wrong_types():
    got = harness.changes(["batch_size=32", "flip=false", "peak_learning_rate=1"], RECIPE)
    assert got == {**RECIPE, "batch_size": 32, "flip": False, "peak_learning_rate": 1.0}
    with pytest.raises(ValueError, match=r"--recipe: unknown key 'batch_sise'; expected one of"):
        harness.changes(["batch_sise=32"], RECIPE)
    with pytest.raises(ValueError, match=r"--recipe: batch_size must be like 64 \(int\), got 'big'"):
        harness.changes(["batch_size=big"], RECIPE)
    with pytest.raises(ValueError, match=r"--recipe: flip must be like True \(bool\), got '1'"):
        harness.changes(["flip=1"], RECIPE)
    with pytest.raises(ValueError, match="KEY=VALUE, got 'batch_size'"):
        harness.changes(["batch_size"], RECIPE)


@pytest.mark.parametrize("text", ["0", "-4", "x"])
def test_positive_int_refuses_zero_negative_and_text(text):
    with pytest.raises(Exception, match=f"expected a positive integer, got '{text}'"):
        harness.positive_int(text)


def test_records_are_never_replaced_without_overwrite(tmp_path):
    out = tmp_path / "sub" / "r.json"
    harness.write_record({"a": 1}, out)
    with pytest.raises(FileExistsError, match="`out`.*--overwrite"):
        harness.write_record({"a": 2}, out)
    assert json.loads(out.read_text()) == {"a": 1}
    harness.write_record({"a": 3}, out, overwrite=True)
    assert json.loads(out.read_text()) == {"a": 3}


def test_header_and_finish_describe_the_run():
    record = harness.finish(harness.header("python -m experiments.x"))
    assert record["command"] == "python -m experiments.x" and record["date"].endswith("+00:00")
    assert record["machine"]["cpu_count"] >= 1 and record["versions"]["keras"] == keras.__version__
    assert "end" in record["load_average"] and isinstance(record["shared_load"], bool)
    assert "Command: `python -m experiments.x`" in harness.describe_run(record)


def test_save_model_drops_the_optimizer_and_refuses_to_overwrite(tmp_path):
    model = vitlib.make_vit("fashion-tiny")
    model.compile(keras.optimizers.Adam(), "mse")
    out = tmp_path / "m.keras"
    harness.save_model(model, {"what": "test"}, out)
    loaded = keras.saving.load_model(out, safe_mode=True)
    assert getattr(loaded, "optimizer", None) is None
    x = np.random.default_rng(0).random((2, 28, 28, 1)).astype("float32")
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(x)), ops.convert_to_numpy(model(x)),
                               atol=1e-6)
    assert json.loads(out.with_suffix(".json").read_text()) == {"what": "test"}
    with pytest.raises(FileExistsError, match="exists; pass --overwrite"):
        harness.save_model(model, {}, out)


def test_machine_and_versions_name_this_machine():
    import os
    import platform

    m, v = harness.machine(), harness.versions()
    assert m["cpu_count"] == os.cpu_count() and m["machine"] == platform.machine()
    assert v["keras"] == keras.__version__ and v["python"] == platform.python_version()
    load = harness.load_average()
    assert load is None or (len(load) == 3 and all(x >= 0 for x in load))


# --- experiments.train --------------------------------------------------------------------------


def test_validation_split_is_seeded_disjoint_and_complete():
    from experiments.train import validation_split

    tr, val = validation_split(60_000, 5_000, seed=0)
    assert len(val) == 5_000 and len(tr) == 55_000
    assert not set(tr.tolist()) & set(val.tolist())
    assert sorted(np.concatenate([tr, val]).tolist()) == list(range(60_000))
    np.testing.assert_array_equal(val, validation_split(60_000, 5_000, seed=0)[1])
    assert not np.array_equal(val, validation_split(60_000, 5_000, seed=1)[1])
    for bad in (-1, 60_000):
        with pytest.raises(ValueError, match=r"`val_images` must be in \[0, 60000\), got"):
            validation_split(60_000, bad)


def test_train_command_ships_a_checkpoint_that_scores_what_its_record_says(tmp_path, capsys):
    from experiments import train

    out = tmp_path / "vit.keras"
    argv = ["--model", "fashion-tiny", "--epochs", "2", "--limit", "256", "--val-images", "300",
            "--out", str(out)]
    assert train.main(argv) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["command"] == "python -m experiments.train " + " ".join(argv)
    assert record["validation_images"] == 300 and record["train_images"] == 256
    assert len(record["validation_accuracy_per_epoch"]) == 2
    assert record["test_accuracy_per_epoch"] is None, "the test set is evaluated once, at the end"
    assert out.stat().st_size < 8 * record["parameters"] + 100_000  # no optimizer state
    model = keras.saving.load_model(out, safe_mode=True)
    d = load_fashion_mnist()
    assert round(accuracy(model, to_inputs(d.x_test), d.y_test), 4) == record["test_accuracy"]
    with pytest.raises(SystemExit):
        train.main(argv)  # refuses to overwrite, before training
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--recipe", "batch_sise=32"], "--recipe: unknown key 'batch_sise'"),
    (["--set", "dimm=8"], "--set: unknown key 'dimm'"),
    (["--epochs", "0"], "--epochs: expected a positive integer, got '0'"),
    (["--limit", "-4"], "--limit: expected a positive integer, got '-4'"),
    (["--model", "fashion-huge"], "--model must be one of"),
    (["--val-images", "60000"], "--val-images must be in [0, 60000)"),
])
def test_train_command_refuses_bad_arguments_before_training(argv, message, capsys):
    from experiments import train

    with pytest.raises(SystemExit):
        train.main(argv)
    assert message in capsys.readouterr().err


def test_hybrid_stem_trains_through_the_same_command(tmp_path):
    from experiments import train

    model, record = train.run("fashion-tiny", epochs=1, limit=128, verbose=0,
                              model=vitlib.make_vit("fashion-tiny", patch_size=4, patch_method="hybrid"),
                              patch_size=4, patch_method="hybrid")
    assert model.patch_embedding.method == "hybrid" and record["overrides"]["patch_method"] == "hybrid"


# --- experiments.mae ----------------------------------------------------------------------------


def test_mae_command_writes_the_model_and_a_record(tmp_path, capsys):
    from experiments import mae

    out = tmp_path / "mae.keras"
    assert mae.main(["--epochs", "1", "--limit", "256", "--out", str(out)]) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["command"].startswith("python -m experiments.mae --epochs 1")
    assert len(record["loss_per_epoch"]) == 1 and record["train_images"] == 256
    assert record["parameters"]["encoder_without_head"] == 139_018 - 650
    loaded = keras.saving.load_model(out, safe_mode=True)
    assert isinstance(loaded, MaskedAutoencoder) and getattr(loaded, "optimizer", None) is None
    assert out.stat().st_size < 8 * loaded.count_params() + 100_000  # no optimizer state
    with pytest.raises(SystemExit):
        mae.main(["--epochs", "1", "--out", str(out)])  # refuses to overwrite
    assert "--overwrite" in capsys.readouterr().err


# --- experiments.segment ------------------------------------------------------------------------


def test_segment_command_writes_a_checkpoint_whose_scores_match_the_record(tmp_path, capsys):
    from experiments import segment as command

    encoder = tmp_path / "classifier.keras"
    vitlib.make_vit("fashion-tiny").save(encoder)  # 7x7 patches: a 56x56 canvas has 8x8 of them
    out = tmp_path / "seg.keras"
    argv = ["--encoder", str(encoder), "--train-canvases", "64", "--test-canvases", "16",
            "--epochs", "1", "--batch-size", "32", "--out", str(out)]
    assert command.main(argv) == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["encoder_sha256"] == sha256(encoder)
    model = keras.saving.load_model(out, safe_mode=True)
    # Recompute the score independently: rebuild the test canvases, vote labels per patch.
    data = load_fashion_mnist()
    s = record["recipe"]
    canvases = segment.make_canvases(data.x_test, data.y_test, 16, size=56, items=s["items"],
                                     threshold=s["threshold"], seed=s["test_seed"])
    true = segment.patch_labels(canvases.mask, 7)
    pred = ops.convert_to_numpy(model(canvases.x)).argmax(-1)
    assert round(float(np.mean(true == pred)), 4) == record["test"]["patch_accuracy"]
    with pytest.raises(SystemExit):
        command.main(argv)
    assert "--overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        command.main(["--encoder", str(tmp_path / "missing.keras")])
    assert "is not a file" in capsys.readouterr().err


# --- experiments.vit_vs_cnn ---------------------------------------------------------------------


def test_vit_vs_cnn_refuses_to_overwrite_and_bad_sizes_before_training(tmp_path, capsys):
    from experiments import vit_vs_cnn

    out = tmp_path / "r.json"
    out.write_text('{"a": 1}')
    with pytest.raises(SystemExit):
        vit_vs_cnn.main(["--sizes", "100", "--seconds", "1", "--out", str(out)])
    assert json.loads(out.read_text()) == {"a": 1}
    for argv, message in ((["--sizes", "0"], "positive integer"),
                          (["--sizes", "70000"], "at most 60000"),
                          (["--seconds", "0"], "expected a number > 0")):
        with pytest.raises(SystemExit):
            vit_vs_cnn.main(argv)
        assert message in capsys.readouterr().err


def test_vit_vs_cnn_tiny_run_records_both_models(tmp_path):
    from experiments import vit_vs_cnn

    out = tmp_path / "r.json"
    assert vit_vs_cnn.main(["--sizes", "64", "--seconds", "0.5", "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["command"].startswith("python -m experiments.vit_vs_cnn --sizes 64")
    assert sorted(p["model"] for p in record["results"]) == ["cnn", "vit"]
    assert all(0 <= p["test_accuracy"] <= 1 and p["steps"] >= 1 for p in record["results"])


# --- experiments.label_efficiency ---------------------------------------------------------------


def test_balanced_subset_has_equal_classes_and_nested_fractions():
    from experiments.label_efficiency import balanced_subset

    labels = np.repeat(np.arange(10), 600)
    np.random.default_rng(0).shuffle(labels)
    small, large = balanced_subset(labels, 0.05), balanced_subset(labels, 0.1)
    np.testing.assert_array_equal(np.bincount(labels[small]), np.full(10, 30))
    np.testing.assert_array_equal(np.bincount(labels[large]), np.full(10, 60))
    assert set(small) <= set(large) and len(set(large)) == 600
    assert not np.array_equal(balanced_subset(labels, 0.05, seed=1), small)
    for bad in (0, -0.1, 1.5):
        with pytest.raises(ValueError, match="`fraction` must be a number in \\(0, 1\\]"):
            balanced_subset(labels, bad)


def test_label_efficiency_command_tiny_run(tmp_path, capsys, monkeypatch):
    from experiments import label_efficiency

    d = load_fashion_mnist()  # 1,000 training and 200 test images are enough to run it
    small = FashionMNIST(d.x_train[:1000], d.y_train[:1000], d.x_test[:200], d.y_test[:200])
    monkeypatch.setattr(label_efficiency, "load_fashion_mnist", lambda: small)
    encoder = tmp_path / "mae.keras"
    masked_autoencoder(decoder_depth=1).save(encoder)
    out = tmp_path / "le.json"
    argv = ["--fractions", "0.05", "--steps", "2", "--encoder", str(encoder), "--out", str(out)]
    assert label_efficiency.main(argv) == 0
    record = json.loads(out.read_text())
    assert record["command"].startswith("python -m experiments.label_efficiency --fractions 0.05")
    runs = record["runs"]
    assert [r["init"] for r in runs] == ["mae", "scratch"]
    per_class = np.bincount(small.y_train, minlength=10)
    assert all(r["steps"] == 2 and r["train_images"] == np.round(0.05 * per_class).sum()
               for r in runs)
    assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in runs)
    with pytest.raises(SystemExit):
        label_efficiency.main(argv)  # refuses to overwrite
    assert "--overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        label_efficiency.main(["--fractions", "2"])
    assert "--fractions: `fraction` must be a number in (0, 1], got 2.0" in capsys.readouterr().err
