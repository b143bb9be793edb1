"""Real data for the course, offline first.

Fashion-MNIST (Xiao et al. 2017): 70,000 grey 28x28 photos of clothes in 10 classes.
:func:`load_fashion_mnist` looks for the four original IDX files in these places, in order:

1. the course data directory: ``$VITLIB_DATA_DIR/fashion-mnist`` if that variable is set,
   else ``data/fashion-mnist`` in the course checkout (where ``make data`` downloads to);
2. the Keras cache: ``$KERAS_HOME/datasets/fashion-mnist`` (default ``~/.keras/...``);
3. Debian's ``dataset-fashion-mnist`` package: ``/usr/share/datasets/fashion-mnist``;
4. the official download (only when ``download=True``), saved into place 1.

Whatever the source, the decoded arrays are verified (shapes, dtype, labels, 6,000/1,000
images per class, and a SHA-256 of the decoded bytes), so a truncated or corrupted file
gives a :class:`DataError` that names the file, never a crash deep inside NumPy.

:func:`load_photos` returns real photos bundled with scikit-image (no download), centre-cropped
and resized to 224x224, for the patching lessons.

Command line: ``python -m vitlib.data check`` (where is the data?) and
``python -m vitlib.data download`` (fetch it into the course data directory).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._fetch import fetch_url
from .configs import FASHION_CLASS_NAMES

CLASS_NAMES = FASHION_CLASS_NAMES  # defined beside the Fashion-MNIST configs (no import cycle)
#: The same names in Japanese, for plots and tables in the course.
CLASS_NAMES_JA = (
    "Tシャツ/トップ", "ズボン", "プルオーバー", "ドレス", "コート",
    "サンダル", "シャツ", "スニーカー", "バッグ", "アンクルブーツ",
)

FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
#: SHA-256 of the decoded array bytes (``array.tobytes()``): the same for every source,
#: whatever gzip level the file was compressed with.
SHA256 = {
    "x_train": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
    "y_train": "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
    "x_test": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
    "y_test": "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
}
SHAPES = {"x_train": (60000, 28, 28), "y_train": (60000,), "x_test": (10000, 28, 28), "y_test": (10000,)}
DOWNLOAD_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FIX_COMMAND = "make data"


class DataError(RuntimeError):
    """The course data is missing or damaged. The message says where and how to fix it."""


@dataclass(frozen=True)
class FashionMNIST:
    """Fashion-MNIST as uint8 arrays: images (n, 28, 28) in 0..255, labels (n,) in 0..9."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple = CLASS_NAMES
    source: str = ""

    def __iter__(self):  # allows (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
        return iter([(self.x_train, self.y_train), (self.x_test, self.y_test)])


def course_data_dir() -> Path:
    """The course's own data directory: ``$VITLIB_DATA_DIR`` or ``data/`` in the checkout."""
    env = os.environ.get("VITLIB_DATA_DIR")
    if env:
        return Path(env).expanduser()
    checkout = Path(__file__).resolve().parent.parent / "data"
    if checkout.is_dir():
        return checkout
    return Path.home() / ".vitlib" / "data"


def keras_home() -> Path:
    """Keras' folder for downloads: ``$KERAS_HOME``, default ``~/.keras`` (the course keeps its
    downloads there too: datasets/, models/, vitlib/)."""
    return Path(os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras"))


def keras_cache_dir() -> Path:
    """Where ``keras.datasets.fashion_mnist.load_data()`` caches its files."""
    return keras_home() / "datasets" / "fashion-mnist"


def candidate_dirs() -> list[tuple[str, Path]]:
    """The places searched, in order, as ``(description, directory)`` pairs."""
    return [
        ("course data directory", course_data_dir() / "fashion-mnist"),
        ("Keras cache", keras_cache_dir()),
        ("Debian package dataset-fashion-mnist", DEBIAN_DIR),
    ]


def _read_idx(path: Path, key: str) -> np.ndarray:
    """Decode one gzipped IDX file, checking its header against the expected shape."""
    expected = SHAPES[key]
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(
            f"Fashion-MNIST file {path} is damaged ({type(e).__name__}: {e}). "
            f"Delete it and run `{FIX_COMMAND}` to get a good copy."
        ) from e
    ndim = len(expected)
    header = 4 + 4 * ndim
    magic = 2048 + ndim  # 2049 for labels, 2051 for images: unsigned bytes, ndim dimensions
    if len(raw) < header or int.from_bytes(raw[:4], "big") != magic:
        raise DataError(
            f"Fashion-MNIST file {path} is not an IDX file of {ndim} dimension(s) "
            f"(expected magic number {magic}). Delete it and run `{FIX_COMMAND}`."
        )
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if dims != expected:
        raise DataError(f"Fashion-MNIST file {path} has shape {dims}, expected {expected}.")
    body = raw[header:]
    if len(body) != int(np.prod(expected)):
        raise DataError(
            f"Fashion-MNIST file {path} is truncated or padded: {len(body)} bytes of data, "
            f"expected {int(np.prod(expected))}. Delete it and run `{FIX_COMMAND}`."
        )
    return np.frombuffer(body, dtype=np.uint8).reshape(expected)


def verify(arrays: dict, where: str = "") -> None:
    """Check decoded Fashion-MNIST arrays: shapes, dtype, labels, class counts, checksums."""
    for key, shape in SHAPES.items():
        a = arrays[key]
        name = f"{where}/{FILES[key]}" if where else key
        if a.shape != shape or a.dtype != np.uint8:
            raise DataError(f"{name}: expected uint8 {shape}, got {a.dtype} {a.shape}.")
        if key.startswith("y"):
            counts = np.bincount(a, minlength=10)
            per_class = shape[0] // 10
            if len(counts) != 10 or not np.all(counts == per_class):
                raise DataError(
                    f"{name}: expected {per_class} images of each of the 10 classes, "
                    f"got counts {counts.tolist()}."
                )
        digest = hashlib.sha256(a.tobytes()).hexdigest()
        if digest != SHA256[key]:
            raise DataError(
                f"{name}: the decoded data differ from the official Fashion-MNIST "
                f"(SHA-256 {digest[:16]}..., expected {SHA256[key][:16]}...). "
                f"Delete it and run `{FIX_COMMAND}`."
            )


def _load_dir(directory: Path) -> dict:
    arrays = {key: _read_idx(directory / fname, key) for key, fname in FILES.items()}
    verify(arrays, str(directory))
    return arrays


def find_fashion_mnist() -> tuple[str, Path] | None:
    """Return ``(description, directory)`` of the first place holding all four files, or None.

    A folder named explicitly by ``$VITLIB_DATA_DIR`` is not skipped silently: if it exists but
    lacks some of the files, a DataError says which (set the variable to a complete folder, or
    unset it to use the other places)."""
    env = os.environ.get("VITLIB_DATA_DIR")
    if env:
        directory = Path(env).expanduser() / "fashion-mnist"
        missing = [f for f in FILES.values() if not (directory / f).is_file()]
        if missing and (Path(env).expanduser().is_dir()):
            raise DataError(
                f"VITLIB_DATA_DIR={env} is set, but {directory} lacks {missing}. Put the four "
                f"Fashion-MNIST files there (`{FIX_COMMAND}` downloads them into it), or unset "
                "VITLIB_DATA_DIR to use the Keras cache or the Debian package.")
    for description, directory in candidate_dirs():
        if all((directory / fname).is_file() for fname in FILES.values()):
            return description, directory
    return None


def download_fashion_mnist(target: Path | None = None, url: str | None = None,
                           timeout: float = 20.0) -> Path:
    """Download the four files into ``target`` (default: the course data directory).

    Each file is written to a temporary name and moved into place only once complete,
    so an interrupted download never leaves a truncated file behind.
    """
    target = Path(target) if target else course_data_dir() / "fashion-mnist"
    url = url or DOWNLOAD_URL
    target.mkdir(parents=True, exist_ok=True)
    for fname in FILES.values():
        dest = target / fname
        if dest.is_file():
            continue
        fetch_url(url + fname, dest, timeout)
    _load_dir(target)  # verify before declaring success
    return target


def load_fashion_mnist(download: bool = False) -> FashionMNIST:
    """Load Fashion-MNIST from the first place that has it (see the module docstring).

    Returns a :class:`FashionMNIST` with ``x_train`` (60000, 28, 28), ``y_train`` (60000,),
    ``x_test`` (10000, 28, 28), ``y_test`` (10000,), all uint8, plus ``class_names`` and
    ``source`` (which place it came from). It also unpacks like Keras' loader:
    ``(x_train, y_train), (x_test, y_test) = load_fashion_mnist()``.
    """
    found = find_fashion_mnist()
    if found is None and download:
        try:
            target = download_fashion_mnist()
            found = ("downloaded into the course data directory", target)
        except OSError as e:
            reason = f"The download from {DOWNLOAD_URL} failed too: {e}."
        else:
            reason = ""
    else:
        reason = "" if found else "The download was not attempted (download=False)."
    if found is None:
        looked = "\n".join(f"  - {d}: {p}" for d, p in candidate_dirs())
        raise DataError(
            "Fashion-MNIST was not found. Looked for the four files "
            f"({', '.join(FILES.values())}) in:\n{looked}\n{reason}\n"
            f"Fix: run `{FIX_COMMAND}` in the course folder "
            "(offline on Debian/Ubuntu as root it installs the package dataset-fashion-mnist), "
            "or set VITLIB_DATA_DIR to a folder that holds fashion-mnist/."
        )
    description, directory = found
    arrays = _load_dir(directory)
    return FashionMNIST(**arrays, source=f"{description} ({directory})")


# --------------------------------------------------------------------------------------
# Photos bundled with scikit-image
# --------------------------------------------------------------------------------------

#: name -> (scikit-image function, description, license)
PHOTOS = {
    "astronaut": ("astronaut", "Astronaut Eileen Collins (NASA)", "public domain"),
    "cat": ("chelsea", "Chelsea the cat (Stefan van der Walt)", "CC0"),
    "coffee": ("coffee", "A cup of coffee (Rachel Michetti)", "CC0"),
    "rocket": ("rocket", "Falcon 9 launch (SpaceX)", "CC0"),
}


def center_crop_resize(image: np.ndarray, size: int = 224) -> np.ndarray:
    """Crop the largest centred square from ``image`` (H, W, 3) and resize it to (size, size, 3) uint8."""
    from skimage.transform import resize

    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    square = image[top : top + s, left : left + s]
    out = resize(square, (size, size), anti_aliasing=True, preserve_range=True)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def load_photos(names=("astronaut", "cat", "coffee"), size: int = 224) -> dict:
    """Return ``{name: uint8 array (size, size, 3)}`` of photos bundled with scikit-image.

    Available names: ``astronaut``, ``cat``, ``coffee``, ``rocket``. No download is needed.
    """
    if isinstance(names, str):
        raise ValueError(f"`names` must be a list of photo names, e.g. [{names!r}], got the "
                         f"string {names!r}; choose from {sorted(PHOTOS)}.")
    unknown = [n for n in names if n not in PHOTOS]
    if unknown:
        raise ValueError(f"`names` must be taken from {sorted(PHOTOS)}, got unknown {unknown}.")
    try:
        import skimage.data
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise DataError("load_photos needs scikit-image: pip install scikit-image") from e
    return {n: center_crop_resize(getattr(skimage.data, PHOTOS[n][0])(), size) for n in names}


def load_digits(image_size: int = 32, train_images: int = 500, seed: int = 0):
    """scikit-learn's 1,797 bundled 8x8 handwritten digits (offline), enlarged to ``image_size``
    (bilinear), as float32 images (n, size, size, 1) in [0, 1] and int labels (n,), split once
    (seeded) into ``train_images`` for training and the rest for testing.

    Returns (x_train, y_train, x_test, y_test). Needs scikit-learn (``pip install scikit-learn``).
    """
    from keras import ops
    from sklearn.datasets import load_digits as sklearn_digits

    image_size = _positive("image_size", image_size)
    train_images = _positive("train_images", train_images)
    if train_images >= 1797:
        raise ValueError(f"`train_images` must be below 1797 (the digits there are), got "
                         f"{train_images}.")
    digits = sklearn_digits()  # images (1797, 8, 8) with values 0..16, labels 0..9
    x = ops.convert_to_numpy(ops.image.resize((digits.images[..., None] / 16.0).astype("float32"),
                                              (image_size, image_size), interpolation="bilinear"))
    order = np.random.default_rng(seed).permutation(len(x))
    tr, te = order[:train_images], order[train_images:]
    return x[tr].astype("float32"), digits.target[tr], x[te].astype("float32"), digits.target[te]


TEXTURES = ("brick", "grass", "gravel")  # scikit-image's CC0 texture photos, 512x512 grey


def write_texture_folder(root, overwrite: bool = False) -> Path:
    """A folder of images to fine-tune on, offline: ``root/<texture>/<texture>_NN.<png|jpg>``.

    From each of scikit-image's texture photos (brick, grass, gravel; CC0, bundled, no
    download) 64 tiles of 32x32 pixels are cut on an 8x8 grid, 64 pixels apart, so that no two
    tiles overlap. Like pictures from different sources, every fourth tile is kept as it is (grey
    PNG), the others are saved larger and in colour (64x64 RGB JPEG), wider with transparent
    pixels (32x24 RGBA PNG, the top-left corner fully transparent), or taller (24x32 grey PNG).
    Refuses to write into an existing non-empty ``root`` unless ``overwrite``. Returns ``root``.
    """
    import skimage.data
    from PIL import Image

    root = Path(root).expanduser()
    if root.exists() and any(root.iterdir()) and not overwrite:
        raise FileExistsError(f"`root` {root} exists and is not empty; pass overwrite=True or "
                              "choose a new folder (nothing was written).")
    for name in TEXTURES:
        photo = getattr(skimage.data, name)()
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(64):
            r, c = divmod(i, 8)
            tile = Image.fromarray(photo[64 * r:64 * r + 32, 64 * c:64 * c + 32])
            if i % 4 == 1:  # larger, colour
                tile = tile.resize((64, 64), Image.Resampling.BICUBIC).convert("RGB")
            elif i % 4 == 2:  # wide, with a transparent corner
                tile = tile.crop((0, 0, 32, 24)).convert("RGBA")
                alpha = np.full((24, 32), 255, np.uint8)
                alpha[:8, :8] = 0
                tile.putalpha(Image.fromarray(alpha))
            elif i % 4 == 3:  # tall
                tile = tile.crop((4, 0, 28, 32))
            tile.save(root / name / f"{name}_{i:02d}.{'jpg' if i % 4 == 1 else 'png'}")
    return root


def _positive(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
    return int(value)


USAGE = """usage: python -m vitlib.data [check|download]

  check     (default) find Fashion-MNIST offline, verify it, and say where it came from
  download  fetch Fashion-MNIST from its official address into the course data folder"""


def _main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    if command in ("-h", "--help", "help"):
        print(USAGE)
        return 0
    if command == "download":
        try:
            where = download_fashion_mnist()
        except OSError as e:
            print(f"Download from {DOWNLOAD_URL} failed: {e}", file=sys.stderr)
            return 1
        print(f"Fashion-MNIST downloaded and verified in {where}")
        return 0
    if command == "check":
        try:
            data = load_fashion_mnist()
            load_photos()
        except DataError as e:
            print(e, file=sys.stderr)
            return 1
        print(f"Fashion-MNIST OK: {len(data.x_train)} train + {len(data.x_test)} test images, "
              f"from the {data.source}")
        print(f"Photos OK: {', '.join(PHOTOS)} (bundled with scikit-image)")
        return 0
    print(f"unknown command {command!r}\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
