"""Where a measurement was made: machine, library versions, load average.

Every experiment command and benchmark (``experiments/``, ``benchmarks/``; their records are
written by ``experiments/harness.py``) stores these with its numbers, so that a reader can tell
where and under what conditions they were measured; notebook 00 prints them for the learner's own
machine.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
from pathlib import Path

import keras
import numpy as np


def versions() -> dict:
    """Python, Keras (and its backend), NumPy, TensorFlow and JAX versions, where installed."""
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


def machine_summary() -> str:
    """One line for a checkpoint's record, e.g. "x86_64, 2 CPU cores, 3.11.7, keras 3.15.1 (tensorflow)"."""
    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, {platform.python_version()}, "
            f"keras {keras.__version__} ({keras.backend.backend()})")


def load_average() -> list[float] | None:
    """The 1-, 5- and 15-minute load averages (None where the system has none, e.g. Windows)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None
