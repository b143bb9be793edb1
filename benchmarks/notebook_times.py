"""Measure each notebook's execution time and the kernel's peak memory (run by `make bench`).

    .venv/bin/python benchmarks/notebook_times.py [notebooks/NN_*.ipynb ...] [--out FILE] [--cells]

Each notebook runs from a clean kernel on the committed file in memory (the file is not touched),
one at a time, as `make test` runs it. Peak memory is the kernel process's peak resident set size
(VmHWM, read from /proc while the kernel is alive), in MiB; it is read after every cell too, so
the record shows which cell raised the peak (``--cells`` prints the largest steps). The course's
budget: 60 s and 1.5 GiB (1536 MiB) per notebook.

Writes ``benchmarks/results/notebook_times.json`` (refused if it exists, unless ``--overwrite``);
``render`` turns it into the section of ``RESULTS.md`` (``benchmarks/report.py``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import common  # noqa: F401  (puts the repository root on sys.path)

from experiments import harness

harness.setdefault_env()

OUT = common.RESULTS_DIR / "notebook_times.json"
BUDGET_SECONDS, BUDGET_MIB = 60.0, 1536.0


def peak_rss_mib(pid: int) -> float | None:
    """Peak resident memory (VmHWM) of a live process, in MiB (Linux)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def run(path: Path) -> dict:
    """Execute one notebook from a clean kernel; time, peak memory and per-cell steps."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    cells, error = [], None
    start = time.perf_counter()
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        for index, cell in enumerate(nb.cells):
            t0 = time.perf_counter()
            try:
                client.execute_cell(cell, index)
            except CellExecutionError as e:  # record it, and go on with the next notebook
                error = f"cell {index}: {e.ename}: {e.evalue}"[:300]
                break
            if cell.cell_type == "code":
                peak = peak_rss_mib(pid)
                first = next((ln for ln in cell.source.splitlines()
                              if ln.strip() and not ln.startswith("# NBVAL")), "")
                cells.append({"cell": index, "seconds": round(time.perf_counter() - t0, 2),
                              "peak_mib_after": None if peak is None else round(peak),
                              "first_line": first[:80]})
        seconds = time.perf_counter() - start
        memory = peak_rss_mib(pid)
    return {"notebook": path.name, "seconds": round(seconds, 1),
            "peak_mib": None if memory is None else round(memory), "error": error,
            "cells": cells}


def largest_steps(entry: dict, k: int = 3) -> list[dict]:
    """The ``k`` cells that raised the kernel's peak memory the most."""
    steps, previous = [], None
    for c in entry.get("cells", []):
        if c["peak_mib_after"] is not None and previous is not None:
            steps.append({**c, "step_mib": c["peak_mib_after"] - previous})
        previous = c["peak_mib_after"] if c["peak_mib_after"] is not None else previous
    return sorted(steps, key=lambda s: -s["step_mib"])[:k]


def render(record: dict) -> str:
    """The ``RESULTS.md`` section of a record written by this script."""
    lines = [
        "## Notebook run time and memory",
        "",
        "Each notebook from a clean kernel, one at a time, as `make test` runs it; peak memory is "
        "the kernel's peak resident set size (VmHWM). Budget: "
        f"{BUDGET_SECONDS:.0f} s and 1.5 GiB ({BUDGET_MIB:.0f} MiB) per notebook.",
        "",
        harness.describe_run(record),
        "",
        "| notebook | time (s) | peak kernel memory (MiB) |",
        "|---|---:|---:|",
    ]
    total, slow, big, failed = 0.0, [], [], []
    for e in record["results"]:
        if e.get("error"):
            failed.append(f"{e['notebook']} ({e['error']})")
            lines.append(f"| {e['notebook']} | failed | |")
            continue
        total += e["seconds"]
        lines.append(f"| {e['notebook']} | {e['seconds']:.1f} | "
                     f"{'n/a' if e['peak_mib'] is None else e['peak_mib']} |")
        if e["seconds"] > BUDGET_SECONDS:
            slow.append(f"{e['notebook']} ({e['seconds']:.0f} s)")
        if e["peak_mib"] is not None and e["peak_mib"] > BUDGET_MIB:
            big.append(f"{e['notebook']} ({e['peak_mib']:,} MiB)")
    lines += [f"| **total** | {total:.1f} | |", ""]
    lines.append("Time: " + ("every notebook is inside the 60 s budget." if not slow else
                             "over the 60 s budget: " + ", ".join(slow) + "."))
    lines.append("Memory: " + ("every notebook is inside the 1.5 GiB budget." if not big else
                               "over the 1.5 GiB budget: " + ", ".join(big) + "."))
    if failed:
        lines.append("Failed (not in the total): " + "; ".join(failed) + ".")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = harness.parser(__doc__.split("\n\n")[0], "results file (.json)", OUT)
    parser.add_argument("notebooks", nargs="*", help="default: notebooks/[0-9]*.ipynb")
    parser.add_argument("--cells", action="store_true",
                        help="also print the cells that raised each notebook's peak memory most")
    parser.add_argument("--note", default="", help="a remark stored in the results")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    harness.refuse_existing([args.out], args.overwrite)
    paths = [Path(p) for p in args.notebooks] or sorted((common.ROOT / "notebooks").glob("[0-9]*.ipynb"))
    record = harness.header(harness.script_line([sys.argv[0], *argv]))
    print("| notebook | time (s) | peak kernel memory (MiB) |\n|---|---:|---:|")
    results = []
    for path in paths:
        entry = run(path)
        results.append(entry)
        status = f" FAILED at {entry['error']}" if entry["error"] else ""
        print(f"| {entry['notebook']} | {entry['seconds']:.1f} | {entry['peak_mib']} |{status}",
              flush=True)
        if args.cells:
            for s in largest_steps(entry):
                print(f"|   cell {s['cell']}: +{s['step_mib']} MiB, {s['seconds']} s: "
                      f"`{s['first_line']}` | | |", flush=True)
    record.update({"what": "Execution time and peak kernel memory of each notebook.",
                   "budget": {"seconds": BUDGET_SECONDS, "peak_mib": BUDGET_MIB},
                   "note": args.note, "results": results})
    record = harness.finish(record)
    harness.write_record(record, args.out, args.overwrite)
    print(f"| **total** | {sum(e['seconds'] for e in results if not e['error']):.1f} | |")
    return 1 if any(e["error"] for e in results) else 0


if __name__ == "__main__":
    sys.exit(main())
