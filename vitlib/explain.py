"""Looking inside a trained ViT: attention maps, attention rollout, attention distance (notebook 07).

Everything here works on plain NumPy arrays once the attention weights are out of the model, so the
same tools serve any ViT that returns them (notebook 09 uses them on a pretrained model):

- :func:`attention_maps`           model + images -> one (batch, heads, tokens, tokens) array per layer
- :func:`cls_attention`            the class token's row over the patches, on the grid
- :func:`attention_rollout`        Abnar & Zuidema (2020): attention mixed through the layers (Figure 6)
- :func:`mean_attention_distance`  how far each head looks, in pixels (ViT paper, Figure 7 right)
- :func:`position_similarity`      cosine similarity of position embeddings (Figure 7 centre)
- :func:`patch_filters`            principal components of the patch embedding E (Figure 7 left)
- :func:`query_attention`          the explorer's logic: where one query patch attends

Token layout (as in :class:`vitlib.ViT`): ``num_prefix_tokens`` prefix tokens first (1 for the class
token with ``pooling="cls"``, 0 with ``pooling="mean"``), then the ``rows * cols`` patches row by row.
"""

from __future__ import annotations

import numbers

import numpy as np
from keras import ops

from . import _checks

__all__ = [
    "attention_maps", "attention_rollout", "cls_attention", "distance_matrix",
    "mean_attention_distance", "num_prefix_tokens", "patch_filters", "position_similarity",
    "query_attention",
]


# --- Getting the weights out ------------------------------------------------------------------

def num_prefix_tokens(model) -> int:
    """Tokens before the patches: 1 for a class-token ViT (``pooling="cls"``), 0 for mean pooling."""
    if isinstance(getattr(model, "num_prefix_tokens", None), int):
        return model.num_prefix_tokens  # a vitlib.ViT
    return 1 if getattr(model, "pooling", "cls") == "cls" else 0


def attention_maps(model, images, batch_size: int = 256) -> list[np.ndarray]:
    """Run ``model`` on ``images`` and return its attention weights as NumPy.

    images (batch, H, W, C) -> a list with one float32 array (batch, heads, tokens, tokens) per
    layer, first layer first. Row q of a map holds the softmax weights of query token q over all
    keys (it sums to 1). Inference only (``training=False``), in chunks of ``batch_size``.
    """
    images = np.asarray(images, dtype="float32")
    _checks.image_batch("images", images.shape)
    batch_size = _checks.positive_int("batch_size", batch_size)
    chunks = []
    for start in range(0, len(images), batch_size):
        _, attention = model(images[start:start + batch_size], training=False, return_attention=True)
        chunks.append([ops.convert_to_numpy(a).astype("float32") for a in attention])
    return [np.concatenate(layer, axis=0) for layer in zip(*chunks, strict=True)]


def _stack(attentions, name: str = "attentions") -> np.ndarray:
    """A list of per-layer (batch, heads, T, T) arrays, or one array, as float64 NumPy."""
    if isinstance(attentions, (list, tuple)):
        if not attentions:
            raise ValueError(f"`{name}` must hold at least one layer's attention, got an empty list.")
        attentions = np.stack([np.asarray(ops.convert_to_numpy(a)) for a in attentions])
    a = np.asarray(ops.convert_to_numpy(attentions), dtype=np.float64)
    _checks.finite(name, a)
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(
            f"`{name}` must end in (tokens, tokens) (queries, keys), got shape {a.shape}."
        )
    return a


def _grid_and_prefix(tokens: int, grid_size, num_prefix_tokens: int, name: str = "attentions"):
    rows, cols = _checks.pair("grid_size", grid_size)
    if (isinstance(num_prefix_tokens, bool) or not isinstance(num_prefix_tokens, numbers.Integral)
            or num_prefix_tokens < 0):
        raise ValueError(
            f"`num_prefix_tokens` must be a non-negative integer (1 with a class token, 0 without), "
            f"got {num_prefix_tokens!r}."
        )
    if tokens != num_prefix_tokens + rows * cols:
        raise ValueError(
            f"`{name}` has {tokens} tokens, but `grid_size`={(rows, cols)} and "
            f"`num_prefix_tokens`={num_prefix_tokens} make {num_prefix_tokens + rows * cols} "
            f"({num_prefix_tokens} prefix + {rows}x{cols} patches)."
        )
    return rows, cols, int(num_prefix_tokens)


# --- What the class token looks at -------------------------------------------------------------

def cls_attention(attentions, grid_size, num_prefix_tokens: int = 1) -> np.ndarray:
    """The weights the pooled output takes from each patch, drawn on the grid of patches.

    attentions (..., tokens, tokens), e.g. a list of ``depth`` arrays (batch, heads, T, T) (then
    stacked to (depth, batch, heads, T, T)) or a rollout (batch, T, T) -> (..., rows, cols).

    With a class token (``num_prefix_tokens=1``) this is the class token's row (query 0) over
    the patch keys: the raw weights, which sum to 1 minus what the class token takes from itself.
    With mean pooling (``num_prefix_tokens=0``) there is no class token; the model's output is the
    mean of all tokens, so we use the **mean over all query rows** instead.
    """
    a = _stack(attentions)
    rows, cols, prefix = _grid_and_prefix(a.shape[-1], grid_size, num_prefix_tokens)
    row = a[..., 0, prefix:] if prefix else a.mean(axis=-2)  # (..., rows*cols)
    return row.reshape(*a.shape[:-2], rows, cols)


def attention_rollout(attentions, residual: bool = True, head_fusion: str = "mean") -> np.ndarray:
    """Attention rollout (Abnar and Zuidema 2020): how much each input token flows into each output.

    attentions: a list of ``depth`` arrays (batch, heads, T, T), first layer first (or one array
    (depth, batch, heads, T, T)) -> rollout (batch, T, T), float64; every row sums to 1.

    For each layer l: fuse the heads (``head_fusion`` "mean", "max" or "min") into A_l; with
    ``residual=True`` account for the skip connection, A_l' = 0.5 * A_l + 0.5 * I; renormalise the
    rows to sum to 1; then multiply through the layers from the first upward:
    R = A_L' ... A_2' A_1'. Row q of R says how much of each input token reaches output token q.
    """
    _checks.one_of("head_fusion", head_fusion, {"mean", "max", "min"})
    a = _stack(attentions)
    if a.ndim != 5:
        raise ValueError(
            "`attentions` must be a list of per-layer arrays (batch, heads, tokens, tokens) or one "
            f"array (layers, batch, heads, tokens, tokens), got shape {a.shape}."
        )
    fused = {"mean": np.mean, "max": np.max, "min": np.min}[head_fusion](a, axis=2)  # (L, b, T, T)
    eye = np.eye(a.shape[-1])
    rollout = None
    for layer in fused:  # first layer first
        if residual:
            layer = 0.5 * layer + 0.5 * eye
        totals = layer.sum(axis=-1, keepdims=True)
        if np.any(totals <= 0):
            raise ValueError("`attentions` has a query row that sums to 0 (with residual=False): "
                             "attention weights are softmax rows, each summing to 1.")
        layer = layer / totals
        rollout = layer if rollout is None else layer @ rollout  # R_l = A_l' R_(l-1)
    return rollout


# --- How far the heads look --------------------------------------------------------------------

def distance_matrix(grid_size, patch_size: int = 1) -> np.ndarray:
    """Euclidean distances between patch centres, in pixels: (rows*cols, rows*cols).

    Patch k sits at row k // cols, column k % cols (row-major, as the patches are listed); with
    ``patch_size=1`` the distances are in patches.
    """
    rows, cols = _checks.pair("grid_size", grid_size)
    p = _checks.positive_int("patch_size", patch_size)
    r, c = np.divmod(np.arange(rows * cols), cols)
    centres = np.stack([r, c], axis=1).astype(np.float64) * p  # (N, 2), in pixels
    return np.linalg.norm(centres[:, None] - centres[None], axis=-1)


def mean_attention_distance(attention, grid_size, patch_size: int,
                            num_prefix_tokens: int = 1) -> np.ndarray:
    """Mean attention distance (平均注意距離) per layer and head, in pixels (ViT Figure 7, right).

    attention: a list of ``depth`` arrays (batch, heads, T, T) (or one array of shape
    (depth, batch, heads, T, T)) -> (depth, heads); one array (batch, heads, T, T) -> (heads,).

    For every patch query q, the attention-weighted mean distance to the patch keys k,
    sum_k a_qk * |centre_q - centre_k|, where the weights over patch keys are renormalised to
    sum to 1 (the class token has no place on the image, so it is left out as query and as key);
    then the mean over queries and over images. A head that only looks at itself scores 0; one
    that spreads its attention evenly scores about half the image side.

    (Some code, e.g. the "probing ViTs" notebooks, skips the renormalisation; with little
    attention on the class token the two agree closely.)

    The layers are processed one at a time, so the memory needed beyond the input is a few
    float64 copies of one layer, not of all of them.
    """
    if isinstance(attention, (list, tuple)):
        if not attention:
            raise ValueError("`attention` must hold at least one layer's attention, got an empty list.")
        layers, single = attention, False
    else:
        a = np.asarray(ops.convert_to_numpy(attention))
        single = a.ndim == 4
        # One layer (batch, heads, T, T), or (layers, batch, heads, T, T) iterated over its layers;
        # any other shape is rejected in the loop.
        layers = a if a.ndim == 5 else [a]
    d = None
    result = []
    for i, layer in enumerate(layers):
        a = np.asarray(ops.convert_to_numpy(layer), dtype=np.float64)
        if a.ndim != 4 or a.shape[-1] != a.shape[-2]:
            where = f"layer {i} of `attention`" if isinstance(attention, (list, tuple)) else "`attention`"
            raise ValueError(
                "`attention` must be a list of per-layer arrays (batch, heads, tokens, tokens) or one "
                f"array (layers, batch, heads, tokens, tokens); {where} has shape {np.shape(a)}."
            )
        _checks.finite(f"attention[{i}]" if isinstance(attention, (list, tuple)) else "attention", a)
        rows, cols, prefix = _grid_and_prefix(a.shape[-1], grid_size, num_prefix_tokens, "attention")
        if d is None:
            d = distance_matrix((rows, cols), patch_size)  # (N, N), in pixels
        patches = a[..., prefix:, prefix:]  # (batch, heads, N, N): patch queries, patch keys
        totals = patches.sum(axis=-1, keepdims=True)
        # A query that puts all its weight on the class token has no patch weights to average:
        # it is left out (NaN) rather than divided 0 / 0.
        weights = np.divide(patches, totals, out=np.full_like(patches, np.nan), where=totals > 0)
        empty = np.isnan(weights).all(axis=(0, 2, 3))  # (heads,): no query of any image sees a patch
        if empty.any():
            raise ValueError(f"`attention` (layer {i}, heads {np.flatnonzero(empty).tolist()}) puts "
                             "no weight on any patch (every query attends only to the prefix "
                             "tokens): there is no distance to average.")
        per_query = (weights * d).sum(axis=-1)  # (batch, heads, N)
        result.append(np.nanmean(per_query, axis=(0, 2)))  # over images and queries -> (heads,)
    result = np.stack(result)  # (layers, heads)
    return result[0] if single else result


# --- What the embeddings learned ---------------------------------------------------------------

def position_similarity(embedding, grid_size) -> np.ndarray:
    """Cosine similarity of every patch's position embedding with every other's (Figure 7, centre).

    embedding: (1, prefix + rows*cols, dim) as stored by the model, or (prefix + rows*cols, dim);
    any prefix (class token) rows are dropped. -> (rows, cols, rows, cols): ``sim[r, c]`` is the
    map of position (r, c) against all positions, so ``sim[r, c, r, c] == 1``.
    """
    e = np.asarray(ops.convert_to_numpy(embedding), dtype=np.float64)
    _checks.finite("embedding", e, "a position embedding must hold finite numbers")
    if e.ndim == 3 and e.shape[0] == 1:
        e = e[0]
    if e.ndim != 2:
        raise ValueError(f"`embedding` must be (1, tokens, dim) or (tokens, dim), got shape {e.shape}.")
    rows, cols = _checks.pair("grid_size", grid_size)
    prefix = e.shape[0] - rows * cols
    if prefix not in (0, 1):
        raise ValueError(
            f"`embedding` has {e.shape[0]} rows; `grid_size`={(rows, cols)} needs {rows * cols} "
            f"(patches) or {rows * cols + 1} (with a class token). Pass the model's own grid_size."
        )
    e = e[prefix:]
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError("`embedding` has an all-zero row (e.g. position='none'): no direction to compare.")
    unit = e / norms
    return (unit @ unit.T).reshape(rows, cols, rows, cols)


def patch_filters(model, k: int = 16):
    """The first ``k`` principal components of the patch embedding E, as images (Figure 7, left).

    ``model`` is a :class:`vitlib.ViT` (its ``patch_embedding.projection`` kernel is used) or the
    kernel itself, shaped (p, p, channels, dim) as a Conv2D stores it. E is that kernel as a
    (p*p*channels, dim) matrix: its ``dim`` columns are the filters, one p x p x channels image
    each. The principal components are the directions in pixel space along which the (centred)
    filters vary most, i.e. the left singular vectors of E minus its mean column.

    Returns ``(components, explained)``: components (k, p, p, channels), each of unit length, its
    sign chosen so that its largest entry is positive; explained (k,) the fraction of the filters'
    variance that each component explains.
    """
    if hasattr(model, "patch_embedding"):
        kernel = model.patch_embedding.projection.kernel
        p, c = model.patch_size, model.channels
    else:
        kernel = model
        shape = np.shape(ops.convert_to_numpy(kernel))
        if len(shape) != 4 or shape[0] != shape[1]:
            raise ValueError(
                f"`model` must be a vitlib.ViT or a kernel (p, p, channels, dim), got shape {shape}."
            )
        p, c = shape[0], shape[2]
    e = np.asarray(ops.convert_to_numpy(kernel), dtype=np.float64).reshape(p * p * c, -1)
    k = _checks.positive_int("k", k)
    if k > min(e.shape):
        raise ValueError(f"`k` must be at most {min(e.shape)} (pixels per patch, filters), got {k}.")
    centred = e - e.mean(axis=1, keepdims=True)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)  # u: (p*p*c, r), columns = components
    u = u[:, :k] * np.sign(u[np.abs(u[:, :k]).argmax(axis=0), np.arange(k)])
    explained = (s**2 / np.sum(s**2))[:k]
    return u.T.reshape(k, p, p, c), explained


# --- The explorer's logic ----------------------------------------------------------------------

def _index(name: str, value, size: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= value < size:
        raise ValueError(f"`{name}` must be an integer from 0 to {size - 1} ({size} {what}), got {value!r}.")
    return int(value)


def query_attention(attentions, image_index: int, layer: int, head, query_patch, grid_size,
                    num_prefix_tokens: int = 1):
    """Where one query patch attends: the explorer's logic, without any widget.

    attentions: a list of ``depth`` arrays (batch, heads, T, T) (as from :func:`attention_maps`).
    ``layer`` and ``head`` count from 0; ``head="mean"`` averages the heads. ``query_patch`` is
    (row, col) on the grid, or the patch index row * cols + col. All indices are checked first.

    Returns ``(weights, to_prefix)``: weights (rows, cols), the query's attention on each patch,
    and to_prefix, the weight it puts on the class token (``None`` without one).
    """
    if isinstance(attentions, np.ndarray) and attentions.ndim == 5:
        attentions = list(attentions)
    if not isinstance(attentions, (list, tuple)) or not attentions:
        raise ValueError("`attentions` must be a non-empty list of per-layer arrays "
                         "(batch, heads, tokens, tokens), as returned by attention_maps.")
    layer = _index("layer", layer, len(attentions), "layers")
    a = np.asarray(ops.convert_to_numpy(attentions[layer]))
    _checks.rank(f"attentions[{layer}]", a.shape, 4, "(batch, heads, tokens, tokens)")
    _checks.finite(f"attentions[{layer}]", a)
    rows, cols, prefix = _grid_and_prefix(a.shape[-1], grid_size, num_prefix_tokens)
    image_index = _index("image_index", image_index, a.shape[0], "images")
    if isinstance(head, str):
        _checks.one_of("head", head, {"mean"})
        per_head = a[image_index].mean(axis=0)
    else:
        per_head = a[image_index, _index("head", head, a.shape[1], "heads")]
    if isinstance(query_patch, (tuple, list)):
        if len(query_patch) != 2:
            raise ValueError(f"`query_patch` must be (row, col) or a patch index, got {query_patch!r}.")
        r = _index("query_patch row", query_patch[0], rows, "rows")
        c = _index("query_patch col", query_patch[1], cols, "columns")
        q = r * cols + c
    else:
        q = _index("query_patch", query_patch, rows * cols, "patches")
    row = per_head[prefix + q]  # (T,)
    to_prefix = float(row[:prefix].sum()) if prefix else None
    return row[prefix:].reshape(rows, cols), to_prefix
