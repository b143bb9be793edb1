"""Checkers for notebook 06 (assemble and train).

- :func:`check_vit_param_count`: the parameter count of a whole ViT from its configuration, by
  formula (patch embedding, class token, position embedding, L encoder blocks, final LayerNorm,
  head).
- :func:`check_warmup_cosine`: the learning rate at a step of a linear warm-up followed by a cosine
  decay to 0 (the course's schedule).

The references below are written again here in plain Python, independently of :mod:`vitlib`.
"""

from __future__ import annotations

import math

import numpy as np

from ._core import Feedback, Mistake, check

# --- vit_param_count -----------------------------------------------------------------------
# config: a dict like vitlib.vit_config("fashion-small"), with image_size (int), patch_size P,
# channels C, num_classes K, dim D, depth L, mlp_dim M (and num_heads, which changes nothing).
# N = (image_size / P)^2 patches.
#   patch embedding (the matrix E and its bias): P*P*C*D + D
#   class token x_class: D;  position embedding E_pos: (N + 1) * D
#   L blocks, each 4D + 4(D^2 + D) + 2DM + M + D;  final LayerNorm: 2D;  head: D*K + K


def _parts(config, biases=True, patch_channels=True, class_token=True, position_rows=1,
           blocks=None):
    p, c, k = config["patch_size"], config["channels"], config["num_classes"]
    d, depth, m = config["dim"], config["depth"], config["mlp_dim"]
    n = (config["image_size"] // p) ** 2
    b = 1 if biases else 0
    block = 4 * d + 4 * (d * d + b * d) + 2 * d * m + b * (m + d)
    return {
        "patch_embedding": p * p * (c if patch_channels else 1) * d + b * d,
        "class_token": d if class_token else 0,
        "position_embedding": (n + position_rows) * d,
        "blocks": (depth if blocks is None else blocks) * block,
        "norm": 2 * d,
        "head": d * k + b * k,
    }


def _total(config, **kwargs):
    return sum(_parts(config, **kwargs).values())


def _vit_param_count(config):
    return _total(config)


VIT_PARAMS_MISTAKES = (
    Mistake("class_token", lambda cfg: _total(cfg, class_token=False),
            "your count is exactly `dim` short. The class token brings `dim` parameters twice: the "
            "learned token x_class itself (dim numbers), and its own row of E_pos, which has N + 1 "
            "rows (N patches + the class token), not N. One of the two is missing."),
    Mistake("class_token_and_its_position", lambda cfg: _total(cfg, class_token=False,
                                                                position_rows=0),
            "your count is 2 x `dim` short: the class token x_class (dim) and its row of the "
            "position embedding (E_pos has N + 1 rows, not N) are both missing; or, if you counted "
            "those, the final LayerNorm (gamma and beta, 2 x dim) of Eq. 4."),
    Mistake("no_biases", lambda cfg: _total(cfg, biases=False),
            "you forgot the biases: the patch embedding (dim), the Q, K, V and output projections "
            "(4 x dim per block), both MLP layers (mlp_dim + dim per block) and the head "
            "(num_classes) each have one bias per output."),
    Mistake("one_block", lambda cfg: _total(cfg, blocks=1),
            "you counted one encoder block; the encoder has `depth` of them (L in Eq. 2-3), each "
            "with its own weights."),
    Mistake("patch_without_channels", lambda cfg: _total(cfg, patch_channels=False),
            "the patch embedding E maps a flattened patch of P x P x C numbers to dim: its matrix "
            "is (patch_size**2 * channels) x dim. You left out the channels (3 for RGB)."),
)


def _vit_config_case(rng):
    patch = int(rng.choice([2, 4, 7, 8, 16]))
    dim = int(rng.integers(2, 25)) * 8
    return ({
        "image_size": patch * int(rng.integers(2, 15)), "patch_size": patch,
        "channels": int(rng.choice([1, 3])) if rng.random() < 0.7 else 3,
        "num_classes": int(rng.integers(2, 1001)), "dim": dim, "depth": int(rng.integers(2, 13)),
        "num_heads": 4, "mlp_dim": dim * int(rng.choice([2, 4])),
    },)


def _vit_config_cases():
    """The first cases are the course's fashion-small and the paper's ViT-B/16, then random ones."""
    fixed = [
        {"image_size": 28, "patch_size": 4, "channels": 1, "num_classes": 10, "dim": 64,
         "depth": 4, "num_heads": 4, "mlp_dim": 128},
        {"image_size": 224, "patch_size": 16, "channels": 3, "num_classes": 1000, "dim": 768,
         "depth": 12, "num_heads": 12, "mlp_dim": 3072},
    ]
    state = {"i": 0}

    def make_case(rng):
        i = state["i"]
        state["i"] += 1
        return (dict(fixed[i]),) if i < len(fixed) else _vit_config_case(rng)

    return make_case


def check_vit_param_count(fn, cases: int = 6, seed: int | None = None) -> Feedback:
    """Check ``fn(config: dict) -> int``: every parameter of a class-token ViT, exactly.

    The first two cases are fashion-small (139,018) and ViT-B/16 (86,567,656), then random ones.
    """
    return check(fn, _vit_param_count, _vit_config_cases(), VIT_PARAMS_MISTAKES,
                 title="vit_param_count", cases=cases, atol=0, rtol=0, seed=seed)


# --- warmup_cosine -------------------------------------------------------------------------
# lr(step) = peak * step / warmup                                  for step < warmup
#          = peak / 2 * (1 + cos(pi * (step - warmup) / (total - warmup)))  for warmup <= step <= total
# (and 0 after total). The checker calls the learner once per step 0 .. total, with Python ints.


def _warmup_cosine(step, peak, warmup, total):
    if step < warmup:
        return peak * step / warmup
    progress = min((step - warmup) / (total - warmup), 1.0)
    return 0.5 * peak * (1 + math.cos(math.pi * progress))


def _no_warmup(step, peak, warmup, total):
    return 0.5 * peak * (1 + math.cos(math.pi * min(step / total, 1.0)))


def _divided_by_total(step, peak, warmup, total):
    if step < warmup:
        return peak * step / warmup
    return 0.5 * peak * (1 + math.cos(math.pi * min((step - warmup) / total, 1.0)))


def _without_one_plus(step, peak, warmup, total):
    if step < warmup:
        return peak * step / warmup
    return peak * math.cos(math.pi * min((step - warmup) / (total - warmup), 1.0))


def _half_period(step, peak, warmup, total):
    if step < warmup:
        return peak * step / warmup
    progress = min((step - warmup) / (total - warmup), 1.0)
    return 0.5 * peak * (1 + math.cos(0.5 * math.pi * progress))  # ends at peak / 2


def _decay_from_zero(step, peak, warmup, total):
    if step < warmup:
        return peak * step / warmup
    return 0.5 * peak * (1 + math.cos(math.pi * min(step / total, 1.0)))


def _curve(fn):
    """A per-step schedule -> a function of (peak, warmup, total) giving lr at steps 0 .. total."""
    def curve(peak, warmup, total):
        values = [fn(step, peak, warmup, total) for step in range(total + 1)]
        if any(v is None for v in values):
            return None
        return np.array([float(np.asarray(v)) for v in values])
    return curve


WARMUP_COSINE_MISTAKES = (
    Mistake("no_warmup", _curve(_no_warmup),
            "there is no warm-up: the rate starts at `peak` at step 0. For step < warmup it must "
            "rise linearly from 0: peak * step / warmup."),
    Mistake("decay_from_zero", _curve(_decay_from_zero),
            "the cosine starts at step 0 instead of after the warm-up, so the rate drops as soon "
            "as the warm-up ends. Measure the progress from the end of the warm-up: "
            "(step - warmup) / (total - warmup)."),
    Mistake("divided_by_total", _curve(_divided_by_total),
            "the cosine does not reach 0 at the last step: you divided (step - warmup) by `total`; "
            "the decay lasts total - warmup steps, so divide by (total - warmup)."),
    Mistake("half_period", _curve(_half_period),
            "the cosine does not reach 0 at the last step: the decay must cover half a period, "
            "cos(pi * progress) with progress from 0 to 1, so that (1 + cos) goes from 2 to 0."),
    Mistake("without_one_plus", _curve(_without_one_plus),
            "the rate becomes negative: peak * cos(pi * progress) goes from +peak to -peak. Use "
            "peak / 2 * (1 + cos(pi * progress)), which goes from peak to 0."),
)


def _schedule_case(rng):
    peak = float(rng.choice([1e-4, 5e-4, 1e-3, 2e-3, 3e-3]))
    warmup = int(rng.integers(2, 21))
    return peak, warmup, warmup + int(rng.integers(10, 101))


def check_warmup_cosine(fn, cases: int = 5, seed: int | None = None) -> Feedback:
    """Check ``fn(step: int, peak, warmup, total) -> float`` at every step 0 .. total."""
    return check(_curve(fn), _curve(_warmup_cosine), _schedule_case, WARMUP_COSINE_MISTAKES,
                 title="warmup_cosine", cases=cases, atol=1e-9, rtol=1e-5, seed=seed)
