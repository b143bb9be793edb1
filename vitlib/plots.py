"""Pictures of what a ViT computes: attention maps, rollout, distances, embeddings (notebook 07).

Matplotlib helpers on top of :mod:`vitlib.explain`. Each returns its matplotlib ``Figure`` (or the
``Axes`` it drew on) and leaves ``plt.show()`` to the notebook. Every heat map has a colour bar,
every axis a label. Images are (H, W, C) floats; one channel is drawn in grey.

The interactive explorer (:func:`attention_explorer`) needs ``ipywidgets``; its picture is drawn
off-screen into an ``ipywidgets.Image``, so it works (and is tested) without a browser.
:func:`static_explorer_figure` draws the same maps for a fixed set of queries, for the places where
widgets do not render (exported slides, a static site, GitHub).
"""

from __future__ import annotations

import io

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from . import explain

__all__ = [
    "AttentionExplorer", "attention_explorer", "plot_attention_distance", "show_attention_grid",
    "show_filters", "show_position_similarity", "show_rollout", "static_explorer_figure",
]

HEAT = "inferno"


def _as_image(image) -> np.ndarray:
    """(H, W, C) or (H, W) -> something imshow draws: grey for one channel, scaled to [0, 1]."""
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    lo, hi = img.min(), img.max()
    if lo < 0 or hi > 1:
        img = (img - lo) / (hi - lo if hi > lo else 1.0)
    return img


def _overlay(ax, image, heat, vmin=0.0, vmax=None, alpha=0.65):
    """Draw ``image`` in grey and the (rows, cols) ``heat`` map on top, stretched to the image."""
    img = _as_image(image)
    h, w = img.shape[:2]
    ax.imshow(img, cmap="gray", vmin=0, vmax=1, extent=(0, w, h, 0))
    im = ax.imshow(heat, cmap=HEAT, alpha=alpha, vmin=vmin, vmax=vmax, extent=(0, w, h, 0),
                   interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    return im


def show_attention_grid(image, maps, title: str = "Class-token attention per layer and head",
                        overlay: bool = True, figsize=None) -> Figure:
    """One image and its attention maps, a row per layer and a column per head.

    image (H, W, C); maps (layers, heads, rows, cols), e.g. ``explain.cls_attention(...)[:, i]``
    for image i. Each layer (row) has its own colour scale and colour bar (attention weight).
    """
    maps = np.asarray(maps)
    if maps.ndim != 4:
        raise ValueError(f"`maps` must be (layers, heads, rows, cols), got shape {maps.shape}.")
    layers, heads = maps.shape[:2]
    fig, axes = plt.subplots(layers, heads + 1, squeeze=False,
                             figsize=figsize or (1.5 * (heads + 1) + 1.0, 1.45 * layers + 0.6))
    for layer in range(layers):
        axes[layer, 0].imshow(_as_image(image), cmap="gray", vmin=0, vmax=1)
        axes[layer, 0].set_xticks([])
        axes[layer, 0].set_yticks([])
        axes[layer, 0].set_ylabel(f"layer {layer + 1}")
        vmax = maps[layer].max()
        for head in range(heads):
            ax = axes[layer, head + 1]
            if overlay:
                im = _overlay(ax, image, maps[layer, head], vmax=vmax)
            else:
                im = ax.imshow(maps[layer, head], cmap=HEAT, vmin=0, vmax=vmax)
                ax.set_xticks([])
                ax.set_yticks([])
            if layer == 0:
                ax.set_title(f"head {head + 1}", fontsize=9)
        fig.colorbar(im, ax=axes[layer, :], shrink=0.9, pad=0.02, label="weight")
    axes[0, 0].set_title("input", fontsize=9)
    fig.suptitle(title, fontsize=10)
    return fig


def show_rollout(images, rollout_maps, raw_maps=None, labels=None,
                 title: str = "Raw last-layer attention vs attention rollout") -> Figure:
    """Images (n, H, W, C) with their rollout maps (n, rows, cols), and raw maps if given.

    Each map is divided by its own maximum (colour bar: "fraction of the map's maximum"), so the
    maps are compared by their shape, not their scale. ``raw_maps`` (n, rows, cols) is usually the
    last layer's class-token attention averaged over heads.
    """
    images, rollout_maps = np.asarray(images), np.asarray(rollout_maps)
    rows = [("input", None), *([("raw, last layer", np.asarray(raw_maps))] if raw_maps is not None
                               else []), ("rollout", rollout_maps)]
    n = len(images)
    fig, axes = plt.subplots(len(rows), n, squeeze=False, figsize=(1.5 * n + 1.2, 1.5 * len(rows) + 0.5))
    im = None
    for j in range(n):
        for i, (name, maps) in enumerate(rows):
            ax = axes[i, j]
            if maps is None:
                ax.imshow(_as_image(images[j]), cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
                if labels is not None:
                    ax.set_title(str(labels[j]), fontsize=8)
            else:
                im = _overlay(ax, images[j], maps[j] / maps[j].max(), vmax=1.0)
            if j == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.8, pad=0.02, label="fraction of the map's maximum")
    fig.suptitle(title, fontsize=10)
    return fig


def plot_attention_distance(distances, ax=None, reference: float | None = None,
                            reference_label: str = "uniform attention",
                            title: str = "Mean attention distance per head") -> plt.Axes:
    """Scatter of mean attention distance (pixels) against layer, one dot per head (Figure 7, right).

    distances (layers, heads), as from :func:`vitlib.explain.mean_attention_distance`. Dots of one
    head share a colour; ``reference`` (pixels) draws a dashed line, e.g. the distance of uniform
    attention.
    """
    d = np.asarray(distances)
    if d.ndim != 2:
        raise ValueError(f"`distances` must be (layers, heads), got shape {d.shape}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3))
    layers, heads = d.shape
    offsets = np.linspace(-0.12, 0.12, heads) if heads > 1 else np.zeros(1)
    for h in range(heads):
        ax.scatter(np.arange(1, layers + 1) + offsets[h], d[:, h], s=22, label=f"head {h + 1}")
    if reference is not None:
        ax.axhline(reference, color="grey", ls="--", lw=1, label=reference_label)
    ax.set_xticks(np.arange(1, layers + 1))
    ax.set_xlabel("network depth (layer)")
    ax.set_ylabel("mean attention distance (pixels)")
    top = max(float(d.max()), reference or 0.0)
    ax.set_ylim(0, 1.08 * top if top > 0 else 1.0)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower left", ncol=2 if heads > 4 else 1)
    return ax


def show_position_similarity(similarity, step: int = 1,
                             title: str = "Position embedding similarity") -> Figure:
    """The grid of cosine-similarity maps of :func:`vitlib.explain.position_similarity` (Figure 7, centre).

    similarity (rows, cols, rows, cols): the small map at grid place (r, c) is position (r, c)'s
    similarity with every position. Every ``step``-th row and column of positions is drawn. The
    maps are laid out as one mosaic (one image, fast to draw), separated by white gaps.
    """
    sim = np.asarray(similarity, dtype=np.float64)
    if sim.ndim != 4:
        raise ValueError(f"`similarity` must be (rows, cols, rows, cols), got shape {sim.shape}.")
    rows, cols = sim.shape[:2]
    shown_r, shown_c = list(range(0, rows, step)), list(range(0, cols, step))
    gap = 1
    mosaic = np.full((len(shown_r) * (rows + gap) - gap, len(shown_c) * (cols + gap) - gap), np.nan)
    for i, r in enumerate(shown_r):
        for j, c in enumerate(shown_c):
            top, left = i * (rows + gap), j * (cols + gap)
            mosaic[top:top + rows, left:left + cols] = sim[r, c]
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")
    fig, ax = plt.subplots(figsize=(4.8, 4.2))
    im = ax.imshow(mosaic, cmap=cmap, vmin=max(-1.0, float(sim.min())), vmax=1,
                   interpolation="nearest")
    ax.set_xticks([j * (cols + gap) + (cols - 1) / 2 for j in range(len(shown_c))],
                  [str(c + 1) for c in shown_c], fontsize=8)
    ax.set_yticks([i * (rows + gap) + (rows - 1) / 2 for i in range(len(shown_r))],
                  [str(r + 1) for r in shown_r], fontsize=8)
    ax.tick_params(length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_xlabel("input patch column")
    ax.set_ylabel("input patch row")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, shrink=0.8, label="cosine similarity")
    return fig


def show_filters(filters, explained=None, ncols: int = 8,
                 title: str = "Principal components of the patch embedding E") -> Figure:
    """Draw filters (k, p, p, channels), e.g. from :func:`vitlib.explain.patch_filters` (Figure 7, left).

    Each filter is divided by its largest absolute value. One channel: a diverging colour map with
    a colour bar (negative blue, positive red); three channels: RGB, with 0 at mid-grey.
    ``explained`` (k,) adds each component's share of the variance to its title.
    """
    f = np.asarray(filters, dtype=np.float64)
    if f.ndim != 4:
        raise ValueError(f"`filters` must be (k, p, p, channels), got shape {f.shape}.")
    k = len(f)
    nrows = -(-k // ncols)
    fig, axes = plt.subplots(nrows, min(ncols, k), squeeze=False,
                             figsize=(1.1 * min(ncols, k) + 1.2, 1.25 * nrows + 0.5))
    im = None
    for i, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= k:
            ax.axis("off")
            continue
        scaled = f[i] / max(np.abs(f[i]).max(), 1e-12)
        if f.shape[-1] == 1:
            im = ax.imshow(scaled[..., 0], cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest")
        else:
            ax.imshow(np.clip(0.5 + 0.5 * scaled, 0, 1), interpolation="nearest")
        name = f"PC {i + 1}" + (f" ({explained[i]:.0%})" if explained is not None else "")
        ax.set_title(name, fontsize=8)
    if im is not None:
        fig.colorbar(im, ax=axes, shrink=0.8, label="weight / max |weight|")
    fig.suptitle(title, fontsize=10)
    return fig


# --- The explorer ------------------------------------------------------------------------------

def _geometry(model, images, attentions, grid_size, patch_size, num_prefix_tokens):
    """Attentions (list per layer) and the grid, patch size and prefix: from the model or given."""
    if attentions is None:
        if model is None:
            raise ValueError("Pass a `model` or precomputed `attentions`.")
        attentions = explain.attention_maps(model, images)
    if model is not None:
        grid_size = model.grid_size if grid_size is None else grid_size
        patch_size = model.patch_size if patch_size is None else patch_size
        num_prefix_tokens = (explain.num_prefix_tokens(model) if num_prefix_tokens is None
                             else num_prefix_tokens)
    missing = [n for n, v in [("grid_size", grid_size), ("patch_size", patch_size),
                              ("num_prefix_tokens", num_prefix_tokens)] if v is None]
    if missing:
        raise ValueError(f"Without a `model`, pass {', '.join(f'`{m}`' for m in missing)}.")
    return list(attentions), tuple(grid_size), int(patch_size), int(num_prefix_tokens)


def _mark(ax, row, col, patch_size, color="cyan"):
    ax.add_patch(Rectangle((col * patch_size, row * patch_size), patch_size, patch_size,
                           fill=False, edgecolor=color, lw=1.5))


def _head_name(head):
    return "mean of heads" if isinstance(head, str) else f"head {head + 1}"


class AttentionExplorer:
    """Widgets to pick an image, a layer, a head and a query patch, and see where it attends.

    Build it with :func:`attention_explorer`. The controls are ``image`` (Dropdown), ``layer`` and
    ``head`` (IntSlider, counted from 0 as in the code; the picture says "layer 1" for 0),
    ``mean_heads`` (Checkbox), and ``row`` / ``col`` (IntSlider) for the query patch; the picture is
    ``picture`` (an ``ipywidgets.Image`` holding a PNG) and ``caption`` (HTML). Changing any control
    calls :meth:`update`, which recomputes the map with :func:`vitlib.explain.query_attention`
    and stores it in ``weights`` (rows, cols) and ``to_prefix``.
    """

    def __init__(self, attentions, images, grid_size, patch_size, num_prefix_tokens, labels=None,
                 layer=None, head=0, query=None):
        import ipywidgets as widgets

        self.attentions, self.images = attentions, np.asarray(images)
        self.grid_size, self.patch_size, self.num_prefix_tokens = grid_size, patch_size, num_prefix_tokens
        n, depth, heads = len(self.images), len(attentions), np.shape(attentions[0])[1]
        rows, cols = grid_size
        labels = [f"image {i}" for i in range(n)] if labels is None else [str(s) for s in labels]
        query = (rows // 2, cols // 2) if query is None else query
        try:  # sliders would silently clamp an out-of-range start: check it as the explorer will
            explain.query_attention(attentions, 0, depth - 1 if layer is None else layer, head,
                                    query, grid_size, num_prefix_tokens)
        except ValueError as error:
            raise ValueError(str(error).replace("`query_patch", "`query")) from None
        self.image = widgets.Dropdown(options=[(f"{i}: {s}", i) for i, s in enumerate(labels)],
                                      value=0, description="image")
        self.layer = widgets.IntSlider(value=depth - 1 if layer is None else layer, min=0,
                                       max=depth - 1, description="layer")
        self.head = widgets.IntSlider(value=head, min=0, max=heads - 1, description="head")
        self.mean_heads = widgets.Checkbox(value=False, description="mean of heads")
        self.row = widgets.IntSlider(value=query[0], min=0, max=rows - 1, description="query row")
        self.col = widgets.IntSlider(value=query[1], min=0, max=cols - 1, description="query col")
        self.picture = widgets.Image(format="png")
        self.caption = widgets.HTML()
        for control in (self.image, self.layer, self.head, self.mean_heads, self.row, self.col):
            control.observe(self.update, names="value")
        self.widget = widgets.VBox([
            widgets.HBox([self.image, self.mean_heads]), widgets.HBox([self.layer, self.head]),
            widgets.HBox([self.row, self.col]), self.picture, self.caption,
        ])
        self.update()

    @property
    def selection(self):
        """(image_index, layer, head, (row, col)) as the controls stand; head may be "mean"."""
        head = "mean" if self.mean_heads.value else self.head.value
        return self.image.value, self.layer.value, head, (self.row.value, self.col.value)

    def update(self, change=None):
        """Recompute the map for the current controls and redraw the picture (a widget callback)."""
        i, layer, head, (r, c) = self.selection
        self.weights, self.to_prefix = explain.query_attention(
            self.attentions, i, layer, head, (r, c), self.grid_size, self.num_prefix_tokens)
        fig = Figure(figsize=(6.4, 3.0))
        left, right = fig.subplots(1, 2)
        left.imshow(_as_image(self.images[i]), cmap="gray", vmin=0, vmax=1)
        left.set_xticks([])
        left.set_yticks([])
        _mark(left, r, c, self.patch_size)
        left.set_title(f"{self.image.label}: query patch ({r}, {c})", fontsize=9)
        im = _overlay(right, self.images[i], self.weights, vmax=max(self.weights.max(), 1e-9))
        _mark(right, r, c, self.patch_size)
        right.set_title(f"layer {layer + 1}, {_head_name(head)}", fontsize=9)
        fig.colorbar(im, ax=right, label="attention weight")
        fig.tight_layout()
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=80)
        self.picture.value = png.getvalue()
        extra = ("" if self.to_prefix is None
                 else f"; weight on the class token: {self.to_prefix:.2f}")
        self.caption.value = (f"Where patch ({r}, {c}) looks in layer {layer + 1}, "
                              f"{_head_name(head)}{extra}.")

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def attention_explorer(model, images, labels=None, *, attentions=None, grid_size=None,
                       patch_size=None, num_prefix_tokens=None, layer=None, head=0,
                       query=None) -> AttentionExplorer:
    """An interactive explorer (ipywidgets): image, layer, head and query patch -> attention map.

    ``model`` is a :class:`vitlib.ViT` (its attention on ``images`` (n, H, W, C) is computed once,
    up front), or ``None`` with precomputed ``attentions`` (a list per layer of
    (n, heads, T, T)) and ``grid_size``, ``patch_size``, ``num_prefix_tokens`` (for other models).
    The query patch is chosen with row and column sliders. Display the result in a notebook cell.
    """
    attentions, grid, p, prefix = _geometry(model, images, attentions, grid_size, patch_size,
                                            num_prefix_tokens)
    return AttentionExplorer(attentions, images, grid, p, prefix, labels=labels, layer=layer,
                             head=head, query=query)


def static_explorer_figure(model, images, image_index: int = 0, queries=None,
                           head="mean", layers=None, labels=None, *, attentions=None,
                           grid_size=None, patch_size=None, num_prefix_tokens=None) -> Figure:
    """The explorer's fallback where widgets do not render: fixed queries, every layer.

    A row per query patch (row, col) of image ``image_index`` (by default three along the diagonal),
    a column per layer (``layers``, all by default, counted from 0), for one ``head`` ("mean"
    averages them). The query patch is framed.
    Same arguments as :func:`attention_explorer`.
    """
    attentions, grid, p, prefix = _geometry(model, images, attentions, grid_size, patch_size,
                                            num_prefix_tokens)
    layers = list(range(len(attentions))) if layers is None else list(layers)
    if queries is None:
        queries = [(grid[0] * f // 4, grid[1] * f // 4) for f in (1, 2, 3)]
    maps = [[explain.query_attention(attentions, image_index, layer, head, q, grid, prefix)[0]
             for layer in layers] for q in queries]
    vmax = max(float(m.max()) for row in maps for m in row)
    fig, axes = plt.subplots(len(queries), len(layers), squeeze=False,
                             figsize=(1.55 * len(layers) + 1.3, 1.55 * len(queries) + 0.5))
    image = np.asarray(images)[image_index]
    for i, (r, c) in enumerate(queries):
        for j, layer in enumerate(layers):
            im = _overlay(axes[i, j], image, maps[i][j], vmax=vmax)
            _mark(axes[i, j], r, c, p)
            if i == 0:
                axes[i, j].set_title(f"layer {layer + 1}", fontsize=9)
        axes[i, 0].set_ylabel(f"query ({r}, {c})", fontsize=8)
    fig.colorbar(im, ax=axes, shrink=0.8, label="attention weight")
    name = f" ({labels[image_index]})" if labels is not None else ""
    fig.suptitle(f"Where {len(queries)} query patches look, image {image_index}{name}, {_head_name(head)}",
                 fontsize=10)
    return fig
