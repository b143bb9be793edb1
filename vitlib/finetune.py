"""Fine-tuning (ファインチューニング): reuse a trained ViT's encoder under a new head.

A trained ViT is an encoder (patch embedding, class token, position embedding, blocks, final
norm) plus a head. For a new task we keep the encoder's weights and start a new head
(``num_classes`` outputs); for a new image size the position embedding is resized bilinearly
(Dosovitskiy et al. 2021, Sec. 3.2). The encoder can then be frozen (only the head learns: a
linear probe) or trained along with the head (full fine-tuning).

    model = with_new_head(trained, num_classes=5)             # same size, new head
    model = with_new_head(trained, image_size=56)             # 14x14 patches instead of 7x7
    freeze_encoder(model)                                     # train the head only
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from . import _checks
from .embeddings import resize_position_embedding
from .model import ViT, architecture

#: The ViT's encoder layers, in the order of Eq. 1-4: every layer but ``head``.
ENCODER_LAYERS = ("patch_embedding", "class_token", "position_embedding", "blocks", "norm")


def _check_vit(name: str, model) -> ViT:
    if not isinstance(model, ViT):
        raise ValueError(f"`{name}` must be a vitlib.ViT, got {type(model).__name__}.")
    if not model.built:
        model.build()
    return model


def encoder_layers(model: ViT) -> list:
    """The encoder's layers of ``model`` (every layer but the head), in order."""
    _check_vit("model", model)
    out = []
    for name in ENCODER_LAYERS:
        layer = getattr(model, name)
        out.extend(layer if isinstance(layer, list) else [] if layer is None else [layer])
    return out


def copy_encoder(source: ViT, target: ViT) -> ViT:
    """Copy every encoder weight of ``source`` into ``target`` (the head is left alone).

    The two must have the same architecture except the head and the image size. A learned
    position embedding (1, 1 + N, dim) is resized to the target's grid (1, 1 + N', dim); a
    sine-cosine one is not copied (the target computes its own for its grid). Returns ``target``.
    """
    _check_vit("source", source)
    _check_vit("target", target)
    for key in ("patch_size", "dim", "depth", "num_heads", "mlp_dim", "channels", "pooling",
                "position", "patch_method"):
        if getattr(source, key) != getattr(target, key):
            raise ValueError(
                f"`target` must have the encoder architecture of `source`: {key}="
                f"{getattr(target, key)!r}, but `source` has {key}={getattr(source, key)!r}."
            )
    for src, dst in zip(encoder_layers(source), encoder_layers(target), strict=True):
        if src is source.position_embedding:
            if source.position == "learned":
                table = resize_position_embedding(src.embedding, target.grid_size,
                                                  num_prefix_tokens=src.num_prefix_tokens,
                                                  old_grid=source.grid_size)
                dst.embedding.assign(ops.cast(table, dst.embedding.dtype))
            continue
        dst.set_weights(src.get_weights())
    return target


def with_new_head(model: ViT, num_classes: int | None = None, image_size=None) -> ViT:
    """A new ViT with ``model``'s encoder weights and a freshly initialised head.

    ``num_classes``: outputs of the new head (default: as ``model``); ``image_size``: ``n`` or
    ``(height, width)``, a multiple of the patch size (default: as ``model``). The new model maps
    images (batch, *image_size, channels) -> logits (batch, num_classes). ``model`` is unchanged.
    """
    _check_vit("model", model)
    config = architecture(model)
    if num_classes is not None:
        config["num_classes"] = num_classes
    if image_size is not None:
        config["image_size"] = image_size
    new = ViT(**config)  # checks num_classes and image_size (a multiple of patch_size)
    new.build()
    return copy_encoder(model, new)


def freeze_encoder(model: ViT, frozen: bool = True) -> ViT:
    """Make every encoder layer non-trainable (``frozen=True``) or trainable again; the head
    stays trainable. Compile (again) after changing this. Returns ``model``."""
    for layer in encoder_layers(model):
        layer.trainable = not frozen
    model.head.trainable = True
    return model


def fit_in_two_stages(model: ViT, x, y, validation_data=None, head_epochs: int = 5,
                      full_epochs: int = 5, head_learning_rate: float = 3e-3,
                      full_learning_rate: float = 3e-4, batch_size: int = 32,
                      weight_decay: float = 0.05, jit_compile: bool = False,
                      verbose: int = 2) -> dict:
    """Fine-tune ``model`` (a ViT with a new head) first frozen, then unfrozen.

    Stage 1 (``head_epochs``): the encoder frozen, the new head alone learns at
    ``head_learning_rate``: a random head would otherwise send large, meaningless gradients into
    the pretrained encoder. Stage 2 (``full_epochs``): everything learns at the smaller
    ``full_learning_rate`` (10x smaller by default; the defaults were picked on notebook 11's
    validation split), so the pretrained weights move a little
    rather than being overwritten. Both stages use AdamW with a cosine decay to zero and the
    cross-entropy of integer labels.

    ``x``: float images (n, H, W, C) as the model expects them; ``y``: int labels (n,);
    ``validation_data``: ``(x_val, y_val)`` or None. Either stage may have 0 epochs. Returns
    ``{"head": history dict, "full": history dict}`` (per-epoch loss, accuracy, and the
    validation ones when given); the model ends unfrozen.
    """
    from .train import jit_for_backend

    _check_vit("model", model)
    head_epochs = _checks.non_negative_int("head_epochs", head_epochs)
    full_epochs = _checks.non_negative_int("full_epochs", full_epochs)
    if head_epochs + full_epochs == 0:
        raise ValueError("`head_epochs` + `full_epochs` must be at least 1, got 0 and 0.")
    batch_size = _checks.positive_int("batch_size", batch_size)
    rates = {"head": _checks.positive_float("head_learning_rate", head_learning_rate),
             "full": _checks.positive_float("full_learning_rate", full_learning_rate)}
    y = np.asarray(y)
    if len(x) != len(y):
        raise ValueError(f"`x` and `y` must hold the same number of images, got {len(x)} and "
                         f"{len(y)}.")
    if y.size and (y.min() < 0 or y.max() >= model.num_classes):
        raise ValueError(f"`y` must hold class indices in [0, {model.num_classes}) for this head, "
                         f"got values {int(y.min())} to {int(y.max())}.")
    steps = -(-len(x) // batch_size)  # batches per epoch
    histories = {}
    for stage, epochs in (("head", head_epochs), ("full", full_epochs)):
        rate = rates[stage]
        freeze_encoder(model, frozen=stage == "head")
        if epochs == 0:
            histories[stage] = {}
            continue
        schedule = keras.optimizers.schedules.CosineDecay(rate, decay_steps=epochs * steps)
        model.compile(optimizer=keras.optimizers.AdamW(schedule, weight_decay=weight_decay),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                      jit_compile=jit_for_backend(jit_compile))
        if verbose:
            trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
            print(f"stage '{stage}': {epochs} epoch(s) at learning rate {rate:g}, "
                  f"{trainable:,} trainable parameters")
        histories[stage] = model.fit(x, y, batch_size=batch_size, epochs=epochs,
                                     validation_data=validation_data, verbose=verbose).history
    return histories


def load_pretrained(name, num_classes: int) -> tuple:
    """``(vit, scale)``: a pretrained encoder under a new head of ``num_classes`` outputs, and
    how it expects its pixels (``vitlib.folders.scale_images``).

    ``name``: a ``.keras`` file holding a vitlib ViT (the course's own, offline; scale
    ``"unit"``, 0..1), a Google ``.npz`` file, or a name of ``vitlib.pretrained.CHECKPOINTS``
    (downloaded once when online; scale ``"symmetric"``, -1..1)."""
    from pathlib import Path

    from . import pretrained
    from .model import load_model

    num_classes = _checks.positive_int("num_classes", num_classes)
    if str(name) in pretrained.CHECKPOINTS:
        name = pretrained.download(str(name))  # offline: DownloadError says what to fetch
    path = Path(name)
    if path.suffix == ".npz":
        return pretrained.load_npz(path, include_head=False, num_classes=num_classes), "symmetric"
    if path.suffix != ".keras":
        raise ValueError(f"`name` must be a .keras or .npz file or one of "
                         f"{sorted(pretrained.CHECKPOINTS)}, got {str(name)!r}.")
    model = load_model(path)
    if not isinstance(model, ViT):
        raise ValueError(f"`name` {path} holds a {type(model).__name__}, not a vitlib.ViT.")
    return with_new_head(model, num_classes), "unit"
