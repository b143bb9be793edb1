"""What every benchmark records next to its figures, and how its results file is written.

The machinery is vitlib.compare's (machine, versions, load average, refuse-to-overwrite), so a
benchmark's JSON and the ViT-vs-CNN record of notebook 08 describe a run the same way.
Imported by the scripts of this folder (run as ``python benchmarks/NAME.py``, so this folder is on
``sys.path``); it imports nothing heavy, so ``report.py`` stays quick.
"""

from __future__ import annotations

import datetime
import json
import os
import shlex
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS_DIR = HERE / "results"


def setdefault_env() -> None:
    """The course's defaults, before Keras is imported: TensorFlow backend, quiet start-up."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def command_line(argv=None) -> str:
    """The command as it can be re-typed from the repository root."""
    argv = sys.argv if argv is None else argv
    script = Path(argv[0])
    try:
        script = script.resolve().relative_to(ROOT)
    except ValueError:
        pass
    return shlex.join([".venv/bin/python", str(script), *argv[1:]])


def header(command: str) -> dict:
    """Command, UTC date, machine, versions and load average: the start of every record."""
    from vitlib.records import load_average, machine, versions  # imports Keras (wanted here)

    return {
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "load_average": {"start": load_average()},
    }


def finish(record: dict) -> dict:
    """Add the load average at the end and whether other work shared the CPU."""
    from vitlib.records import load_average

    start = record["load_average"]["start"]
    record["load_average"]["end"] = load_average()
    record["shared_load"] = bool(start and start[0] >= 0.5)
    return record


def refuse_existing(paths, overwrite: bool) -> None:
    """Fail BEFORE measuring if an output exists and ``--overwrite`` was not given."""
    for path in paths:
        if path and Path(path).exists() and not overwrite:
            raise SystemExit(f"{path} exists; pass --overwrite to replace it.")


def write_json(record: dict, path, overwrite: bool) -> Path:
    from vitlib.records import write_results

    return write_results(record, path, overwrite=overwrite)


def read_json(path) -> dict | None:
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None


def describe_run(record: dict) -> str:
    """One Markdown paragraph: command, machine, date, versions, load average."""
    m, v = record["machine"], record["versions"]
    load = record.get("load_average", {})
    backend = v.get("backend", "?")
    engine = f"TensorFlow {v['tensorflow']}" if backend == "tensorflow" and "tensorflow" in v else \
        f"JAX {v.get('jax', '?')}" if backend == "jax" else backend
    text = (f"Command: `{record['command']}`. Machine: {m['cpu']}, {m['cpu_count']} CPU cores "
            f"({m['platform']}). Date: {record['date'][:10]} (UTC). Python {v['python']}, "
            f"Keras {v['keras']} on {engine}, NumPy {v['numpy']}.")
    if load.get("start") is not None:
        text += (f" Load average (1, 5, 15 min) at the start {load['start']}, at the end "
                 f"{load.get('end')}")
        text += ": other work shared the CPU." if record.get("shared_load") else "."
    if record.get("note"):
        text += f" Note: {record['note']}"
    return text
