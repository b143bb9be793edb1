"""Try what a careless learner would type against vitlib's public API and count the outcomes.

    .venv/bin/python tools/careless.py            # on the current backend (KERAS_BACKEND)

Each case must raise an error from vitlib's own code (a "clear" error: ValueError, TypeError,
FileNotFoundError or DataError, or a UserWarning, whose innermost frame is in vitlib/ or experiments/). Anything else
is counted as "leaked" (an error from TensorFlow, JAX, Keras, NumPy or zipfile) or "silent" (no
error at all). Prints one line per case that is not clear, then the counts; exits 1 if any.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

import vitlib  # noqa: E402
import vitlib.plots  # noqa: E402
from vitlib import explain, finetune, pretrained  # noqa: E402
from vitlib.mae import masked_autoencoder, masked_mse, random_masking  # noqa: E402
from vitlib.model import load_model  # noqa: E402
from vitlib.segment import mean_iou, patch_labels  # noqa: E402
from vitlib.train import accuracy, cosine_schedule, train  # noqa: E402

OURS = (str(ROOT / "vitlib"), str(ROOT / "experiments"))
ANSWERED = "answered"  # a checker's feedback instead of an exception


def cases(tmp: Path):
    m = vitlib.make_vit("fashion-tiny")
    x = np.zeros((2, 28, 28, 1), "float32")
    raw = (x * 255).astype("uint8")
    yield "model(uint8)", lambda: m(raw)
    yield "model(int64)", lambda: m(raw.astype("int64"))
    yield "model(bool)", lambda: m(raw.astype(bool))
    yield "predict(uint8)", lambda: m.predict(raw, verbose=0)
    yield "predict(rank 3)", lambda: m.predict(x[..., 0], verbose=0)
    yield "predict(empty)", lambda: m.predict(x[:0], verbose=0)
    yield "predict(NaN)", lambda: m.predict(x * np.nan, verbose=0)
    import keras

    yield "model(NaN tensor)", lambda: m(keras.ops.convert_to_tensor(x * np.nan))
    yield "predict(wrong size)", lambda: m.predict(np.zeros((2, 32, 32, 1), "float32"), verbose=0)
    yield "predict(3 channels)", lambda: m.predict(np.zeros((2, 28, 28, 3), "float32"), verbose=0)
    yield "model(None)", lambda: m(None)
    yield "model(list)", lambda: m([[1, 2]])
    yield "make_vit(unknown)", lambda: vitlib.make_vit("fashion-huge")
    yield "ViT(patch_method typo)", lambda: vitlib.ViT(patch_method="convv")
    yield "ViT(num_heads not dividing)", lambda: vitlib.ViT(dim=10, num_heads=3)
    yield "ViT(hybrid, patch 7)", lambda: vitlib.ViT(image_size=28, patch_size=7, patch_method="hybrid")
    yield "block at another width", lambda: (b := vitlib.EncoderBlock(2, 8))(np.zeros((1, 3, 8), "f")) \
        is None or b(np.zeros((1, 3, 12), "float32"))
    yield "attention batch mismatch", lambda: vitlib.scaled_dot_product_attention(
        np.zeros((2, 3, 4)), np.zeros((3, 5, 4)), np.zeros((3, 5, 4)))
    yield "sincos_1d(None)", lambda: vitlib.sincos_1d(None, 4)
    yield "resize a batch of tables", lambda: vitlib.resize_position_embedding(np.zeros((2, 5, 4)), 3)
    yield "position_similarity 17 rows, 2x2", lambda: explain.position_similarity(np.ones((17, 4)), 2)
    yield "rollout of NaN", lambda: explain.attention_rollout([np.full((1, 1, 3, 3), np.nan)])
    yield "rollout rows summing to 0", lambda: explain.attention_rollout([np.zeros((1, 1, 3, 3))],
                                                                          residual=False)
    yield "query_attention layer 9", lambda: explain.query_attention(
        [np.ones((1, 1, 5, 5)) / 5], 0, 9, 0, (0, 0), (2, 2))
    yield "top_k(k=-1)", lambda: pretrained.top_k(np.zeros((1, 3)), list("abc"), k=-1)
    yield "random_masking noise length", lambda: random_masking(np.zeros((2, 16, 4), "f"), 0.5,
                                                                noise=np.zeros((2, 15)))
    yield "masked_mse wrong predicted", lambda: masked_mse(np.zeros((2, 8, 8, 1), "f"),
                                                           np.zeros((2, 4, 15)), np.zeros((2, 4)), 4)
    yield "mae mask_ratio 1.5", lambda: masked_autoencoder(mask_ratio=1.5)
    yield "accuracy 4 images 1 label", lambda: accuracy(m, x[:1].repeat(4, 0), np.zeros(1))
    yield "train epochs 0", lambda: train(m, x, np.zeros(2, int), 0)
    yield "train batch_size 0", lambda: train(m, x, np.zeros(2, int), 1, {"batch_size": 0})
    yield "train recipe typo", lambda: train(m, x, np.zeros(2, int), 1, {"batch_sise": 8})
    yield "cosine_schedule warmup > total", lambda: cosine_schedule(1e-3, 11, 10)
    yield "segmentation labels out of range", lambda: mean_iou(np.full((1, 2, 2), 20), np.zeros((1, 2, 2), int), 11)
    yield "patch_labels patch 0", lambda: patch_labels(np.zeros((1, 8, 8), int), 0)
    yield "with_new_head(str)", lambda: finetune.with_new_head("model")
    yield "load_photos('cat')", lambda: vitlib.data.load_photos("cat")
    (tmp / "empty.keras").write_bytes(b"")
    yield "load_model(empty .keras)", lambda: load_model(tmp / "empty.keras")
    (tmp / "page.keras").write_bytes(b"<!DOCTYPE html>")
    yield "load_model(HTML .keras)", lambda: load_model(tmp / "page.keras")
    (tmp / "cut.npz").write_bytes(b"PK\x03\x04" + b"\x00" * 20)
    yield "load_npz(truncated)", lambda: pretrained.load_npz(str(tmp / "cut.npz"))
    one_layer = [np.ones((1, 2, 5, 5), "float32") / 5]  # 1 image, 2 heads, class token + 2x2
    yield "explorer query out of range", lambda: vitlib.plots.attention_explorer(
        None, np.zeros((1, 8, 8, 1)), attentions=one_layer, grid_size=(2, 2), patch_size=4,
        num_prefix_tokens=1, query=(5, 5))
    yield "explorer head 2 of 2", lambda: vitlib.plots.attention_explorer(
        None, np.zeros((1, 8, 8, 1)), attentions=one_layer, grid_size=(2, 2), patch_size=4,
        num_prefix_tokens=1, head=2)
    yield "mean distance of NaN", lambda: explain.mean_attention_distance(
        [one_layer[0] * np.nan], (2, 2), 4)
    only_cls = np.zeros((1, 2, 5, 5), "float32")
    only_cls[..., 0] = 1.0  # every query attends only to the class token
    yield "mean distance, head sees no patch", lambda: explain.mean_attention_distance(
        [only_cls], (2, 2), 4)
    broken = vitlib.make_vit("fashion-tiny")
    broken.head.kernel.assign(np.full(broken.head.kernel.shape, np.nan, "float32"))
    broken.save(tmp / "nan.keras")
    yield "load_model(NaN weights) warns", lambda: load_model(tmp / "nan.keras")
    from vitlib import folders

    (tmp / "one_class" / "cats").mkdir(parents=True)
    (tmp / "one_class" / "cats" / "a.png").write_bytes(b"not a png")
    yield "load_folder(missing)", lambda: folders.load_folder(tmp / "no_such_folder", 28)
    yield "load_folder(one class)", lambda: folders.load_folder(tmp / "one_class", 28)
    yield "load_image(broken file)", lambda: folders.load_image(tmp / "one_class" / "cats" / "a.png", 28)
    yield "load_image(fit typo)", lambda: folders.load_image(tmp / "x.png", 28, fit="centre")
    yield "split(fraction 20)", lambda: folders.split([0, 1, 0, 1], 20)
    yield "fit_in_two_stages(labels out of range)", lambda: finetune.fit_in_two_stages(
        finetune.with_new_head(m, 2), x, np.array([0, 7]), verbose=0)
    yield "load_pretrained(typo)", lambda: finetune.load_pretrained("Ti/16-augreg", 3)
    from vitlib.exercises import nb02
    # A checker answers (it does not raise): a "not correct" feedback counts as clear.
    yield "checker, learner returns a string", lambda: ANSWERED if not nb02.check_softmax(
        lambda s: "0.5") else None
    yield "checker, learner returns a dict", lambda: ANSWERED if not nb02.check_softmax(
        lambda s: {"p": 1}) else None


def main() -> int:
    import vitlib.data  # noqa: F401

    counts = {"clear": 0, "leaked": 0, "silent": 0}
    with tempfile.TemporaryDirectory() as d:
        for name, fn in cases(Path(d)):
            try:
                with warnings.catch_warnings():  # a warning from vitlib counts as a clear answer
                    warnings.simplefilter("error", UserWarning)
                    answer = fn()
                if answer == ANSWERED:
                    counts["clear"] += 1
                    continue
                counts["silent"] += 1
                print(f"SILENT  {name}")
            except (ValueError, TypeError, FileNotFoundError, UserWarning,
                    vitlib.data.DataError) as e:
                frames = traceback.extract_tb(e.__traceback__)
                if frames and frames[-1].filename.startswith(OURS):
                    counts["clear"] += 1
                else:
                    counts["leaked"] += 1
                    print(f"LEAKED  {name}: {type(e).__name__} from {frames[-1].filename}: "
                          f"{str(e).splitlines()[0][:120]}")
            except Exception as e:  # noqa: BLE001 - counted, not hidden
                counts["leaked"] += 1
                print(f"LEAKED  {name}: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
    import keras

    print(f"{keras.backend.backend()}: {sum(counts.values())} cases: {counts}")
    return 1 if counts["leaked"] or counts["silent"] else 0


if __name__ == "__main__":
    sys.exit(main())
