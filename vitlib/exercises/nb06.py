"""Checkers for notebook 06 (assemble and train).

- :func:`check_vit_param_count`: the parameter count of a whole ViT from its configuration, by
  formula (patch embedding, class token, position embedding, L encoder blocks, final LayerNorm,
  head).
- :func:`check_warmup_cosine`: the learning rate at a step of a linear warm-up followed by a cosine
  decay to 0 (the course's schedule).
- :func:`check_augmentation_prediction` (predict-then-run): the learner's number of different
  versions of one training image that the recipe's augmentation (shifts of up to 1 pixel in each
  direction, left-right mirror) can produce; the checker draws one image 720 times with a real
  ``vitlib.train.AugmentedBatches`` and counts the distinct results (right: 3 x 3 x 2 = 18).
- :func:`check_vit_param_count_mean` (transfer): ``fn(config) -> int``, the parameters of a ViT
  with mean pooling (no class token) on non-square images, ``image_size = (H, W)``; checked on
  random configurations against a formula written for that shape (the first case is
  fashion-small on 28x56 images: 142,026).
- :func:`check_time_curve_answer` (interpret): a letter, what Step 5's accuracy-against-time
  figure supports; every wrong letter is explained (right: "b").

The references below are written again here in plain Python, independently of :mod:`vitlib`.
"""

from __future__ import annotations

import math

import numpy as np

from ._core import Feedback, Mistake, check, choose, compare_prediction

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


# --- predict-then-run: how many versions of one image the augmentation makes ------------------
# The recipe (max_shift = 1, flip = True): AugmentedBatches pads each image by 1 pixel, cuts a
# 28x28 window at one of 3 x 3 offsets (vertical and horizontal drawn independently) and mirrors
# it left-right half of the time: 3 x 3 x 2 = 18 versions. The experiment draws one image 720 times
# (a random-noise image, so that no two versions coincide by symmetry) and counts the distinct
# results. A left-right symmetric image gives only 9: its mirror image is one of its shifts.

DRAWS = 720


def measure_versions(symmetric: bool = False, max_shift: int = 1, flip: bool = True,
                     seed: int = 0) -> int:
    """Distinct images among 720 augmented copies of one 28x28 image (random noise, or noise made
    left-right symmetric), made by a real ``AugmentedBatches`` with the given settings."""
    from ..train import AugmentedBatches

    image = np.random.default_rng(seed).random((28, 28, 1)).astype(np.float32)
    if symmetric:
        image = (image + image[:, ::-1]) / 2
    copies = np.repeat(image[None], DRAWS, axis=0)
    batches = AugmentedBatches(copies, np.zeros(DRAWS, np.int64), DRAWS, max_shift=max_shift,
                               flip=flip, seed=seed)
    augmented, _ = batches[0]
    return len(np.unique(augmented.reshape(DRAWS, -1), axis=0))


AUGMENTATION_MISTAKES = (
    ("no_flip", 9,
     "9 = 3 x 3 counts the shifts only (up, none or down, times left, none or right). Each of "
     "them is also mirrored left-right half of the time, and a mirrored coat is a different "
     "array: twice as many."),
    ("no_zero_shift", 8,
     "'Up to 1 pixel' includes 0: each direction has three offsets (-1, 0, +1), not two. "
     "3 x 3 shifts, each mirrored or not."),
    ("one_axis_at_a_time", 10,
     "You counted five positions (unshifted, or 1 pixel up, down, left or right), each mirrored or "
     "not. The vertical and the horizontal shift are drawn independently, so diagonal shifts "
     "(up and left, ...) occur too: 3 x 3 positions."),
    ("one_axis", 6,
     "Three shifts times two mirrorings covers one direction only. The image is shifted up or "
     "down AND left or right, independently: 3 x 3 positions, each mirrored or not."),
    ("twice_flip", 36,
     "Only a left-right mirror is used (no up-down flip): each of the 3 x 3 positions comes "
     "mirrored or not, 2 versions, not 4."),
)


def check_augmentation_prediction(prediction) -> Feedback:
    """Check the learner's ``prediction`` (a number): how many different versions of one training
    image the recipe's augmentation can produce (right: 18)."""
    versions, symmetric = measure_versions(), measure_versions(symmetric=True)
    why = (f"3 vertical offsets x 3 horizontal x mirrored or not = {versions}, found among "
           f"{DRAWS} augmented copies of one image. In the shipped run's 50 epochs each training "
           f"image is drawn 50 times, so it is seen in almost all of its {versions} versions, about "
           "3 times each: augmentation varies the 55,000 images, it does not add new garments. "
           f"(A left-right symmetric image has only {symmetric}: its mirror image is one of its "
           "own shifts.)")
    return compare_prediction(prediction, versions,
                              title="Exercise 3 · versions of one augmented image",
                              unit="versions", why=why, mistakes=AUGMENTATION_MISTAKES)


# --- transfer: the parameter count with mean pooling on non-square images ---------------------
# config as for vit_param_count, but image_size = (H, W), H != W, and pooling = "mean": no class
# token, so no x_class and E_pos has N = (H / P) * (W / P) rows (not N + 1).


def _mean_parts(config, class_token=0, position_rows=0, grid="both"):
    p, c, k = config["patch_size"], config["channels"], config["num_classes"]
    d, depth, m = config["dim"], config["depth"], config["mlp_dim"]
    h, w = config["image_size"]
    n = {"both": (h // p) * (w // p), "height": (h // p) ** 2, "width": (w // p) ** 2}[grid]
    block = 4 * d + 4 * (d * d + d) + 2 * d * m + m + d
    return ((p * p * c * d + d) + class_token * d + (n + position_rows) * d + depth * block
            + 2 * d + (d * k + k))


def _vit_param_count_mean(config):
    return _mean_parts(config)


VIT_MEAN_MISTAKES = (
    Mistake("kept_class_token", lambda cfg: _mean_parts(cfg, class_token=1, position_rows=1),
            "your count is 2 x dim too high: with mean pooling there is no class token, so no "
            "x_class (dim numbers) and no extra row of E_pos (it has N rows, one per patch, not "
            "N + 1). The head reads the mean of the N patch tokens instead."),
    Mistake("one_class_token_part", lambda cfg: _mean_parts(cfg, class_token=1),
            "your count is dim too high: you removed one of the class token's two parts but not "
            "the other. Without a class token there is no x_class (dim) AND E_pos has N rows, not "
            "N + 1."),
    Mistake("square_height", lambda cfg: _mean_parts(cfg, grid="height"),
            "you counted (H / P)^2 patches, as for a square image. The grid is (H / P) x (W / P): "
            "N = (H // P) * (W // P), and only E_pos (N rows of dim) depends on it."),
    Mistake("square_width", lambda cfg: _mean_parts(cfg, grid="width"),
            "you counted (W / P)^2 patches, as for a square image. The grid is (H / P) x (W / P): "
            "N = (H // P) * (W // P), and only E_pos (N rows of dim) depends on it."),
    Mistake("square_and_class_token",
            lambda cfg: _mean_parts(cfg, class_token=1, position_rows=1, grid="height"),
            "two things from the square, class-token ViT are left: the grid is (H / P) x (W / P), "
            "not (H / P)^2, and mean pooling has no class token (no x_class, and E_pos has N "
            "rows, not N + 1)."),
)


def _vit_mean_case(rng):
    patch = int(rng.choice([2, 4, 7, 8, 16]))
    gh, gw = (int(v) for v in rng.choice(np.arange(2, 15), size=2, replace=False))
    dim = int(rng.integers(2, 25)) * 8
    return ({
        "image_size": (patch * gh, patch * gw), "patch_size": patch,
        "channels": int(rng.choice([1, 3])), "num_classes": int(rng.integers(2, 1001)),
        "dim": dim, "depth": int(rng.integers(2, 13)), "num_heads": 4,
        "mlp_dim": dim * int(rng.choice([2, 4])), "pooling": "mean",
    },)


def _vit_mean_cases():
    """fashion-small with mean pooling on 28x56 images first, then random configurations."""
    state = {"first": True}

    def make_case(rng):
        if state.pop("first", False):
            return ({"image_size": (28, 56), "patch_size": 4, "channels": 1, "num_classes": 10,
                     "dim": 64, "depth": 4, "num_heads": 4, "mlp_dim": 128, "pooling": "mean"},)
        return _vit_mean_case(rng)

    return make_case


def check_vit_param_count_mean(fn, cases: int = 6, seed: int | None = None) -> Feedback:
    """Check ``fn(config: dict) -> int`` for a mean-pooling ViT on (H, W) images, exactly.

    The first case is fashion-small on 28x56 images (142,026 parameters), then random ones."""
    return check(fn, _vit_param_count_mean, _vit_mean_cases(), VIT_MEAN_MISTAKES,
                 title="vit_param_count_mean", cases=cases, atol=0, rtol=0, seed=seed)


# --- interpret: accuracy against training time (data/accuracy_vs_time.json) -------------------
# Test accuracy, 3 seeds: at 60 s pure ViT 0.798-0.809 (mean 0.803), hybrid 0.778-0.804 (0.790),
# CNN 0.842-0.844 (0.843); at 120 s ViT 0.829-0.834 (0.830), hybrid 0.837-0.849 (0.843), CNN
# 0.865-0.871 (0.868). Single long runs: pure ViT 0.9225 (fashion-medium, 97 min), 0.917
# (fashion-small, 60 min); hybrid 0.904 (18 min). No long CNN run. Parameters: ViT 139,018,
# hybrid 161,194, CNN 139,903.

TIME_CURVE_OPTIONS = {
    "a": "The CNN leads at 60 and at 120 seconds with every seed, but no long CNN run is shipped: "
         "the figure does not say where the CNN ends after an hour, when the pure ViT reaches "
         "0.917-0.9225. 'Learns faster at first' is shown; 'is the better model' is not (notebook "
         "08 compares the two further).",
    "b": "(the right answer)",
    "c": "At 60 seconds the hybrid (mean 0.790, seeds 0.778-0.804) is not above the pure ViT (mean "
         "0.803, seeds 0.798-0.809); it leads only at 120 seconds. 'At every budget' is not what "
         "the figure shows.",
    "d": "At 120 seconds the hybrid is ahead with every seed, but it also has 16% more parameters "
         "(161,194 against 139,018): the comparison mixes the stem with the model's size, at one "
         "budget and three seeds, on a shared machine (the steps each run managed in its time "
         "varied between seeds, Step 5's table). That the stem alone helps is not shown.",
}


def check_time_curve_answer(answer) -> Feedback:
    """Check the letter ``answer`` ("a"-"d") to Exercise 5: what the accuracy-against-time
    figure of Step 5 supports."""
    return choose(answer, options=TIME_CURVE_OPTIONS, correct="b",
                  title="Exercise 5 · accuracy against time",
                  why="Every CNN seed is above every pure-ViT seed at both budgets (0.842-0.844 "
                      "against 0.798-0.809 at 60 s, 0.865-0.871 against 0.829-0.834 at 120 s), and "
                      "the course's 0.92 is reached by a pure ViT only in the single long run of "
                      "the wider fashion-medium (0.9225 after 97 minutes). A ViT needs many steps; "
                      "how the two compare after as long is not in this figure.")
