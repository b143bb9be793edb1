"""Measure each notebook's execution time and the kernel's peak memory (run by `make bench`).

Usage: .venv/bin/python benchmarks/notebook_times.py [notebooks/NN_*.ipynb ...]

Each notebook runs from a clean kernel in a temporary copy (the committed notebook is not
touched), exactly as `make test` runs it. Peak memory is the kernel process's peak resident set
size (ru_maxrss of the kernel, read from /proc when it exits). Prints a Markdown table.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
import psutil
from nbclient import NotebookClient


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a live process, in MB (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def run(path: Path) -> tuple[float, float]:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        seconds = time.perf_counter() - start
        memory = peak_rss_mb(pid)
    return seconds, memory


def main(paths: list[str]) -> int:
    paths = [Path(p) for p in paths] or sorted(Path("notebooks").glob("[0-9]*.ipynb"))
    print(f"CPU: {psutil.cpu_count()} cores; notebooks run one at a time\n")
    print("| notebook | time (s) | peak kernel memory (MB) |\n|---|---:|---:|")
    total = 0.0
    for path in paths:
        seconds, memory = run(path)
        total += seconds
        print(f"| {path.name} | {seconds:.1f} | {memory:.0f} |", flush=True)
    print(f"| **total** | {total:.1f} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
