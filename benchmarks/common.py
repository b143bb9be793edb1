"""Paths of the benchmarks folder, and the repository root on ``sys.path``.

The scripts here run as ``python benchmarks/NAME.py`` (so this folder is on ``sys.path``); importing
this module first lets them import ``experiments.harness``, the one harness that writes every
record (command, date, machine, versions, load average) of the experiments and benchmarks.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS_DIR = HERE / "results"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
