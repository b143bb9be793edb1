"""Checkers for notebook 00 (welcome).

- :func:`check_tokens` (predict-then-run): ``prediction``, a whole number: how many tokens the
  Transformer encoder receives for one 224x224 image cut into ``patch_size`` x ``patch_size``
  patches (16 or 14), the class token included. The checker builds a one-block
  ``vitlib.ViT(image_size=224, patch_size=...)``, runs it on one image and reads the size of
  its attention map (tokens x tokens), exactly. Recognised slips: the class token forgotten,
  one side of the grid only, the pixels of one patch (the "swapped" answer: 197 for 14x14
  patches), the length of one flattened patch, dividing by the side instead of the area.
- :func:`check_preview` (interpret, multiple choice): ``answer``, one of ``"a"``-``"e"``: what
  notebook 08's data curve (``data/data_curve.json``, printed in notebook 00's preview) does and
  does not show. Each wrong choice gets its own explanation.

A prediction or an answer of None (the student edition's stub) gets "not answered yet".
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, choose, compare_prediction

__all__ = ["IMAGE_SIZE", "PREVIEW_OPTIONS", "check_preview", "check_tokens", "measure_tokens"]

IMAGE_SIZE = 224  # the paper's ImageNet resolution


def measure_tokens(patch_size: int, image_size: int = IMAGE_SIZE) -> int:
    """The number of tokens a ViT's encoder sees, measured: a one-block ViT with a tiny width is
    run on one zero image and its attention map (batch, heads, tokens, tokens) is read."""
    from ..model import ViT

    model = ViT(image_size=image_size, patch_size=patch_size, num_classes=2, dim=8, depth=1,
                num_heads=1, mlp_dim=8, name="tokens_check")
    _, attention = model(np.zeros((1, image_size, image_size, 3), "float32"),
                         return_attention=True)
    shape = tuple(int(s) for s in attention[0].shape)
    assert shape[-1] == shape[-2], shape  # a square map: every token attends to every token
    return shape[-1]


def check_tokens(prediction, patch_size: int = 16) -> Feedback:
    """Predict-then-run: tokens of a 224x224 image with ``patch_size`` x ``patch_size`` patches
    (patches + the class token). The measured value comes from running a ViT."""
    p = int(patch_size)
    if IMAGE_SIZE % p:
        raise ValueError(f"`patch_size` must divide {IMAGE_SIZE}, got {patch_size!r}.")
    g = IMAGE_SIZE // p  # patches along one side
    measured = measure_tokens(p)
    other = 14 if p == 16 else 16  # the patch size of the other half of the exercise
    return compare_prediction(
        prediction, measured, title=f"Exercise 1 · tokens with {p}x{p} patches", unit="tokens",
        why=(f"224 / {p} = {g} patches along each side, {g} x {g} = {g * g} patches, plus the "
             f"class token: {g * g + 1}. The attention map the checker read is "
             f"{measured} x {measured}."),
        mistakes=[
            ("no_class_token", g * g,
             f"That is the number of patches ({g} x {g}). The encoder also gets the learned "
             "class token in front (step 3 of the one-page tour): add 1."),
            ("one_side", g,
             f"That is the patches along ONE side (224 / {p} = {g}). The grid is square: "
             f"{g} x {g} patches, plus the class token."),
            ("one_side_plus_one", g + 1,
             f"{g} is the patches along one side only; the grid has {g} x {g} of them. Then add "
             "the class token."),
            ("pixels_per_patch", p * p,
             f"{p} x {p} = {p * p} is the number of pixels in ONE patch, not the number of "
             f"patches. Count the patches: (224 / {p}) x (224 / {p}), plus the class token."),
            ("swapped", p * p + 1,
             f"{p * p + 1} is the answer for {other}x{other} patches: you squared the patch size "
             f"instead of the grid. With {p}x{p} patches the grid is 224 / {p} = {g} per side: "
             f"{g} x {g} + 1."),
            ("patch_vector", p * p * 3,
             f"{p} x {p} x 3 = {p * p * 3} is the length of one flattened RGB patch (the vector "
             "that E projects), not the number of tokens."),
            ("divided_by_side", IMAGE_SIZE * IMAGE_SIZE // p,
             f"You divided the 224 x 224 pixels by {p}, the side of a patch. A patch covers "
             f"{p} x {p} pixels: divide by {p * p} (or count {g} x {g}), then add the class "
             "token."),
        ])


PREVIEW_OPTIONS = {
    "a": ("This reads our small measurement as the general verdict. The paper itself finds the "
          "opposite at scale: pre-trained on JFT-300M (300 million images), ViT-L/16 beats BiT-L, "
          "a ResNet pre-trained on the same data. Our record is at most 8,000 images, 20 epochs "
          "and about 139 thousand parameters: it says what happens with little data, not what a "
          "ViT can do."),
    "b": ("The record cannot say that. It stops at 8,000 images: a gap that shrinks does not tell "
          "where (or whether) the lines cross, and extrapolating three points is a guess. The "
          "paper needed ImageNet-21k (14 million images) for ViTs to match ResNets and JFT-300M "
          "for them to pull ahead; notebook 08 shows what we can and cannot measure here."),
    "c": ("Size is not the difference: the two models were built to have about the same number "
          "of parameters (139,018 for the ViT, 139,903 for the CNN). What differs is what each "
          "architecture assumes about images before it sees any."),
    "d": ("right"),
    "e": ("Look at the spread: the printed min-max ranges over 3 seeds are about 0.01-0.04 wide "
          "and the CNN is ahead at every size by more than that (8 points at 500 images, 3.5 at "
          "8,000). A difference that holds for every seed and every size is not seed noise."),
}
PREVIEW_WHY = ("With the same training (same images, same 20 epochs, no random shifts), the CNN "
               "is ahead at every size: 0.766 vs 0.685 with 500 images, 0.879 vs 0.844 with "
               "8,000, in every seed. A CNN assumes locality and translation equivariance "
               "(帰納バイアス); a ViT has to learn them from data, so with little data the CNN "
               "wins, and the gap shrinks as data grows. This is why, with a small data set, "
               "you fine-tune a pretrained ViT (notebooks 09 and 11) or pretrain it without "
               "labels (09's masked autoencoder) instead of training one from scratch.")


def check_preview(answer) -> Feedback:
    """Interpret: which statement does notebook 08's data curve (shown in 00) support?"""
    return choose(answer, options=PREVIEW_OPTIONS, correct="d", why=PREVIEW_WHY,
                  title="Exercise 2 · what the preview shows")
