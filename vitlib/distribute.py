"""Step 12: the same ViT trained on many devices with ``keras.distribution`` (notebook 12).

**Data parallelism** (データ並列): every device holds all the weights and takes a slice of the
batch; the gradients are averaged over the devices (an all-reduce) before the one update.
:func:`data_parallel` is ``keras.distribution.DataParallel``.

**Tensor parallelism** (テンソル並列), the model parallelism (モデル並列) of Megatron-LM (Shoeybi et
al. 2019, Section 3): the devices form a 2-D device mesh (デバイスメッシュ) with axes ``("batch",
"model")``; the batch is split over ``"batch"`` and each encoder block's big kernels over
``"model"``, so that each sublayer (attention, MLP) needs ONE all-reduce in the forward pass:

====================================  ======================  ========================  ==============
weight (path in vitlib)               shape                   axes                      split
====================================  ======================  ========================  ==============
attention/{query,key,value}_kernel    (dim, heads, head_dim)  (None, "model", None)     by heads
attention/{query,key,value}_bias      (heads, head_dim)       ("model", None)           by heads
attention/output_kernel               (heads, head_dim, dim)  ("model", None, None)     by heads (rows)
mlp/fc1/kernel                        (dim, mlp_dim)          (None, "model")           columns
mlp/fc1/bias                          (mlp_dim,)              ("model",)                columns
mlp/fc2/kernel                        (mlp_dim, dim)          ("model", None)           rows
====================================  ======================  ========================  ==============

Each device computes whole heads (softmax needs a head's whole q.k) and a slice of the MLP's hidden
units (GELU acts on each unit alone); the output projection and ``fc2``, split by rows, then give
partial sums of the block's output, added by one all-reduce per sublayer. Everything else (patch
and position embeddings, class token, LayerNorms, the output and ``fc2`` biases, the head) is
replicated: small, and a bias must be added once, after the sum. :func:`model_parallel` is
``keras.distribution.ModelParallel`` with this :func:`layout_map`.

``keras.distribution`` runs on the JAX backend (XLA's sharding; Keras' TensorFlow implementation is
a prototype marked "DO NOT USE"). On TensorFlow, ``tf.distribute.MirroredStrategy`` gives data
parallelism (notebook 12). On one CPU, ``XLA_FLAGS=--xla_force_host_platform_device_count=8``, set
before JAX starts, gives 8 virtual devices: the same code paths, no speed-up.

Memory without allocating anything: :func:`vit_weight_shapes` lists a ViT's weights from its
configuration (ViT-H/14 too), :func:`memory_per_device` adds up parameters, gradients and AdamW's
two moments per device under either layout.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

from . import _checks

BATCH, MODEL = "batch", "model"
#: The names of the device mesh's two axes: the batch is split over the first, weights over the second.
MESH_AXES = (BATCH, MODEL)
KINDS = ("none", "data", "model")
#: How close one training step on several devices must come to the same step on one device (the
#: course's tests and notebook 12): the loss to a relative 1e-5; every updated weight of one AdamW
#: step to 5e-5, 5% of the learning rate 1e-3 that bounds how far that step moves a weight; the
#: gradients (read from one SGD step, :func:`sgd_gradients`) to 1e-4 of the largest gradient.
#: Measured on 8 virtual CPU devices: at most 1e-7, 4e-6 and 1e-6. The gradient check is the one
#: that sees the gradient's SIZE: AdamW's first step moves each weight by about lr * sign(g), so
#: gradients summed over 8 devices instead of averaged (8 times too large) would pass the AdamW
#: check but differ by 7 (relative) here.
TOLERANCE = {"loss": 1e-5, "weights": 5e-5, "gradients": 1e-4}

_BLOCK = r"(?:.*/)?block_\d+/"
#: Megatron-LM's tensor-parallel layout for vitlib's encoder blocks: (regular expression matched
#: against a weight's whole path, axes of the mesh each weight axis is split over).
TENSOR_PARALLEL_RULES = (
    (_BLOCK + r"attention/(?:query|key|value)_kernel", (None, MODEL, None)),
    (_BLOCK + r"attention/(?:query|key|value)_bias", (MODEL, None)),
    (_BLOCK + r"attention/output_kernel", (MODEL, None, None)),
    (_BLOCK + r"mlp/fc1/kernel", (None, MODEL)),
    (_BLOCK + r"mlp/fc1/bias", (MODEL,)),
    (_BLOCK + r"mlp/fc2/kernel", (MODEL, None)),
)
#: The six kernels of a block that the layout must split (checked by :func:`check_layout_covers`).
SHARDED_KERNELS = ("attention/query_kernel", "attention/key_kernel", "attention/value_kernel",
                   "attention/output_kernel", "mlp/fc1/kernel", "mlp/fc2/kernel")


# --- the mesh -------------------------------------------------------------------------------------

def parse_mesh(text: str) -> tuple[int, int]:
    """``"2x4"`` -> ``(2, 4)``: (batch, model) devices. Raises a ValueError naming ``mesh``."""
    parts = str(text).lower().split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f"`mesh` must be BATCHxMODEL with two positive integers, e.g. 2x4 "
                         f"(2 batch slices x 4 model shards), got {text!r}.")
    return shape


def check_mesh(mesh_shape, num_devices: int, num_heads: int | None = None,
               mlp_dim: int | None = None) -> tuple[int, int]:
    """Return ``mesh_shape`` as (batch, model) ints after checking it: two positive integers whose
    product is ``num_devices``, and a model axis that divides ``num_heads`` (whole heads per
    device) and ``mlp_dim`` (equal slices of the MLP). Each failure raises a ValueError that names
    ``mesh_shape`` and the number it must fit."""
    if isinstance(mesh_shape, str):
        mesh_shape = parse_mesh(mesh_shape)
    try:
        batch, model = (int(n) for n in mesh_shape)
    except (TypeError, ValueError):
        raise ValueError(f"`mesh_shape` must be (batch, model), two positive integers, got "
                         f"{mesh_shape!r}.") from None
    if batch < 1 or model < 1:
        raise ValueError(f"`mesh_shape` must be two positive integers, got {mesh_shape!r}.")
    if batch * model != num_devices:
        meshes = ", ".join(f"{num_devices // m}x{m}" for m in range(1, num_devices + 1)
                           if num_devices % m == 0)
        raise ValueError(f"`mesh_shape`={batch}x{model} needs {batch * model} devices, but "
                         f"{num_devices} are available: the mesh must use every device once "
                         f"({meshes}).")
    if num_heads is not None and num_heads % model:
        raise ValueError(f"`mesh_shape`={batch}x{model}: the model axis ({model}) must divide "
                         f"`num_heads`={num_heads}, so that each device computes whole heads; "
                         f"use a model axis in {_divisors(num_heads, num_devices)}.")
    if mlp_dim is not None and mlp_dim % model:
        raise ValueError(f"`mesh_shape`={batch}x{model}: the model axis ({model}) must divide "
                         f"`mlp_dim`={mlp_dim}, so that each device holds an equal slice of the "
                         f"MLP; use a model axis in {_divisors(mlp_dim, num_devices)}.")
    return batch, model


def _divisors(n: int, devices: int) -> list[int]:
    return [m for m in range(1, devices + 1) if n % m == 0 and devices % m == 0]


def default_mesh(num_devices: int, num_heads: int, mlp_dim: int) -> tuple[int, int]:
    """The mesh the training command uses without ``--mesh``: the largest model axis that divides
    the devices, the heads and the MLP width; the other devices split the batch. 8 devices and
    4 heads give (2, 4); 8 TPU cores and ViT-B's 12 heads give (2, 4)."""
    model = math.gcd(math.gcd(_checks.positive_int("num_devices", num_devices),
                              _checks.positive_int("num_heads", num_heads)),
                     _checks.positive_int("mlp_dim", mlp_dim))
    return num_devices // model, model


def _heads_and_width(model_or_config) -> tuple[int, int]:
    config = model_or_config if isinstance(model_or_config, dict) else model_or_config.get_config()
    return int(config["num_heads"]), int(config["mlp_dim"])


def device_mesh(mesh_shape, devices=None):
    """A ``keras.distribution.DeviceMesh`` of shape (batch, model) with axes :data:`MESH_AXES`,
    over ``devices`` (default: every device Keras sees, ``keras.distribution.list_devices()``)."""
    from keras import distribution

    devices = list(distribution.list_devices() if devices is None else devices)
    shape = check_mesh(mesh_shape, len(devices))
    return distribution.DeviceMesh(shape, MESH_AXES, devices)


def layout_map(mesh, num_heads: int | None = None, mlp_dim: int | None = None):
    """A ``keras.distribution.LayoutMap`` on ``mesh`` (a DeviceMesh with axes :data:`MESH_AXES`)
    holding :data:`TENSOR_PARALLEL_RULES`; with ``num_heads`` and ``mlp_dim`` the mesh's model
    axis is checked to divide them."""
    from keras import distribution

    if tuple(mesh.axis_names) != MESH_AXES:
        raise ValueError(f"`mesh` must have the axes {MESH_AXES}, got {tuple(mesh.axis_names)}.")
    check_mesh(mesh.shape, int(np.prod(mesh.shape)), num_heads, mlp_dim)
    layouts = distribution.LayoutMap(mesh)
    for pattern, axes in TENSOR_PARALLEL_RULES:
        layouts[pattern] = axes
    return layouts


def data_parallel(devices=None):
    """``keras.distribution.DataParallel`` over ``devices`` (default: all): weights replicated,
    each device gets ``batch / devices`` examples, gradients averaged."""
    from keras import distribution

    _needs_jax("data_parallel")
    devices = list(distribution.list_devices() if devices is None else devices)
    return distribution.DataParallel(devices=devices)


def model_parallel(model_or_config, mesh_shape=None, devices=None):
    """``keras.distribution.ModelParallel`` with the tensor-parallel :func:`layout_map` for a ViT
    (``model_or_config``: a ``vitlib.ViT`` or its config dict, for ``num_heads`` and ``mlp_dim``)
    on a (batch, model) mesh (default: :func:`default_mesh`). Create the model inside the
    returned distribution's ``scope()``."""
    from keras import distribution

    _needs_jax("model_parallel")
    heads, width = _heads_and_width(model_or_config)
    devices = list(distribution.list_devices() if devices is None else devices)
    if mesh_shape is None:
        mesh_shape = default_mesh(len(devices), heads, width)
    check_mesh(mesh_shape, len(devices), heads, width)
    mesh = device_mesh(mesh_shape, devices)
    return distribution.ModelParallel(layout_map=layout_map(mesh, heads, width), batch_dim_name=BATCH)


def make_distribution(kind: str, model_or_config=None, mesh_shape=None, devices=None):
    """``"none"`` -> None, ``"data"`` -> :func:`data_parallel`, ``"model"`` -> :func:`model_parallel`
    (``mesh_shape`` only with ``"model"``). What ``python -m experiments.train --distribution``
    builds."""
    _checks.one_of("kind", kind, set(KINDS))
    if mesh_shape is not None and kind != "model":
        raise ValueError(f"`mesh_shape` is for kind='model' (a batch x model mesh); kind={kind!r} "
                         "uses every device for the batch.")
    if kind == "none":
        return None
    if kind == "data":
        return data_parallel(devices)
    if model_or_config is None:
        raise ValueError("kind='model' needs `model_or_config` (num_heads and mlp_dim fix the mesh).")
    return model_parallel(model_or_config, mesh_shape, devices)


def batch_shards(distribution) -> int:
    """Into how many slices ``distribution`` splits each batch (1 for None): every batch, the last
    one of an epoch included, must divide evenly (JAX refuses uneven slices)."""
    if distribution is None:
        return 1
    mesh = distribution.device_mesh
    return int(mesh.shape[list(mesh.axis_names).index(distribution.batch_dim_name)])


def _needs_jax(what: str) -> None:
    import keras

    if keras.backend.backend() != "jax":
        raise ValueError(
            f"{what} needs the JAX backend (KERAS_BACKEND=jax, set before Keras is imported): "
            f"keras.distribution has no working {keras.backend.backend()} implementation. On "
            "TensorFlow use tf.distribute.MirroredStrategy (notebook 12).")


# --- which weight goes where ----------------------------------------------------------------------

def axes_for(path: str) -> tuple | None:
    """The mesh axes of the weight at ``path`` under :data:`TENSOR_PARALLEL_RULES`, or None
    (replicated). At most one rule matches a path (Keras' LayoutMap refuses two)."""
    found = [axes for pattern, axes in TENSOR_PARALLEL_RULES if re.fullmatch(pattern, path)]
    if len(found) > 1:
        raise ValueError(f"`path` {path!r} matches {len(found)} layout rules; expected at most one.")
    return found[0] if found else None


def check_layout_covers(paths: Sequence[str], depth: int | None = None) -> list[str]:
    """Check that the layout splits the six kernels (:data:`SHARDED_KERNELS`) of every encoder
    block among ``paths`` (``[v.path for v in model.weights]``; ``depth`` blocks expected if
    given). Returns the sharded paths; raises a ValueError listing every kernel left replicated."""
    paths = list(paths)
    blocks = sorted({int(m.group(1)) for p in paths for m in [re.search(r"block_(\d+)/", p)] if m})
    if depth is not None and blocks != list(range(depth)):
        raise ValueError(f"`paths` hold blocks {blocks}, expected block_0 .. block_{depth - 1}.")
    if not blocks:
        raise ValueError("`paths` hold no encoder block (no 'block_N/' in any path): is this a ViT?")
    sharded = [p for p in paths if axes_for(p) is not None]
    missing = [f"block_{b}/{k}" for b in blocks for k in SHARDED_KERNELS
               if not any(p.endswith(f"block_{b}/{k}") for p in sharded)]
    if missing:
        raise ValueError(f"the layout leaves {len(missing)} kernels replicated: {missing[:6]}"
                         f"{' ...' if len(missing) > 6 else ''}; every block's Q/K/V/output and "
                         "MLP kernels must be split.")
    return sharded


def shard_shape(shape, axes, mesh_shape) -> tuple[int, ...]:
    """The part of a weight of ``shape`` that one device holds when its axes are split over the
    mesh axes ``axes`` (None: not split) of a (batch, model) mesh of ``mesh_shape``."""
    shape = tuple(int(n) for n in shape)
    if axes is None:
        return shape
    if len(axes) != len(shape):
        raise ValueError(f"`axes` {axes} must name one mesh axis (or None) per axis of `shape` "
                         f"{shape}.")
    sizes = dict(zip(MESH_AXES, (int(n) for n in mesh_shape), strict=True))
    out = []
    for n, axis in zip(shape, axes, strict=True):
        parts = 1 if axis is None else sizes[axis]
        if n % parts:
            raise ValueError(f"a weight axis of size {n} cannot be split into {parts} equal parts "
                             f"(`mesh_shape`={tuple(mesh_shape)}, shape {shape}, axes {axes}).")
        out.append(n // parts)
    return tuple(out)


def _relative(path: str) -> str:
    """``vi_t/block_0/mlp/fc1/kernel`` -> ``block_0/mlp/fc1/kernel`` (without the model's name)."""
    return path.split("/", 1)[1] if "/" in path else path


def sharding_table(weights, mesh_shape) -> list[dict]:
    """One row per weight: ``path`` (without the model's name), ``shape``, ``axes`` (None:
    replicated) and ``per_device`` (the shape each device holds) under the tensor-parallel layout
    on a ``mesh_shape`` mesh. ``weights``: a model's ``weights`` or (path, shape[, trainable])
    tuples (:func:`vit_weight_shapes`)."""
    rows = []
    for w in weights:
        path, shape = (w.path, tuple(w.shape)) if hasattr(w, "path") else (w[0], tuple(w[1]))
        axes = axes_for(path)
        rows.append({"path": _relative(path) if hasattr(w, "path") else path, "shape": shape,
                     "axes": axes, "per_device": shard_shape(shape, axes, mesh_shape)})
    return rows


# --- memory, from shapes alone --------------------------------------------------------------------

def vit_weight_shapes(config: dict) -> list[tuple[str, tuple, bool]]:
    """The weights ``vitlib.ViT(**config)`` creates, as (path without the model's name, shape,
    trainable), computed from ``config`` alone: no memory is allocated, so ViT-H/14 is fine.
    ``patch_method`` "conv" or "dense" (the hybrid stem is not listed)."""
    p, c, d = config["patch_size"], config.get("channels", 3), config["dim"]
    h, m, k = config["num_heads"], config["mlp_dim"], config["num_classes"]
    size = config["image_size"]
    gh, gw = (size, size) if isinstance(size, int) else tuple(size)
    if d % h:
        raise ValueError(f"`num_heads`={h} must divide `dim`={d}.")
    method = config.get("patch_method", "conv")
    if method not in ("conv", "dense"):
        raise ValueError(f"`patch_method` {method!r}: only 'conv' and 'dense' are listed.")
    cls = config.get("pooling", "cls") == "cls"
    tokens = (gh // p) * (gw // p) + cls
    out = [("patch_embedding/conv/kernel", (p, p, c, d), True) if method == "conv"
           else ("patch_embedding/dense/kernel", (p * p * c, d), True),
           (f"patch_embedding/{method}/bias", (d,), True)]
    if cls:
        out.append(("class_token/token", (1, 1, d), True))
    position = config.get("position", "learned")
    if position != "none":
        out.append(("position_embedding/embedding", (1, tokens, d), position == "learned"))
    for i in range(config["depth"]):
        b = f"block_{i}/"
        out += [(b + "norm1/gamma", (d,), True), (b + "norm1/beta", (d,), True)]
        for name in ("query", "key", "value"):
            out += [(b + f"attention/{name}_kernel", (d, h, d // h), True),
                    (b + f"attention/{name}_bias", (h, d // h), True)]
        out += [(b + "attention/output_kernel", (h, d // h, d), True),
                (b + "attention/output_bias", (d,), True),
                (b + "norm2/gamma", (d,), True), (b + "norm2/beta", (d,), True),
                (b + "mlp/fc1/kernel", (d, m), True), (b + "mlp/fc1/bias", (m,), True),
                (b + "mlp/fc2/kernel", (m, d), True), (b + "mlp/fc2/bias", (d,), True)]
    out += [("norm/gamma", (d,), True), ("norm/beta", (d,), True),
            ("head/kernel", (d, k), True), ("head/bias", (k,), True)]
    return out


def memory_per_device(weights, kind: str = "data", mesh_shape=(1, 1), bytes_per_number: int = 4,
                      optimizer_slots: int = 2) -> dict:
    """Bytes one device holds for training: ``parameters``, ``gradients`` (one per trainable
    number), ``optimizer`` (``optimizer_slots`` per trainable number: AdamW's two moments) and
    their ``total``. ``kind="data"`` (or "none") replicates every weight; ``kind="model"`` splits
    them by the tensor-parallel layout on a (batch, model) mesh of ``mesh_shape``. ``weights``:
    (path, shape, trainable) tuples (:func:`vit_weight_shapes`) or a model's weights.
    Activations are not counted: they grow with the batch, which data parallelism splits."""
    _checks.one_of("kind", kind, set(KINDS))
    params = trainable = 0
    for w in weights:
        if hasattr(w, "path"):
            path, shape, train = w.path, tuple(w.shape), bool(w.trainable)
        else:
            path, shape, train = w[0], tuple(w[1]), bool(w[2]) if len(w) > 2 else True
        if kind == "model":
            shape = shard_shape(shape, axes_for(path), mesh_shape)
        n = int(np.prod(shape))
        params += n
        trainable += n if train else 0
    size = _checks.positive_int("bytes_per_number", bytes_per_number)
    out = {"parameters": params * size, "gradients": trainable * size,
           "optimizer": optimizer_slots * trainable * size}
    out["total"] = sum(out.values())
    return out


def bytes_on_device(variables, device=None) -> int:
    """Bytes of ``variables`` (Keras variables, JAX backend) stored on ``device`` (default: the
    first device), read from the arrays' shards: what Keras and XLA really placed there."""
    _needs_jax("bytes_on_device")
    import jax

    device = jax.devices()[0] if device is None else device
    return sum(int(shard.data.nbytes) for v in variables for shard in v.value.addressable_shards
               if shard.device == device)


# --- one training step, for the equivalence checks ------------------------------------------------

def train_step(config: dict, weights, x, y, distribution=None, learning_rate: float = 1e-3,
               weight_decay: float = 0.05, optimizer: str = "adamw"):
    """One training step of a fresh ``vitlib.ViT(**config)`` that starts from ``weights``
    (``get_weights()`` order) on images ``x`` (batch, H, W, C) and one-hot labels ``y``
    (batch, classes), with cross-entropy on logits and ``optimizer`` ``"adamw"`` (with
    ``weight_decay``) or ``"sgd"`` (plain gradient descent: the update is ``learning_rate`` times
    the gradient), built and run inside ``distribution.scope()`` (None: one device). Returns
    ``(loss, new_weights, model)``."""
    import contextlib

    import keras

    from .model import ViT

    _checks.one_of("optimizer", optimizer, {"adamw", "sgd"})
    shards = batch_shards(distribution)
    if len(x) % shards:
        raise ValueError(f"`x` holds {len(x)} images, which do not split into {shards} equal "
                         "slices: use a batch that is a multiple of the batch axis.")
    scope = distribution.scope() if distribution is not None else contextlib.nullcontext()
    with scope:
        model = ViT(**config)
        model.build()
        model.set_weights(weights)
        opt = (keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay)
               if optimizer == "adamw" else keras.optimizers.SGD(learning_rate))
        model.compile(optimizer=opt, loss=keras.losses.CategoricalCrossentropy(from_logits=True))
        loss = float(model.train_on_batch(x, y))
        new_weights = [np.asarray(w) for w in model.get_weights()]
    return loss, new_weights, model


def sgd_gradients(config: dict, weights, x, y, distribution=None) -> list:
    """The gradient one training step applied, read from the step itself: one plain SGD step with
    learning rate 1 (:func:`train_step`) from ``weights`` moves every weight by minus its
    gradient, so ``weights - new_weights`` is the gradient after any averaging over devices.
    Unlike AdamW's first step (about ``lr * sign(g)`` whatever the gradient's size), this shows
    the gradient's scale: a sum over devices instead of a mean would be ``devices`` times larger."""
    _, new, _ = train_step(config, weights, x, y, distribution, learning_rate=1.0, optimizer="sgd")
    return [np.asarray(w, np.float64) - n for w, n in zip(weights, new, strict=True)]


def gradient_difference(reference, other) -> float:
    """The largest absolute difference between two lists of gradients, relative to the largest
    gradient of ``reference`` (:func:`sgd_gradients`): 0 for the same gradients, 7 for gradients
    summed over 8 devices instead of averaged."""
    if len(reference) != len(other):
        raise ValueError(f"the two lists hold {len(reference)} and {len(other)} gradients.")
    scale = max(float(np.max(np.abs(g))) for g in reference)
    worst = max(float(np.max(np.abs(np.asarray(a) - np.asarray(b))))
                for a, b in zip(reference, other, strict=True))
    return worst / max(scale, 1e-30)


def mirrored_train_step(config: dict, weights, x, y, strategy, learning_rate: float = 1e-3,
                        weight_decay: float = 0.05):
    """The TensorFlow backend's counterpart of :func:`train_step`: the same step under a
    ``tf.distribute`` strategy (e.g. ``tf.distribute.MirroredStrategy``, data parallel). The model
    and its optimizer are created in ``strategy.scope()``; the batch goes through ``fit`` as one
    ``tf.data`` batch, which the strategy splits over its replicas (``train_on_batch`` would give
    every replica the whole batch). Returns ``(loss, new_weights, model)``."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ValueError("mirrored_train_step needs the TensorFlow backend (KERAS_BACKEND="
                         f"tensorflow), not {keras.backend.backend()!r}.")
    import tensorflow as tf

    from .model import ViT

    replicas = strategy.num_replicas_in_sync
    if len(x) % replicas:
        raise ValueError(f"`x` holds {len(x)} images, which do not split into {replicas} equal "
                         "slices: use a batch that is a multiple of the number of replicas.")
    with strategy.scope():
        model = ViT(**config)
        model.build()
        model.set_weights(weights)
        model.compile(optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=weight_decay),
                      loss=keras.losses.CategoricalCrossentropy(from_logits=True))
    batch = tf.data.Dataset.from_tensor_slices((np.asarray(x), np.asarray(y))).batch(len(x))
    history = model.fit(batch, epochs=1, verbose=0, shuffle=False)
    return float(history.history["loss"][0]), [np.asarray(w) for w in model.get_weights()], model


def step_difference(reference: tuple, other: tuple) -> dict:
    """Compare two :func:`train_step` results, ``(loss, new_weights, ...)``: ``loss``, the relative
    difference of the losses, and ``weights``, the largest absolute difference of any updated
    weight."""
    loss_a, w_a = reference[:2]
    loss_b, w_b = other[:2]
    if len(w_a) != len(w_b):
        raise ValueError(f"the two steps have {len(w_a)} and {len(w_b)} weights.")
    return {"loss": abs(loss_a - loss_b) / max(abs(loss_a), 1e-12),
            "weights": max(float(np.max(np.abs(a - b))) for a, b in zip(w_a, w_b, strict=True))}


def largest_update(start, updated) -> float:
    """The largest absolute change of any weight between ``start`` and ``updated`` (lists of
    arrays): about the learning rate for one Adam step."""
    return max(float(np.max(np.abs(a - b))) for a, b in zip(start, updated, strict=True))


def forward_collectives(model, x, distribution) -> list[dict]:
    """Compile ``model``'s forward pass on ``x`` (JAX backend) under ``distribution`` and list
    the communication XLA inserted: one dict per collective with ``kind`` (all-reduce,
    all-gather, ...), ``shape`` (what each device sends), ``op`` (the layer it comes from) and
    ``groups`` (the sets of devices that exchange data, as device names like ``"cpu:3"``, read
    from the compiled program's replica groups; None where the program does not say)."""
    _needs_jax("forward_collectives")
    import jax
    from keras import distribution as kd

    xs = kd.distribute_tensor(np.asarray(x), distribution.get_data_layout(np.shape(x)))
    trainable = [v.value for v in model.trainable_variables]
    fixed = [v.value for v in model.non_trainable_variables]

    def forward(trainable, fixed, images):
        return model.stateless_call(trainable, fixed, images)[0]

    text = jax.jit(forward).lower(trainable, fixed, xs).compile().as_text()
    # The program numbers the devices in the order of the mesh (the input sharding's devices).
    mesh = getattr(xs.sharding, "mesh", None)
    order = list(mesh.devices.flat) if mesh is not None else None
    found = []
    pattern = re.compile(r"= (\S+)\[([\d,]*)\]\S* (all-reduce|all-gather|reduce-scatter|all-to-all|"
                         r"collective-permute)(?:-start)?\((.*?)op_name=\"([^\"]*)\"")
    for m in pattern.finditer(text):
        op = re.sub(r"^jit\(forward\)/", "", m.group(5))
        groups = _replica_groups(m.group(4))
        if groups is not None and order is not None:
            groups = [[f"{order[i].platform}:{order[i].id}" for i in g] for g in groups]
        found.append({"kind": m.group(3), "dtype": m.group(1),
                      "shape": tuple(int(n) for n in m.group(2).split(",") if n), "op": op,
                      "groups": groups})
    return found


def _replica_groups(attributes: str) -> list[list[int]] | None:
    """The ``replica_groups`` of one HLO collective, in either of XLA's spellings: explicit
    (``{{0,1,2,3},{4,5,6,7}}``) or iota (``[2,4]<=[8]``, ``[4,2]<=[2,4]T(1,0)``)."""
    m = re.search(r"replica_groups=\{(\{[\d,{}]*\})\}", attributes)
    if m:
        return [[int(n) for n in g.split(",") if n] for g in re.findall(r"\{([\d,]*)\}", m.group(1))]
    m = re.search(r"replica_groups=\[([\d,]+)\]<=\[([\d,]+)\](?:T\(([\d,]+)\))?", attributes)
    if not m:
        return None
    shape, dims = [int(n) for n in m.group(1).split(",")], [int(n) for n in m.group(2).split(",")]
    ids = np.arange(math.prod(dims)).reshape(dims)
    if m.group(3):
        ids = ids.transpose([int(n) for n in m.group(3).split(",")])
    return ids.reshape(shape).tolist()
