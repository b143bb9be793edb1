"""Checkers for notebook 13 (detection with DETR).

- :func:`check_decoder_params_prediction` (predict-then-run): ``prediction``, a whole number: the
  parameters of one :class:`vitlib.detr.DecoderBlock` whose queries are 64 wide and whose memory
  tokens are 192 wide (a ViT-Tiny encoder; 4 heads, MLP 256), a configuration printed nowhere in
  the notebook (its own decoder reads 96-wide tokens with an MLP of 128); the checker builds the
  block and counts.
- :func:`check_giou_cost` (transfer): ``fn(probs (N, K), pred_boxes (N, 4), classes (M,),
  boxes (M, 4)) -> (N, M)``, DETR's full matching cost with the generalised-IoU term,
  ``-p_i(c_j) + 5 |b_i - b_j|_1 + 2 (1 - GIoU(b_i, b_j))``; the notebook's cost had only the first
  two terms.
- :func:`check_results_answer` (interpret): a letter, what the gap between DETR's "located"
  (0.81) and "found" (0.59) on one-item canvases says (Step 5's table by number of items); each
  wrong letter gets its own explanation.

The references are written again here in plain NumPy, independently of :mod:`vitlib.detr`.
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, Mistake, check, choose, compare_prediction

# --- predict-then-run: the parameters of a decoder block ----------------------------------------
# Queries (batch, 8, 64), memory (batch, 197, 192), 4 heads, MLP 256: self-attention (Q, K, V, O
# from 64 to 64), cross-attention (Q and O 64 -> 64; K and V from the memory's 192 to 64), the MLP
# 64 -> 256 -> 64, three LayerNorms (a scale and a shift of 64 each).

DIM, MEMORY_DIM, HEADS, MLP_DIM, QUERIES, TOKENS = 64, 192, 4, 256, 8, 197
SHIPPED_MEMORY_DIM, SHIPPED_MLP_DIM = 96, 128  # the notebook's own decoder blocks


def _dense(n_in, n_out, bias=True):
    return n_in * n_out + (n_out if bias else 0)


def _decoder_count(memory_dim=MEMORY_DIM, norms=True, self_attention=True, mlp_dim=MLP_DIM,
                   bias=True, all_from_memory=False):
    d = DIM
    attn_self = 4 * _dense(d, d, bias) if self_attention else 0
    if all_from_memory:  # all four cross-attention projections counted as memory_dim x d
        attn_cross = 4 * _dense(memory_dim, d, bias)
    else:
        attn_cross = 2 * _dense(d, d, bias) + 2 * _dense(memory_dim, d, bias)
    mlp = _dense(d, mlp_dim, bias) + _dense(mlp_dim, d, bias)
    return attn_self + attn_cross + mlp + (3 * 2 * d if norms else 0)


def check_decoder_params_prediction(prediction) -> Feedback:
    """Build ``DecoderBlock(4, 256)`` on queries (1, 8, 64) and memory (1, 197, 192), count its
    parameters and compare with ``prediction``."""
    from ..detr import DecoderBlock

    block = DecoderBlock(HEADS, MLP_DIM)
    block.build((1, QUERIES, DIM), (1, TOKENS, MEMORY_DIM))
    measured = block.count_params()
    why = (f"Self-attention: 4 projections 64 -> 64 with biases, 4 x (64 x 64 + 64) = "
           f"{4 * _dense(DIM, DIM):,}. Cross-attention: Q and the output 64 -> 64, but K and V read "
           f"the memory, {MEMORY_DIM} -> 64: 2 x {_dense(DIM, DIM):,} + 2 x "
           f"{_dense(MEMORY_DIM, DIM):,} = {2 * _dense(DIM, DIM) + 2 * _dense(MEMORY_DIM, DIM):,}. "
           f"MLP 64 -> {MLP_DIM} -> 64: {_dense(DIM, MLP_DIM) + _dense(MLP_DIM, DIM):,}. Three "
           f"LayerNorms: 3 x 2 x 64 = 384. Only K and V grow with the encoder: the rest of the "
           f"block keeps the queries' width. The 8 queries and the 197 tokens are not parameters "
           f"of the block: it takes any number of either.")
    mistakes = [
        ("shipped_block", _decoder_count(memory_dim=SHIPPED_MEMORY_DIM, mlp_dim=SHIPPED_MLP_DIM),
         "That is a block of the notebook's own decoder (memory 96 wide, MLP 128): half of the "
         "108,800 printed in Step 2, less the final norm. This block reads a 192-wide memory and "
         "has an MLP of 256: count again with those widths."),
        ("memory_as_query_width", _decoder_count(memory_dim=DIM),
         "You gave the cross-attention's keys and values the queries' width. They are computed "
         "from the MEMORY (the encoder's tokens, 192 wide): W_K and W_V are 192 x 64."),
        ("all_from_memory", _decoder_count(all_from_memory=True),
         "You made all four cross-attention projections read 192 wide. Only K and V read the "
         "memory; Q reads the queries (64 wide), and the output projection returns to the "
         "queries' width, 64 -> 64, so that the residual can add it."),
        ("no_biases", _decoder_count(bias=False),
         "Close: you counted the weight matrices but not their biases. Every projection (Q, K, V "
         "and the output of both attentions) and both MLP layers add one bias per output unit: "
         "832 in all."),
        ("no_norms", _decoder_count(norms=False),
         "Close: you left out the three LayerNorms, each with a scale and a shift per feature "
         "(2 x 64 parameters)."),
        ("no_self_attention", _decoder_count(self_attention=False),
         "You counted one attention layer. A decoder block has two: self-attention among the "
         "queries, then cross-attention to the memory."),
        ("counted_queries", _decoder_count() + QUERIES * DIM,
         "You added the 8 x 64 object queries. They are the block's input (a separate layer, "
         "LearnedQueries), not its parameters: the block works for any number of queries."),
        ("counted_tokens", _decoder_count() + TOKENS * MEMORY_DIM,
         "You counted the 197 memory tokens. They are data flowing in, not parameters: the same "
         "block reads a memory of any length."),
        ("mlp_of_memory_width", _decoder_count(mlp_dim=MEMORY_DIM),
         "Your MLP is 192 wide, the memory's width. The MLP works on the queries alone: 64 -> 256 "
         "-> 64, as stated."),
    ]
    return compare_prediction(prediction, measured, title="decoder block parameters", why=why,
                              mistakes=[m for m in mistakes if m[1] != measured])


# --- transfer: DETR's matching cost with the generalised IoU ------------------------------------
# cost[i, j] = -probs[i, classes[j]] + 5 * |pred_boxes[i] - boxes[j]|_1 + 2 * (1 - GIoU(i, j)),
# GIoU(A, B) = IoU(A, B) - (|C| - |A u B|) / |C|, C the smallest box enclosing A and B;
# boxes (cx, cy, w, h).

L1_WEIGHT, GIOU_WEIGHT = 5.0, 2.0


def _corners(b, half=0.5):
    b = np.asarray(b, np.float64)
    return b[:, 0] - half * b[:, 2], b[:, 1] - half * b[:, 3], b[:, 0] + half * b[:, 2], b[:, 1] + half * b[:, 3]


def _giou(a, b, enclosing=True, generalised=True, half=0.5):
    ax0, ay0, ax1, ay1 = _corners(a, half)
    bx0, by0, bx1, by1 = _corners(b, half)
    iw = np.clip(np.minimum(ax1[:, None], bx1[None]) - np.maximum(ax0[:, None], bx0[None]), 0, None)
    ih = np.clip(np.minimum(ay1[:, None], by1[None]) - np.maximum(ay0[:, None], by0[None]), 0, None)
    inter = iw * ih
    area_a = ((ax1 - ax0) * (ay1 - ay0))[:, None]
    area_b = ((bx1 - bx0) * (by1 - by0))[None]
    union = area_a + area_b - inter
    iou = inter / union
    if not generalised:
        return iou
    cw = np.maximum(ax1[:, None], bx1[None]) - np.minimum(ax0[:, None], bx0[None])
    ch = np.maximum(ay1[:, None], by1[None]) - np.minimum(ay0[:, None], by0[None])
    area_c = cw * ch
    return iou - (area_c - (union if enclosing else inter)) / area_c


def _cost(probs, pred_boxes, classes, boxes, giou_term=None, l1=True, prob=True, transpose=False):
    probs, pred_boxes = np.asarray(probs, np.float64), np.asarray(pred_boxes, np.float64)
    boxes = np.asarray(boxes, np.float64)
    out = np.zeros((len(pred_boxes), len(boxes)))
    if prob:
        out -= probs[:, np.asarray(classes)]
    if l1:
        out += L1_WEIGHT * np.abs(pred_boxes[:, None] - boxes[None]).sum(-1)
    out += GIOU_WEIGHT * (giou_term or (lambda a, b: 1 - _giou(a, b)))(pred_boxes, boxes)
    return out.T if transpose else out


def _ref_giou_cost(probs, pred_boxes, classes, boxes):
    return _cost(probs, pred_boxes, classes, boxes)


GIOU_MISTAKES = (
    Mistake("plain_iou", lambda *a: _cost(*a, giou_term=lambda p, b: 1 - _giou(p, b, generalised=False)),
            "you used the plain IoU. For boxes that do not overlap it is 0 whatever their distance, "
            "so it cannot tell a near miss from a far one. GIoU subtracts (|C| - |A u B|) / |C|, "
            "C the smallest box that encloses both."),
    Mistake("giou_not_loss", lambda *a: _cost(*a, giou_term=lambda p, b: _giou(p, b)),
            "you added GIoU itself, which is LARGE for a good pair. A cost must be small for a "
            "good pair: the term is L_iou = 1 - GIoU, 0 for a perfect box, up to 2 far away."),
    Mistake("minus_intersection", lambda *a: _cost(*a, giou_term=lambda p, b: 1 - _giou(p, b, enclosing=False)),
            "your penalty subtracts the intersection from |C|. GIoU's penalty is the part of the "
            "enclosing box C that the UNION does not cover: (|C| - |A u B|) / |C|."),
    Mistake("full_widths", lambda *a: _cost(*a, giou_term=lambda p, b: 1 - _giou(p, b, half=1.0)),
            "your boxes are twice as large: a box (cx, cy, w, h) runs from cx - w/2 to cx + w/2, "
            "and likewise in y."),
    Mistake("no_l1", lambda *a: _cost(*a, l1=False),
            "the L1 term is missing: DETR's L_box is 5 |b_i - b_j|_1 + 2 L_iou; keep the "
            "notebook's L1 term and ADD the GIoU term."),
    Mistake("no_probability", lambda *a: _cost(*a, prob=False),
            "the class term is missing: the cost starts with -p_i(c_j), the probability query i "
            "gives to object j's class."),
    Mistake("transposed", lambda *a: _cost(*a, transpose=True),
            "right values, wrong layout: one row per QUERY (prediction), one column per object, "
            "(N, M), as the notebook's cost matrix."),
)


def _giou_case(rng):
    n, m = int(rng.integers(3, 6)), int(rng.integers(1, 4))
    logits = rng.normal(size=(n, 11))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    pred = np.c_[rng.uniform(0.15, 0.85, (n, 2)), rng.uniform(0.1, 0.4, (n, 2))]
    boxes = np.c_[rng.uniform(0.15, 0.85, (m, 2)), rng.uniform(0.1, 0.4, (m, 2))]
    pred[0] = boxes[0] + np.r_[rng.uniform(-0.03, 0.03, 2), rng.uniform(-0.02, 0.02, 2)]  # overlaps
    pred[1, :2] = boxes[0, :2] + 0.5  # far away: plain IoU 0, GIoU < 0
    pred[1] = np.clip(pred[1], 0.05, 0.95)
    return probs, pred, rng.integers(0, 10, m), boxes


def check_giou_cost(fn, cases: int = 5, seed: int | None = None) -> Feedback:
    """Check ``fn(probs (N, K), pred_boxes (N, 4), classes (M,), boxes (M, 4)) -> (N, M)``."""
    return check(fn, _ref_giou_cost, _giou_case, GIOU_MISTAKES, title="giou_cost", cases=cases,
                 atol=1e-6, seed=seed)


# --- interpret: DETR's located but not found items, on one-item canvases -----------------------

# (a) loose boxes, (b) duplicates, (c) the class head (right), (d) the threshold
RESULTS_OPTIONS = {
    "a": ("'Located' already asks for a box with IoU >= 0.5, whatever the class: 0.81 of the items "
          "HAVE such a box. The gap to 0.59 lies among items whose box is good enough, so loose "
          "boxes cannot explain it."),
    "b": ("A second box on an item adds a false detection; it cannot take the item away. An item "
          "is found when ANY detection of its class has IoU >= 0.5 with it, and one-item canvases "
          "have a single item to share."),
    "c": "",
    "d": ("'Located' and 'found' are computed on the same detections, after the same threshold. "
          "A detection the threshold drops counts for neither, so the threshold can lower both "
          "scores but cannot open a gap between them."),
}
RESULTS_LETTER = "c"
RESULTS_WHY = ("The gap lies among the items that got a good box: 0.59 / 0.81 = 0.73 of DETR's "
               "located single items have a detection of the right class on them, against 0.87 / "
               "0.96 = 0.90 for the baseline, whose classifier sees one centred item, as in its "
               "training. DETR's class head reads frozen canvas tokens after minutes of training: "
               "on single items it fails more in naming than in placing.")


def check_results_answer(answer) -> Feedback:
    """Multiple choice on the gap between DETR's "located" and "found" on one-item canvases; the
    answer is ``"c"`` (its class head)."""
    return choose(answer, options=RESULTS_OPTIONS, correct=RESULTS_LETTER, why=RESULTS_WHY,
                  title="Located but not found")
