"""Checkers for notebook 12 (scaling up: data and model parallelism).

- :func:`check_per_device_prediction` (predict-then-run): ``prediction``, a whole number: how many
  numbers of the notebook's tiny ViT (:data:`TINY`) one device holds on a 4x2 (batch x model)
  mesh with the tensor-parallel layout (the notebook built a 2x4 mesh and printed its bytes, so
  the exercise asks about the other one). With ``devices`` (8 JAX devices) the checker builds the
  ViT under ``ModelParallel`` on that mesh and reads the shards Keras placed on the first device;
  with ``model`` (built so already) it reads ``model``'s shards; without either, it adds up the
  per-device shapes of :func:`vitlib.distribute.sharding_table`. Recognised slips: nothing split,
  everything split by 2, split over all 8 devices, the 2x4 mesh's count (model axis 4: the axes
  read the other way round), only the kernels split (the Q/K/V and fc1 biases too are split by
  heads / hidden units).
- :func:`check_attention_partials` (transfer): ``fn(x, weights, devices) -> list`` of ``devices``
  arrays (batch, tokens, dim): the contribution of each device to a multi-head self-attention
  whose heads are split into ``devices`` contiguous groups (the notebook did the same for the
  MLP, split by hidden units). Each device computes its heads' attention and multiplies by its
  rows of the output kernel; the output bias is added once, after the sum (the all-reduce), so
  no partial holds it. Recognised slips: the bias in every partial, heads dealt out in turn
  instead of in blocks, the features of each head split instead of the heads, no 1/sqrt(d)
  scale, softmax over the queries, the full output divided by the number of devices.
- :func:`check_memory_answer` (interpret, multiple choice): ``answer``, one of ``"a"``-``"d"``:
  what the notebook's memory table says about training ViT-H/14 on 8 devices of 4 GB each. Each
  wrong choice gets its own explanation.

A prediction or an answer of None (the student edition's stub) gets "not answered yet".
"""

from __future__ import annotations

import math

import numpy as np

from ._core import Feedback, Mistake, check, choose, compare_prediction

__all__ = ["MEMORY_OPTIONS", "TINY", "check_attention_partials", "check_memory_answer",
           "check_per_device_prediction", "per_device_numbers"]

#: The notebook's tiny ViT: 16x16 grey images, 4x4 patches, 2 blocks of width 32, 4 heads.
TINY = dict(image_size=16, patch_size=4, num_classes=10, dim=32, depth=2, num_heads=4, mlp_dim=64,
            channels=1)
MESH = (4, 2)  # Exercise 1: 4 batch slices x 2 model shards


# --- Exercise 1: numbers per device (predict-then-run) ---------------------------------------------

def per_device_numbers(model=None, mesh_shape=MESH) -> int:
    """Numbers (weights) of :data:`TINY` on one device of a ``mesh_shape`` mesh: read from the
    shards of ``model`` (a ViT built under ``ModelParallel``, JAX backend) on the first device, or,
    without ``model``, the sum of the per-device shapes of the tensor-parallel layout."""
    from .. import distribute

    if model is not None:
        first = model.weights[0].value.addressable_shards[0].device
        return sum(int(shard.data.size) for v in model.weights
                   for shard in v.value.addressable_shards if shard.device == first)
    rows = distribute.sharding_table(distribute.vit_weight_shapes(TINY), mesh_shape)
    return sum(math.prod(r["per_device"]) for r in rows)


def _tiny_counts() -> dict:
    """Independent arithmetic on :data:`TINY`: the whole count and the parts the layout splits."""
    c = TINY
    d, m, depth = c["dim"], c["mlp_dim"], c["depth"]
    p2c = c["patch_size"] ** 2 * c["channels"]
    tokens = (c["image_size"] // c["patch_size"]) ** 2 + 1
    block = 4 * d + 4 * (d * d + d) + 2 * d * m + m + d
    total = p2c * d + d + d + tokens * d + depth * block + 2 * d + d * c["num_classes"] + c["num_classes"]
    kernels = depth * (4 * d * d + 2 * d * m)  # Q, K, V, output, fc1, fc2
    biases = depth * (3 * d + m)  # Q, K, V (heads x head_dim) and fc1 (mlp_dim)
    return {"total": total, "kernels": kernels, "biases": biases}


def _built_on_mesh(devices):
    """:data:`TINY` built under ``ModelParallel`` on the :data:`MESH` mesh of ``devices``."""
    from .. import distribute
    from ..model import ViT

    with distribute.model_parallel(TINY, MESH, list(devices)).scope():
        model = ViT(**TINY)
        model.build()
    return model


def check_per_device_prediction(prediction, model=None, devices=None) -> Feedback:
    """Predict-then-run: numbers of the tiny ViT on one device of the 4x2 mesh (see the module
    docstring); ``devices``: 8 JAX devices to build it on, or ``model``: a ViT built so already;
    neither: the layout's arithmetic."""
    if model is None and devices is not None:
        model = _built_on_mesh(devices)
    n = _tiny_counts()
    model_axis = MESH[1]
    split = n["kernels"] + n["biases"]
    replicated = n["total"] - split
    right = replicated + split // model_axis
    measured = per_device_numbers(model)
    where = ("read from the shards on the first device" if model is not None
             else "added up from the per-device shapes of the layout")
    why = (f"On a 4x2 mesh the model axis is the second number, 2. The six kernels and the Q/K/V "
           f"and fc1 biases of both blocks ({split:,} numbers) are split over it: "
           f"{split // model_axis:,} per device. The rest ({replicated:,}: embeddings, class "
           "token, LayerNorms, the output and fc2 biases, the head) is copied to every device: "
           f"{right:,} in all, {where}.")
    total = n["total"]
    mistakes = [
        ("replicated", total,
         f"{total:,} is the whole model: what every device holds under DATA parallelism. The "
         "4x2 mesh splits the big kernels over its model axis (2 devices)."),
        ("all_split", total // model_axis,
         f"You divided the whole model ({total:,}) by 2. Only the block's kernels and the Q/K/V "
         "and fc1 biases are split; the embeddings, LayerNorms, output and fc2 biases and the "
         "head are copied to every device."),
        ("eight_devices", replicated + split // 8,
         "You split the weights over all 8 devices. The mesh's first axis (4) splits the BATCH: "
         "the four batch slices see the same weights, so weights are split by the model axis "
         "(2) only."),
        ("axes_swapped", replicated + split // 4,
         "That is the count for the 2x4 mesh of Step 3 (model axis 4). A mesh is written "
         "BATCHxMODEL: on 4x2 the batch is split in 4 and the weights in 2."),
        ("kernels_only", replicated + n["biases"] + n["kernels"] // model_axis,
         "Close: you split the kernels but kept the Q/K/V and fc1 biases whole. Those biases "
         "belong to the heads (heads x head_dim) and hidden units (mlp_dim) a device computes, so "
         "the layout splits them too (Step 3's sharding table shows (1, 8) and (16,) on 4 "
         "shards)."),
    ]
    if measured != right:  # the layout and the arithmetic above must agree
        raise AssertionError(f"measured {measured} numbers per device, expected {right}")
    return compare_prediction(prediction, measured, title="Exercise 1 · numbers on one device",
                              unit="numbers", why=why, mistakes=mistakes)


# --- Exercise 2: attention split by heads (transfer) ------------------------------------------------
# x: (batch, tokens, dim); weights: vitlib's names and shapes (query_kernel (dim, heads, head_dim),
# query_bias (heads, head_dim), the same for key and value, output_kernel (heads, head_dim, dim),
# output_bias (dim,)); devices divides heads. Device d holds heads [d*h/devices, (d+1)*h/devices).


def _softmax(s, axis=-1):
    s = s - s.max(axis=axis, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=axis, keepdims=True)


def _heads_output(x, w, heads, features=slice(None), scale=True, axis=-1):
    """Attention of the given heads (and features within each head): (batch, tokens, h', k')."""
    q, k, v = (np.einsum("btd,dhk->bthk", x, w[f"{n}_kernel"][:, heads, features])
               + w[f"{n}_bias"][heads, features] for n in ("query", "key", "value"))
    scores = np.einsum("bqhk,bthk->bhqt", q, k)
    if scale:
        scores = scores / np.sqrt(q.shape[-1])
    return np.einsum("bhqt,bthk->bqhk", _softmax(scores, axis=axis), v)


def _groups(heads: int, devices: int) -> list[slice]:
    size = heads // devices
    return [slice(d * size, (d + 1) * size) for d in range(devices)]


def _partials(x, w, devices):
    heads = w["query_kernel"].shape[1]
    return [np.einsum("bthk,hkd->btd", _heads_output(x, w, g), w["output_kernel"][g])
            for g in _groups(heads, devices)]


def _bias_everywhere(x, w, devices):
    return [p + w["output_bias"] for p in _partials(x, w, devices)]


def _strided(x, w, devices):
    heads = w["query_kernel"].shape[1]
    out = []
    for d in range(devices):
        g = list(range(d, heads, devices))
        out.append(np.einsum("bthk,hkd->btd", _heads_output(x, w, g), w["output_kernel"][g]))
    return out


def _split_features(x, w, devices):
    k = w["query_kernel"].shape[2]
    if k % devices:
        raise ValueError("head_dim does not split")
    out = []
    for g in _groups(k, devices):
        o = _heads_output(x, w, slice(None), g)
        out.append(np.einsum("bthk,hkd->btd", o, w["output_kernel"][:, g]))
    return out


def _no_scale(x, w, devices):
    heads = w["query_kernel"].shape[1]
    return [np.einsum("bthk,hkd->btd", _heads_output(x, w, g, scale=False), w["output_kernel"][g])
            for g in _groups(heads, devices)]


def _softmax_queries(x, w, devices):
    heads = w["query_kernel"].shape[1]
    return [np.einsum("bthk,hkd->btd", _heads_output(x, w, g, axis=-2), w["output_kernel"][g])
            for g in _groups(heads, devices)]


def _divided(x, w, devices):
    full = sum(_partials(x, w, 1))
    return [full / devices for _ in range(devices)]


ATTENTION_MISTAKES = (
    Mistake("bias_in_every_partial", _bias_everywhere,
            "every partial holds the output bias, so their sum holds it `devices` times. The "
            "all-reduce ADDS the partials: leave b_O out of them; it is added once, after the "
            "sum (that is why the layout keeps output_bias replicated)."),
    Mistake("strided_heads", _strided,
            "you dealt the heads out in turn (device 0: heads 0, devices, 2*devices, ...). A "
            "sharded axis is cut into contiguous blocks: device d holds heads d*h/devices to "
            "(d+1)*h/devices - 1, as the sharding table's (32, 1, 8) slices show. The sum is "
            "right, but each device would need weights it does not have."),
    Mistake("split_features", _split_features,
            "you split the features inside every head (head_dim) instead of the heads. A head's "
            "scores q.k need ALL its features: softmax of partial dot products is not the "
            "attention. Split the heads axis (axis 1 of query_kernel), as the layout does."),
    Mistake("no_scale", _no_scale,
            "the scores are not divided by sqrt(head_dim) (notebook 02): softmax(q k^T / "
            "sqrt(d)) with d the features of one head."),
    Mistake("softmax_over_queries", _softmax_queries,
            "the softmax runs over the queries; each query's weights must sum to 1 over the KEYS "
            "(the last axis of the (batch, heads, queries, keys) scores)."),
    Mistake("whole_output_divided", _divided,
            "each partial is the whole output divided by the number of devices. The sum is "
            "right, but each device computed every head: tensor parallelism is about each device "
            "computing only its own heads with only its own rows of W_O."),
)


def _attention_case(rng, heads=None, devices=None):
    if heads is None:
        heads = int(rng.choice([2, 4, 6, 8]))
    if devices is None:
        devices = int(rng.choice([d for d in (1, 2, 4) if heads % d == 0]))
    head_dim = int(rng.choice([2, 4, 6]))
    dim = heads * head_dim
    b, t = int(rng.integers(1, 3)), int(rng.integers(2, 6))
    w = {}
    for n in ("query", "key", "value"):
        w[f"{n}_kernel"] = rng.normal(size=(dim, heads, head_dim))
        w[f"{n}_bias"] = rng.normal(size=(heads, head_dim)) * 0.5
    w["output_kernel"] = rng.normal(size=(heads, head_dim, dim))
    w["output_bias"] = rng.normal(size=(dim,)) + 1.0
    return rng.normal(size=(b, t, dim)), w, devices


def _attention_cases():
    fixed = [(4, 2), (8, 4), (6, 2)]  # heads, devices: blocks of 2 or more heads on each device
    state = {"i": 0}

    def make_case(rng):
        i = state["i"]
        state["i"] += 1
        return _attention_case(rng, *fixed[i]) if i < len(fixed) else _attention_case(rng)

    return make_case


def check_attention_partials(fn, cases: int = 6, seed: int | None = None) -> Feedback:
    """Check ``fn(x, weights, devices) -> [partial_0, ..., partial_{devices-1}]`` (a list, or an
    array with a leading devices axis) against the reference; see the module docstring."""
    def learner(x, w, devices):
        out = fn(x, w, devices)
        return out if out is None or isinstance(out, list) else list(out)

    return check(learner, _partials, _attention_cases(), ATTENTION_MISTAKES,
                 title="Exercise 2 · attention split by heads", cases=cases, atol=1e-6,
                 seed=seed)


# --- Exercise 3: what the memory table says (interpret) ---------------------------------------------

MEMORY_OPTIONS = {
    "a": ("Data parallelism does not divide the weights: every device holds ALL of them (and "
          "their gradients and AdamW moments); it divides the BATCH. The table's data-parallel "
          "column is the same for 1 or 1,000 devices: 10.11 GB for ViT-H/14, which does not fit "
          "in 4 GB."),
    "b": "right",
    "c": ("Not with these numbers: 10.11 GB is what ONE device would hold if nothing were split. "
          "The tensor-parallel columns show the same model needing 2.56 GB per device over a "
          "model axis of 4 and 1.30 GB over 8: splitting the weights is what makes it fit."),
    "d": ("The batch axis splits the batch, not the weights: on a 2x4 mesh each weight is split "
          "over the model axis (4), and the two batch halves hold the same slices. A 2x4 mesh "
          "holds the 2.56 GB of the 'model axis 4' column per device, twice the 1x8 mesh's "
          "1.30 GB."),
}
MEMORY_WHY = ("Under data parallelism every device holds the whole training state: 10.11 GB for "
              "ViT-H/14 (16 bytes per parameter: the weight, its gradient and AdamW's two "
              "moments in float32), too much for 4 GB. Tensor parallelism over a model axis of "
              "8 (a 1x8 mesh) splits the blocks' kernels, which hold almost all the parameters: "
              "1.30 GB per device, a little more than 10.11 / 8 = 1.26 because the embeddings, "
              "LayerNorms, some biases and the head are copied. That is the training state only: the "
              "table does not count the activations, which also need room (the batch size "
              "decides how much), so whether the whole training fits is not shown here.")


def check_memory_answer(answer) -> Feedback:
    """Interpret: which statement does the notebook's memory table support?"""
    return choose(answer, options=MEMORY_OPTIONS, correct="b", why=MEMORY_WHY,
                  title="Exercise 3 · what fits on 8 devices of 4 GB")
