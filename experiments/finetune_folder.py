"""Fine-tune a pretrained ViT on your own folder of images (notebook 11), without a notebook.

    python -m experiments.finetune_folder my_images --out my_vit.keras

``my_images`` holds one sub-folder per class (``my_images/cat/*.jpg``, ``my_images/dog/*.png``,
...), the layout of ``keras.utils.image_dataset_from_directory``. The command

1. reads every image (any size; grey, RGB, RGBA or palette), brings it to the encoder's channels
   and to ``--image-size`` by ``--fit crop`` (centre square) or ``--fit pad`` (bars), and holds
   out ``--val-fraction`` of each class for validation (``vitlib.folders``);
2. puts a new head for the classes on the pretrained encoder (``--encoder``: the course's own
   Fashion-MNIST ViT by default, offline; or a ``.npz`` file or catalogue name of Google's
   checkpoints, e.g. ``Ti/16-augreg-in21k-ft-in1k``, downloaded once when online);
3. trains the head alone (``--head-epochs`` at ``--head-lr``), then everything (``--full-epochs``
   at ``--full-lr``), printing one line per epoch (``vitlib.finetune.fit_in_two_stages``);
4. saves the model to ``--out`` (.keras) and, beside it (.json), the class names, how images
   are prepared, the validation accuracy and confusion matrix, and the command.

Predict one new image with ``python -m experiments.predict_image my_vit.keras photo.jpg``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from experiments import harness

MODULE = "experiments.finetune_folder"
COURSE_ENCODER = "data/vit_fashion_medium.keras"
def confusion_matrix(y_true, y_pred, num_classes: int) -> np.ndarray:
    """counts (num_classes, num_classes): row = true class, column = predicted class."""
    counts = np.zeros((num_classes, num_classes), dtype="int64")
    np.add.at(counts, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return counts


def run(args, command: str = "", log=print):
    """Load, split, fine-tune; returns ``(model, record)``."""
    import keras

    from vitlib.finetune import fit_in_two_stages, load_pretrained, with_new_head
    from vitlib.folders import find_images, load_folder, scale_images, split

    keras.utils.set_random_seed(args.seed)
    classes = find_images(args.folder, skip_bad=args.skip_bad_files)[2]
    model, scale = load_pretrained(args.encoder, len(classes))
    size = args.image_size or model.image_size[0]
    if size != model.image_size[0]:
        model = with_new_head(model, image_size=size)  # position embedding resized (Sec. 3.2)
    start = time.perf_counter()
    data = load_folder(args.folder, size, model.channels, args.fit, args.background,
                       skip_bad=args.skip_bad_files)
    log(f"read {len(data.y)} images of {len(data.class_names)} classes from {args.folder} "
        f"in {time.perf_counter() - start:.1f} s: " + ", ".join(
            f"{name} {int(np.sum(data.y == k))}" for k, name in enumerate(data.class_names)))
    for path in data.skipped:
        log(f"skipped (not a readable image): {path}")
    train_idx, val_idx = split(data.y, args.val_fraction, args.seed)
    x = scale_images(data.x, scale)
    log(f"training on {len(train_idx)}, validating on {len(val_idx)}; images "
        f"{size}x{size}x{model.channels} ({args.fit}), encoder {args.encoder}")
    histories = fit_in_two_stages(
        model, x[train_idx], data.y[train_idx], (x[val_idx], data.y[val_idx]),
        head_epochs=args.head_epochs, full_epochs=args.full_epochs,
        head_learning_rate=args.head_lr, full_learning_rate=args.full_lr,
        batch_size=args.batch_size, verbose=2)
    predicted = np.argmax(model.predict(x[val_idx], batch_size=64, verbose=0), axis=-1)
    accuracy = float(np.mean(predicted == data.y[val_idx]))
    record = harness.header(command)
    record.update({
        "what": "a pretrained ViT fine-tuned on a folder of images (head alone, then all)",
        "folder": Path(args.folder).name, "class_names": data.class_names,
        "images": len(data.y), "train_images": len(train_idx), "validation_images": len(val_idx),
        "skipped": [str(p) for p in data.skipped],
        "prepare": {"image_size": size, "channels": model.channels, "fit": args.fit,
                    "background": args.background, "scale": scale},
        "encoder": args.encoder, "seed": args.seed,
        "stages": {"head": {"epochs": args.head_epochs, "learning_rate": args.head_lr},
                   "full": {"epochs": args.full_epochs, "learning_rate": args.full_lr}},
        "batch_size": args.batch_size, "history": histories,
        "validation_accuracy": round(accuracy, 4),
        "validation_confusion": confusion_matrix(data.y[val_idx], predicted,
                                                 len(data.class_names)).tolist(),
    })
    return model, harness.finish(record)


def main(argv=None) -> int:
    p = harness.parser(__doc__.split("\n\n")[0], out_help="the fine-tuned model (.keras); "
                       "its record is written beside it (.json)")
    p.add_argument("folder", help="a folder with one sub-folder of images per class")
    p.add_argument("--encoder", default=COURSE_ENCODER,
                   help="a .keras ViT, a Google .npz, or a vitlib.pretrained catalogue name")
    p.add_argument("--image-size", type=harness.positive_int, default=None,
                   help="side of the square images (default: the encoder's)")
    p.add_argument("--fit", choices=("crop", "pad"), default="crop")
    p.add_argument("--background", type=int, default=0,
                   help="grey level 0-255 of padding and transparent pixels")
    p.add_argument("--val-fraction", type=float, default=0.2)
    p.add_argument("--head-epochs", type=int, default=5)
    p.add_argument("--full-epochs", type=int, default=5)
    p.add_argument("--head-lr", type=harness.positive_float, default=3e-3)
    p.add_argument("--full-lr", type=harness.positive_float, default=3e-4)
    p.add_argument("--batch-size", type=harness.positive_int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--skip-bad-files", action="store_true",
                   help="leave out files that are not readable images instead of stopping")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    if not args.out or Path(args.out).suffix != ".keras":
        p.error(f"--out must name the model file to write, ending in .keras, got {args.out!r}.")
    message = harness.existing([args.out, Path(args.out).with_suffix(".json")], args.overwrite)
    if message:
        p.error(f"--out {message}")
    if args.head_epochs < 0 or args.full_epochs < 0 or args.head_epochs + args.full_epochs == 0:
        p.error(f"--head-epochs and --full-epochs must be >= 0 and not both 0, got "
                f"{args.head_epochs} and {args.full_epochs}.")
    if not 0.0 < args.val_fraction < 1.0:
        p.error(f"--val-fraction must be in (0, 1), got {args.val_fraction}.")
    if not 0 <= args.background <= 255:
        p.error(f"--background must be a grey level in [0, 255], got {args.background}.")
    from vitlib.folders import FolderError
    from vitlib.pretrained import DownloadError

    try:
        model, record = run(args, command=harness.command_line(MODULE, argv))
    except (FolderError, DownloadError, FileNotFoundError, ValueError) as e:
        p.error(str(e))
    from vitlib.folders import save_classifier

    save_classifier(model, args.out, record.pop("class_names"), record.pop("prepare"),
                    overwrite=args.overwrite, record=record)
    print(f"validation accuracy {record['validation_accuracy']:.3f} on "
          f"{record['validation_images']} images; saved {args.out} and "
          f"{Path(args.out).with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
