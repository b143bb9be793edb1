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


# Predict-then-run: versions of one augmented image, counted independently here.
def _versions_by_hand(image):
    # every window of the 1-pixel padded image, mirrored or not: the recipe's possible outputs
    padded = np.pad(image, ((1, 1), (1, 1), (0, 0)))
    found = set()
    for dy in range(3):
        for dx in range(3):
            window = padded[dy:dy + 28, dx:dx + 28]
            for version in (window, window[:, ::-1]):
                found.add(version.tobytes())
    return len(found)


def test_augmentation_experiment_and_checker():
    image = np.random.default_rng(7).random((28, 28, 1)).astype("float32")
    assert _versions_by_hand(image) == 18
    assert _versions_by_hand((image + image[:, ::-1]) / 2) == 9
    assert nb06.measure_versions() == 18 and nb06.measure_versions(symmetric=True) == 9
    assert nb06.measure_versions(flip=False) == 9
    # the recipe the exercise describes is the course's
    assert train.RECIPE["max_shift"] == 1 and train.RECIPE["flip"] is True
    assert nb06.check_augmentation_prediction(18).passed
    assert nb06.check_augmentation_prediction(18.0).passed


@pytest.mark.parametrize("prediction, name", [
    (9, "no_flip"), (8, "no_zero_shift"), (10, "one_axis_at_a_time"), (6, "one_axis"),
    (36, "twice_flip"),
])
def test_augmentation_wrong_predictions_get_their_hint(prediction, name):
    fb = nb06.check_augmentation_prediction(prediction)
    assert not fb.passed and fb.mistake == name, fb.message
    hint = next(h for n, v, h in nb06.AUGMENTATION_MISTAKES if n == name)
    assert hint in fb.message


def test_augmentation_unanswered_and_unknown():
    assert "not answered yet" in nb06.check_augmentation_prediction(None).message
    fb = nb06.check_augmentation_prediction(27)
    assert not fb.passed and fb.mistake is None and "measured 18" in fb.message


# Transfer: mean pooling on non-square images, learner-style.
def count_mean(config, class_token=False, cls_row=False, grid="both"):
    h, w = config["image_size"]
    p, d, m = config["patch_size"], config["dim"], config["mlp_dim"]
    rows = {"both": (h // p) * (w // p), "height": (h // p) ** 2, "width": (w // p) ** 2}[grid]
    embed = p * p * config["channels"] * d + d + (d if class_token else 0)
    positions = (rows + (1 if cls_row else 0)) * d
    block = 2 * 2 * d + 4 * (d * d + d) + (d * m + m) + (m * d + d)
    return embed + positions + config["depth"] * block + 2 * d + config["num_classes"] * (d + 1)


@pytest.mark.parametrize("image_size, overrides", [
    ((28, 56), {}), ((56, 28), {"channels": 3}), ((32, 48), {"patch_size": 8, "depth": 2}),
])
def test_vit_mean_reference_matches_keras(image_size, overrides):
    config = vitlib.vit_config("fashion-small", image_size=image_size, pooling="mean", **overrides)
    counted = vitlib.make_vit("fashion-small", image_size=image_size, pooling="mean",
                              **overrides).count_params()
    assert nb06._vit_param_count_mean(config) == count_mean(config) == counted


def test_vit_mean_solution_passes_and_the_square_class_token_count_fails():
    assert nb06.check_vit_param_count_mean(count_mean, seed=0).passed
    # Exercise 1's answer, pasted unchanged, cannot handle (H, W) and is not accepted.
    fb = nb06.check_vit_param_count_mean(count_good, seed=0)
    assert not fb.passed and "TypeError" in fb.message


@pytest.mark.parametrize("kwargs, name", [
    ({"class_token": True, "cls_row": True}, "kept_class_token"),
    ({"class_token": True}, "one_class_token_part"),
    ({"cls_row": True}, "one_class_token_part"),
    ({"grid": "height"}, "square_height"),
    ({"grid": "width"}, "square_width"),
    ({"grid": "height", "class_token": True, "cls_row": True}, "square_and_class_token"),
])
def test_vit_mean_mistakes_get_their_hint(kwargs, name):
    fb = nb06.check_vit_param_count_mean(lambda cfg: count_mean(cfg, **kwargs), seed=0)
    assert not fb.passed and fb.mistake == name, fb.message
    hint = next(m.hint for m in nb06.VIT_MEAN_MISTAKES if m.name == name)
    assert hint in fb.message


def test_vit_mean_unknown_and_stub():
    fb = nb06.check_vit_param_count_mean(lambda cfg: count_mean(cfg) + 1, seed=0)
    assert not fb.passed and fb.mistake is None

    def stub(config):
        raise NotImplementedError("Exercise: ...")

    assert "not written yet" in nb06.check_vit_param_count_mean(stub, seed=0).message


# Interpret: accuracy against training time.
def test_time_curve_answer_right_wrong_and_unanswered():
    assert nb06.check_time_curve_answer("b").passed
    for letter in "acd":
        fb = nb06.check_time_curve_answer(letter)
        assert not fb.passed and fb.mistake == letter
        assert nb06.TIME_CURVE_OPTIONS[letter] in fb.message
    assert "not answered yet" in nb06.check_time_curve_answer(None).message
    assert nb06.check_time_curve_answer(2).mistake == "not_an_option"


def test_time_curve_explanations_quote_the_shipped_record():
    import json

    from vitlib.course_files import course_file

    curve = json.loads(course_file("accuracy_vs_time.json").read_text())
    acc = {}
    for r in curve["results"]:
        acc.setdefault((r["model"], r["budget_seconds"]), []).append(r["test_accuracy"])
    for budget in (60.0, 120.0):  # the right answer: every CNN seed above every ViT seed
        assert min(acc["cnn", budget]) > max(acc["vit", budget])
    assert np.mean(acc["hybrid", 60.0]) < np.mean(acc["vit", 60.0])  # option c
    assert min(acc["hybrid", 120.0]) > max(acc["vit", 120.0])  # option d: ahead with every seed
    text = " ".join(nb06.TIME_CURVE_OPTIONS.values())
    assert f"{min(acc['hybrid', 60.0]):.3f}-{max(acc['hybrid', 60.0]):.3f}" in text
    assert f"{curve['models']['hybrid']['parameters']:,}" in text
    assert not any(r["model"] == "cnn" for r in curve["long_runs"])  # option a: no long CNN run
    # option d: a shared machine, where the steps a run managed in its time varied between seeds
    steps = [r["steps"] for r in curve["results"] if r["model"] == "vit" and r["budget_seconds"] == 120]
    assert curve["shared_load"] is True and max(steps) > 1.05 * min(steps)


def test_notebook_split_is_the_training_runs_split():
    # Notebook 06 (the misconception's 1,000 training images) rebuilds the shipped run's split
    # without importing experiments/ (not installed in Colab); it must be the same split.
    from experiments.train import validation_split

    order = np.random.default_rng(0).permutation(60_000)
    trained_on, held_out = validation_split(60_000, 5_000, seed=0)
    np.testing.assert_array_equal(np.sort(order[5_000:]), trained_on)
    assert not set(np.sort(order[5_000:])[:1000]) & set(held_out.tolist())
