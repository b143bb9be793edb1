"""The one harness of the experiment commands and benchmarks: arguments, records, outputs.

- :func:`parser` gives every command ``--out`` and ``--overwrite``; :func:`check_out` refuses an
  existing output before any work; :func:`changes` parses ``KEY=VALUE`` changes strictly (an
  unknown key or a value of the wrong type is an error, not ignored).
- :func:`header` and :func:`finish` put the command, UTC date, machine, versions and load average
  into every record; :func:`write_record` writes it (never over an existing file unless told).
- :func:`save_model` ships a model without its optimizer state, with its record beside it.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def setdefault_env() -> None:
    """The course's defaults, before Keras is imported: TensorFlow backend, quiet start-up."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


# --- arguments ----------------------------------------------------------------------------------

def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (``--epochs 0`` or ``--limit -4`` is a usage error)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def seed(text: str) -> int:
    """An argparse type for ``--seeds``: an integer >= 0 (NumPy and Keras refuse negative seeds)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    """An argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def parser(description: str, out_help: str = "the results file (.json)",
           out_default=None) -> argparse.ArgumentParser:
    """An ArgumentParser with the options every command has: ``--out`` and ``--overwrite``."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--out", default=None if out_default is None else str(out_default),
                   help=out_help)
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    return p


def existing(paths, overwrite: bool) -> str | None:
    """The one overwrite rule: a message for the first of ``paths`` that exists, unless
    ``overwrite``; None if nothing would be replaced. Commands check it before any work."""
    for path in paths:
        if path and Path(path).exists() and not overwrite:
            return f"{path} exists; pass --overwrite to replace it."
    return None


def check_out(p: argparse.ArgumentParser, args) -> None:
    """Stop with a usage error, before any work, if ``--out`` exists without ``--overwrite``."""
    message = existing([args.out], args.overwrite)
    if message:
        p.error(f"--out {message}")


def changes(items, defaults: dict, option: str = "--recipe") -> dict:
    """``["batch_size=32", "flip=false"]`` -> ``{**defaults, "batch_size": 32, "flip": False}``.

    Values are JSON (numbers, true/false, lists), else strings. A key that ``defaults`` does not
    have, an item without ``=``, or a value whose type differs from the default's (an int where a
    float is expected is fine) raises a ValueError that names ``option``.
    """
    out = dict(defaults)
    for item in items:
        if "=" not in item:
            raise ValueError(f"{option} items must be KEY=VALUE, got {item!r}.")
        key, text = item.split("=", 1)
        if key not in defaults:
            raise ValueError(f"{option}: unknown key {key!r}; expected one of {sorted(defaults)}.")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        default = defaults[key]
        expected = (float, int) if isinstance(default, float) else type(default)
        if default is not None and (not isinstance(value, expected)
                                    or isinstance(value, bool) != isinstance(default, bool)):
            raise ValueError(f"{option}: {key} must be like {default!r} "
                             f"({type(default).__name__}), got {text!r}.")
        out[key] = float(value) if isinstance(default, float) else value
    return out


def command_line(module: str, argv) -> str:
    """The command as it can be re-typed from the repository root, e.g.
    ``python -m experiments.train --epochs 60``."""
    return shlex.join(["python", "-m", module, *argv])


def script_line(argv=None) -> str:
    """For a script run as ``python benchmarks/NAME.py``: its command line from the root."""
    argv = sys.argv if argv is None else argv
    script = Path(argv[0])
    try:
        script = script.resolve().relative_to(ROOT)
    except ValueError:
        pass
    return shlex.join([".venv/bin/python", str(script), *argv[1:]])


# --- records: where a measurement was made -----------------------------------------------------

def versions() -> dict:
    """Python, Keras (and its backend), NumPy, TensorFlow and JAX versions, where installed."""
    import keras
    import numpy as np

    out = {"python": platform.python_version(), "keras": keras.__version__,
           "backend": keras.backend.backend(), "numpy": np.__version__}
    for package, dists in (("tensorflow", ("tensorflow", "tensorflow-cpu")), ("jax", ("jax",))):
        for dist in dists:
            try:
                out[package] = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                pass
    return out


def machine() -> dict:
    """Platform, architecture, CPU model (from /proc/cpuinfo where there is one) and core count."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"platform": platform.platform(), "machine": platform.machine(), "cpu": cpu,
            "cpu_count": os.cpu_count()}


def load_average() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages (None where the system has none, e.g. Windows)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None



def header(command: str) -> dict:
    """Command, UTC date, machine, versions and load average: the start of every record."""
    return {
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": versions(),
        "load_average": {"start": load_average()},
    }


def finish(record: dict) -> dict:
    """Add the load average at the end and whether other work shared the CPU."""
    start = record["load_average"]["start"]
    record["load_average"]["end"] = load_average()
    record["shared_load"] = bool(start and start[0] >= 0.5)
    return record


def refuse_existing(paths, overwrite: bool) -> None:
    """For scripts: exit with :func:`existing`'s message BEFORE measuring."""
    message = existing(paths, overwrite)
    if message:
        raise SystemExit(message)


def write_record(record: dict, path, overwrite: bool = False) -> Path:
    """Write ``record`` as JSON to ``path``; refuse to replace an existing file unless ``overwrite``."""
    path = Path(path)
    message = existing([path], overwrite)
    if message:
        raise FileExistsError(f"`out` {message}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def read_record(path) -> dict | None:
    """A record as a dict, or None if there is no such file."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None


def save_model(model, record: dict, out, overwrite: bool = False) -> None:
    """``model`` without optimizer state to ``out`` (.keras, about 4 bytes per parameter) and
    ``record`` beside it (.json); refuses to replace either unless ``overwrite``."""
    from vitlib.model import architecture

    out = Path(out)
    message = existing([out, out.with_suffix(".json")], overwrite)
    if message:
        raise FileExistsError(f"`out` {message}")
    out.parent.mkdir(parents=True, exist_ok=True)
    clean = type(model).from_config(architecture(model))
    clean.build()
    clean.set_weights(model.get_weights())
    clean.save(out)
    write_record(record, out.with_suffix(".json"), overwrite=True)


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
