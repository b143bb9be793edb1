"""Checkers of notebook 07: the solutions pass, each usual mistake gets its own hint."""

from __future__ import annotations

import numpy as np
import pytest

from vitlib import explain
from vitlib.exercises import nb07

pytestmark = pytest.mark.single_backend


# --- rollout: learner-style answers, written independently of the checker's references -------

def rollout_variant(identity=0.5, renormalise=True, order="left", fuse="mean", layers="all",
                    combine="product"):
    def fn(attentions):
        t = attentions.shape[-1]
        mats = []
        for layer in attentions:
            a = layer.mean(0) if fuse == "mean" else layer.sum(0)
            a = (1 - identity) * a + identity * np.eye(t) if identity != "plus" else a + np.eye(t)
            if renormalise:
                a = a / a.sum(-1, keepdims=True)
            mats.append(a)
        if layers == "last":
            return mats[-1]
        if combine == "mean":
            return sum(mats) / len(mats)
        r = np.eye(t)
        for a in mats:
            r = a @ r if order == "left" else r @ a
        return r
    return fn


def rollout_with_vitlib(attentions):
    return explain.attention_rollout(list(attentions[:, None]))[0]  # add a batch axis of 1


def test_rollout_solution_and_vitlib_pass():
    fb = nb07.check_rollout(rollout_variant(), seed=0)
    assert fb.passed and fb.message.startswith("✅"), fb.message
    assert nb07.check_rollout(rollout_with_vitlib, seed=1)


@pytest.mark.parametrize("fn, name", [
    (rollout_variant(identity=0.0), "no_identity"),
    (rollout_variant(identity="plus", renormalise=False), "not_renormalised"),
    (rollout_variant(order="right"), "reversed_order"),
    (rollout_variant(fuse="sum"), "heads_summed"),
    (rollout_variant(layers="last"), "last_layer_only"),
    (rollout_variant(combine="mean"), "averaged_layers"),
])
def test_rollout_mistakes_get_their_hint(fn, name):
    fb = nb07.check_rollout(fn, seed=0)
    assert not fb.passed and fb.mistake == name, fb.message
    hint = next(m.hint for m in nb07.ROLLOUT_MISTAKES if m.name == name)
    assert hint in fb.message


def test_rollout_plus_identity_renormalised_is_correct():
    # A + I with the rows renormalised equals 0.5 A + 0.5 I: not a mistake.
    assert nb07.check_rollout(rollout_variant(identity="plus", renormalise=True), seed=0)


# --- mean attention distance -------------------------------------------------------------------

def distance_variant(scale=True, prefix_mode="skip", renormalise=True, metric="euclid",
                     order="rows", weighted=True):
    def fn(attention, grid, patch_size, num_prefix_tokens):
        rows, cols = grid
        n = rows * cols
        pos = ([(i, j) for i in range(rows) for j in range(cols)] if order == "rows"
               else [(i, j) for j in range(cols) for i in range(rows)])
        pos = np.array(pos, dtype=float) * (patch_size if scale else 1)
        diff = pos[:, None, :] - pos[None, :, :]
        d = np.hypot(diff[..., 0], diff[..., 1]) if metric == "euclid" else np.abs(diff).sum(-1)
        a = (attention[:, num_prefix_tokens:, num_prefix_tokens:] if prefix_mode == "skip"
             else attention[:, :n, :n])
        if not weighted:
            a = np.full_like(a, 1.0 / n)
        elif renormalise:
            a = a / a.sum(-1, keepdims=True)
        return np.einsum("hqk,qk->hq", a, d).mean(-1)
    return fn


def distance_with_vitlib(attention, grid, patch_size, num_prefix_tokens):
    return explain.mean_attention_distance(attention[None], grid, patch_size, num_prefix_tokens)


def test_distance_solution_and_vitlib_pass():
    fb = nb07.check_mean_attention_distance(distance_variant(), seed=0)
    assert fb.passed and fb.message.startswith("✅"), fb.message
    assert nb07.check_mean_attention_distance(distance_with_vitlib, seed=1)


@pytest.mark.parametrize("fn, name", [
    (distance_variant(scale=False), "in_patches"),
    (distance_variant(prefix_mode="first_n"), "class_token_kept"),
    (distance_variant(renormalise=False), "not_renormalised"),
    (distance_variant(metric="cityblock"), "manhattan"),
    (distance_variant(order="columns"), "column_major"),
    (distance_variant(weighted=False), "unweighted"),
])
def test_distance_mistakes_get_their_hint(fn, name):
    for seed in range(3):  # whatever the random cases, the mistake is caught and named
        fb = nb07.check_mean_attention_distance(fn, seed=seed)
        assert not fb.passed and fb.mistake == name, fb.message
    hint = next(m.hint for m in nb07.DISTANCE_MISTAKES if m.name == name)
    assert hint in fb.message


def test_none_stub_errors_and_other_wrong_answers_are_reported():
    fb = nb07.check_rollout(lambda a: None, seed=0)
    assert not fb.passed and "returned None" in fb.message

    def stub(*args):
        raise NotImplementedError("Exercise")

    fb = nb07.check_mean_attention_distance(stub, seed=0)
    assert not fb.passed and "not written yet" in fb.message
    fb = nb07.check_rollout(lambda a: 1 / 0, seed=0)
    assert not fb.passed and "ZeroDivisionError" in fb.message
    fb = nb07.check_rollout(lambda a: rollout_variant()(a)[:1], seed=0)
    assert not fb.passed and "wrong shape" in fb.message
    fb = nb07.check_mean_attention_distance(lambda *a: distance_variant()(*a) + 0.5, seed=0)
    assert not fb.passed and fb.mistake is None and "values differ" in fb.message


# --- Exercise 4 · transfer: rollout with another residual weight ------------------------------

def residual_variant(kind="right"):
    """Learner-style answers for fn(attentions, residual), written without the checker's code."""
    def fn(attentions, residual):
        t = attentions.shape[-1]
        r = np.eye(t)
        for layer in attentions:
            a = layer.sum(0) / len(layer) if kind != "heads_summed" else layer.sum(0)
            if kind == "fixed_half":
                a = 0.5 * a + 0.5 * np.eye(t)
            elif kind == "swapped":
                a = residual * a + (1 - residual) * np.eye(t)
            elif kind == "added_not_mixed":
                a = a + residual * np.eye(t)
            else:
                a = (1 - residual) * a + residual * np.eye(t)
            a = a / a.sum(-1, keepdims=True)
            r = r @ a if kind == "reversed_order" else a @ r
        return r
    return fn


def test_rollout_residual_solution_passes_and_matches_vitlib_at_one_half():
    fb = nb07.check_rollout_residual(residual_variant(), seed=0)
    assert fb.passed and fb.message.startswith("✅"), fb.message
    rng = np.random.default_rng(3)
    att = rng.dirichlet(np.ones(5), size=(3, 2, 5))  # (layers, heads, T, T), rows sum to 1
    assert np.allclose(residual_variant()(att, 0.5), rollout_with_vitlib(att))
    # residual 0: the plain product of the head-averaged maps, first layer on the right
    mean = att.mean(1)
    assert np.allclose(residual_variant()(att, 0.0), mean[2] @ mean[1] @ mean[0])


@pytest.mark.parametrize("kind", ["fixed_half", "swapped", "added_not_mixed", "reversed_order",
                                  "heads_summed"])
def test_rollout_residual_mistakes_get_their_hint(kind):
    for seed in range(3):
        fb = nb07.check_rollout_residual(residual_variant(kind), seed=seed)
        assert not fb.passed and fb.mistake == kind, fb.message
    hint = next(m.hint for m in nb07.RESIDUAL_MISTAKES if m.name == kind)
    assert hint in fb.message


def test_exercise_3_pasted_unchanged_fails_the_transfer():
    fb = nb07.check_rollout_residual(lambda a, residual: rollout_variant()(a), seed=0)
    assert not fb.passed and fb.mistake == "fixed_half", fb.message


# --- Exercise 1 · predict-then-run: a local head ---------------------------------------------

def local_head_distance_by_hand(rows=7, cols=7, patch=4):
    """Each patch: weight 1/k on itself and its k - 1 direct neighbours; the neighbours are one
    patch (4 px) away, itself 0 px: the mean is (k - 1) / k * 4 px; then the mean over patches."""
    total = 0.0
    for r in range(rows):
        for c in range(cols):
            k = 1 + (r > 0) + (r < rows - 1) + (c > 0) + (c < cols - 1)
            total += (k - 1) / k * patch
    return total / (rows * cols)


def test_local_head_measurement_matches_the_hand_count():
    by_hand = local_head_distance_by_hand()  # (25 * 3.2 + 20 * 3 + 4 * 8/3) / 49 = 3.0748...
    assert abs(by_hand - 3.0748) < 1e-4
    att = nb07.local_head_attention((7, 7))
    assert att.shape == (1, 1, 50, 50) and np.allclose(att.sum(-1), 1)
    assert np.isclose(explain.mean_attention_distance(att, (7, 7), 4, 1)[0], by_hand)
    fb = nb07.check_local_head_prediction(3.07)
    assert fb.passed and "measured 3.07 px" in fb.message, fb.message


@pytest.mark.parametrize("prediction, passed, mistake", [
    (3.2, True, None), (3.0, True, None), (3.07, True, None),
    (0.77, False, "in_patches"), (4, False, "forgot_itself"), (14.4, False, "uniform"),
    (7.0, False, None), ("3", False, "not_a_number"),
])
def test_local_head_prediction_verdicts(prediction, passed, mistake):
    fb = nb07.check_local_head_prediction(prediction)
    assert fb.passed is passed and fb.mistake == mistake, fb.message


def test_local_head_prediction_not_answered():
    fb = nb07.check_local_head_prediction(None)
    assert not fb.passed and "not answered yet" in fb.message


# --- Exercise 2 · interpret: the deletion test -------------------------------------------------

def test_deletion_answer_right_wrong_and_unanswered():
    fb = nb07.check_deletion_answer("b")
    assert fb.passed and "random patches on the garment" in fb.message
    for letter in "acd":
        fb = nb07.check_deletion_answer(letter)
        assert not fb.passed and fb.mistake == letter
        assert nb07.DELETION_OPTIONS[letter] in fb.message and len(nb07.DELETION_OPTIONS[letter]) > 80
    assert "not answered yet" in nb07.check_deletion_answer(None).message
    assert nb07.check_deletion_answer("e").mistake == "not_an_option"


# --- Exercise 4 · predict-then-run: rollout's residual weight ---------------------------------

def _made_up_maps(seed=0, layers=4, heads=2, tokens=10, n=8):
    """Layer 1 nearly the same row for every query; later layers query-specific."""
    rng = np.random.default_rng(seed)
    maps = []
    for layer in range(layers):
        logits = rng.normal(size=(n, heads, 1 if layer == 0 else tokens, tokens)) * 3
        logits = np.broadcast_to(logits, (n, heads, tokens, tokens)) + rng.normal(
            size=(n, heads, tokens, tokens)) * (0.05 if layer == 0 else 1)
        e = np.exp(logits - logits.max(-1, keepdims=True))
        maps.append(e / e.sum(-1, keepdims=True))
    return maps


def _best_by_hand(maps, r):
    """The reference the class-token rollout row correlates with best, via vitlib and NumPy."""
    fused = [m.mean(1) for m in maps]
    rows = [f[:, 0, 1:] for f in fused]
    refs = {"first layer": rows[0], "mean of layers": np.mean(rows, axis=0), "last layer": rows[-1]}
    t = fused[0].shape[-1]
    out = []
    for i in range(len(fused[0])):
        rr = np.eye(t)
        for f in fused:
            a = (1 - r) * f[i] + r * np.eye(t)
            rr = (a / a.sum(-1, keepdims=True)) @ rr
        out.append(rr[0, 1:])
    out = np.array(out)

    def corr(a, b):
        return np.corrcoef(np.argsort(np.argsort(a)), np.argsort(np.argsort(b)))[0, 1]
    score = {k: np.mean([corr(a, b) for a, b in zip(out, v, strict=True)]) for k, v in refs.items()}
    return max(score, key=score.get)


def test_rollout_reference_prediction_right_wrong_and_unanswered():
    maps = _made_up_maps()
    at_0, at_09 = _best_by_hand(maps, 0.0), _best_by_hand(maps, 0.9)
    assert (at_0, at_09) == ("first layer", "mean of layers")  # the course checkpoint's outcome
    fb = nb07.check_rollout_reference_prediction(at_0, at_09, maps, 1)
    assert fb.passed, fb.message
    for a0, a9, name in [("last layer", at_09, "r0_last"), ("mean of layers", at_09, "r0_mean"),
                         (at_0, "first layer", "r09_first"), (at_0, "last layer", "r09_last"),
                         ("last layer", "last layer", "r0_last")]:
        fb = nb07.check_rollout_reference_prediction(a0, a9, maps, 1)
        assert not fb.passed and fb.mistake == name, (a0, a9, fb.message)
    assert "not answered yet" in nb07.check_rollout_reference_prediction(None, None, maps).message
    assert nb07.check_rollout_reference_prediction("middle", at_09, maps).mistake == "not_an_option"
