"""Checkers of notebook 15: the solutions pass, each usual mistake gets its own hint."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from vitlib import tokens
from vitlib.exercises import nb15

pytestmark = pytest.mark.single_backend


def hint(mistakes, name):
    return next(m.hint for m in mistakes if m.name == name)


# --- predict-then-run: the reach of a local causal mask through the blocks -----------------


def random_pixel_model(depth):
    keras.utils.set_random_seed(0)
    model = tokens.PixelTransformer(levels=4, tokens=196, dim=16, depth=depth, num_heads=2, mlp_dim=32)
    model.build()
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in model.get_weights()])
    return model


@pytest.fixture(scope="module")
def pixel_model():
    return random_pixel_model(depth=3)


def reach_by_loops(query, window, depth):
    """The pixels the prediction of `query` can read, written independently with sets: each
    block, every position reached so far adds the positions in its window; position p holds
    pixel p - 1 (position 0 holds the start token)."""
    positions = {query}
    for _ in range(depth):
        positions = {k for p in positions for k in range(max(0, p - window + 1), p + 1)}
    return sorted(p - 1 for p in positions if p >= 1)


def test_reach_is_measured_in_the_model(pixel_model):
    pixels = np.random.default_rng(1).integers(0, 4, (1, 196))
    assert nb15.measure_reach(pixel_model, pixels).tolist() == reach_by_loops(105, 28, 3)
    shallow = random_pixel_model(depth=2)
    assert nb15.measure_reach(shallow, pixels, query=60, window=10).tolist() == reach_by_loops(60, 10, 2)
    # the full causal mask is the window that covers everything: every earlier pixel
    assert len(nb15.measure_reach(pixel_model, pixels, window=196)) == 105


def test_changed_predictions_right_wrong_and_unanswered(pixel_model):
    pixels = np.random.default_rng(1).integers(0, 4, (1, 196))
    want = len(reach_by_loops(105, 28, 3))  # 82: pixels 23..104
    fb = nb15.check_changed_predictions(want, pixel_model, pixels)
    assert fb.passed and "measured 82" in fb.message and "pixels 23..104" in fb.message, fb.message
    for value, name in [(28, "one_block"), (27, "one_block_no_shift"), (84, "overlap_counted"),
                        (81, "forgot_shift_pixel"), (83, "one_too_many"), (105, "all"), (0, "none")]:
        fb = nb15.check_changed_predictions(value, pixel_model, pixels)
        assert not fb.passed and fb.mistake == name, (value, fb.message)
    wrong = nb15.check_changed_predictions(95, pixel_model, pixels)  # the full mask's count for pixel 100
    assert not wrong.passed and wrong.mistake is None
    fb = nb15.check_changed_predictions(None, pixel_model, pixels)
    assert not fb.passed and "not answered yet" in fb.message
    assert nb15.check_changed_predictions("82", pixel_model, pixels).mistake == "not_a_number"


# --- transfer: the local causal mask --------------------------------------------------------


def local_variant(kind="right"):
    """Learner-style answers, written with loops, independently of the checker's references."""
    def fn(tokens_, window):
        out = np.zeros((tokens_, tokens_), bool)
        for i in range(tokens_):
            for j in range(tokens_):
                if kind == "right":
                    out[i, j] = i - window < j <= i
                elif kind == "no_window":
                    out[i, j] = j <= i
                elif kind == "both_sides":
                    out[i, j] = abs(i - j) < window
                elif kind == "one_too_many":
                    out[i, j] = i - window <= j <= i
                elif kind == "one_too_few":
                    out[i, j] = i - window + 1 < j <= i
                elif kind == "excludes_self":
                    out[i, j] = i - window < j < i
                elif kind == "shifted_back":
                    out[i, j] = i - window <= j < i
                elif kind == "transposed":
                    out[i, j] = j - window < i <= j
        return out
    return fn


def test_local_mask_solution_passes_and_the_causal_mask_does_not():
    fb = nb15.check_local_causal_mask(local_variant(), seed=0)
    assert fb.passed and fb.message.startswith("✅"), fb.message
    as_ints = nb15.check_local_causal_mask(lambda t, w: local_variant()(t, w).astype(int), seed=1)
    assert as_ints.passed, as_ints.message
    from keras import ops

    from vitlib.attention import causal_mask
    pasted = nb15.check_local_causal_mask(lambda t, w: ops.convert_to_numpy(causal_mask(t)), seed=2)
    assert not pasted.passed and pasted.mistake == "no_window"


@pytest.mark.parametrize("name", ["no_window", "both_sides", "one_too_many", "one_too_few",
                                  "excludes_self", "shifted_back", "transposed"])
def test_local_mask_mistakes_get_their_hint(name):
    fb = nb15.check_local_causal_mask(local_variant(name), seed=3)
    assert not fb.passed and fb.mistake == name, fb.message
    assert hint(nb15.LOCAL_MISTAKES, name) in fb.message


def test_local_mask_not_written_and_wrong_shape():
    def todo(tokens_, window):
        raise NotImplementedError

    assert "not written yet" in nb15.check_local_causal_mask(todo, seed=0).message
    fb = nb15.check_local_causal_mask(lambda t, w: np.ones((t, t + 1), bool), seed=0)
    assert not fb.passed and "shape" in fb.message


# --- interpret --------------------------------------------------------------------------------


@pytest.mark.parametrize("check, options, correct", [
    (nb15.check_bits_answer, nb15.BITS_OPTIONS, nb15.BITS_CORRECT),
    (nb15.check_video_answer, nb15.VIDEO_OPTIONS, nb15.VIDEO_CORRECT),
])
def test_interpret_right_wrong_and_unanswered(check, options, correct):
    assert check(correct).passed
    assert check(correct.upper() + " ").passed  # letters are read loosely
    for letter in options:
        if letter != correct:
            fb = check(letter)
            assert not fb.passed and fb.mistake == letter
            assert options[letter] and options[letter] in fb.message  # its own explanation
    assert "not answered yet" in check(None).message
    assert check("e").mistake == "not_an_option"
