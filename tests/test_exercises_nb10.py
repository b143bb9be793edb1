"""Checkers of notebook 10: the solutions pass, each usual mistake gets its own hint."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from vitlib import segment
from vitlib.exercises import nb10

pytestmark = pytest.mark.single_backend


def hint(mistakes, name):
    return next(m.hint for m in mistakes if m.name == name)


# --- patch labels: learner-style answers, written independently of the checker's references ----

def labels_variant(pick="vote", ties="smaller", grouping="transpose", background="votes"):
    def fn(mask, patch_size):
        n, h, w = mask.shape
        p = patch_size
        if pick == "corner":
            return mask[:, ::p, ::p]
        if grouping == "transpose":
            blocks = mask.reshape(n, h // p, p, w // p, p).swapaxes(2, 3).reshape(n, h // p, w // p, -1)
        else:
            blocks = mask.reshape(n, h // p, w // p, -1)
        if pick == "max":
            return blocks.max(-1)
        out = np.zeros(blocks.shape[:3], int)
        for idx in np.ndindex(*blocks.shape[:3]):
            counts = np.bincount(blocks[idx])
            if background == "skip" and counts[1:].sum() > 0:
                counts[0] = 0
            out[idx] = counts.argmax() if ties == "smaller" else len(counts) - 1 - counts[::-1].argmax()
        return out
    return fn


def test_patch_labels_solution_and_vitlib_pass():
    fb = nb10.check_patch_labels(labels_variant(), seed=0)
    assert fb.passed and fb.message.startswith("✅"), fb.message
    assert nb10.check_patch_labels(lambda m, p: segment.patch_labels(m, p, num_labels=m.max() + 1), seed=1)


@pytest.mark.parametrize("fn, name", [
    (labels_variant(pick="corner"), "top_left_pixel"),
    (labels_variant(pick="max"), "max_label"),
    (labels_variant(ties="larger"), "ties_to_larger"),
    (labels_variant(background="skip"), "foreground_first"),
    (labels_variant(grouping="plain"), "no_transpose"),
    (lambda m, p: m[:, p // 2::p, p // 2::p], "centre_pixel"),
])
def test_patch_label_mistakes_get_their_hint(fn, name):
    for seed in range(3):  # whatever the random cases, the mistake is caught and named
        fb = nb10.check_patch_labels(fn, seed=seed)
        assert not fb.passed and fb.mistake == name, fb.message
    assert hint(nb10.PATCH_LABEL_MISTAKES, name) in fb.message


# --- mean IoU ----------------------------------------------------------------------------------

def iou_variant(absent="skip", denominator="union", scope="all", background=True, dice=False):
    def per_label(t, p, k):
        i, nt, npred = np.sum((t == k) & (p == k)), np.sum(t == k), np.sum(p == k)
        union = nt + npred - i
        if union == 0:
            return {"skip": None, "zero": 0.0, "one": 1.0}[absent]
        if dice:
            return 2 * i / (nt + npred)
        if denominator == "true":
            return i / nt if nt else None
        return i / {"union": union, "sum": nt + npred}[denominator]

    def score(t, p, num_classes):
        labels = range(num_classes) if background else range(1, num_classes)
        values = [per_label(t, p, k) for k in labels]
        return np.mean([v for v in values if v is not None])

    def fn(true, pred, num_classes):
        if scope == "per_image":
            return float(np.mean([score(t, p, num_classes) for t, p in zip(true, pred, strict=True)]))
        return float(score(true, pred, num_classes))
    return fn


def test_mean_iou_solution_and_vitlib_pass():
    fb = nb10.check_mean_iou(iou_variant(), seed=0)
    assert fb.passed and fb.message.startswith("✅"), fb.message
    assert nb10.check_mean_iou(segment.mean_iou, seed=1)


@pytest.mark.parametrize("fn, name", [
    (iou_variant(absent="zero"), "absent_as_zero"),
    (iou_variant(absent="one"), "absent_as_one"),
    (iou_variant(background=False), "no_background"),
    (iou_variant(denominator="true"), "recall"),
    (iou_variant(denominator="sum"), "union_as_sum"),
    (iou_variant(dice=True), "dice"),
    (iou_variant(scope="per_image"), "per_image"),
    (lambda t, p, k: float(np.mean(t == p)), "accuracy"),
])
def test_mean_iou_mistakes_get_their_hint(fn, name):
    for seed in range(3):
        fb = nb10.check_mean_iou(fn, seed=seed)
        assert not fb.passed and fb.mistake == name, fb.message
    assert hint(nb10.IOU_MISTAKES, name) in fb.message


# --- best matching: the reference is SciPy's Hungarian algorithm -------------------------------

def hungarian(cost):
    rows, cols = linear_sum_assignment(cost)
    out = np.empty(cost.shape[1], int)
    out[cols] = rows
    return out


def brute_force(cost):
    best = min(itertools.permutations(range(cost.shape[0]), cost.shape[1]),
               key=lambda a: sum(cost[i, j] for j, i in enumerate(a)))
    return np.array(best)


def greedy_in_order(cost):
    used, out = set(), []
    for j in range(cost.shape[1]):
        order = [i for i in np.argsort(cost[:, j]) if i not in used]
        used.add(order[0])
        out.append(order[0])
    return np.array(out)


def test_matching_solution_and_hungarian_pass():
    fb = nb10.check_best_matching(brute_force, seed=0)
    assert fb.passed and fb.message.startswith("✅"), fb.message
    assert nb10.check_best_matching(hungarian, seed=1)


def test_matching_reference_is_the_optimum():
    rng = np.random.default_rng(0)
    for _ in range(20):
        (cost,) = nb10._matching_case(rng)
        np.testing.assert_array_equal(nb10._brute_force(cost), hungarian(cost))


@pytest.mark.parametrize("fn, name", [
    (lambda c: c.argmin(axis=0), "argmin_per_target"),
    (lambda c: c.argmin(axis=1), "argmin_per_prediction"),
    (greedy_in_order, "greedy_in_order"),
    (lambda c: hungarian(-c), "maximised"),
])
def test_matching_mistakes_get_their_hint(fn, name):
    for seed in range(3):
        fb = nb10.check_best_matching(fn, seed=seed)
        assert not fb.passed and fb.mistake == name, fb.message
    assert hint(nb10.MATCHING_MISTAKES, name) in fb.message


def test_greedy_cheapest_pair_first_is_caught():
    def greedy(cost):
        cost = cost.copy()
        out = np.zeros(cost.shape[1], int)
        for _ in range(cost.shape[1]):
            flat = int(np.argmin(cost))
            i, j = divmod(flat, cost.shape[1])
            out[j] = i
            cost[i], cost[:, j] = np.inf, np.inf
        return out
    fb = nb10.check_best_matching(greedy, seed=0)
    assert not fb.passed and fb.mistake in ("greedy_smallest_first", "greedy_in_order"), fb.message


def test_none_stub_errors_and_other_wrong_answers_are_reported():
    fb = nb10.check_mean_iou(lambda *a: None, seed=0)
    assert not fb.passed and "returned None" in fb.message

    def stub(*args):
        raise NotImplementedError("Exercise")

    fb = nb10.check_patch_labels(stub, seed=0)
    assert not fb.passed and "not written yet" in fb.message
    fb = nb10.check_best_matching(lambda c: 1 / 0, seed=0)
    assert not fb.passed and "ZeroDivisionError" in fb.message
    fb = nb10.check_patch_labels(lambda m, p: labels_variant()(m, p)[:, :1], seed=0)
    assert not fb.passed and "wrong shape" in fb.message
    fb = nb10.check_mean_iou(lambda *a: iou_variant()(*a) + 0.01, seed=0)
    assert not fb.passed and fb.mistake is None and "values differ" in fb.message
