"""Checkers of notebook 09: the solution passes, each usual mistake gets its own hint."""

from __future__ import annotations

import numpy as np
import pytest

from vitlib.exercises import nb09

pytestmark = pytest.mark.single_backend


# Learner-style answers, written independently of the checker's references.
def query_heads_loop(x, kernel, bias):
    tokens, (_, heads, head_dim) = len(x), kernel.shape
    q = np.zeros((tokens, heads, head_dim))
    for t in range(tokens):
        for h in range(heads):
            q[t, h] = x[t] @ kernel[:, h, :] + bias[h]
    return q


def masked_mse_loop(target, predicted, mask):
    errors = [np.mean((p - t) ** 2) for t, p, m in zip(target, predicted, mask, strict=True) if m]
    return sum(errors) / len(errors)


def test_solutions_pass():
    assert nb09.check_query_heads(query_heads_loop, seed=0)
    assert nb09.check_query_heads(lambda x, k, b: np.einsum("td,dhk->thk", x, k) + b, seed=1)
    assert nb09.check_masked_mse(masked_mse_loop, seed=0)


def test_masked_mse_by_hand():
    target = np.zeros((3, 2))
    predicted = np.array([[1.0, 1.0], [2.0, 0.0], [3.0, 3.0]])  # per-patch MSE 1, 2, 9
    assert masked_mse_loop(target, predicted, np.array([1, 1, 0])) == pytest.approx(1.5)
    assert nb09._masked_mse(target, predicted, np.array([1.0, 1.0, 0.0])) == pytest.approx(1.5)


@pytest.mark.parametrize("fn, name", [
    (lambda x, k, b: np.einsum("td,dhk->thk", x, k), "no_bias"),
    (lambda x, k, b: np.einsum("td,dhk->htk", x, k) + b[:, None, :], "heads_first"),
    (lambda x, k, b: (x @ k.transpose(0, 2, 1).reshape(len(k), -1)).reshape(len(x), *b.shape) + b,
     "wrong_reshape"),
])
def test_query_heads_mistakes_get_their_hint(fn, name):
    fb = nb09.check_query_heads(fn, seed=0)
    assert not fb.passed and fb.mistake == name, fb.message


@pytest.mark.parametrize("fn, name", [
    (lambda t, p, m: np.mean((p - t) ** 2), "all_patches"),
    (lambda t, p, m: masked_mse_loop(t, p, 1 - m), "visible"),
    (lambda t, p, m: float(np.sum(np.mean((p - t) ** 2, axis=1)[m == 1])), "sum"),
    (lambda t, p, m: float(np.sum(np.mean((p - t) ** 2, axis=1)[m == 1])) / len(m),
     "divided_by_all"),
])
def test_masked_mse_mistakes_get_their_hint(fn, name):
    fb = nb09.check_masked_mse(fn, seed=0)
    assert not fb.passed and fb.mistake == name, fb.message


def test_unrecognised_wrong_answer_reports_the_difference():
    fb = nb09.check_masked_mse(lambda t, p, m: 2 * masked_mse_loop(t, p, m), seed=0)
    assert not fb.passed and fb.mistake is None and "differ" in fb.message


# --- visible tokens: the prediction is compared with the MAE's own encoder ------------------------

@pytest.fixture(scope="module")
def mae_and_image():
    import keras

    from vitlib.mae import masked_autoencoder

    keras.utils.set_random_seed(0)
    return masked_autoencoder(), np.zeros((1, 28, 28, 1), "float32")  # 49 patches of 4x4


def test_visible_tokens_right_wrong_and_unanswered(mae_and_image):
    mae, image = mae_and_image
    visible = int(49 * (1 - 0.9))  # 4: MAE's code rounds down
    assert nb09.check_visible_tokens(visible + 1, mae, image).passed
    for prediction, name in [(visible, "no_class_token"), (visible + 2, "rounded_up"),
                             (49 - visible, "hidden"), (49 - visible + 1, "hidden_plus_class"),
                             (50, "all_patches")]:
        fb = nb09.check_visible_tokens(prediction, mae, image)
        assert not fb.passed and fb.mistake == name, (prediction, fb.message)
    assert "not answered yet" in nb09.check_visible_tokens(None, mae, image).message
    assert nb09.check_visible_tokens("5", mae, image).mistake == "not_a_number"
    other = nb09.check_visible_tokens(17, mae, image)
    assert not other.passed and other.mistake is None and "rounded DOWN" in other.message


def test_visible_tokens_follows_the_ratio(mae_and_image):
    mae, image = mae_and_image
    assert nb09.check_visible_tokens(13, mae, image, mask_ratio=0.75).passed  # 12 + class token


# --- resize_positions: the reference is Keras' own resize (via vitlib) and SciPy for the slips ----

def resize_keras(table, old_grid, new_grid):
    from keras import ops
    rows, cols = old_grid
    grid = table[:, 1:].reshape(1, rows, cols, table.shape[-1])
    grid = ops.convert_to_numpy(ops.image.resize(grid, new_grid, interpolation="bilinear"))
    return np.concatenate([table[:, :1], grid.reshape(1, -1, table.shape[-1])], axis=1)


def resize_vitlib(table, old_grid, new_grid):
    from keras import ops

    from vitlib import resize_position_embedding
    return ops.convert_to_numpy(resize_position_embedding(table, new_grid, old_grid=old_grid))


def resize_variant(kind):
    def fn(table, old_grid, new_grid):
        from scipy import ndimage
        rows, cols = old_grid
        d = table.shape[-1]
        if kind == "swap_old":
            grid = table[0, 1:].reshape(cols, rows, d)
            grid = resize_keras(np.concatenate([table[:, :1], grid.reshape(1, -1, d)], 1),
                                (cols, rows), new_grid[::-1])[:, 1:]
        elif kind == "swap_new":
            grid = resize_keras(table, old_grid, new_grid[::-1])[:, 1:]
        elif kind == "nearest":
            from keras import ops
            g = table[:, 1:].reshape(1, rows, cols, d)
            grid = ops.convert_to_numpy(ops.image.resize(g, new_grid, interpolation="nearest"))
            grid = grid.reshape(1, -1, d)
        elif kind == "zoom":  # SciPy's zoom puts the corners on each other
            g = table[0, 1:].reshape(rows, cols, d)
            grid = ndimage.zoom(g, (new_grid[0] / rows, new_grid[1] / cols, 1), order=1)
            grid = grid.reshape(1, -1, d)
        else:
            grid = resize_keras(table, old_grid, new_grid)[:, 1:]
        if kind == "drop_class":
            return grid
        if kind == "class_last":
            return np.concatenate([grid, table[:, :1]], axis=1)
        return np.concatenate([table[:, :1], grid], axis=1)
    return fn


def test_resize_solutions_pass():
    fb = nb09.check_resize_positions(resize_keras, seed=0)
    assert fb.passed and fb.message.startswith("✅"), fb.message
    assert nb09.check_resize_positions(resize_vitlib, seed=1)


def test_resize_reference_is_keras_resize():
    rng = np.random.default_rng(3)
    for _ in range(10):
        table, old, new = nb09._resize_case(rng)
        np.testing.assert_allclose(nb09._ref_resize(table, old, new), resize_keras(table, old, new),
                                   atol=1e-5)


def test_the_square_only_function_does_not_pass():
    """vitlib's resize without `old_grid` assumes a square grid: it must fail here."""
    from keras import ops

    from vitlib import resize_position_embedding
    fb = nb09.check_resize_positions(
        lambda t, o, n: ops.convert_to_numpy(resize_position_embedding(t, n)), seed=0)
    assert not fb.passed and "square" in fb.message


@pytest.mark.parametrize("kind, name", [
    ("drop_class", "no_class_token"), ("class_last", "class_token_last"),
    ("swap_old", "rows_cols_swapped"), ("swap_new", "new_grid_swapped"), ("nearest", "nearest"),
    ("zoom", "align_corners"),
])
def test_resize_mistakes_get_their_hint(kind, name):
    for seed in range(3):
        fb = nb09.check_resize_positions(resize_variant(kind), seed=seed)
        assert not fb.passed and fb.mistake == name, fb.message
    assert next(m.hint for m in nb09.RESIZE_MISTAKES if m.name == name) in fb.message


def test_resize_not_written_and_none():
    def stub(*args):
        raise NotImplementedError("Exercise")
    assert "not written yet" in nb09.check_resize_positions(stub, seed=0).message
    assert "returned None" in nb09.check_resize_positions(lambda *a: None, seed=0).message


# --- the two interpret questions --------------------------------------------------------------

@pytest.mark.parametrize("checker, options, correct", [
    (nb09.check_digits_answer, nb09.DIGITS_OPTIONS, "b"),
    (nb09.check_mae_answer, nb09.MAE_OPTIONS, "b"),
])
def test_interpret_questions(checker, options, correct):
    assert checker(correct).passed and checker(correct.upper()).passed
    for letter in options:
        if letter == correct:
            continue
        fb = checker(letter)
        assert not fb.passed and fb.mistake == letter and options[letter] in fb.message
        assert len(options[letter]) > 80  # each wrong choice is explained
    assert "not answered yet" in checker(None).message
    assert checker("e").mistake == "not_an_option"


def test_digits_explanations_quote_the_record():
    """The numbers in the explanations are the shipped record's (data/digits_transfer.json)."""
    import json

    from vitlib.course_files import course_file
    record = json.loads(course_file("digits_transfer.json").read_text())
    acc = {init: np.array([r["test_accuracy"] for r in record["runs"] if r["init"] == init])
           for init in ("pixels", "scratch", "scratch_long", "full_long")}
    text = " ".join(nb09.DIGITS_OPTIONS.values()) + nb09.DIGITS_WHY
    digits = np.rint((acc["full_long"] - acc["scratch_long"]) * record["test_images"]).astype(int)
    assert ", ".join(f"+{d}" for d in digits[:-1]) + f" and +{digits[-1]}" in text
    gain = acc["full_long"] - acc["scratch_long"]
    assert f"+{gain.min():.3f} to +{gain.max():.3f}" in text
    # (b) is right: the largest gains are on the seeds where scratch ended lowest
    assert set(np.argsort(gain)[-2:]) == set(np.argsort(acc["scratch_long"])[:2])
    # (c) is wrong: the best 40-step seed is not the best 1,000-step seed
    assert np.argmax(acc["scratch"]) != np.argmax(acc["scratch_long"])
    # (d): its premise holds (worst fine-tuned below best scratch), yet every seed gains
    assert acc["full_long"].min() < acc["scratch_long"].max() and (gain > 0).all()
    for v in (acc["full_long"].min(), acc["scratch_long"].max()):
        assert f"{v:.3f}" in text


def test_mae_explanations_quote_the_record():
    """The MAE question's numbers are the shipped record's (data/mae_fashion_small.json)."""
    import json

    from vitlib.course_files import course_file
    loss = json.loads(course_file("mae_fashion_small.json").read_text())["loss_per_epoch"]
    text = " ".join(nb09.MAE_OPTIONS.values()) + nb09.MAE_WHY
    assert f"{loss[1]:.4f}" in text and f"{loss[-1]:.4f}" in text
    assert f"{loss[-2] - loss[-1]:.4f}" in text  # the last epoch's drop
    assert (np.diff(loss) < 0).all()  # it fell in every epoch
    assert 6.4 < loss[0] / loss[-1] < 6.7  # "about 6.5-fold"
