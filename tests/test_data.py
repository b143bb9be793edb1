"""vitlib.data: every source, the search order, missing data, damaged files, downloads, photos."""

from __future__ import annotations

import functools
import gzip
import http.server
import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from vitlib import data

pytestmark = pytest.mark.single_backend


@pytest.fixture(scope="session")
def real_dir() -> Path:
    """The directory holding the real files on this machine (`make data` put them there)."""
    found = data.find_fashion_mnist()
    if found is None:
        pytest.fail("Fashion-MNIST is not available: run `make data` first.")
    return found[1]


@pytest.fixture(scope="session")
def reference(real_dir):
    """Arrays decoded with a plain, independent IDX reader (not vitlib's)."""
    out = {}
    for key, fname in data.FILES.items():
        raw = gzip.decompress((real_dir / fname).read_bytes())
        offset = 16 if key.startswith("x") else 8
        out[key] = np.frombuffer(raw, np.uint8, offset=offset)
    out["x_train"] = out["x_train"].reshape(-1, 28, 28)
    out["x_test"] = out["x_test"].reshape(-1, 28, 28)
    return out


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Point all three places at empty temporary folders; return them by name."""
    course, keras_home, debian = tmp_path / "course", tmp_path / "keras", tmp_path / "debian"
    monkeypatch.setenv("VITLIB_DATA_DIR", str(course))
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    monkeypatch.setattr(data, "DEBIAN_DIR", debian)
    return {
        "course": course / "fashion-mnist",
        "keras": keras_home / "datasets" / "fashion-mnist",
        "debian": debian,
    }


def _copy(src: Path, dst: Path, level: int | None = None) -> Path:
    """Copy the four files; with ``level``, recompress them (as another source would)."""
    dst.mkdir(parents=True, exist_ok=True)
    for fname in data.FILES.values():
        if level is None:
            shutil.copy(src / fname, dst / fname)
        else:
            raw = gzip.decompress((src / fname).read_bytes())
            (dst / fname).write_bytes(gzip.compress(raw, compresslevel=level))
    return dst


def _rewrite(path: Path, change) -> None:
    raw = bytearray(gzip.decompress(path.read_bytes()))
    change(raw)
    path.write_bytes(gzip.compress(bytes(raw), compresslevel=1))


@pytest.mark.parametrize("place", ["course", "keras", "debian"])
def test_each_source_loads_the_real_data(place, places, real_dir, reference):
    _copy(real_dir, places[place], level=1)
    ds = data.load_fashion_mnist()
    label = {"course": "course data directory", "keras": "Keras cache", "debian": "Debian"}[place]
    assert ds.source.startswith(label) and str(places[place]) in ds.source
    for key in data.FILES:
        np.testing.assert_array_equal(getattr(ds, key), reference[key])
    assert ds.x_train.dtype == np.uint8 and ds.x_train.shape == (60000, 28, 28)
    assert ds.class_names[0] == "T-shirt/top" and len(ds.class_names) == 10
    (x_train, y_train), (x_test, y_test) = ds  # unpacks like keras.datasets
    assert x_test.shape == (10000, 28, 28) and y_train.shape == (60000,)


def test_search_order_course_then_keras_then_debian(places, real_dir):
    for place in ("debian", "keras", "course"):
        _copy(real_dir, places[place])
        assert data.find_fashion_mnist()[1] == places[place]


def test_incomplete_cache_is_skipped(places, real_dir):
    _copy(real_dir, places["debian"])
    places["keras"].mkdir(parents=True)
    shutil.copy(real_dir / data.FILES["x_train"], places["keras"])  # one file of four
    assert data.find_fashion_mnist()[1] == places["debian"]


def test_incomplete_folder_named_by_vitlib_data_dir_is_refused(places, real_dir):
    """An explicit VITLIB_DATA_DIR is what the learner asked for: no silent fall-back."""
    _copy(real_dir, places["debian"])
    places["course"].mkdir(parents=True)
    shutil.copy(real_dir / data.FILES["x_train"], places["course"])  # one file of four
    with pytest.raises(data.DataError, match="VITLIB_DATA_DIR=.* lacks .*t10k-images"):
        data.find_fashion_mnist()


def test_missing_everywhere_lists_every_place_and_the_fix(places):
    with pytest.raises(data.DataError) as err:
        data.load_fashion_mnist()
    msg = str(err.value)
    for where in places.values():
        assert str(where) in msg
    assert "make data" in msg


def test_truncated_file_names_the_file(places, real_dir):
    _copy(real_dir, places["course"])
    path = places["course"] / data.FILES["x_test"]
    path.write_bytes(path.read_bytes()[: 100_000])  # a download cut short
    with pytest.raises(data.DataError, match="t10k-images-idx3-ubyte.gz"):
        data.load_fashion_mnist()


def test_short_decoded_data_names_the_file(places, real_dir):
    _copy(real_dir, places["course"])
    _rewrite(places["course"] / data.FILES["y_test"], lambda raw: raw.__delitem__(slice(-10, None)))
    with pytest.raises(data.DataError, match="t10k-labels-idx1-ubyte.gz.*truncated"):
        data.load_fashion_mnist()


def test_changed_pixel_fails_the_checksum(places, real_dir):
    _copy(real_dir, places["keras"])
    _rewrite(places["keras"] / data.FILES["x_train"], lambda raw: raw.__setitem__(20_000, raw[20_000] ^ 1))
    with pytest.raises(data.DataError, match="train-images-idx3-ubyte.gz.*SHA-256"):
        data.load_fashion_mnist()


def test_wrong_label_counts_are_reported(places, real_dir):
    _copy(real_dir, places["debian"])
    _rewrite(places["debian"] / data.FILES["y_train"], lambda raw: raw.__setitem__(8, (raw[8] + 1) % 10))
    with pytest.raises(data.DataError, match="6000 images of each"):
        data.load_fashion_mnist()


def test_not_an_idx_file(places, real_dir):
    _copy(real_dir, places["course"])
    (places["course"] / data.FILES["x_test"]).write_bytes(gzip.compress(b"<html>404</html>"))
    with pytest.raises(data.DataError, match="not an IDX file"):
        data.load_fashion_mnist()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def server(tmp_path, real_dir):
    """A loopback HTTP server standing in for the official download site."""
    root = _copy(real_dir, tmp_path / "site", level=1)
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


def test_download_fetches_verifies_and_then_loads(places, server, reference, monkeypatch):
    monkeypatch.setattr(data, "DOWNLOAD_URL", server)
    target = data.download_fashion_mnist(url=server)
    assert target == places["course"]
    assert not list(target.glob("*.part"))  # no partial files left behind
    ds = data.load_fashion_mnist()
    np.testing.assert_array_equal(ds.y_test, reference["y_test"])


def test_failed_download_is_explained(places, monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(data, "DOWNLOAD_URL", f"http://127.0.0.1:{port}/")
    with pytest.raises(data.DataError, match="download .* failed too"):
        data.load_fashion_mnist(download=True)


def test_photos_are_real_224_crops():
    photos = data.load_photos()
    assert set(photos) == {"astronaut", "cat", "coffee"}
    for img in photos.values():
        assert img.shape == (224, 224, 3) and img.dtype == np.uint8
        assert img.std() > 20  # a real photo, not a flat placeholder


def test_center_crop_keeps_the_middle():
    img = np.zeros((100, 300, 3), np.uint8)
    img[:, 100:200] = 255  # the central square is white, the sides black
    out = data.center_crop_resize(img, size=50)
    assert out.shape == (50, 50, 3) and out.min() == 255


def test_unknown_photo_name():
    with pytest.raises(ValueError, match="`names`.*'dog'"):
        data.load_photos(["astronaut", "dog"])
