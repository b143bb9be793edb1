"""vitlib.explain and vitlib.plots: rollout, attention distance, maps, embeddings, the explorer.

References: small examples computed by hand (written out below), explicit Python loops over
tokens, and NumPy's eigendecomposition of the covariance for the principal components.
"""

from __future__ import annotations

import math

import keras
import matplotlib
import numpy as np
import pytest
from keras import ops

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import vitlib  # noqa: E402
from vitlib import explain, plots  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Attention rollout: a three-token example worked out by hand

# Layer 1 has two heads whose mean is A1 = [[.5, .5, 0], [0, 1, 0], [.25, .25, .5]].
L1_HEADS = np.array([
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.0, 0.5]],
    [[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.5, 0.5]],
])
# Layer 2 has two identical heads: A2 = [[1, 0, 0], [.5, .5, 0], [0, 0, 1]].
A2 = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
L2_HEADS = np.stack([A2, A2])
ATTENTIONS = [L1_HEADS[None], L2_HEADS[None]]  # per layer: (batch=1, heads=2, 3, 3)

# With the residual: A1' = .5 A1 + .5 I = [[.75, .25, 0], [0, 1, 0], [.125, .125, .75]]
#                    A2' = .5 A2 + .5 I = [[1, 0, 0], [.25, .75, 0], [0, 0, 1]]
# (rows already sum to 1). R = A2' A1':
#   row 0 = 1 * A1'[0]                     = [.75, .25, 0]
#   row 1 = .25 * A1'[0] + .75 * A1'[1]    = [.1875, .0625 + .75, 0] = [.1875, .8125, 0]
#   row 2 = 1 * A1'[2]                     = [.125, .125, .75]
EXPECTED_ROLLOUT = np.array([[0.75, 0.25, 0.0], [0.1875, 0.8125, 0.0], [0.125, 0.125, 0.75]])
# Without the residual: R = A2 A1:
#   row 0 = A1[0] = [.5, .5, 0];  row 1 = .5 A1[0] + .5 A1[1] = [.25, .75, 0];  row 2 = A1[2]
EXPECTED_NO_RESIDUAL = np.array([[0.5, 0.5, 0.0], [0.25, 0.75, 0.0], [0.25, 0.25, 0.5]])


def test_rollout_matches_the_hand_computed_three_token_example():
    got = explain.attention_rollout(ATTENTIONS)
    assert got.shape == (1, 3, 3)
    np.testing.assert_allclose(got[0], EXPECTED_ROLLOUT, atol=1e-12)
    got = explain.attention_rollout(ATTENTIONS, residual=False)
    np.testing.assert_allclose(got[0], EXPECTED_NO_RESIDUAL, atol=1e-12)
    # A stacked array (layers, batch, heads, T, T) gives the same.
    np.testing.assert_allclose(explain.attention_rollout(np.stack(ATTENTIONS))[0], EXPECTED_ROLLOUT)


def test_rollout_max_fusion_renormalises_the_rows():
    # max over layer 1's heads: M = [[1, 1, 0], [0, 1, 0], [.5, .5, .5]]; .5 M + .5 I =
    # [[1, .5, 0], [0, 1, 0], [.25, .25, .75]], row sums 1.5, 1, 1.25 -> divided by them:
    expected = np.array([[2 / 3, 1 / 3, 0.0], [0.0, 1.0, 0.0], [0.2, 0.2, 0.6]])
    got = explain.attention_rollout([L1_HEADS[None]], head_fusion="max")
    np.testing.assert_allclose(got[0], expected, atol=1e-12)


def test_rollout_rows_sum_to_one_on_random_attention():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 3, 2, 6, 6)) * 3
    a = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    for fusion in ("mean", "max", "min"):
        r = explain.attention_rollout(list(a), head_fusion=fusion)
        assert r.shape == (3, 6, 6)
        np.testing.assert_allclose(r.sum(-1), 1.0, atol=1e-12)
        assert (r >= 0).all()


def test_rollout_rejects_bad_arguments():
    with pytest.raises(ValueError, match="head_fusion"):
        explain.attention_rollout(ATTENTIONS, head_fusion="median")
    with pytest.raises(ValueError, match="attentions"):
        explain.attention_rollout([])
    with pytest.raises(ValueError, match="attentions"):
        explain.attention_rollout(np.ones((2, 3, 3)) / 3)


# ---------------------------------------------------------------------------------------------
# Mean attention distance on hand-made attention


def _layers(a):
    """One layer's (heads, T, T) -> a list with that layer, batch of 1."""
    return [np.asarray(a, dtype=float)[None]]


def test_uniform_attention_on_a_2x2_grid():
    # From any of the 4 patches the others are at 1, 1 and sqrt(2) patches, itself at 0:
    # mean = (0 + 1 + 1 + sqrt 2) / 4 patches = (2 + sqrt 2) / 4 * 4 px = 2 + sqrt 2 = 3.4142 px.
    uniform = np.full((1, 4, 4), 0.25)
    got = explain.mean_attention_distance(_layers(uniform), (2, 2), patch_size=4, num_prefix_tokens=0)
    assert got.shape == (1, 1)
    assert got[0, 0] == pytest.approx(2 + math.sqrt(2))
    # With a class token that gets a fifth of every row: it is left out and the rest renormalised.
    with_cls = np.full((1, 5, 5), 0.2)
    got = explain.mean_attention_distance(_layers(with_cls), (2, 2), 4, num_prefix_tokens=1)
    assert got[0, 0] == pytest.approx(2 + math.sqrt(2))


def test_attention_to_self_is_zero_and_to_the_neighbour_is_one_patch():
    rows, cols, p = 2, 3, 7
    n = rows * cols
    self_only = np.eye(n)
    neighbour = np.zeros((n, n))
    for k in range(n):
        r, c = divmod(k, cols)
        neighbour[k, r * cols + (c + 1 if c + 1 < cols else c - 1)] = 1.0  # right, or left at the edge
    a = np.stack([self_only, neighbour])  # two heads
    got = explain.mean_attention_distance(a[None], (rows, cols), p, num_prefix_tokens=0)
    assert got.shape == (2,)  # one (batch, heads, T, T) array -> (heads,)
    np.testing.assert_allclose(got, [0.0, p], atol=1e-12)
    # Two layers stacked, and a class token prepended that gets no attention: same numbers.
    padded = np.zeros((2, n + 1, n + 1))
    padded[:, 1:, 1:] = a
    padded[:, 0, 0] = 1.0
    got = explain.mean_attention_distance([padded[None], padded[None]], (rows, cols), p, 1)
    np.testing.assert_allclose(got, [[0.0, p], [0.0, p]], atol=1e-12)


def test_mean_attention_distance_averages_over_images_and_checks_its_arguments():
    n = 4
    self_only, uniform = np.eye(n)[None], np.full((1, n, n), 0.25)
    batch = np.stack([self_only, uniform])  # (batch=2, heads=1, 4, 4)
    got = explain.mean_attention_distance([batch], (2, 2), 4, num_prefix_tokens=0)
    assert got[0, 0] == pytest.approx((0 + 2 + math.sqrt(2)) / 2)
    with pytest.raises(ValueError, match="num_prefix_tokens"):
        explain.mean_attention_distance([batch], (2, 2), 4, num_prefix_tokens=1)
    with pytest.raises(ValueError, match="patch_size"):
        explain.mean_attention_distance([batch], (2, 2), 0, num_prefix_tokens=0)


def _distance_by_loops(layers, rows, cols, p, prefix):
    """Reference: the definition written out with Python loops over layers, images, heads, tokens."""
    out = np.zeros((len(layers), layers[0].shape[1]))
    for i, a in enumerate(layers):
        for h in range(a.shape[1]):
            total = 0.0
            for b in range(a.shape[0]):
                for q in range(rows * cols):
                    row = a[b, h, prefix + q, prefix:]
                    for k in range(rows * cols):
                        dy, dx = (q // cols - k // cols) * p, (q % cols - k % cols) * p
                        total += row[k] / row.sum() * math.hypot(dy, dx)
            out[i, h] = total / (a.shape[0] * rows * cols)
    return out


def test_mean_attention_distance_equals_explicit_loops_on_random_attention():
    # 3 layers, 2 images, 2 heads, a class token, a 2x3 grid of 5-pixel patches; float32 like a model.
    rng = np.random.default_rng(3)
    rows, cols, p, t = 2, 3, 5, 7
    logits = rng.normal(size=(3, 2, 2, t, t)) * 2
    a = (np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)).astype("float32")
    expected = _distance_by_loops(a.astype(float), rows, cols, p, prefix=1)
    for attention in (list(a), a, [ops.convert_to_tensor(layer) for layer in a]):
        got = explain.mean_attention_distance(attention, (rows, cols), p, num_prefix_tokens=1)
        assert got.shape == (3, 2)
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    got = explain.mean_attention_distance(a[1], (rows, cols), p, num_prefix_tokens=1)  # one layer
    np.testing.assert_allclose(got, expected[1], rtol=1e-6)


def test_mean_attention_distance_rejects_bad_shapes():
    a = np.full((1, 1, 4, 4), 0.25)
    with pytest.raises(ValueError, match="attention"):
        explain.mean_attention_distance([], (2, 2), 4, num_prefix_tokens=0)
    with pytest.raises(ValueError, match=r"layer 1 of `attention` has shape \(1, 4, 4\)"):
        explain.mean_attention_distance([a, a[0]], (2, 2), 4, num_prefix_tokens=0)
    with pytest.raises(ValueError, match=r"\(1, 4, 4\)"):
        explain.mean_attention_distance(a[0], (2, 2), 4, num_prefix_tokens=0)
    with pytest.raises(ValueError, match="attention"):
        explain.mean_attention_distance(np.full((1, 1, 4, 5), 0.2), (2, 2), 4, num_prefix_tokens=0)


def test_distance_matrix_by_hand():
    d = explain.distance_matrix((2, 3), patch_size=2)  # patch 5 is at row 1, column 2
    assert d.shape == (6, 6)
    assert d[0, 5] == pytest.approx(2 * math.sqrt(1 + 4))
    assert d[1, 4] == pytest.approx(2.0)


# ---------------------------------------------------------------------------------------------
# A tiny model: attention maps and the class-token maps


def _tiny(pooling="cls"):
    """A 2x2-patch ViT with random weights drawn by NumPy (JAX would compile a random-number
    kernel for every weight shape; the initialisers are skipped while building)."""
    zeros = lambda self, shape, dtype=None: ops.zeros(shape, dtype=dtype)  # noqa: E731
    with pytest.MonkeyPatch.context() as mp:
        for cls in (keras.initializers.GlorotUniform, keras.initializers.RandomNormal):
            mp.setattr(cls, "__call__", zeros)
        model = vitlib.ViT(image_size=8, patch_size=4, num_classes=3, dim=8, depth=2, num_heads=2,
                           mlp_dim=16, channels=1, pooling=pooling)
        model.build()
    rng = np.random.default_rng(0)
    for w in model.weights:
        w.assign(rng.normal(size=w.shape).astype("float32") * 0.5)
    return model


@pytest.fixture(scope="module")
def images():
    # 4 images, always run in batches of 2: one input shape, so JAX compiles each operation once.
    return np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_attention_maps_and_cls_attention_on_a_tiny_model(pooling, images):
    model = _tiny(pooling)
    maps = explain.attention_maps(model, images, batch_size=2)  # two chunks
    _, direct = model(images[2:], return_attention=True)  # the second chunk, directly
    prefix = 1 if pooling == "cls" else 0
    assert len(maps) == 2 and all(m.shape == (4, 2, 4 + prefix, 4 + prefix) for m in maps)
    for m, d in zip(maps, direct, strict=True):
        np.testing.assert_allclose(m[2:], ops.convert_to_numpy(d), atol=1e-6)
        np.testing.assert_allclose(m.sum(-1), 1.0, atol=1e-5)
    assert explain.num_prefix_tokens(model) == prefix

    got = explain.cls_attention(maps, model.grid_size, prefix)
    assert got.shape == (2, 4, 2, 2, 2)  # (layers, batch, heads, rows, cols)
    for layer in range(2):
        for b in range(4):
            for h in range(2):
                for r in range(2):
                    for c in range(2):
                        key = prefix + r * 2 + c
                        if prefix:  # the class token's row
                            want = maps[layer][b, h, 0, key]
                        else:  # the mean over all query rows
                            want = sum(maps[layer][b, h, q, key] for q in range(4)) / 4
                        assert got[layer, b, h, r, c] == pytest.approx(want, abs=1e-6)


def test_cls_attention_of_a_rollout_and_bad_grids():
    r = explain.attention_rollout(ATTENTIONS)  # (1, 3, 3): class token + a 1x2 grid
    np.testing.assert_allclose(explain.cls_attention(r, (1, 2), 1), [[[0.25, 0.0]]])
    with pytest.raises(ValueError, match="grid_size"):
        explain.cls_attention(r, (2, 2), 1)


# ---------------------------------------------------------------------------------------------
# The explorer's logic


def _hand_attention():
    """2 layers of (batch=2, heads=2, 5, 5): a class token + a 2x2 grid, every row different."""
    rng = np.random.default_rng(1)
    a = rng.uniform(size=(2, 2, 2, 5, 5))
    return list(a / a.sum(-1, keepdims=True))


def test_query_attention_result():
    att = _hand_attention()
    weights, to_cls = explain.query_attention(att, 1, 0, 1, (1, 0), (2, 2), 1)
    row = att[0][1, 1, 1 + 2]  # image 1, head 1, query = patch 2 (row 1, col 0) after the class token
    np.testing.assert_allclose(weights, [[row[1], row[2]], [row[3], row[4]]])
    assert to_cls == pytest.approx(row[0])
    same, _ = explain.query_attention(att, 1, 0, 1, 2, (2, 2), 1)  # patch index instead of (r, c)
    np.testing.assert_allclose(same, weights)
    mean, _ = explain.query_attention(att, 0, 1, "mean", (0, 1), (2, 2), 1)
    np.testing.assert_allclose(mean.ravel(), att[1][0, :, 2, 1:].mean(0))
    no_cls, to_prefix = explain.query_attention([a[..., 1:, 1:] for a in att], 0, 0, 0, 0, (2, 2), 0)
    assert to_prefix is None and no_cls.shape == (2, 2)


@pytest.mark.parametrize("kwargs, name", [
    (dict(layer=2), "`layer`"),
    (dict(layer=-1), "`layer`"),
    (dict(head=2), "`head`"),
    (dict(head="max"), "`head`"),
    (dict(image_index=5), "`image_index`"),
    (dict(query_patch=(2, 0)), "`query_patch row`"),
    (dict(query_patch=(0, 3)), "`query_patch col`"),
    (dict(query_patch=4), "`query_patch`"),
    (dict(query_patch=(0, 0, 0)), "`query_patch`"),
    (dict(grid_size=(3, 3)), "`grid_size`"),
    (dict(num_prefix_tokens=0), "`num_prefix_tokens`"),
])
def test_query_attention_errors_name_the_argument(kwargs, name):
    args = dict(image_index=0, layer=0, head=0, query_patch=(0, 0), grid_size=(2, 2),
                num_prefix_tokens=1) | kwargs
    with pytest.raises(ValueError, match=name.replace("`", "`?")) as info:
        explain.query_attention(_hand_attention(), **args)
    assert name.strip("`").split()[0] in str(info.value)


def test_query_attention_rejects_an_empty_list():
    with pytest.raises(ValueError, match="attentions"):
        explain.query_attention([], 0, 0, 0, 0, (2, 2), 1)


def test_explorer_widgets_and_callback(images):
    import ipywidgets as widgets

    model = _tiny()
    ex = plots.attention_explorer(model, images[:2], labels=["a", "b"])
    assert isinstance(ex.widget, widgets.VBox)
    assert isinstance(ex.image, widgets.Dropdown) and len(ex.image.options) == 2
    assert (ex.layer.min, ex.layer.max, ex.layer.value) == (0, 1, 1)
    assert (ex.head.min, ex.head.max) == (0, 1)
    assert (ex.row.max, ex.col.max) == (1, 1)
    assert ex.picture.value[:8] == b"\x89PNG\r\n\x1a\n"
    maps = explain.attention_maps(model, images[:2])

    def expected():
        i, layer, head, q = ex.selection
        return explain.query_attention(maps, i, layer, head, q, (2, 2), 1)[0]

    np.testing.assert_allclose(ex.weights, expected(), atol=1e-6)
    before_png, before_caption = ex.picture.value, ex.caption.value
    ex.layer.value = 0  # the observer calls update()
    assert ex.picture.value != before_png and ex.caption.value != before_caption
    assert "layer 1" in ex.caption.value
    np.testing.assert_allclose(ex.weights, expected(), atol=1e-6)
    ex.head.value = 1
    ex.image.value = 1
    ex.row.value, ex.col.value = 0, 1
    np.testing.assert_allclose(ex.weights, expected(), atol=1e-6)
    ex.mean_heads.value = True
    assert ex.selection[2] == "mean" and "mean of heads" in ex.caption.value
    np.testing.assert_allclose(ex.weights, expected(), atol=1e-6)
    assert 0 <= ex.to_prefix <= 1
    # The callback, called directly as a widget would, with a change dict.
    ex.update({"name": "value", "old": 0, "new": 1})
    np.testing.assert_allclose(ex.weights, expected(), atol=1e-6)
    plt.close("all")


@pytest.mark.single_backend
def test_explorer_without_a_model_needs_the_geometry():
    att = _hand_attention()
    imgs = np.zeros((2, 8, 8, 1))
    with pytest.raises(ValueError, match="grid_size"):
        plots.attention_explorer(None, imgs, attentions=att)
    ex = plots.attention_explorer(None, imgs, attentions=att, grid_size=(2, 2), patch_size=4,
                                  num_prefix_tokens=1, layer=0, query=(1, 1))
    np.testing.assert_allclose(ex.weights, explain.query_attention(att, 0, 0, 0, (1, 1), (2, 2), 1)[0])
    fig = plots.static_explorer_figure(None, imgs, 1, queries=[(0, 0), (1, 1)], attentions=att,
                                       grid_size=(2, 2), patch_size=4, num_prefix_tokens=1)
    assert len(fig.axes) == 2 * 2 + 1  # queries x layers, plus the colour bar
    plt.close("all")


# ---------------------------------------------------------------------------------------------
# Embeddings: position similarity and patch filters


@pytest.mark.single_backend
def test_position_similarity():
    rng = np.random.default_rng(0)
    table = rng.normal(size=(1, 1 + 6, 5))  # class token + a 2x3 grid
    sim = explain.position_similarity(table, (2, 3))
    assert sim.shape == (2, 3, 2, 3)
    for r in range(2):
        for c in range(3):
            assert sim[r, c, r, c] == pytest.approx(1.0)
    e1, e5 = table[0, 1 + 1], table[0, 1 + 5]  # (0, 1) and (1, 2)
    assert sim[0, 1, 1, 2] == pytest.approx(e1 @ e5 / np.sqrt((e1 @ e1) * (e5 @ e5)))
    with pytest.raises(ValueError, match="embedding"):
        explain.position_similarity(table, (3, 3))
    with pytest.raises(ValueError, match="all-zero"):
        explain.position_similarity(np.zeros((4, 3)), (2, 2))


@pytest.mark.single_backend
def test_patch_filters_are_the_principal_components():
    rng = np.random.default_rng(0)
    p, c, dim = 3, 2, 40
    kernel = rng.normal(size=(p, p, c, dim)) * np.linspace(3, 0.1, p * p * c).reshape(p, p, c, 1)
    comps, explained = explain.patch_filters(kernel, k=4)
    assert comps.shape == (4, p, p, c) and explained.shape == (4,)
    # Reference: eigenvectors of the covariance of the dim filters (each a p*p*c vector).
    values, vectors = np.linalg.eigh(np.cov(kernel.reshape(-1, dim)))
    order = np.argsort(values)[::-1]
    for i in range(4):
        v = vectors[:, order[i]]
        assert abs(comps[i].ravel() @ v) == pytest.approx(1.0, abs=1e-8)  # same direction
        assert comps[i].ravel()[np.abs(comps[i].ravel()).argmax()] > 0  # sign convention
    np.testing.assert_allclose(explained, values[order[:4]] / values.sum(), rtol=1e-8)
    with pytest.raises(ValueError, match="`k`"):
        explain.patch_filters(kernel, k=19)


def test_patch_filters_of_a_model():
    model = _tiny()
    comps, explained = explain.patch_filters(model, k=3)
    assert comps.shape == (3, 4, 4, 1)
    assert np.all(np.diff(explained) <= 1e-12) and explained.sum() <= 1 + 1e-9


# ---------------------------------------------------------------------------------------------
# The plots draw, with titles, labels and colour bars


@pytest.mark.single_backend
def test_plots_draw_with_labels_and_colour_bars():
    rng = np.random.default_rng(0)
    image = rng.uniform(size=(8, 8, 1))
    fig = plots.show_attention_grid(image, rng.uniform(size=(2, 3, 2, 2)))
    assert len(fig.axes) == 2 * 4 + 2  # layers x (1 + heads), plus one colour bar per layer
    fig = plots.show_rollout(np.stack([image, image]), rng.uniform(size=(2, 2, 2)),
                             raw_maps=rng.uniform(size=(2, 2, 2)), labels=["x", "y"])
    assert len(fig.axes) == 3 * 2 + 1
    ax = plots.plot_attention_distance(rng.uniform(size=(4, 3)) * 10, reference=5.0)
    assert ax.get_xlabel() and ax.get_ylabel() and ax.get_title()
    assert len(ax.collections) == 3  # one scatter per head
    fig = plots.show_position_similarity(explain.position_similarity(rng.normal(size=(9, 4)), 3))
    assert fig.axes[-1].get_ylabel() == "cosine similarity"
    fig = plots.show_filters(rng.normal(size=(5, 4, 4, 1)), explained=np.full(5, 0.1), ncols=3)
    assert "PC 1 (10%)" in [a.get_title() for a in fig.axes]
    plots.show_filters(rng.normal(size=(2, 4, 4, 3)))  # RGB: no colour bar needed
    with pytest.raises(ValueError, match="distances"):
        plots.plot_attention_distance(np.ones(3))
    plt.close("all")
