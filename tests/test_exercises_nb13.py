"""Checkers of notebook 13: the solutions pass, each usual mistake gets its own hint.

The references here are written independently of the checkers: the parameter count from the
layer's own weights and by formula, GIoU with a per-pair loop and the box areas by hand."""

from __future__ import annotations

import numpy as np
import pytest

from vitlib import detr
from vitlib.exercises import nb13

pytestmark = pytest.mark.single_backend


def hint(mistakes, name):
    return next(m.hint for m in mistakes if m.name == name)


# --- predict-then-run: decoder parameters ------------------------------------------------------

def test_decoder_params_right_answer_passes():
    block = detr.DecoderBlock(4, 256)
    block.build((2, 8, 64), (2, 197, 192))
    counted = sum(int(np.prod(w.shape)) for w in block.weights)
    by_formula = 4 * (64 * 64 + 64) + 2 * (64 * 64 + 64) + 2 * (192 * 64 + 64) \
        + (64 * 256 + 256) + (256 * 64 + 64) + 3 * 2 * 64
    assert counted == by_formula == 83_136
    fb = nb13.check_decoder_params_prediction(83_136)
    assert fb.passed and "192 -> 64" in fb.message


def test_decoder_params_the_notebooks_own_block_is_not_the_answer():
    """The shipped decoder (memory 96, MLP 128): (108,800 - 128) / 2 printed in the notebook."""
    block = detr.DecoderBlock(4, 128)
    block.build((1, 8, 64), (1, 197, 96))
    assert block.count_params() == (108_800 - 128) // 2 == 54_336
    fb = nb13.check_decoder_params_prediction(54_336)
    assert not fb.passed and fb.mistake == "shipped_block", fb.message


@pytest.mark.parametrize("value, name", [
    (66_752, "memory_as_query_width"), (82_752, "no_norms"), (66_496, "no_self_attention"),
    (83_136 + 512, "counted_queries"), (83_136 + 197 * 192, "counted_tokens"),
    (83_136 - (4 * 64 + 4 * 64 + 256 + 64), "no_biases"),
    (83_136 - 2 * (64 * 64 + 64) + 2 * (192 * 64 + 64), "all_from_memory"),
    (83_136 - (64 * 256 + 256 + 256 * 64 + 64) + (64 * 192 + 192 + 192 * 64 + 64), "mlp_of_memory_width"),
])
def test_decoder_params_mistakes_get_their_hint(value, name):
    fb = nb13.check_decoder_params_prediction(value)
    assert not fb.passed and fb.mistake == name, fb.message


def test_decoder_params_unanswered_and_not_a_number():
    assert "not answered yet" in nb13.check_decoder_params_prediction(None).message
    assert nb13.check_decoder_params_prediction("83136").mistake == "not_a_number"


# --- transfer: the GIoU cost -------------------------------------------------------------------

def _giou_pair(a, b):
    """GIoU of two boxes (cx, cy, w, h), one pair at a time, from the corners."""
    def corners(box):
        cx, cy, w, h = box
        return cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2

    ax0, ay0, ax1, ay1 = corners(a)
    bx0, by0, bx1, by1 = corners(b)
    inter = max(0.0, min(ax1, bx1) - max(ax0, bx0)) * max(0.0, min(ay1, by1) - max(ay0, by0))
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    enclosing = (max(ax1, bx1) - min(ax0, bx0)) * (max(ay1, by1) - min(ay0, by0))
    return inter / union - (enclosing - union) / enclosing


def learner_cost(term="giou", l1=True, prob=True, transpose=False):
    def fn(probs, pred_boxes, classes, boxes):
        out = np.zeros((len(pred_boxes), len(boxes)))
        for i in range(len(pred_boxes)):
            for j in range(len(boxes)):
                c = -probs[i, classes[j]] if prob else 0.0
                if l1:
                    c += 5 * np.abs(pred_boxes[i] - boxes[j]).sum()
                g = _giou_pair(pred_boxes[i], boxes[j])
                if term == "iou":
                    g = detr.box_iou(pred_boxes[i:i + 1], boxes[j:j + 1])[0, 0]
                c += 2 * (g if term == "giou_itself" else 1 - g)
                out[i, j] = c
        return out.T if transpose else out
    return fn


def test_giou_cost_solution_passes_and_extends_the_notebook_cost():
    fb = nb13.check_giou_cost(learner_cost(), seed=0)
    assert fb.passed, fb.message
    # the notebook's cost alone (no GIoU term) is not the answer
    fb = nb13.check_giou_cost(lambda p, b, c, t: detr.matching_cost(p, b, c, t), seed=0)
    assert not fb.passed
    # a far-away box: IoU is 0, GIoU is negative, so the GIoU term is larger than 2 x (1 - 0)
    far = nb13._giou(np.array([[0.2, 0.2, 0.1, 0.1]]), np.array([[0.8, 0.8, 0.1, 0.1]]))[0, 0]
    assert far == pytest.approx(_giou_pair([0.2, 0.2, 0.1, 0.1], [0.8, 0.8, 0.1, 0.1]))
    assert far < 0


@pytest.mark.parametrize("fn, name", [
    (learner_cost(term="iou"), "plain_iou"),
    (learner_cost(term="giou_itself"), "giou_not_loss"),
    (learner_cost(l1=False), "no_l1"),
    (learner_cost(prob=False), "no_probability"),
    (learner_cost(transpose=True), "transposed"),
])
def test_giou_cost_mistakes_get_their_hint(fn, name):
    for seed in range(3):
        fb = nb13.check_giou_cost(fn, seed=seed)
        assert not fb.passed and fb.mistake == name, fb.message
    assert hint(nb13.GIOU_MISTAKES, name)


def test_giou_cost_not_written_yet():
    def fn(*args):
        raise NotImplementedError
    assert "not written yet" in nb13.check_giou_cost(fn).message


# --- interpret ---------------------------------------------------------------------------------

def test_results_answer_each_choice():
    fb = nb13.check_results_answer("c")
    assert fb.passed and "0.73" in fb.message
    for letter in "abd":
        fb = nb13.check_results_answer(letter)
        assert not fb.passed and fb.mistake == letter and nb13.RESULTS_OPTIONS[letter] in fb.message
    assert "not answered yet" in nb13.check_results_answer(None).message
    assert nb13.check_results_answer("e").mistake == "not_an_option"
