"""Checkers for notebook 10 (beyond classification).

- :func:`check_patch_labels`: pixel labels -> one label per patch (majority vote).
- :func:`check_mean_iou`: mean intersection over union over the labels present.
- :func:`check_best_matching`: DETR's one-to-one matching of predictions to targets.
- :func:`check_matchings_prediction` (predict-then-run): ``prediction``, a whole number: how many
  one-to-one matchings brute force tries for 100 queries and 3 objects; the checker enumerates
  them with ``itertools.permutations`` and counts.
- :func:`check_box_iou` (transfer): ``fn(boxes_a (n, 4), boxes_b (m, 4)) -> (n, m)``, the IoU of
  every pair of boxes given as (cx, cy, w, h), DETR's format (Exercise 2 did it for masks).
- :func:`check_training_answer` (interpret): a letter, what the two shipped segmenters' training
  loss per epoch (their records, Step 6) says; each wrong letter gets its own explanation.

The references below are written again here in plain NumPy and Python loops, independently of
:mod:`vitlib.segment`.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ._core import Feedback, Mistake, check, choose, compare_prediction

# --- patch labels ------------------------------------------------------------------------------
# mask (n, H, W) of ints 0..K-1 (0 = background), patch_size P -> (n, H / P, W / P): the most
# frequent label among each patch's P * P pixels, background included; ties to the smaller label.


def _patches(mask, p, transpose=True):
    n, h, w = mask.shape
    if transpose:
        return mask.reshape(n, h // p, p, w // p, p).transpose(0, 1, 3, 2, 4).reshape(n, h // p, w // p, p * p)
    return mask.reshape(n, h // p, w // p, p * p)  # wrong: mixes pixels of different patches


def _mode(values, ties="smaller", skip_background=False):
    counts = {}
    for v in values:
        counts[int(v)] = counts.get(int(v), 0) + 1
    if skip_background and any(k != 0 for k in counts):
        counts.pop(0, None)
    best = max(counts.values())
    winners = [k for k, c in counts.items() if c == best]
    return min(winners) if ties == "smaller" else max(winners)


def _patch_labels(mask, patch_size, ties="smaller", skip_background=False, transpose=True):
    blocks = _patches(np.asarray(mask), patch_size, transpose)
    out = np.zeros(blocks.shape[:3], dtype=np.int64)
    for idx in np.ndindex(*blocks.shape[:3]):
        out[idx] = _mode(blocks[idx], ties, skip_background)
    return out


def _ref_patch_labels(mask, patch_size):
    return _patch_labels(mask, patch_size)


PATCH_LABEL_MISTAKES = (
    Mistake("top_left_pixel", lambda m, p: np.asarray(m)[:, ::p, ::p],
            "you took one pixel per patch (mask[:, ::P, ::P]). A patch's label is a vote of ALL its "
            "P x P pixels: count each label in the patch and take the most frequent."),
    Mistake("centre_pixel", lambda m, p: np.asarray(m)[:, p // 2::p, p // 2::p],
            "you took the centre pixel of each patch. Count every label among the patch's P x P "
            "pixels and take the most frequent."),
    Mistake("max_label", lambda m, p: _patches(np.asarray(m), p).max(-1),
            "you took the largest label in each patch (max pooling). Labels are names, not "
            "amounts: take the most FREQUENT label (np.bincount(...).argmax())."),
    Mistake("ties_to_larger", lambda m, p: _patch_labels(m, p, ties="larger"),
            "right, except for ties: when two labels are equally frequent, the smaller label wins "
            "(what np.bincount(...).argmax() gives)."),
    Mistake("foreground_first", lambda m, p: _patch_labels(m, p, skip_background=True),
            "you gave a patch to an item as soon as it had any item pixel. Background (0) takes "
            "part in the vote like every other label."),
    Mistake("no_transpose", lambda m, p: _patch_labels(m, p, transpose=False),
            "your patches mix pixels from different places: reshape (n, H, W) to "
            "(n, H/P, P, W/P, P), then move the two P axes together with transpose(0, 1, 3, 2, 4) "
            "before you flatten them (notebook 01)."),
)


def _patch_label_case(rng):
    p = int(rng.choice([2, 3, 4]))
    rows = int(rng.integers(2, 5))
    cols = int(rng.integers(2, 5))
    while cols == rows:  # a non-square grid catches rows and columns mixed up
        cols = int(rng.integers(2, 5))
    k = int(rng.integers(3, 6))
    weights = np.r_[0.45, np.full(k - 1, 0.55 / (k - 1))]  # background is the most common label
    mask = rng.choice(k, size=(int(rng.integers(1, 4)), rows * p, cols * p), p=weights)
    return mask, p


def check_patch_labels(fn, cases: int = 6, seed: int | None = None) -> Feedback:
    """Check ``fn(mask (n, H, W) ints, patch_size) -> (n, H / patch_size, W / patch_size)``."""
    return check(fn, _ref_patch_labels, _patch_label_case, PATCH_LABEL_MISTAKES,
                 title="patch_labels", cases=cases, atol=0, rtol=0, seed=seed)


# --- mean IoU ----------------------------------------------------------------------------------
# true, pred (n, rows, cols) ints 0..K-1 -> float: for every label k that appears in true or in
# pred, IoU_k = |true == k and pred == k| / |true == k or pred == k| over all images together;
# then the plain mean of those IoUs (background included).


def _per_label(true, pred, num_classes, score):
    true, pred = np.asarray(true), np.asarray(pred)
    out = []
    for k in range(num_classes):
        t, p = true == k, pred == k
        out.append(score(int(np.sum(t & p)), int(np.sum(t)), int(np.sum(p)), int(np.sum(t | p))))
    return out


def _iou(i, t, p, u):
    return i / u if u else None


def _mean(values, absent=None):
    values = [absent if v is None else v for v in values]
    values = [v for v in values if v is not None]
    return float(np.mean(values))


def _ref_mean_iou(true, pred, num_classes):
    return _mean(_per_label(true, pred, num_classes, _iou))


def _per_image_mean_iou(true, pred, num_classes):
    return float(np.mean([_ref_mean_iou(t, p, num_classes) for t, p in zip(true, pred, strict=True)]))


IOU_MISTAKES = (
    Mistake("absent_as_zero", lambda t, p, k: _mean(_per_label(t, p, k, _iou), absent=0.0),
            "you averaged over all `num_classes` labels, counting a label that appears in neither "
            "`true` nor `pred` as IoU 0. Such a label has no IoU (0 / 0): leave it out of the mean."),
    Mistake("absent_as_one", lambda t, p, k: _mean(_per_label(t, p, k, _iou), absent=1.0),
            "you counted a label that appears in neither `true` nor `pred` as IoU 1. It has no IoU "
            "(0 / 0): leave it out of the mean."),
    Mistake("no_background", lambda t, p, k: _mean(_per_label(t, p, k, _iou)[1:]),
            "you left out the background (label 0). Here it is a label like the others: include it."),
    Mistake("recall", lambda t, p, k: _mean(_per_label(t, p, k, lambda i, tt, pp, u: i / tt if tt else None)),
            "you divided by the number of TRUE patches of each label (that is recall, the per-class "
            "accuracy). IoU divides by the UNION: true or predicted."),
    Mistake("union_as_sum", lambda t, p, k: _mean(_per_label(t, p, k, lambda i, tt, pp, u: i / (tt + pp) if u else None)),
            "your union counts the overlap twice: |A or B| = |A| + |B| - |A and B|."),
    Mistake("dice", lambda t, p, k: _mean(_per_label(t, p, k, lambda i, tt, pp, u: 2 * i / (tt + pp) if u else None)),
            "that is the Dice score 2|A and B| / (|A| + |B|). IoU is |A and B| / |A or B|."),
    Mistake("per_image", _per_image_mean_iou,
            "you averaged per image. Count the intersections and unions over ALL images together, "
            "then take one IoU per label."),
    Mistake("accuracy", lambda t, p, k: float(np.mean(np.asarray(t) == np.asarray(p))),
            "that is the per-patch accuracy. Mean IoU scores every label on its own, then averages "
            "the labels, so that rare labels count as much as the background."),
)


def _iou_case(rng):
    k = int(rng.integers(4, 8))
    n, rows, cols = int(rng.integers(2, 4)), int(rng.integers(3, 6)), int(rng.integers(3, 6))
    absent = int(rng.integers(1, k))  # one label appears nowhere (not even in pred)
    used = [c for c in range(k) if c != absent]
    weights = np.r_[0.5, np.full(len(used) - 1, 0.5 / (len(used) - 1))]
    true = rng.choice(used, size=(n, rows, cols), p=weights)
    pred = true.copy()
    wrong = rng.random(true.shape) < 0.3
    pred[wrong] = rng.choice(used, size=int(wrong.sum()))
    return true, pred, k


def check_mean_iou(fn, cases: int = 6, seed: int | None = None) -> Feedback:
    """Check ``fn(true, pred, num_classes) -> float`` (true, pred: (n, rows, cols) labels)."""
    return check(fn, _ref_mean_iou, _iou_case, IOU_MISTAKES, title="mean_iou", cases=cases,
                 atol=1e-9, seed=seed)


# --- best matching (DETR) ----------------------------------------------------------------------
# cost (predictions, targets), predictions >= targets -> (targets,) ints: the prediction matched
# to each target, all different, with the smallest total cost (brute force over every choice).


def _total(cost, assignment):
    return sum(cost[a, j] for j, a in enumerate(assignment))


def _brute_force(cost, best=min):
    cost = np.asarray(cost)
    choices = itertools.permutations(range(cost.shape[0]), cost.shape[1])
    return np.array(best(choices, key=lambda a: _total(cost, a)))


def _greedy_in_order(cost):
    cost, used, out = np.asarray(cost), set(), []
    for j in range(cost.shape[1]):
        i = min((i for i in range(cost.shape[0]) if i not in used), key=lambda i: cost[i, j])
        used.add(i)
        out.append(i)
    return np.array(out)


def _greedy_smallest_first(cost):
    cost = np.asarray(cost, dtype=float).copy()
    out = np.full(cost.shape[1], -1)
    for _ in range(cost.shape[1]):
        i, j = np.unravel_index(np.argmin(cost), cost.shape)
        out[j] = i
        cost[i, :], cost[:, j] = np.inf, np.inf
    return out


MATCHING_MISTAKES = (
    Mistake("argmin_per_target", lambda c: np.asarray(c).argmin(axis=0),
            "each target took its cheapest prediction, so two targets can share one prediction. "
            "The matching is one-to-one: try every way of giving each target its OWN prediction "
            "(itertools.permutations) and keep the cheapest in total."),
    Mistake("argmin_per_prediction", lambda c: np.asarray(c).argmin(axis=1),
            "you returned one entry per prediction. Return one per target (column of `cost`): the "
            "index of the prediction matched to it."),
    Mistake("greedy_in_order", _greedy_in_order,
            "greedy, target by target: the first target's cheap choice can force an expensive one "
            "on a later target. Minimise the TOTAL cost over all one-to-one choices."),
    Mistake("greedy_smallest_first", _greedy_smallest_first,
            "greedy, cheapest pair first: also not optimal in general. Minimise the TOTAL cost over "
            "all one-to-one choices (itertools.permutations(range(predictions), targets))."),
    Mistake("maximised", lambda c: _brute_force(c, best=max),
            "you found the most EXPENSIVE matching. The cost is what to minimise."),
)


def _matching_case(rng):
    for _ in range(1000):  # a case on which every greedy shortcut is wrong
        targets = int(rng.integers(2, 5))
        cost = rng.uniform(0, 1, size=(int(rng.integers(targets, 7)), targets))
        best = _brute_force(cost)
        if all(not np.array_equal(f(cost), best)
               for f in (_greedy_in_order, _greedy_smallest_first, lambda c: c.argmin(axis=0))):
            return (cost,)
    raise RuntimeError("no case found")  # pragma: no cover


def check_best_matching(fn, cases: int = 5, seed: int | None = None) -> Feedback:
    """Check ``fn(cost (predictions, targets)) -> (targets,)`` prediction indices (one-to-one)."""
    return check(fn, _brute_force, _matching_case, MATCHING_MISTAKES, title="best_matching",
                 cases=cases, atol=0, rtol=0, seed=seed)


# --- how many matchings (predict-then-run) ------------------------------------------------------
# DETR's 100 queries, an image with 3 objects: how many one-to-one matchings does brute force try?
# The checker enumerates them with itertools.permutations and counts.

QUERIES, OBJECTS = 100, 3


def check_matchings_prediction(prediction, queries: int = QUERIES, objects: int = OBJECTS) -> Feedback:
    """Count ``itertools.permutations(range(queries), objects)`` and compare with ``prediction``."""
    measured = sum(1 for _ in itertools.permutations(range(queries), objects))
    ten = math.perm(queries, 10)
    why = (f"The first object can take any of the {queries} queries, the second one of the "
           f"{queries - 1} left, the third one of {queries - 2}: {queries} x {queries - 1} x "
           f"{queries - 2} = {measured:,}. With 10 objects it would be {ten:.1e}: brute force is "
           f"hopeless, which is why DETR uses the Hungarian algorithm: at most about {queries}^3 = "
           f"{queries ** 3:,} steps, and far fewer with only {objects} objects (a rectangular "
           f"solver takes about {queries} x {objects}^2).")
    mistakes = [
        ("combinations", math.comb(queries, objects),
         f"That is the number of SETS of {objects} queries (order ignored). A matching also says "
         f"WHICH query gets which object: each set can be handed out in {objects}! = "
         f"{math.factorial(objects)} ways."),
        ("shared_queries", queries ** objects,
         f"That lets two objects share one query ({queries}^{objects}). The matching is "
         f"one-to-one: once a query is taken, the next object chooses among the ones left."),
        ("cost_entries", queries * objects,
         f"That is the number of entries in the cost matrix ({queries} x {objects}), the pairs "
         f"to score, not the ways to match every object at once."),
        ("objects_factorial", math.factorial(objects),
         f"That is the number of orders of the {objects} objects. Each object chooses among the "
         f"{queries} queries, not among the objects."),
    ]
    return compare_prediction(prediction, measured, title="matchings to try", why=why,
                              mistakes=[m for m in mistakes if m[1] != measured])


# --- box IoU (transfer: boxes instead of masks) ------------------------------------------------
# boxes_a (n, 4), boxes_b (m, 4) as (cx, cy, w, h), DETR's format -> (n, m): for each pair the
# area of the intersection over the area of the union.


def _corners(boxes, half=0.5):
    b = np.asarray(boxes, dtype=np.float64)
    return b[:, 0] - half * b[:, 2], b[:, 1] - half * b[:, 3], b[:, 0] + half * b[:, 2], b[:, 1] + half * b[:, 3]


def _box_iou(a, b, clip=True, union="union", corners=_corners, transpose=False):
    ax0, ay0, ax1, ay1 = corners(a)
    bx0, by0, bx1, by1 = corners(b)
    w = np.minimum(ax1[:, None], bx1[None]) - np.maximum(ax0[:, None], bx0[None])
    h = np.minimum(ay1[:, None], by1[None]) - np.maximum(ay0[:, None], by0[None])
    if clip:
        w, h = np.maximum(w, 0), np.maximum(h, 0)
    inter = w * h
    area_a = ((ax1 - ax0) * (ay1 - ay0))[:, None]
    area_b = ((bx1 - bx0) * (by1 - by0))[None]
    den = {"union": area_a + area_b - inter, "sum": area_a + area_b,
           "first": area_a + 0 * area_b}[union]
    out = inter / den
    return out.T if transpose else out


def _ref_box_iou(a, b):
    return _box_iou(a, b)


def _as_corners(boxes):  # reads (cx, cy, w, h) as if it were (x0, y0, x1, y1)
    b = np.asarray(boxes, dtype=np.float64)
    x0, x1 = np.minimum(b[:, 0], b[:, 2]), np.maximum(b[:, 0], b[:, 2])
    y0, y1 = np.minimum(b[:, 1], b[:, 3]), np.maximum(b[:, 1], b[:, 3])
    return x0, y0, x1, y1


BOX_IOU_MISTAKES = (
    Mistake("no_clip", lambda a, b: _box_iou(a, b, clip=False),
            "boxes that do not overlap got a non-zero IoU: when the overlap's width or height "
            "comes out negative there is no intersection. Clip both at 0 (np.maximum(w, 0)) "
            "BEFORE multiplying them (two negatives make a positive area)."),
    Mistake("union_as_sum", lambda a, b: _box_iou(a, b, union="sum"),
            "your union counts the overlap twice: |A or B| = area A + area B - intersection."),
    Mistake("over_first_area", lambda a, b: _box_iou(a, b, union="first"),
            "you divided by the area of the box from `boxes_a` only. IoU divides by the UNION "
            "of the two boxes: area A + area B - intersection."),
    Mistake("full_widths", lambda a, b: _box_iou(a, b, corners=lambda x: _corners(x, half=1.0)),
            "your boxes are twice as large: a box (cx, cy, w, h) goes from cx - w/2 to cx + w/2 "
            "(half the width on each side), and likewise in y."),
    Mistake("read_as_corners", lambda a, b: _box_iou(a, b, corners=_as_corners),
            "you read the boxes as corners (x0, y0, x1, y1). DETR's boxes are (cx, cy, w, h): "
            "centre, width, height. Convert first: x0 = cx - w/2, x1 = cx + w/2, and likewise in y."),
    Mistake("transposed", lambda a, b: _box_iou(a, b, transpose=True),
            "right values, wrong layout: return (len(boxes_a), len(boxes_b)), one row per box of "
            "`boxes_a`, as DETR's cost matrix (queries x targets)."),
)


def _box_case(rng):
    while True:
        n, m = int(rng.integers(2, 5)), int(rng.integers(2, 6))
        if n == m:
            continue
        a = np.c_[rng.uniform(0.2, 0.8, (n, 2)), rng.uniform(0.05, 0.5, (n, 2))]
        b = np.c_[rng.uniform(0.2, 0.8, (m, 2)), rng.uniform(0.05, 0.5, (m, 2))]
        b[0] = a[0] + np.r_[rng.uniform(-0.05, 0.05, 2), rng.uniform(-0.03, 0.03, 2)]  # overlaps
        iou = _ref_box_iou(a, b)
        ax0, ay0, ax1, ay1 = _corners(a)
        bx0, by0, bx1, by1 = _corners(b)
        apart_x = (np.minimum(ax1[:, None], bx1[None]) < np.maximum(ax0[:, None], bx0[None]))
        apart_y = (np.minimum(ay1[:, None], by1[None]) < np.maximum(ay0[:, None], by0[None]))
        if (apart_x & apart_y).any() and (apart_x ^ apart_y).any() and (iou > 0.2).any():
            return a, b


def check_box_iou(fn, cases: int = 5, seed: int | None = None) -> Feedback:
    """Check ``fn(boxes_a (n, 4), boxes_b (m, 4)) -> (n, m)`` pairwise IoU, boxes (cx, cy, w, h)."""
    return check(fn, _ref_box_iou, _box_case, BOX_IOU_MISTAKES, title="box_iou", cases=cases,
                 atol=1e-9, seed=seed)


# --- interpret: the two fine-tuned segmenters' training loss -------------------------------------
# The records (data/vit_fashion_segment.json, data/vit_fashion_segment_scratch.json): mean training
# loss per epoch 0.5045, 0.3233 (from the classifier) and 0.5473, 0.4338 (from random weights);
# test mean IoU 0.44 and 0.29 on 300 canvases of test items.

TRAINING_OPTIONS = {
    "a": ("Both losses still fell a lot in the second epoch (by 0.18 and 0.11, a third and a fifth "
          "of their value): neither run has converged. 0.44 against 0.29 is where the two starts "
          "stand after the same 2,000 steps, not where they would end."),
    "b": "",
    "c": ("Overfitting is a training loss that keeps falling while the TEST score stays behind. "
          "The run with the lower training loss (0.32) also has the higher mean IoU on canvases "
          "of test items (0.44 against 0.29): the classifier's start helps on images it never saw."),
    "d": ("The first epoch's mean loss (0.50 against 0.55) includes the new 11-label head's "
          "random start, and it is already lower from the classifier. The gap then grew, to 0.32 "
          "against 0.43 in epoch 2, and on the test canvases to 0.44 against 0.29 mean IoU (one "
          "run each: a measurement to repeat, but nothing here says 'noise')."),
}
TRAINING_WHY = ("Epoch 1 to epoch 2: 0.50 -> 0.32 from the classifier, 0.55 -> 0.43 from random "
                "weights. Both still fall, so neither has finished; the classifier's start is "
                "ahead in both epochs and its lead grew (0.04, then 0.11). With more steps the "
                "test gap (mean IoU 0.44 against 0.29) may shrink or grow: these records cannot "
                "say, and each is one run.")


def check_training_answer(answer) -> Feedback:
    """Multiple choice on the two fine-tuned segmenters' training loss per epoch; the right
    answer is ``"b"``."""
    return choose(answer, options=TRAINING_OPTIONS, correct="b", why=TRAINING_WHY,
                  title="Reading the segmenters' training loss")
