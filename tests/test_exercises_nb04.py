"""Checkers of notebook 04: the solution passes, each usual mistake gets its own hint."""

from __future__ import annotations

import numpy as np
import pytest

import vitlib
from vitlib.exercises import nb04

pytestmark = pytest.mark.single_backend


# Learner-style answers, written independently of the checker's references.
def sincos_good(positions, dim):
    pos = np.asarray(positions, dtype=float)[:, None]
    omega = 10000.0 ** (-np.arange(dim // 2) / (dim // 2))
    return np.hstack([np.sin(pos * omega), np.cos(pos * omega)])


def sincos_swapped(positions, dim):
    return np.roll(sincos_good(positions, dim), dim // 2, axis=1)


def sincos_over_dim(positions, dim):
    pos = np.asarray(positions, dtype=float)[:, None]
    omega = 10000.0 ** (-np.arange(dim // 2) / dim)
    return np.hstack([np.sin(pos * omega), np.cos(pos * omega)])


def sincos_interleaved(positions, dim):
    half = sincos_good(positions, dim)
    s, c = half[:, : dim // 2], half[:, dim // 2:]
    return np.stack([s, c], axis=-1).reshape(len(positions), dim)


def cosine_good(e):
    n = np.sqrt((e**2).sum(-1))
    return (e @ e.T) / np.outer(n, n)


def cosine_dot(e):
    return e @ e.T


def cosine_columns(e):
    e = e / np.sqrt((e**2).sum(0))
    return e @ e.T


def test_sincos_solution_and_vitlib_pass():
    assert nb04.check_sincos_1d(sincos_good, seed=0)
    fb = nb04.check_sincos_1d(vitlib.sincos_1d, seed=1)
    assert fb.passed and fb.message.startswith("✅")


@pytest.mark.parametrize("fn, name", [
    (sincos_swapped, "sin_cos_swapped"),
    (sincos_over_dim, "exponent_over_dim"),
    (sincos_interleaved, "interleaved"),
])
def test_sincos_mistakes_get_their_hint(fn, name):
    fb = nb04.check_sincos_1d(fn, seed=0)
    assert not fb.passed
    assert fb.mistake == name
    hint = next(m.hint for m in nb04.SINCOS_MISTAKES if m.name == name)
    assert hint in fb.message


def test_cosine_solution_passes():
    assert nb04.check_cosine_similarity_map(cosine_good, seed=0)


@pytest.mark.parametrize("fn, name", [
    (cosine_dot, "no_normalisation"),
    (cosine_columns, "normalised_wrong_axis"),
    (lambda e: (e @ e.T) / np.linalg.norm(e, axis=1)[:, None], "normalised_once"),
])
def test_cosine_mistakes_get_their_hint(fn, name):
    fb = nb04.check_cosine_similarity_map(fn, seed=0)
    assert not fb.passed and fb.mistake == name


def test_none_raise_stub_and_unknown_error_are_reported():
    fb = nb04.check_sincos_1d(lambda p, d: None, seed=0)
    assert not fb.passed and "returned None" in fb.message
    fb = nb04.check_cosine_similarity_map(lambda e: 1 / 0, seed=0)
    assert not fb.passed and "ZeroDivisionError" in fb.message

    def stub(p, d):
        raise NotImplementedError("Exercise")

    fb = nb04.check_sincos_1d(stub, seed=0)
    assert not fb.passed and "not written yet" in fb.message
    fb = nb04.check_sincos_1d(lambda p, d: sincos_good(p, d) + 0.1, seed=0)
    assert not fb.passed and fb.mistake is None and "values differ" in fb.message
    fb = nb04.check_cosine_similarity_map(lambda e: cosine_good(e)[:, :1], seed=0)
    assert not fb.passed and "wrong shape" in fb.message


# sincos_2d (the notebook's transfer exercise), learner-style answers built from vitlib.sincos_1d.
def sincos_2d_good(rows, cols, dim):
    pos = [(r, c) for r in range(rows) for c in range(cols)]  # row by row
    r = np.array([p[0] for p in pos])
    c = np.array([p[1] for p in pos])
    return np.hstack([vitlib.sincos_1d(r, dim // 2), vitlib.sincos_1d(c, dim // 2)])


def sincos_2d_variant(order="rc", halves=True, row_major=True, line=False, summed=False):
    def fn(rows, cols, dim):
        if line:
            return vitlib.sincos_1d(np.arange(rows * cols), dim)
        if row_major:
            pos = [(r, c) for r in range(rows) for c in range(cols)]
        else:
            pos = [(r, c) for c in range(cols) for r in range(rows)]
        r = np.array([p[0] for p in pos])
        c = np.array([p[1] for p in pos])
        if summed:
            return vitlib.sincos_1d(r, dim) + vitlib.sincos_1d(c, dim)
        width = dim // 2 if halves else dim
        a, b = (r, c) if order == "rc" else (c, r)
        return np.hstack([vitlib.sincos_1d(a, width), vitlib.sincos_1d(b, width)])
    return fn


def test_sincos_2d_solution_and_vitlib_pass():
    assert nb04.check_sincos_2d(sincos_2d_good, seed=0)
    assert nb04.check_sincos_2d(lambda r, c, d: vitlib.sincos_2d((r, c), d), seed=1)


@pytest.mark.parametrize("fn, name", [
    (sincos_2d_variant(line=True), "as_a_line"),
    (sincos_2d_variant(row_major=False), "column_major"),
    (sincos_2d_variant(order="cr"), "rows_cols_swapped"),
    (sincos_2d_variant(summed=True), "summed"),
    (sincos_2d_variant(halves=False), "full_dim_each"),
])
def test_sincos_2d_mistakes_get_their_hint(fn, name):
    fb = nb04.check_sincos_2d(fn, seed=0)
    assert not fb.passed and fb.mistake == name, fb.message
    hint = next(m.hint for m in nb04.SINCOS_2D_MISTAKES if m.name == name)
    assert hint in fb.message


# Exercise 3 (predict, then read the record): every letter, against the shipped record.
def _ablation():
    import json
    from pathlib import Path

    return json.loads((Path(__file__).parent.parent / "data" / "ablation.json").read_text())


def test_variants_prediction_right_wrong_and_unanswered():
    record = _ablation()
    fb = nb04.check_variants_prediction("d", record)
    assert fb.passed and fb.mistake is None, fb.message
    for letter in "abc":
        fb = nb04.check_variants_prediction(letter, record)
        assert not fb.passed and fb.mistake == letter, fb.message
    assert "not answered yet" in nb04.check_variants_prediction(None, record).message
    assert nb04.check_variants_prediction("e", record).mistake == "not_an_option"


def test_variants_prediction_says_the_records_numbers_and_they_support_d():
    record = _ablation()
    s = record["summary"]
    for variant in ("mean-pooling", "no-attention"):
        test, shuffled = s[variant]["test_accuracy"], s[variant]["shuffled_test_accuracy"]
        # (d): both fall far below their test accuracy, in every seed
        assert shuffled["max"] < 0.5 < test["min"]
        for letter in "abcd":
            message = nb04.check_variants_prediction(letter, record).message
            assert f"{test['mean']:.3f}" in message and f"{shuffled['mean']:.3f}" in message
    # the variants the question describes: learned E_pos, no class token (patch tokens averaged)
    from experiments.ablation import build

    for variant in ("mean-pooling", "no-attention"):
        model = build(variant)
        assert model.count_params() == s[variant]["parameters"]


# Exercise 4 (predict-then-run): the trained classifier's table, and tables made to order.
def _classifier_table():
    from keras import ops

    from vitlib.course_files import CLASSIFIER, course_file

    model = vitlib.load_model(course_file(CLASSIFIER))
    return ops.convert_to_numpy(model.position_embedding.embedding)  # (1, 50, 96)


def test_similar_patch_on_the_shipped_classifier():
    table = _classifier_table()
    patches = table[0, 1:] / np.linalg.norm(table[0, 1:], axis=1, keepdims=True)
    query = 5 * 7 + 3  # (5, 3), on the centre column: its own left-right mirror
    sim = patches @ patches[query]
    sim[query] = -np.inf
    answer = int(np.argmax(sim))
    assert answer == 45  # (6, 3): the column neighbour below
    assert sim[45] - sim[31] > 0.05  # ahead of the one above, (4, 3), by a clear margin
    assert nb04.check_similar_patch_prediction(answer, table).passed
    assert nb04.check_similar_patch_prediction(answer, table[0, 1:]).passed
    for k, name in [(38, "itself"), (31, "column_neighbour_above"), (37, "row_neighbour_left"),
                    (39, "row_neighbour_right"), (10, "up_down_mirror")]:
        fb = nb04.check_similar_patch_prediction(k, table)
        assert not fb.passed and fb.mistake == name, (k, fb.message)
    fb = nb04.check_similar_patch_prediction(3, table)
    assert not fb.passed and fb.mistake is None
    assert "not answered yet" in nb04.check_similar_patch_prediction(None, table).message


def test_similar_patch_follows_the_table_not_a_fixed_answer():
    # a table where (5, 3) is most like its column neighbour above, (4, 3) = patch 31
    table = np.random.default_rng(0).normal(size=(49, 16))
    table[31] = table[38] + 0.01
    fb = nb04.check_similar_patch_prediction(31, table)
    assert fb.passed, fb.message
    fb = nb04.check_similar_patch_prediction(45, table)
    assert not fb.passed and fb.mistake == "column_neighbour_below", fb.message


# Exercise 5 (transfer): position_table for non-square images, built from vitlib.sincos_2d.
def position_table_good(height, width, patch, dim):
    grid = vitlib.sincos_2d((height // patch, width // patch), dim)
    return np.vstack([np.zeros((1, dim)), grid])


def test_position_table_solution_passes_and_equals_the_layer():
    assert nb04.check_position_table(position_table_good)
    layer = vitlib.PositionEmbedding((4, 7), kind="sincos")
    layer.build((1, 29, 16))
    from keras import ops

    np.testing.assert_allclose(ops.convert_to_numpy(layer.embedding)[0],
                               position_table_good(16, 28, 4, 16), atol=1e-6)


def test_position_table_rejects_exercise_1_pasted_unchanged():
    fb = nb04.check_position_table(lambda h, w, p, d: sincos_2d_good(h // p, w // p, d))
    assert not fb.passed and fb.mistake == "no_class_token", fb.message


@pytest.mark.parametrize("fn, name", [
    (lambda h, w, p, d: position_table_good(w, h, p, d), "height_width_swapped"),
    (lambda h, w, p, d: position_table_good(h * p, w * p, p, d), "grid_in_pixels"),
    (lambda h, w, p, d: np.vstack([vitlib.sincos_2d((1, 1), d),
                                   vitlib.sincos_2d((h // p, w // p), d)]), "class_token_at_origin"),
    (lambda h, w, p, d: np.roll(position_table_good(h, w, p, d), -1, axis=0), "class_token_last"),
    (lambda h, w, p, d: position_table_good(h, h, p, d), "square_grid"),
])
def test_position_table_mistakes_get_their_hint(fn, name):
    fb = nb04.check_position_table(fn)
    assert not fb.passed and fb.mistake == name, fb.message
    hint = next(m.hint for m in nb04.POSITION_TABLE_MISTAKES if m.name == name)
    assert hint in fb.message
