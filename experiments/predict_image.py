"""Classify image files with a model made by ``experiments.finetune_folder`` (notebook 11).

    python -m experiments.predict_image my_vit.keras photo.jpg [more.png ...]

Reads the record beside the model (``my_vit.json``: class names and how images are prepared),
prepares each file the same way as the training images (``vitlib.folders.predict_files``), and
prints the three most probable classes with their probabilities.
"""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a .keras file written by experiments.finetune_folder")
    p.add_argument("images", nargs="+", help="image files to classify")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    from vitlib.folders import FolderError, load_classifier, predict_files

    try:
        model, info = load_classifier(args.model)
        results = predict_files(model, info, args.images)
    except (FolderError, FileNotFoundError, ValueError) as e:
        p.error(str(e))
    for path, top in zip(args.images, results, strict=True):
        print(f"{path}: " + ", ".join(f"{name} {prob:.1%}" for name, prob in top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
