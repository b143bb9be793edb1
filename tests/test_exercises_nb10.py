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


# --- how many matchings: a prediction checked by counting ------------------------------------------

def test_matchings_prediction():
    right = 100 * 99 * 98
    fb = nb10.check_matchings_prediction(right)
    assert fb.passed and "970,200" in fb.message, fb.message
    for prediction, name in [(161_700, "combinations"), (1_000_000, "shared_queries"),
                             (300, "cost_entries"), (6, "objects_factorial")]:
        fb = nb10.check_matchings_prediction(prediction)
        assert not fb.passed and fb.mistake == name, fb.message
    assert "not answered yet" in nb10.check_matchings_prediction(None).message
    other = nb10.check_matchings_prediction(5)
    assert not other.passed and other.mistake is None and "Hungarian" in other.message
    assert nb10.check_matchings_prediction(4 * 3, queries=4, objects=2).passed  # Step 2's case


# --- box IoU: learner-style answers, one pair at a time ---------------------------------------------

def box_iou_variant(clip=True, union="union", half=True, corners_given=False, transpose=False):
    def fn(a, b):
        out = np.zeros((len(a), len(b)))
        for i, p in enumerate(a):
            for j, q in enumerate(b):
                if corners_given:
                    (px0, py0, px1, py1), (qx0, qy0, qx1, qy1) = p, q
                    px0, px1 = sorted((px0, px1))
                    py0, py1 = sorted((py0, py1))
                    qx0, qx1 = sorted((qx0, qx1))
                    qy0, qy1 = sorted((qy0, qy1))
                else:
                    s = 0.5 if half else 1.0
                    px0, px1, py0, py1 = p[0] - s * p[2], p[0] + s * p[2], p[1] - s * p[3], p[1] + s * p[3]
                    qx0, qx1, qy0, qy1 = q[0] - s * q[2], q[0] + s * q[2], q[1] - s * q[3], q[1] + s * q[3]
                w = min(px1, qx1) - max(px0, qx0)
                h = min(py1, qy1) - max(py0, qy0)
                if clip:
                    w, h = max(w, 0.0), max(h, 0.0)
                inter = w * h
                area_p, area_q = (px1 - px0) * (py1 - py0), (qx1 - qx0) * (qy1 - qy0)
                out[i, j] = inter / {"union": area_p + area_q - inter, "sum": area_p + area_q,
                                     "first": area_p}[union]
        return out.T if transpose else out
    return fn


def test_box_iou_solution_passes_and_known_values():
    fb = nb10.check_box_iou(box_iou_variant(), seed=0)
    assert fb.passed and fb.message.startswith("✅"), fb.message
    a = np.array([[0.5, 0.5, 0.2, 0.2]])
    b = np.array([[0.5, 0.5, 0.2, 0.2], [0.6, 0.5, 0.2, 0.2], [0.9, 0.9, 0.1, 0.1]])
    np.testing.assert_allclose(nb10._ref_box_iou(a, b), [[1.0, 0.02 / 0.06, 0.0]])


@pytest.mark.parametrize("fn, name", [
    (box_iou_variant(clip=False), "no_clip"),
    (box_iou_variant(union="sum"), "union_as_sum"),
    (box_iou_variant(union="first"), "over_first_area"),
    (box_iou_variant(half=False), "full_widths"),
    (box_iou_variant(corners_given=True), "read_as_corners"),
    (box_iou_variant(transpose=True), "transposed"),
])
def test_box_iou_mistakes_get_their_hint(fn, name):
    for seed in range(3):
        fb = nb10.check_box_iou(fn, seed=seed)
        assert not fb.passed and fb.mistake == name, fb.message
    assert hint(nb10.BOX_IOU_MISTAKES, name) in fb.message


def test_the_mask_iou_function_does_not_pass():
    """Exercise 2's mean IoU (for label masks) pasted unchanged fails on boxes."""
    fb = nb10.check_box_iou(lambda a, b: segment.mean_iou(a, b, 2), seed=0)
    assert not fb.passed


# --- interpret: the segmenters' training loss ------------------------------------------------------

def test_training_question():
    assert nb10.check_training_answer("b").passed
    for letter in "acd":
        fb = nb10.check_training_answer(letter)
        assert not fb.passed and fb.mistake == letter
        assert nb10.TRAINING_OPTIONS[letter] in fb.message and len(nb10.TRAINING_OPTIONS[letter]) > 80
    assert "not answered yet" in nb10.check_training_answer(None).message
    assert nb10.check_training_answer("e").mistake == "not_an_option"


def test_training_explanations_quote_the_records():
    import json

    from vitlib.course_files import course_file
    text = " ".join(nb10.TRAINING_OPTIONS.values()) + nb10.TRAINING_WHY
    records = [json.loads(course_file(f).read_text())
               for f in ("vit_fashion_segment.json", "vit_fashion_segment_scratch.json")]
    for r in records:
        assert f"{r['test']['mean_iou']:.2f}" in text
        first, second = r["train_loss"]
        assert f"{first:.2f} -> {second:.2f}" in text and second < first  # still falling
        assert f"{first - second:.2f}" in text  # the second epoch's drop
    (a1, a2), (b1, b2) = (r["train_loss"] for r in records)
    assert f"{b1 - a1:.2f}, then {b2 - a2:.2f}" in text and b2 - a2 > b1 - a1  # the lead grew


def test_hungarian_is_at_most_cubic():
    why = nb10.check_matchings_prediction(970_200).message
    assert "at most about 100^3" in why and "100 x 3^2" in why
