"""experiments.axial_segment and benchmarks/axial_cost.py: the two segmenters, the record, the cost.

References: the model's own layers called one by one with the axial layer replaced by full
attention under the same-row, then the same-column mask (vitlib.axial.axial_masks); a 1x1
convolution for the per-patch head; means and spreads computed by hand; exact arithmetic for
the sizes of the attention weights.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from experiments import axial_segment as command
from vitlib.attention import MultiHeadSelfAttention
from vitlib.axial import axial_masks

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "data" / "axial_segment.json"
COST = ROOT / "data" / "axial_cost.json"
TINY = dict(image_size=16, patch_size=4, dim=8, depth=2, num_heads=2, mlp_dim=16, num_labels=3)
RNG = np.random.default_rng(0)


def _np(x):
    return ops.convert_to_numpy(x)


def _images(n=2, size=16):
    return RNG.random((n, size, size, 1)).astype("float32")


@pytest.mark.parametrize("attention", command.KINDS)
def test_segmenter_shapes(attention):
    model = command.build_segmenter(attention, **TINY)
    assert model(_images()).shape == (2, 4, 4, 3)


def test_axial_segmenter_is_the_full_one_with_row_then_column_masks():
    """Run the axial model's blocks by hand, each AxialAttention replaced by two full attentions
    (its own weights) under the same-row and the same-column masks: the same logits."""
    keras.utils.set_random_seed(0)
    model = command.build_segmenter("axial", **TINY)
    x = _images()
    same_row, same_col = axial_masks(4, 4)
    h = model.get_layer("position_embedding")(model.get_layer("patch_embedding")(x))
    for i in range(TINY["depth"]):
        axial = model.get_layer(f"block_{i}_attention")
        rows, cols = MultiHeadSelfAttention(2), MultiHeadSelfAttention(2)
        for full, part in ((rows, axial.row_attention), (cols, axial.column_attention)):
            full.build(h.shape)
            full.set_weights(part.get_weights())
        a = model.get_layer(f"block_{i}_norm1")(h)
        h = h + cols(rows(a, mask=same_row[None]), mask=same_col[None])
        h = h + model.get_layer(f"block_{i}_mlp")(model.get_layer(f"block_{i}_norm2")(h))
    tokens = _np(model.get_layer("norm")(h))  # (2, 16, dim)
    head = model.get_layer("head")
    conv = keras.layers.Conv2D(3, 1)  # the per-patch head as a 1x1 convolution on the grid
    conv.build((None, 4, 4, TINY["dim"]))
    kernel, bias = (_np(w) for w in head.weights)
    conv.set_weights([kernel[None, None], bias])
    want = _np(conv(tokens.reshape(2, 4, 4, TINY["dim"])))
    np.testing.assert_allclose(_np(model(x)), want, atol=1e-5)


def test_the_models_differ_only_in_attention():
    full, axial, full2 = (command.build_segmenter(k, **TINY) for k in ("full", "axial", "full2"))
    names = lambda m: [layer.name for layer in m.layers]  # noqa: E731
    assert names(full) == names(axial)
    assert [n for n in names(full2) if not n.endswith("_attention_a")] == names(full)
    attention = 4 * (8 * 8 + 8)  # query, key, value, output: kernels (8 x 8 in all) and biases
    assert axial.count_params() - full.count_params() == TINY["depth"] * attention
    assert full2.count_params() == axial.count_params()  # the control: the same parameters


def test_full2_is_two_unmasked_attentions_in_a_row():
    """The control model = the axial model's computation with every mask all True."""
    keras.utils.set_random_seed(2)
    full2 = command.build_segmenter("full2", **TINY)
    x = _images()
    h = full2.get_layer("position_embedding")(full2.get_layer("patch_embedding")(x))
    everything = np.ones((1, 16, 16), bool)
    for i in range(TINY["depth"]):
        first, second = (full2.get_layer(f"block_{i}_attention{s}") for s in ("_a", ""))
        a = full2.get_layer(f"block_{i}_norm1")(h)
        h = h + second(first(a, mask=everything), mask=everything)
        h = h + full2.get_layer(f"block_{i}_mlp")(full2.get_layer(f"block_{i}_norm2")(h))
    logits = full2.get_layer("head")(full2.get_layer("norm")(h))
    np.testing.assert_allclose(_np(full2(x)), _np(logits).reshape(2, 4, 4, 3), atol=1e-5)


@pytest.mark.parametrize("attention", command.KINDS)
def test_checkpoints_load_without_this_module(tmp_path, attention):
    model = command.build_segmenter(attention, **TINY)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    path = tmp_path / "m.keras"
    command.save_clean(model, path)
    again = keras.saving.load_model(path, safe_mode=True)
    assert getattr(again, "optimizer", None) is None  # shipped without optimizer state
    x = _images()
    np.testing.assert_allclose(_np(again(x)), _np(model(x)), atol=1e-6)


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="attention"):
        command.build_segmenter("local", **TINY)
    with pytest.raises(ValueError, match="patch_size"):
        command.build_segmenter("full", **{**TINY, "patch_size": 5})


def test_summary_by_hand():
    runs = [{"attention": k, "seed": s, "parameters": p, "training_seconds": 1.0,
             "test": {"patch_accuracy": a, "mean_iou": m}}
            for k, p, vals in (("full", 10, [(0.8, 0.2), (0.9, 0.4)]),
                               ("axial", 12, [(0.85, 0.3), (0.8, 0.3)]))
            for s, (a, m) in enumerate(vals)]
    s = command.summarise(runs)
    assert s["full"]["mean_iou"] == {"mean": 0.3, "std": round(np.sqrt(0.02), 4), "min": 0.2, "max": 0.4}
    assert s["axial_minus_full"] == {"patch_accuracy": [0.05, -0.1], "mean_iou": [0.1, -0.1],
                                     "seeds": [0, 1]}


def test_command_refuses_to_overwrite_before_any_work(tmp_path, capsys):
    out = tmp_path / "a.json"
    (tmp_path / "a_axial.keras").write_text("")  # a checkpoint it would write
    with pytest.raises(SystemExit) as e:
        command.main(["--out", str(out)])
    assert e.value.code == 2 and "--overwrite" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        command.main(["--out", str(out), "--seeds", "0", "0", "--overwrite"])


@pytest.mark.skipif(not RECORD.is_file(), reason="made by python -m experiments.axial_segment")
def test_shipped_record_and_checkpoints():
    record = json.loads(RECORD.read_text())
    assert record["summary"] == command.summarise(record["runs"])
    for kind in command.KINDS:
        assert sorted(r["seed"] for r in record["runs"] if r["attention"] == kind) == record["seeds"]
        built = command.build_segmenter(kind, **record["architecture"])
        assert built.count_params() == record["summary"][kind]["parameters"]
    for kind in command.SHIPPED:
        path = ROOT / "data" / record["checkpoints"][kind]
        model = keras.saving.load_model(path, safe_mode=True)
        assert model.count_params() == record["summary"][kind]["parameters"]
        assert path.stat().st_size < 2_000_000


# --- benchmarks/axial_cost.py ------------------------------------------------------------------


@pytest.fixture(scope="module")
def cost():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import axial_cost

    return axial_cost


def test_weight_bytes_are_exact(cost):
    same_row, same_col = axial_masks(6, 6)
    allowed = int(same_row.sum() + same_col.sum())  # scores axial attention computes, one head
    assert cost.weight_bytes(6, heads=3, batch=2) == {"full": 4 * 2 * 3 * 36**2,
                                                      "axial": 4 * 2 * 3 * allowed}


def test_crossover_is_where_axial_stays_cheaper(cost):
    grids = [4, 7, 10, 14, 20]
    assert cost.crossover(grids, lambda g: g >= 10) == 10
    assert cost.crossover(grids, lambda g: g in (7, 14, 20)) == 14  # cheaper at 7, not at 10
    assert cost.crossover(grids, lambda g: g < 20) is None


def test_benchmark_calls_compute_the_layers(cost):
    layers_ = cost.build(3, 8, 2)
    x = cost.tokens(2, 3, 8)
    for layer in layers_.values():
        out = cost.make_call(layer, x, "forward")()
        np.testing.assert_allclose(out[0], _np(layer(x)), atol=1e-5)
        grads = cost.make_call(layer, x, "train")()
        assert len(grads) == 1 + len(layer.trainable_variables)
    assert cost.check_same_math(layers_, 8) < 1e-4


@pytest.mark.skipif(not COST.is_file(), reason="made by benchmarks/axial_cost.py")
def test_shipped_cost_record(cost):
    record = json.loads(COST.read_text())
    cfg = record["config"]
    for row in record["analysis"]["rows"]:
        assert row["weights_bytes"] == cost.weight_bytes(row["grid"], cfg["heads"], cfg["batch"])
    assert record["analysis"] == cost.analyse(record)
