"""Checkers for notebook 00 (welcome).

- :func:`check_tokens` (predict-then-run): ``prediction``, a whole number: how many tokens the
  Transformer encoder receives for one ``image_size`` x ``image_size`` RGB image cut into
  ``patch_size`` x ``patch_size`` patches (the notebook asks for 224x224 in 14x14 patches and
  384x384 in 16x16 patches), the class token included. The checker builds a one-block
  ``vitlib.ViT(image_size=..., patch_size=...)``, runs it on one image and reads the size of
  its attention map (tokens x tokens), exactly. Recognised slips: the one-page tour's answer
  kept (197 tokens or 196 patches of 224x224 in 16x16 patches), the class token forgotten, one
  side of the grid only, the pixels of one patch, the patch size squared instead of the grid,
  the length of one flattened patch, dividing by the side instead of the area.
- :func:`check_preview` (interpret, multiple choice): ``answer``, one of ``"a"``-``"e"``: which
  extra experiment would test the explanation of notebook 08's data curve
  (``data/data_curve.json``, printed in notebook 00's preview) by the CNN's inductive bias;
  right: ``"d"``, the shift test. Each wrong choice gets its own explanation, from the record.

A prediction or an answer of None (the student edition's stub) gets "not answered yet".
"""

from __future__ import annotations

import numpy as np

from ._core import Feedback, choose, compare_prediction

__all__ = ["IMAGE_SIZE", "PREVIEW_OPTIONS", "check_preview", "check_tokens", "measure_tokens"]

IMAGE_SIZE = 224  # the paper's ImageNet resolution
BASE = (224, 16)  # ViT-B/16 at 224x224: the one-page tour's example (196 patches, 197 tokens)


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


def _tokens_mistakes(image_size: int, p: int) -> list[tuple[str, float, str]]:
    """The usual wrong counts for an ``image_size`` image in ``p`` x ``p`` patches."""
    g = image_size // p  # patches along one side
    base_g = BASE[0] // BASE[1]  # 14: the one-page tour's grid (224 / 16)
    count = f"{image_size} / {p} = {g} patches per side, {g} x {g} = {g * g}, plus the class token."
    if p < BASE[1]:
        why_more = f"Smaller patches mean more of them: {count}"
    elif p > BASE[1]:
        why_more = f"Larger patches mean fewer of them: {count}"
    elif image_size > BASE[0]:
        why_more = f"A bigger image in the same {p}x{p} patches has more of them: {count}"
    else:
        why_more = f"A smaller image in the same {p}x{p} patches has fewer of them: {count}"
    squared = (f" (Or you squared the patch size, {p} x {p}, instead of the grid.)"
               if p * p == base_g * base_g else "")
    mistakes = []
    if (image_size, p) != BASE:
        mistakes += [
            ("kept_base_answer", base_g * base_g + 1,
             f"{base_g * base_g + 1} is the answer for a {BASE[0]}x{BASE[0]} image in "
             f"{BASE[1]}x{BASE[1]} patches (the one-page tour): did you keep that answer? "
             f"{why_more}{squared}"),
            ("kept_base_patches", base_g * base_g,
             f"{base_g * base_g} is the number of patches of a {BASE[0]}x{BASE[0]} image in "
             f"{BASE[1]}x{BASE[1]} patches: did you keep that count? {why_more}"
             + (f" ({p} x {p} = {p * p} is also the number of pixels in one patch.)"
                if p * p == base_g * base_g else "")),
        ]
        linear = sorted({base_g * g + 1, base_g * g, round((base_g * base_g + 1) * g / base_g),
                         (base_g * base_g + 1) * g // base_g} - {g * g + 1})
        mistakes += [
            ("scaled_one_side", value,
             f"You scaled the one-page tour's count by {g} / {base_g}, the change along ONE side. "
             f"The grid changes along both sides: {g} x {g} = {g * g} patches instead of "
             f"{base_g} x {base_g}, plus the class token.")
            for value in linear]
    return mistakes + [
        ("no_class_token", g * g,
         f"That is the number of patches ({g} x {g}). The encoder also gets the learned "
         "class token in front (step 3 of the one-page tour): add 1."),
        ("one_side", g,
         f"That is the patches along ONE side ({image_size} / {p} = {g}). The grid is square: "
         f"{g} x {g} patches, plus the class token."),
        ("one_side_plus_one", g + 1,
         f"{g} is the patches along one side only; the grid has {g} x {g} of them. Then add "
         "the class token."),
        ("pixels_per_patch", p * p,
         f"{p} x {p} = {p * p} is the number of pixels in ONE patch, not the number of "
         f"patches. Count the patches: ({image_size} / {p}) x ({image_size} / {p}), plus the "
         "class token."),
        ("swapped", p * p + 1,
         f"You squared the patch size ({p} x {p} + 1 = {p * p + 1}) instead of the grid. With "
         f"{p}x{p} patches the grid is {image_size} / {p} = {g} per side: {g} x {g} + 1."),
        ("patch_vector", p * p * 3,
         f"{p} x {p} x 3 = {p * p * 3} is the length of one flattened RGB patch (the vector "
         "that E projects), not the number of tokens."),
        ("divided_by_side", image_size * image_size // p,
         f"You divided the {image_size} x {image_size} pixels by {p}, the side of a patch. A "
         f"patch covers {p} x {p} pixels: divide by {p * p} (or count {g} x {g}), then add the "
         "class token."),
    ]


def check_tokens(prediction, patch_size: int = 14, image_size: int = IMAGE_SIZE) -> Feedback:
    """Predict-then-run: tokens of an ``image_size`` x ``image_size`` RGB image in ``patch_size``
    x ``patch_size`` patches (patches + the class token). The measured value comes from
    running a ViT."""
    p, s = int(patch_size), int(image_size)
    if s % p:
        raise ValueError(f"`patch_size` must divide `image_size`={s}, got {patch_size!r}.")
    g = s // p  # patches along one side
    measured = measure_tokens(p, s)
    return compare_prediction(
        prediction, measured, unit="tokens",
        title=f"Exercise 1 · tokens of a {s}x{s} image in {p}x{p} patches",
        why=(f"{s} / {p} = {g} patches along each side, {g} x {g} = {g * g} patches, plus the "
             f"class token: {g * g + 1}. The attention map the checker read is "
             f"{measured} x {measured}."),
        mistakes=_tokens_mistakes(s, p))


PREVIEW_OPTIONS = {
    "a": ("More seeds would make the means more precise, but noise is not in question here: the "
          "CNN is ahead with every seed at every size, and the printed min-max ranges are 0.001 to "
          "0.035 wide (most under 0.01) while the gaps are 3.5 to 8 points. And however many seeds, "
          "the same runs cannot say WHY the CNN is ahead."),
    "b": ("Where (or whether) the lines cross is worth knowing, but it does not say why the CNN "
          "leads with little data. In this record every size is trained for 20 epochs, so more "
          "images also means more training steps (notebook 08): a larger size changes two things "
          "at once, and neither of them is the CNN's assumptions."),
    "c": ("That tests a different explanation, size, and the record already rules it out: the "
          "two models were built to have about the same number of parameters (139,018 for the "
          "ViT, 139,903 for the CNN). A bigger ViT changes its size, not what it assumes about "
          "images."),
    "d": "right",
    "e": ("The paper's ViT-L/16 differs from our small ViT in data (300 million images), size and "
          "compute all at once, so a comparison with it cannot single out the assumptions; and "
          "the paper already tells us it wins at that scale. A test of an explanation changes "
          "one thing and predicts what will happen."),
}
PREVIEW_WHY = ("That is notebook 08's shift test (the 8,001-image models of the record, trained "
               "without random shifts): moved right by 4 pixels, the CNN keeps 0.833 of its "
               "0.879, the ViT falls from 0.844 to 0.331 (means of 3 seeds). The explanation "
               "predicted exactly this: a convolution is translation-equivariant by construction "
               "(帰納バイアス), a ViT has to learn it from its training images. Another test of the "
               "same explanation: train the ViT with random shifts, so that the data teaches it "
               "what the CNN assumes, and see whether the gap shrinks.")


def check_preview(answer) -> Feedback:
    """Interpret: which extra experiment would test the inductive-bias explanation of the
    preview (notebook 08's data curve, shown in 00)?"""
    return choose(answer, options=PREVIEW_OPTIONS, correct="d", why=PREVIEW_WHY,
                  title="Exercise 2 · testing the explanation")
