"""Pretrained weights for vitlib's ViT: Google's original checkpoints and keras-hub.

**Google's checkpoints** (github.com/google-research/vision_transformer) are ``.npz`` files:
one plain NumPy array per flax parameter, named by its path in the flax model
(``vit_jax/models_vit.py``). :func:`load_npz` reads one into a :class:`vitlib.ViT` (and infers
the model's size from the array shapes); :func:`to_npz_dict` and :func:`save_npz` write the
same layout back. :data:`CHECKPOINTS` lists a few files, :func:`describe` says (offline) what
would be downloaded from where and how big, and :func:`download` fetches one.

**keras-hub** (``keras_hub.models.ViTBackbone`` and ``ViTImageClassifier``):
:func:`from_keras_hub` and :func:`to_keras_hub` copy the weights both ways. keras-hub is
imported only when one of these two is called (install: see ``requirements-hub.txt``).

The layouts match vitlib's weight for weight (vitlib's attention has the weight shapes of
Keras' ``MultiHeadAttention``, which are flax ``DenseGeneral``'s): the only reshapes are the
patch kernel when ``patch_method="dense"`` and keras-hub's position table, which has no
leading batch axis. What differs from the flax model:

- **GELU.** flax's ``nn.gelu`` (used by ``vit_jax``'s MLP) is the *tanh approximation*; the
  exact erf form differs from it by at most 4.7e-4. :func:`load_npz` therefore builds its model
  with ``gelu="tanh"`` (``tests/test_pretrained.py`` checks it against a flax-layout forward pass);
  keras-hub's ViT uses the exact form, and so do :func:`from_keras_hub` and ``vitlib.make_vit()``.
- **pre_logits.** Some old checkpoints (the ImageNet-21k pre-training files of 2020) have a
  "representation layer" ``pre_logits`` (Dense D->R then tanh) before the head. vitlib's ViT
  has none, so :func:`load_npz` refuses such a file unless ``include_head=False`` (drop both,
  keep a new head: what ``vit_jax`` itself does when fine-tuning).
- **Preprocessing.** The checkpoints expect RGB pixels scaled to [-1, 1]
  (``x / 127.5 - 1``, Google's colabs); :func:`prepare_images` does that.
"""

from __future__ import annotations

import math
import os
import tempfile
import types
import warnings
import zipfile
import zlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from keras import ops

from . import _checks
from ._fetch import fetch_url
from .configs import vit_config
from .model import ViT, warn_if_not_finite

# --------------------------------------------------------------------------------------------
# The key-mapping table: one row per weight, (npz key, vitlib attribute path, keras-hub path).
# Block rows are relative to "Transformer/encoderblock_{i}/" (npz), "blocks.{i}." (vitlib) and
# "encoder.encoder_layers.{i}." (keras-hub). keras-hub paths start at a namespace with
# `patching` (ViTPatchingAndEmbedding), `encoder` (ViTEncoder) and `task` (the classifier).
# --------------------------------------------------------------------------------------------
POS_KEY = "Transformer/posembed_input/pos_embedding"
PATCH_KEY = "embedding/kernel"

_TOP = (
    (PATCH_KEY, "patch_embedding.projection.kernel", "patching.patch_embedding.kernel"),
    ("embedding/bias", "patch_embedding.projection.bias", "patching.patch_embedding.bias"),
    ("cls", "class_token.token", "patching.class_token"),
    (POS_KEY, "position_embedding.embedding", "patching.position_embedding.embeddings"),
    ("Transformer/encoder_norm/scale", "norm.gamma", "encoder.layer_norm.gamma"),
    ("Transformer/encoder_norm/bias", "norm.beta", "encoder.layer_norm.beta"),
)
_HEAD = (
    ("head/kernel", "head.kernel", "task.output_dense.kernel"),
    ("head/bias", "head.bias", "task.output_dense.bias"),
)
_BLOCK = (
    ("LayerNorm_0/scale", "norm1.gamma", "layer_norm_1.gamma"),
    ("LayerNorm_0/bias", "norm1.beta", "layer_norm_1.beta"),
    *(
        (f"MultiHeadDotProductAttention_1/{flax}/{kind}", f"attention.{ours}_{kind}",
         f"mha.{ours}_dense.{kind}")
        for flax, ours in (("query", "query"), ("key", "key"), ("value", "value"),
                           ("out", "output"))
        for kind in ("kernel", "bias")
    ),
    ("LayerNorm_2/scale", "norm2.gamma", "layer_norm_2.gamma"),
    ("LayerNorm_2/bias", "norm2.beta", "layer_norm_2.beta"),
    ("MlpBlock_3/Dense_0/kernel", "mlp.fc1.kernel", "mlp.dense_1.kernel"),
    ("MlpBlock_3/Dense_0/bias", "mlp.fc1.bias", "mlp.dense_1.bias"),
    ("MlpBlock_3/Dense_1/kernel", "mlp.fc2.kernel", "mlp.dense_2.kernel"),
    ("MlpBlock_3/Dense_1/bias", "mlp.fc2.bias", "mlp.dense_2.bias"),
)
_PRE_LOGITS = ("pre_logits/kernel", "pre_logits/bias")


def _rows(model: ViT, head: bool = True):
    """Yield (npz key, vitlib path, keras-hub path) for every weight of ``model``."""
    for row in _TOP:
        if row[0] == "cls" and model.pooling != "cls":
            continue
        yield row
    for i in range(model.depth):
        for key, ours, hub in _BLOCK:
            yield (f"Transformer/encoderblock_{i}/{key}", f"blocks.{i}.{ours}",
                   f"encoder.encoder_layers.{i}.{hub}")
    if head:
        yield from _HEAD


def _resolve(root, path: str):
    """Follow an attribute path like ``blocks.3.mlp.fc1.kernel`` (numbers index lists)."""
    for part in path.split("."):
        root = root[int(part)] if part.isdigit() else getattr(root, part)
    return root


def _outside_shape(model: ViT, key: str, shape, hub: bool = False) -> tuple:
    """The shape of a vitlib weight in the npz layout (or keras-hub's, with ``hub=True``)."""
    if key == PATCH_KEY:  # (p, p, C, D) whether vitlib uses a Conv2D or a Dense on patches
        return (model.patch_size, model.patch_size, model.channels, model.dim)
    if key == POS_KEY and hub:  # keras-hub: an Embedding table (tokens, dim)
        return tuple(shape[1:])
    return tuple(shape)


def _read(model: ViT, path: str, key: str, hub: bool = False) -> np.ndarray:
    """A vitlib weight as a float32 array in the npz (or keras-hub) layout."""
    if key == POS_KEY and model.position == "none":  # adds nothing: the same as a zero table
        shape = (1, model.num_tokens, model.dim)
        value = np.zeros(shape, "float32")
    else:
        variable = _resolve(model, path)
        shape, value = variable.shape, ops.convert_to_numpy(variable)
    return np.reshape(value, _outside_shape(model, key, shape, hub)).astype("float32")


def _write(model: ViT, path: str, key: str, array, hub: bool = False, name: str = "") -> None:
    """Check ``array`` against the expected outside shape, then assign it to the vitlib weight."""
    variable = _resolve(model, path)
    expected = _outside_shape(model, key, variable.shape, hub)
    found = tuple(np.shape(array))
    if found != expected:
        raise ValueError(
            f"`{name or key}` has shape {found}, expected {expected} for this model "
            f"(image_size={model.image_size}, patch_size={model.patch_size}, dim={model.dim}, "
            f"num_heads={model.num_heads}, mlp_dim={model.mlp_dim}, "
            f"num_classes={model.num_classes})."
            + (" For another image size, build the model at the checkpoint's size and use "
               "vitlib.resize_position_embedding." if key == POS_KEY else "")
        )
    variable.assign(np.reshape(np.asarray(array), variable.shape).astype(variable.dtype))


# --------------------------------------------------------------------------------------------
# Google's .npz checkpoints
# --------------------------------------------------------------------------------------------
_OPT_PREFIX = "opt/target/"  # some checkpoints store the parameters under the optimizer


def _read_npz(path) -> dict:
    """Read every array of an .npz file with ``allow_pickle=False``."""
    with open(path, "rb") as f:
        head = f.read(6)
    if not head.startswith(b"PK"):  # an .npz file is a zip archive
        if head.startswith(b"\x93NUMPY"):
            what = "a single .npy array, not an .npz archive of named arrays"
        elif head[:1] == b"\x80":
            what = ("a pickle of Python objects, not an .npz archive. vitlib never unpickles "
                    "a checkpoint (allow_pickle=False): unpickling can run arbitrary code")
        else:
            what = (f"not an .npz archive (it starts with {head!r}): an error page or an "
                    "interrupted download? Download it again")
        raise ValueError(f"`source` {str(path)!r} is {what}.")
    out = {}
    damaged = (f"`source` {str(path)!r} is a damaged .npz archive (truncated or corrupted, e.g. an "
               "interrupted download): download it again")
    try:
        archive = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ValueError(f"{damaged} ({e}).") from e
    with archive:
        for key in archive.files:
            try:
                out[key] = archive[key]
            except ValueError as e:
                if "allow_pickle" not in str(e) and "Object arrays" not in str(e):
                    raise ValueError(f"{damaged}: array `{key}` cannot be read ({e}).") from e
                raise ValueError(
                    f"`source` {str(path)!r}: array `{key}` is an object array (pickled Python "
                    "objects). vitlib reads checkpoints with allow_pickle=False because "
                    "unpickling can run arbitrary code; a weight must be a plain numeric array. "
                    "Google's .npz checkpoints never hold pickles."
                ) from e
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as e:
                raise ValueError(f"{damaged}: array `{key}` cannot be read ({e}).") from e
    return out


def _as_weights(source) -> dict:
    """A path to an .npz file, or a mapping of names to arrays -> {name: numeric array}."""
    if isinstance(source, Mapping):
        weights = {str(k): np.asarray(v) for k, v in source.items()}
    elif isinstance(source, (str, os.PathLike)):
        weights = _read_npz(source)
    else:
        raise ValueError(
            f"`source` must be a path to an .npz file or a mapping of names to arrays, "
            f"got {type(source).__name__}."
        )
    for key, value in weights.items():
        if value.dtype.kind not in "fiu":
            raise ValueError(
                f"`{key}` has dtype {value.dtype}, expected a numeric array (float or int)."
            )
    if weights and all(k.startswith(_OPT_PREFIX) for k in weights):
        weights = {k[len(_OPT_PREFIX):]: v for k, v in weights.items()}
    return weights


def _need(weights: dict, key: str, rank: int, what: str) -> tuple:
    """The shape of a key needed to infer the configuration."""
    if key not in weights:
        raise ValueError(
            f"The checkpoint has no `{key}` (needed to infer {what}). Is it a ViT checkpoint "
            "in the layout of google-research/vision_transformer? "
            f"It has {len(weights)} keys, e.g. {sorted(weights)[:5]}."
        )
    shape = tuple(weights[key].shape)
    if len(shape) != rank:
        raise ValueError(f"`{key}` has shape {shape} (rank {len(shape)}), expected rank {rank}.")
    return shape


def npz_config(weights: Mapping) -> dict:
    """Infer :class:`vitlib.ViT` keyword arguments from the array shapes of a checkpoint.

    Patch size, channels and dim come from ``embedding/kernel`` (p, p, C, D); the image size
    from the grid of ``pos_embedding`` (1, [1 +] rows*cols, D) (a square grid); depth from the
    number of ``encoderblock_{i}``; heads from a query kernel (D, heads, D/heads); mlp_dim from
    ``MlpBlock_3/Dense_0/kernel`` (D, mlp_dim); classes from ``head/kernel`` (D, classes).
    Without ``cls`` the model pools by the mean of the patch tokens (vit_jax's "gap").
    """
    weights = _as_weights(weights)
    p, p2, channels, dim = _need(weights, PATCH_KEY, 4, "patch size, channels and dim")
    if p != p2:
        raise ValueError(f"`{PATCH_KEY}` has non-square patches {(p, p2)}; vitlib needs square.")
    tokens = _need(weights, POS_KEY, 3, "the image size")[1]
    pooling = "cls" if "cls" in weights else "mean"
    grid = tokens - (pooling == "cls")
    side = math.isqrt(max(grid, 0))
    if grid <= 0 or side * side != grid:
        raise ValueError(
            f"`{POS_KEY}` has {tokens} tokens, so {grid} patches: not a square grid. "
            "Build the ViT yourself and pass it as `model`."
        )
    block = "Transformer/encoderblock_{}/"
    b0 = block.format(0)
    _need(weights, f"{b0}LayerNorm_0/scale", 1, "the depth")
    depth = 1
    while f"{block.format(depth)}LayerNorm_0/scale" in weights:
        depth += 1
    heads = _need(weights, f"{b0}MultiHeadDotProductAttention_1/query/kernel", 3, "num_heads")[1]
    mlp_dim = _need(weights, f"{b0}MlpBlock_3/Dense_0/kernel", 2, "mlp_dim")[1]
    config = dict(image_size=side * p, patch_size=p, dim=dim, depth=depth,
                  num_heads=heads, mlp_dim=mlp_dim, channels=channels, pooling=pooling)
    if "head/kernel" in weights:
        config["num_classes"] = _need(weights, "head/kernel", 2, "num_classes")[1]
    return config


def load_npz(source, model: ViT | None = None, *, include_head: bool = True,
             **overrides) -> ViT:
    """Load a google-research/vision_transformer checkpoint into a vitlib :class:`ViT`.

    ``source``: a path to an ``.npz`` file (read with ``allow_pickle=False``) or a mapping
    ``{key: array}`` in the same layout. ``model``: a ViT to load into; by default one is built
    from :func:`npz_config` with ``gelu="tanh"``, the GELU these checkpoints were trained with
    (``overrides``, e.g. ``dropout=0.1``, change that config).
    ``include_head=False`` leaves the model's (new, randomly initialised) head alone and ignores
    the checkpoint's ``head`` and ``pre_logits``, for fine-tuning on new classes, e.g.
    ``load_npz(path, include_head=False, num_classes=10)``.

    A missing key or a wrong shape raises ValueError naming the key and both shapes; keys
    that this layout does not use are reported with a warning.
    """
    weights = _as_weights(source)
    if model is None:
        config = npz_config(weights)
        if not include_head:
            config.pop("num_classes", None)
        # Google's checkpoints were trained with flax's default GELU, the tanh approximation.
        model = ViT(**{**config, "gelu": "tanh", **overrides})
    elif overrides:
        raise ValueError(f"`overrides` {sorted(overrides)} only apply when `model` is None.")
    _check_model(model)
    if "pre_logits/kernel" in weights and include_head:
        raise ValueError(
            f"The checkpoint has a representation layer `pre_logits/kernel` "
            f"{tuple(weights['pre_logits/kernel'].shape)} (Dense then tanh) before its head; "
            "vitlib's ViT has none. Load it with include_head=False (drop pre_logits and the "
            "head, keep a new head to fine-tune, as vit_jax does), or use a fine-tuned "
            "checkpoint such as describe('Ti/16-augreg-in21k-ft-in1k')."
        )
    if model.position != "learned":
        raise ValueError(
            f"`model` has position={model.position!r}; the checkpoint has a learned position "
            "embedding. Build the model with position='learned'."
        )
    used = set()
    for key, path, _ in _rows(model, head=include_head):
        if key not in weights:
            shape = _outside_shape(model, key, _resolve(model, path).shape)
            raise ValueError(f"The checkpoint has no `{key}` (expected shape {shape}).")
        _write(model, path, key, weights[key])
        used.add(key)
    skipped = set() if include_head else {key for key, _, _ in _HEAD} | set(_PRE_LOGITS)
    extra = sorted(set(weights) - used - skipped)
    if extra:
        warnings.warn(f"load_npz ignored {len(extra)} unused key(s): {extra[:8]}", stacklevel=2)
    warn_if_not_finite(model, "load_npz: `source`")
    return model


def _check_model(model) -> None:
    if not isinstance(model, ViT):
        raise ValueError(f"`model` must be a vitlib.ViT, got {type(model).__name__}.")
    if model.patch_method not in ("conv", "dense"):
        raise ValueError(
            f"`model` has patch_method={model.patch_method!r}; Google's checkpoints and "
            "keras-hub's ViT embed patches with one linear map: use 'conv' or 'dense'."
        )
    if not model.built:
        model.build()


def to_npz_dict(model: ViT) -> dict[str, np.ndarray]:
    """vitlib ViT -> ``{npz key: float32 array}`` in google-research/vision_transformer's layout.

    A fixed ``position="sincos"`` table is written as it is, and ``position="none"`` as zeros
    (both add the same numbers as a learned embedding with those values would).
    """
    _check_model(model)
    return {key: _read(model, path, key) for key, path, _ in _rows(model)}


def save_npz(model: ViT, path, overwrite: bool = False) -> Path:
    """Write :func:`to_npz_dict` to ``path`` (``.npz`` is appended if missing); returns the path.

    Refuses to replace an existing file unless ``overwrite=True``. The file is written to a
    temporary name first, so an interrupted save never leaves half a file.
    """
    path = Path(path)
    if path.suffix != ".npz":
        path = path.with_name(path.name + ".npz")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it.")
    arrays = to_npz_dict(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as tmp:
        np.savez(tmp, **arrays)
    os.replace(tmp.name, path)
    return path


# --------------------------------------------------------------------------------------------
# keras-hub
# --------------------------------------------------------------------------------------------
KERAS_HUB_INSTALL = (
    "keras-hub is not installed. In the course environment run `make env` (it installs "
    "requirements-hub.txt; keras-hub needs Python >= 3.11 and Keras >= 3.15). Elsewhere: "
    "`pip install --no-deps -r requirements-hub.txt`. A plain `pip install keras-hub` also "
    "installs tensorflow-text, which pulls in the full `tensorflow` (hundreds of MB) next to "
    "tensorflow-cpu; vitlib's keras-hub bridge does not need it."
)


def _keras_hub():
    try:
        import keras_hub
    except ImportError as e:
        raise ImportError(KERAS_HUB_INSTALL) from e
    return keras_hub


def _hub_parts(backbone, task=None):
    """The namespace the keras-hub paths of the table start from."""
    return types.SimpleNamespace(
        patching=backbone.get_layer("vit_patching_and_embedding"),
        encoder=backbone.get_layer("vit_encoder"),
        task=task,
    )


def _hub_config(backbone) -> dict:
    """vitlib ViT keyword arguments for a keras-hub ViTBackbone."""
    patch = backbone.patch_size
    ph, pw = (patch, patch) if isinstance(patch, int) else tuple(patch)
    if ph != pw:
        raise ValueError(f"`backbone` has non-square patches {(ph, pw)}; vitlib needs square.")
    first = backbone.data_format == "channels_first"
    shape = tuple(backbone.image_shape)
    h, w, c = (shape[1], shape[2], shape[0]) if first else shape
    return dict(image_size=(h, w), patch_size=ph, dim=backbone.hidden_dim,
                depth=backbone.num_layers, num_heads=backbone.num_heads,
                mlp_dim=backbone.mlp_dim, channels=c, dropout=backbone.dropout_rate,
                attention_dropout=backbone.attention_dropout,
                layer_norm_epsilon=backbone.layer_norm_epsilon,
                pooling="cls" if backbone.use_class_token else "mean")


def _hub_pooling(task, backbone) -> str:
    pooling = {"token": "cls", "gap": "mean"}.get(task.pooling)
    if pooling != ("cls" if backbone.use_class_token else "mean"):
        raise ValueError(
            f"The classifier pools with {task.pooling!r} on a backbone with "
            f"use_class_token={backbone.use_class_token}; vitlib supports 'token' with a class "
            "token, or 'gap' without one."
        )
    return pooling


def from_keras_hub(hub_model, *, num_classes: int | None = None,
                   include_head: bool = True) -> ViT:
    """keras-hub ``ViTBackbone`` or ``ViTImageClassifier`` -> a vitlib :class:`ViT` with its weights.

    A classifier's head (``output_dense``) becomes vitlib's ``head`` unless
    ``include_head=False``; a backbone has no head, so pass ``num_classes`` for vitlib's new,
    randomly initialised one. Weights keras-hub leaves out (``use_mha_bias=False``, ...) become
    zeros. vitlib returns logits: a classifier built with ``activation="softmax"`` returns
    probabilities from the same weights. Images stay channels-last in vitlib.
    """
    kh = _keras_hub()
    if isinstance(hub_model, kh.models.ViTImageClassifier):
        backbone, task = hub_model.backbone, hub_model
    elif isinstance(hub_model, kh.models.ViTBackbone):
        backbone, task = hub_model, None
    else:
        raise ValueError(
            "`hub_model` must be a keras_hub.models.ViTBackbone or ViTImageClassifier, "
            f"got {type(hub_model).__name__}."
        )
    config = _hub_config(backbone)
    head = task is not None and include_head
    if task is not None:
        config["pooling"] = _hub_pooling(task, backbone)
        if head and task.intermediate_dim is not None:
            raise ValueError(
                f"The classifier has a pre_logits layer (intermediate_dim="
                f"{task.intermediate_dim}) before its head; vitlib's ViT has none. "
                "Pass include_head=False (and num_classes) to keep a new head."
            )
    if head:
        config["num_classes"] = task.num_classes
    elif num_classes is None:
        raise ValueError(
            "`num_classes` is needed: a keras-hub backbone (or include_head=False) brings no "
            "head, so vitlib builds a new, randomly initialised one with num_classes outputs."
        )
    else:
        config["num_classes"] = _checks.positive_int("num_classes", num_classes)
    model = ViT(**config)
    model.build()
    parts = _hub_parts(backbone, task)
    for key, path, hub_path in _rows(model, head=head):
        variable = _resolve(parts, hub_path)
        if variable is None:  # keras-hub built without this bias
            variable = np.zeros(_outside_shape(model, key, _resolve(model, path).shape, True))
        _write(model, path, key, ops.convert_to_numpy(variable), hub=True, name=hub_path)
    return model


def to_keras_hub(model: ViT, *, classifier: bool = False):
    """vitlib :class:`ViT` -> keras-hub ``ViTBackbone`` (or ``ViTImageClassifier`` with its head).

    The backbone's output (batch, tokens, dim) equals ``model.encode(images)``; the classifier
    (``classifier=True``, ``activation=None``, no preprocessor) returns ``model(images)``.
    """
    kh = _keras_hub()
    _check_model(model)
    backbone = kh.models.ViTBackbone(
        image_shape=(*model.image_size, model.channels), patch_size=model.patch_size,
        num_layers=model.depth, num_heads=model.num_heads, hidden_dim=model.dim,
        mlp_dim=model.mlp_dim, dropout_rate=model.dropout,
        attention_dropout=model.attention_dropout, layer_norm_epsilon=model.layer_norm_epsilon,
        use_class_token=model.pooling == "cls",
    )
    task = None
    if classifier:
        task = kh.models.ViTImageClassifier(
            backbone=backbone, num_classes=model.num_classes, activation=None,
            pooling="token" if model.pooling == "cls" else "gap",
        )
    parts = _hub_parts(backbone, task)
    for key, path, hub_path in _rows(model, head=classifier):
        variable = _resolve(parts, hub_path)
        value = _read(model, path, key, hub=True)
        if tuple(variable.shape) != value.shape:
            raise ValueError(
                f"keras-hub's `{hub_path}` has shape {tuple(variable.shape)}, "
                f"expected {value.shape}."
            )
        variable.assign(value)
    return task if classifier else backbone


# --------------------------------------------------------------------------------------------
# A small catalogue, downloads, and using a checkpoint on your own images
# --------------------------------------------------------------------------------------------
_VIT_MODELS = "https://storage.googleapis.com/vit_models/"
_AUGREG = _VIT_MODELS + "augreg/{}-i21k-300ep-lr_0.001-aug_{}--imagenet2012-steps_20k-lr_{}-res_224.npz"
_SOURCE = "github.com/google-research/vision_transformer (Steiner et al. 2022, 'How to train your ViT?')"
_LICENSE = "Apache-2.0 (google-research/vision_transformer)"


def parameter_count(config: dict) -> int:
    """Parameters of a learned-position ViT with this config (what the .npz file stores)."""
    p, c, d, m, k = (config[n] for n in ("patch_size", "channels", "dim", "mlp_dim",
                                         "num_classes"))
    h, w = _checks.pair("image_size", config["image_size"])
    cls = config.get("pooling", "cls") == "cls"
    tokens = (h // p) * (w // p) + cls
    block = 2 * 2 * d + 4 * (d * d + d) + (d * m + m) + (m * d + d)
    return (p * p * c * d + d) + cls * d + tokens * d + config["depth"] * block + 2 * d + (d * k + k)


def _vit(name: str) -> dict:
    config = vit_config(name)
    return {**config, "params": parameter_count(config)}


#: name -> url, size in MiB (float32 parameters: 4 bytes each; the server is not asked),
#: the ViT config, license, source and what the file is.
CHECKPOINTS = {
    "Ti/16-augreg-in21k-ft-in1k": dict(
        url=_AUGREG.format("Ti_16", "none-wd_0.03-do_0.0-sd_0.0", "0.03"),
        config=_vit("Ti/16"),
        about="ViT-Ti/16, AugReg: pre-trained on ImageNet-21k, fine-tuned on ImageNet-1k at 224",
    ),
    "S/16-augreg-in21k-ft-in1k": dict(
        url=_AUGREG.format("S_16", "light1-wd_0.03-do_0.0-sd_0.0", "0.03"),
        config=_vit("S/16"),
        about="ViT-S/16, AugReg: pre-trained on ImageNet-21k, fine-tuned on ImageNet-1k at 224",
    ),
    "B/16-augreg-in21k-ft-in1k": dict(
        url=_AUGREG.format("B_16", "medium1-wd_0.1-do_0.0-sd_0.0", "0.01"),
        config=_vit("B/16"),
        about="ViT-B/16, AugReg: pre-trained on ImageNet-21k, fine-tuned on ImageNet-1k at 224",
    ),
    "B/16-in21k-ft-in1k": dict(
        url=_VIT_MODELS + "imagenet21k+imagenet2012/ViT-B_16-224.npz",
        config=_vit("B/16"),
        about="ViT-B/16 of the original paper (Dosovitskiy et al. 2021): ImageNet-21k, "
              "fine-tuned on ImageNet-1k at 224",
    ),
}
for _entry in CHECKPOINTS.values():
    _entry.update(size_mib=round(_entry["config"]["params"] * 4 / 2**20, 1),
                  license=_LICENSE, source=_SOURCE)

#: The 1000 ImageNet-1k class names, one per line in the order of the heads' outputs, as
#: used by Google's ViT and BiT colabs.
IMAGENET_LABELS = dict(
    url="https://storage.googleapis.com/bit_models/ilsvrc2012_wordnet_lemmas.txt",
    size_mib=0.02, license="not stated (the ILSVRC-2012 class names, WordNet lemmas)",
    source="Google's BiT and ViT colabs", about="ImageNet-1k class names (1000 lines)",
)
_FILES = {**CHECKPOINTS, "imagenet1k-labels": IMAGENET_LABELS}


def default_directory() -> Path:
    """Where :func:`download` saves files: ``$KERAS_HOME/models`` (default ``~/.keras/models``)."""
    from .data import keras_home

    return keras_home() / "models"


def _entry(name: str) -> dict:
    if name not in _FILES:
        raise ValueError(f"`name` must be one of {sorted(_FILES)}, got {name!r}.")
    return _FILES[name]


def describe(name: str, directory=None) -> str:
    """Say, without any network access, what :func:`download` would fetch: from where, how big,
    into which file, under which license, and the model it holds."""
    entry = _entry(name)
    target = Path(directory or default_directory()) / entry["url"].rsplit("/", 1)[-1]
    lines = [
        f"{name}: {entry['about']}",
        f"  from:    {entry['url']}",
        f"  size:    about {entry['size_mib']} MiB"
        + (" (its parameters x 4 bytes; the server is not asked)" if "config" in entry else ""),
        f"  into:    {target}" + ("  (already there)" if target.is_file() else ""),
        f"  license: {entry['license']}",
        f"  source:  {entry['source']}",
    ]
    if "config" in entry:
        cfg = {k: v for k, v in entry["config"].items() if k != "params"}
        lines.append(f"  model:   {entry['config']['params']:,} parameters, ViT({cfg})")
        lines.append("  inputs:  RGB 224x224, pixels scaled to [-1, 1] (see prepare_images)")
    return "\n".join(lines)


class DownloadError(OSError):
    """A download failed (offline, blocked, or the server refused). The message says what to do."""


def download(name: str, directory=None, timeout: float = 60.0) -> Path:
    """Download a file of :data:`CHECKPOINTS` (or ``"imagenet1k-labels"``); returns its path.

    A file already in ``directory`` (default :func:`default_directory`) is reused, never
    downloaded again or overwritten. The download goes to a temporary name first, so an
    interrupted one leaves nothing behind.
    """
    entry = _entry(name)
    url = entry["url"]
    directory = Path(directory or default_directory())
    target = directory / url.rsplit("/", 1)[-1]
    if target.is_file():
        return target
    try:
        return fetch_url(url, target, timeout)
    except OSError as e:
        raise DownloadError(
            f"Could not download {name} from {url} ({e}). Are you offline? On a machine with "
            f"internet access, download that address (about {entry['size_mib']} MiB) and copy "
            f"the file to {target}; then this function finds it there."
        ) from e


def load_labels(path) -> list[str]:
    """Class names, one per line (e.g. the file of ``download("imagenet1k-labels")``)."""
    return Path(path).read_text(encoding="utf-8").splitlines()


def prepare_images(images, image_size=224):
    """RGB images with values 0..255 -> float32 (batch, size, size, 3) scaled to [-1, 1].

    ``images``: one image (H, W, 3) or a batch (batch, H, W, 3). Each is resized (bilinear,
    antialiased) to ``image_size`` and scaled by ``x / 127.5 - 1``, as in Google's colabs.
    For photos that are not square, crop the centre first (``vitlib.data.center_crop_resize``).
    """
    x = ops.convert_to_tensor(images, dtype="float32")
    if len(ops.shape(x)) == 3:
        x = x[None]
    _checks.image_batch("images", ops.shape(x), 3)
    h, w = _checks.pair("image_size", image_size)
    if tuple(ops.shape(x)[1:3]) != (h, w):
        x = ops.image.resize(x, (h, w), interpolation="bilinear", antialias=True)
    return x / 127.5 - 1.0


def top_k(logits, labels, k: int = 5) -> list[list[tuple[str, float]]]:
    """The ``k`` most probable classes of each image: ``[[(label, probability), ...], ...]``."""
    k = _checks.positive_int("k", k)
    probs = ops.convert_to_numpy(ops.softmax(ops.convert_to_tensor(logits), axis=-1))
    if probs.ndim != 2:
        raise ValueError(f"`logits` must be (batch, classes), got shape {probs.shape}.")
    if probs.shape[-1] != len(labels):
        raise ValueError(
            f"`labels` has {len(labels)} names but `logits` has {probs.shape[-1]} classes."
        )
    order = np.argsort(-probs, axis=-1)[:, :k]
    return [[(labels[j], float(p[j])) for j in row] for p, row in zip(probs, order, strict=True)]
