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
