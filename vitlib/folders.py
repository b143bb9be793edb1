"""Your own images: a folder of class sub-folders -> arrays a ViT can train on (notebook 11).

The layout is the one of ``keras.utils.image_dataset_from_directory``::

    my_images/
        cat/    a.jpg  b.png ...
        dog/    c.jpg ...

Every sub-folder is a class (sorted by name: class 0, 1, ...); every image file in it is one
example. Images may have any size and colour mode (grey, RGB, RGBA, palette): each is converted
to ``channels`` (1: grey, 3: RGB; transparent pixels are laid on ``background``) and brought to
``image_size`` x ``image_size`` by one of two fits:

- ``"crop"``: cut the largest centred square, then resize. The object keeps its shape and fills
  the grid, but what lies outside the square is lost (the sides of a wide photo).
- ``"pad"``: add ``background`` bars to make a square, then resize. Nothing is lost, but the
  bars take patches that carry no information, and the object is smaller.

A ViT needs one fixed grid of patches (or its position embedding resized, notebook 09), so one
of the two is needed; ``"crop"`` is the usual choice for photos of one centred object (as
Google's fine-tuning recipes do), ``"pad"`` for images whose edges matter (documents, drawings).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import _checks

#: File endings read as images (lower case); hidden files (".DS_Store", ...) are ignored.
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
FITS = ("crop", "pad")


class FolderError(ValueError):
    """A folder of images that cannot be used as it is; the message says which file or folder."""


@dataclass
class ImageFolder:
    """What :func:`load_folder` read.

    ``x``: uint8 (n, size, size, channels); ``y``: int (n,) class indices; ``class_names``:
    the sub-folder names, ``class_names[y[i]]`` is the class of ``paths[i]``; ``skipped``: the
    files left out as unreadable (only with ``skip_bad=True``)."""

    x: np.ndarray
    y: np.ndarray
    class_names: list
    paths: list
    skipped: list


def _shown(paths, root: Path, limit: int = 5) -> str:
    names = [str(Path(p).relative_to(root)) if Path(p).is_relative_to(root) else str(p)
             for p in paths]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def find_images(root, skip_bad: bool = False) -> tuple[list, np.ndarray, list, list]:
    """The image files under ``root``, one sub-folder per class.

    Returns ``(paths, labels, class_names, skipped)``: ``paths`` sorted by class then name,
    ``labels`` int (n,), ``class_names`` the sorted sub-folder names, ``skipped`` the files
    that are not images (only when ``skip_bad``; otherwise they are an error). Raises
    :class:`FolderError` naming what is wrong: ``root`` missing or not a folder, fewer than two
    class sub-folders, a class without images, files that are not images.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        what = "does not exist" if not root.exists() else "is a file, not a folder"
        raise FolderError(f"`root` must be a folder with one sub-folder per class; {root} {what}.")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise FolderError(
            f"`root` must hold at least 2 class sub-folders (root/<class>/<image>), got "
            f"{len(classes)} in {root}: {classes}. A classifier needs two classes or more.")
    paths, labels, bad, empty = [], [], [], []
    for k, name in enumerate(classes):
        files = sorted(p for p in (root / name).rglob("*")
                       if p.is_file() and not any(part.startswith(".")
                                                  for part in p.relative_to(root).parts))
        images = [p for p in files if p.suffix.lower() in IMAGE_SUFFIXES]
        bad += [p for p in files if p.suffix.lower() not in IMAGE_SUFFIXES]
        if not images:
            empty.append(name)
        paths += images
        labels += [k] * len(images)
    if bad and not skip_bad:
        raise FolderError(
            f"{len(bad)} file(s) under {root} are not images ({', '.join(IMAGE_SUFFIXES)}): "
            f"{_shown(bad, root)}. Move them out, or pass skip_bad=True (--skip-bad-files) "
            "to leave them out.")
    if empty:
        raise FolderError(f"class folder(s) {empty} under {root} hold no images; every class "
                          "needs at least one (remove the empty folders or add images).")
    return paths, np.array(labels, dtype="int64"), classes, bad


def load_image(path, image_size: int, channels: int = 3, fit: str = "crop",
               background: int = 0) -> np.ndarray:
    """One image file -> uint8 (image_size, image_size, channels).

    ``channels``: 1 (grey) or 3 (RGB); ``fit``: ``"crop"`` or ``"pad"`` (module docstring);
    ``background``: 0..255, the grey level of the padding and under transparent pixels.
    Raises :class:`FolderError` naming the file if it cannot be read as an image."""
    from PIL import Image, UnidentifiedImageError

    size = _checks.positive_int("image_size", image_size)
    _checks.one_of("channels", channels, (1, 3))
    _checks.one_of("fit", fit, FITS)
    if not (isinstance(background, (int, np.integer)) and 0 <= background <= 255):
        raise ValueError(f"`background` must be an integer grey level in [0, 255], got {background!r}.")
    try:
        with Image.open(path) as opened:
            opened.load()
            image = opened.copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise FolderError(f"{path} cannot be read as an image ({type(e).__name__}: {e}). "
                          "Remove it, or pass skip_bad=True (--skip-bad-files).") from e
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.new("RGBA", rgba.size, (background,) * 3 + (255,))
        image.alpha_composite(rgba)
    image = image.convert("L" if channels == 1 else "RGB")
    w, h = image.size
    side = min(w, h) if fit == "crop" else max(w, h)
    if fit == "crop":
        left, top = (w - side) // 2, (h - side) // 2
        image = image.crop((left, top, left + side, top + side))
    else:
        square = Image.new(image.mode, (side, side), background if channels == 1
                           else (background,) * 3)
        square.paste(image, ((side - w) // 2, (side - h) // 2))
        image = square
    image = image.resize((size, size), Image.Resampling.BICUBIC, reducing_gap=3.0)
    array = np.asarray(image, dtype=np.uint8)
    return array[..., None] if channels == 1 else array


def load_folder(root, image_size: int, channels: int = 3, fit: str = "crop",
                background: int = 0, skip_bad: bool = False) -> ImageFolder:
    """Every image under ``root`` (one sub-folder per class), loaded by :func:`load_image`.

    With ``skip_bad=False`` (the default) a file that is not an image, or cannot be read, is an
    error that names it; with ``skip_bad=True`` such files are left out and listed in
    ``ImageFolder.skipped``."""
    root = Path(root).expanduser()
    paths, labels, classes, skipped = find_images(root, skip_bad)
    images, kept = [], []
    for i, path in enumerate(paths):
        try:
            images.append(load_image(path, image_size, channels, fit, background))
            kept.append(i)
        except FolderError:
            if not skip_bad:
                raise
            skipped.append(path)
    labels = labels[kept]
    missing = [c for k, c in enumerate(classes) if not np.any(labels == k)]
    if missing:
        raise FolderError(f"class folder(s) {missing} under {root} hold no readable images.")
    return ImageFolder(np.stack(images), labels, classes, [paths[i] for i in kept],
                       [Path(p) for p in skipped])


def split(labels, validation_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, validation), stratified: each class gives ``validation_fraction`` of its
    images (rounded, at least 1 when the class has 2 or more) to validation. Seeded."""
    labels = np.asarray(labels)
    if not 0.0 < float(validation_fraction) < 1.0:
        raise ValueError(f"`validation_fraction` must be in (0, 1), got {validation_fraction!r}.")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for k in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == k))
        n_val = min(len(members) - 1, max(1, round(validation_fraction * len(members))))
        val += list(members[:n_val])
        train += list(members[n_val:])
    return np.sort(np.array(train, dtype="int64")), np.sort(np.array(val, dtype="int64"))


def write_example_folder(root, images, labels, class_names, fmt: str = "png",
                         overwrite: bool = False) -> Path:
    """Write ``images`` (n, H, W) or (n, H, W, C) uint8 into ``root/<class name>/<i>.<fmt>``:
    a folder in the layout above, for trying the pipeline without photos of your own.
    Refuses to write into an existing non-empty ``root`` unless ``overwrite``."""
    from PIL import Image

    root = Path(root).expanduser()
    if root.exists() and any(root.iterdir()) and not overwrite:
        raise FileExistsError(f"`root` {root} exists and is not empty; pass overwrite=True "
                              "or choose a new folder (nothing was written).")
    _checks.one_of("fmt", fmt, ("png", "jpg"))
    for i, (image, label) in enumerate(zip(images, labels, strict=True)):
        folder = root / class_names[int(label)]
        folder.mkdir(parents=True, exist_ok=True)
        array = np.asarray(image, dtype=np.uint8)
        Image.fromarray(array[..., 0] if array.ndim == 3 and array.shape[-1] == 1 else array).save(
            folder / f"{i:05d}.{fmt}")
    return root



# --- From arrays to a model and back ---------------------------------------------------------
#: How each kind of encoder expects its pixels: the course's ViTs 0..1, Google's -1..1.
SCALES = {"unit": (1 / 255.0, 0.0), "symmetric": (1 / 127.5, -1.0)}


def scale_images(x, scale: str) -> np.ndarray:
    """uint8 images -> float32 as the encoder was trained: ``"unit"`` 0..1, ``"symmetric"`` -1..1."""
    _checks.one_of("scale", scale, SCALES)
    factor, offset = SCALES[scale]
    return np.asarray(x, dtype="float32") * factor + offset


def save_classifier(model, path, class_names, prepare: dict, overwrite: bool = False,
                    record: dict | None = None) -> Path:
    """``model`` to ``path`` (.keras; a ViT without its optimizer state) and, beside it
    (.json), what a prediction needs:
    ``class_names`` and ``prepare`` (``image_size``, ``channels``, ``fit``, ``background``,
    ``scale``), plus ``record`` (anything else worth keeping). Refuses to replace either
    file unless ``overwrite``; nothing is written then."""
    import json

    import keras

    path = Path(path).expanduser()
    if path.suffix != ".keras":
        raise ValueError(f"`path` must end in .keras, got {path.name!r}.")
    missing = {"image_size", "channels", "fit", "background", "scale"} - set(prepare)
    if missing:
        raise ValueError(f"`prepare` must say {sorted(missing)} too, got {sorted(prepare)}.")
    outputs = getattr(model, "num_classes", None) or model.output_shape[-1]
    if len(class_names) != outputs:
        raise ValueError(f"`class_names` has {len(class_names)} names, but the model has "
                         f"{outputs} outputs.")
    for target in (path, path.with_suffix(".json")):
        if target.exists() and not overwrite:
            raise FileExistsError(f"{target} exists; pass overwrite=True to replace it "
                                  "(nothing was written).")
    path.parent.mkdir(parents=True, exist_ok=True)
    from .model import ViT, architecture

    if isinstance(model, ViT):  # the weights only, without the optimizer's state (3x smaller)
        clean = ViT.from_config(architecture(model))
        clean.build()
        clean.set_weights(model.get_weights())
        model = clean
    keras.saving.save_model(model, path)
    info = {**(record or {}), "class_names": list(class_names), "prepare": dict(prepare)}
    path.with_suffix(".json").write_text(json.dumps(info, indent=1) + "\n")
    return path


def load_classifier(path) -> tuple:
    """``(model, info)`` saved by :func:`save_classifier` (``info``: the .json beside it)."""
    import json

    from .model import load_model

    path = Path(path).expanduser()
    info_path = path.with_suffix(".json")
    if not info_path.is_file():
        raise FileNotFoundError(f"{info_path} (the class names and preparation saved beside the "
                                "model) does not exist: was the model saved by save_classifier?")
    return load_model(path), json.loads(info_path.read_text())


def predict_files(model, info: dict, paths, k: int = 3) -> list:
    """The ``k`` most probable classes of each image file: ``[[(class, probability), ...]]``.
    Each file is prepared as ``info["prepare"]`` says, the way the training images were."""
    from keras import ops

    prep = info["prepare"]
    x = np.stack([load_image(p, prep["image_size"], prep["channels"], prep["fit"],
                             prep["background"]) for p in paths])
    probabilities = ops.convert_to_numpy(ops.softmax(model.predict(
        scale_images(x, prep["scale"]), verbose=0)))
    names = info["class_names"]
    return [[(names[i], float(row[i])) for i in np.argsort(-row)[:k]] for row in probabilities]
