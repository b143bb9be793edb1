"""Checkers of notebook 06: the solution passes, each usual mistake gets its own hint."""

from __future__ import annotations

import math

import numpy as np
import pytest

import vitlib
from vitlib import train
from vitlib.exercises import nb06

pytestmark = pytest.mark.single_backend


# Learner-style answers, written independently of the checker's references.
def count_good(config, class_token=True, cls_position=True, biases=True, channels=True,
               every_block=True):
    p, d, m = config["patch_size"], config["dim"], config["mlp_dim"]
    n = (config["image_size"] // p) ** 2
    bias = 1 if biases else 0
    patch = p * p * (config["channels"] if channels else 1) * d + bias * d
    tokens = (d if class_token else 0) + (n + (1 if cls_position else 0)) * d
    block = 2 * 2 * d + 4 * (d * d + bias * d) + (d * m + bias * m) + (m * d + bias * d)
    blocks = (config["depth"] if every_block else 1) * block
    return patch + tokens + blocks + 2 * d + config["num_classes"] * (d + bias)


def test_vit_param_count_solution_passes():
    fb = nb06.check_vit_param_count(count_good, seed=0)
    assert fb.passed, fb.message


@pytest.mark.parametrize("name, overrides", [
    ("fashion-small", {}), ("fashion-tiny", {}),
    ("fashion-tiny", {"channels": 3, "image_size": 32, "patch_size": 8, "num_classes": 7}),
    ("fashion-small", {"depth": 2, "dim": 48, "mlp_dim": 192}),
])
def test_vit_param_count_reference_matches_keras(name, overrides):
    config = vitlib.vit_config(name, **overrides)
    assert nb06._vit_param_count(config) == vitlib.make_vit(name, **overrides).count_params()


def test_vit_param_count_reference_matches_the_papers_counts():
    # Published counts (also in tests/test_model.py): the formula alone, no model is built.
    assert nb06._vit_param_count(vitlib.vit_config("fashion-small")) == 139_018
    assert nb06._vit_param_count(vitlib.vit_config("B/16")) == 86_567_656
    assert nb06._vit_param_count(vitlib.vit_config("Ti/16")) == 5_717_416


@pytest.mark.parametrize("kwargs, name", [
    ({"class_token": False}, "class_token"),
    ({"cls_position": False}, "class_token"),  # the same count: the hint names both places
    ({"class_token": False, "cls_position": False}, "class_token_and_its_position"),
    ({"biases": False}, "no_biases"),
    ({"every_block": False}, "one_block"),
    ({"channels": False}, "patch_without_channels"),
])
def test_vit_param_count_mistakes_get_their_hint(kwargs, name):
    fb = nb06.check_vit_param_count(lambda cfg: count_good(cfg, **kwargs), seed=0)
    assert not fb.passed and fb.mistake == name, fb.message
    hint = next(m.hint for m in nb06.VIT_PARAMS_MISTAKES if m.name == name)
    assert hint in fb.message


def test_class_token_hints_name_each_place():
    hints = {m.name: m.hint for m in nb06.VIT_PARAMS_MISTAKES}
    assert "x_class" in hints["class_token"] and "N + 1" in hints["class_token"]
    assert "LayerNorm" in hints["class_token_and_its_position"]


def test_vit_param_count_off_by_one_and_errors_are_reported():
    fb = nb06.check_vit_param_count(lambda cfg: count_good(cfg) + 1, seed=0)
    assert not fb.passed and fb.mistake is None
    fb = nb06.check_vit_param_count(lambda cfg: cfg["heads"], seed=0)
    assert not fb.passed and "KeyError" in fb.message
    fb = nb06.check_vit_param_count(lambda cfg: None, seed=0)
    assert not fb.passed and "returned None" in fb.message


# The schedule, learner-style.
def lr_good(step, peak, warmup, total):
    if step < warmup:
        return peak * step / warmup
    t = (step - warmup) / (total - warmup)
    return peak * (0.5 + 0.5 * math.cos(math.pi * t))


def lr_vectorised_style(step, peak, warmup, total):
    # np.where with a scalar step also works; the checker passes Python ints one at a time.
    warm = peak * step / max(warmup, 1)
    cos = 0.5 * peak * (1 + np.cos(np.pi * np.clip((step - warmup) / (total - warmup), 0, 1)))
    return np.where(step < warmup, warm, cos)


def test_warmup_cosine_solutions_pass():
    assert nb06.check_warmup_cosine(lr_good, seed=0)
    assert nb06.check_warmup_cosine(lr_vectorised_style, seed=0)


def test_warmup_cosine_reference_matches_vitlib_schedule():
    peak, warmup, total = 2e-3, 7, 50
    schedule = train.cosine_schedule(peak, warmup, total)
    want = [float(schedule(step)) for step in range(total + 1)]
    got = [nb06._warmup_cosine(step, peak, warmup, total) for step in range(total + 1)]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-9)


def _no_warmup(step, peak, warmup, total):
    return peak * (0.5 + 0.5 * math.cos(math.pi * step / total))


def _decay_from_zero(step, peak, warmup, total):
    return peak * step / warmup if step < warmup else \
        peak * (0.5 + 0.5 * math.cos(math.pi * step / total))


def _over_total(step, peak, warmup, total):
    return peak * step / warmup if step < warmup else \
        peak * (0.5 + 0.5 * math.cos(math.pi * (step - warmup) / total))


def _quarter_cosine(step, peak, warmup, total):
    return peak * step / warmup if step < warmup else \
        peak * (0.5 + 0.5 * math.cos(math.pi / 2 * (step - warmup) / (total - warmup)))


def _negative(step, peak, warmup, total):
    return peak * step / warmup if step < warmup else \
        peak * math.cos(math.pi * (step - warmup) / (total - warmup))


@pytest.mark.parametrize("fn, name", [
    (_no_warmup, "no_warmup"),
    (_decay_from_zero, "decay_from_zero"),
    (_over_total, "divided_by_total"),
    (_quarter_cosine, "half_period"),
    (_negative, "without_one_plus"),
])
def test_warmup_cosine_mistakes_get_their_hint(fn, name):
    fb = nb06.check_warmup_cosine(fn, seed=0)
    assert not fb.passed and fb.mistake == name, fb.message
    hint = next(m.hint for m in nb06.WARMUP_COSINE_MISTAKES if m.name == name)
    assert hint in fb.message


def test_warmup_cosine_unknown_answers_and_stubs_are_reported():
    fb = nb06.check_warmup_cosine(lambda s, p, w, t: 1.01 * lr_good(s, p, w, t), seed=0)
    assert not fb.passed and fb.mistake is None and "values differ" in fb.message

    def stub(step, peak, warmup, total):
        raise NotImplementedError("Exercise: ...")

    fb = nb06.check_warmup_cosine(stub, seed=0)
    assert not fb.passed and "not written yet" in fb.message
    fb = nb06.check_warmup_cosine(lambda s, p, w, t: None, seed=0)
    assert not fb.passed and "returned None" in fb.message
