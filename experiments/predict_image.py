"""Classify image files with a model made by ``experiments.finetune_folder`` (notebook 11).

    python -m experiments.predict_image my_vit.keras photo.jpg [more.png ...]

Reads the record beside the model (``my_vit.json``: class names and how images are prepared),
prepares each file the same way as the training images, and prints the three most probable
classes with their probabilities.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from experiments.finetune_folder import scale_images


def predict_files(model, record: dict, paths, k: int = 3) -> list:
    """``[[(class name, probability), ...] per file]``, the ``k`` most probable, prepared as
    ``record["prepare"]`` says (the record written by ``experiments.finetune_folder``)."""
    import keras

    from vitlib.folders import load_image

    prep = record["prepare"]
    x = np.stack([load_image(p, prep["image_size"], prep["channels"], prep["fit"],
                             prep["background"]) for p in paths])
    probabilities = keras.ops.convert_to_numpy(
        keras.ops.softmax(model.predict(scale_images(x, prep["scale"]), verbose=0)))
    names = record["class_names"]
    return [[(names[i], float(row[i])) for i in np.argsort(-row)[:k]] for row in probabilities]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("model", help="a .keras file written by experiments.finetune_folder")
    p.add_argument("images", nargs="+", help="image files to classify")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    record_path = Path(args.model).with_suffix(".json")
    if not record_path.is_file():
        p.error(f"{record_path} (the record beside the model, with its class names) does not "
                "exist: was the model made by experiments.finetune_folder?")
    from vitlib.folders import FolderError
    from vitlib.model import load_model

    record = json.loads(record_path.read_text())
    try:
        model = load_model(args.model)
        results = predict_files(model, record, args.images)
    except (FolderError, FileNotFoundError, ValueError) as e:
        p.error(str(e))
    for path, top in zip(args.images, results, strict=True):
        print(f"{path}: " + ", ".join(f"{name} {prob:.1%}" for name, prob in top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
