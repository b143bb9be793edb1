"""Does a re-run reproduce a shipped record? Compare the runs two experiment records share.

Usage: python tools/compare_records.py data/NAME.json NEW.json [--tolerance 0.01]

Runs are matched by their seed and, where a record has them, ``model`` / ``attention``; every
number inside a matched run is compared (times, which depend on the machine and its load, are
left out). Prints one line per matched run with its largest difference, and each number that
differs by more than the tolerance; exit status 1 if any does, or if no run matches. Floats
differ in their last digits between machines (oneDNN, thread counts), and a small drift grows
over thousands of training steps, hence a tolerance rather than equality.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

IDENTITY = ("seed", "model", "attention")
SKIP = ("second", "time", "date", "load")


def numbers(value, path=""):
    """{path: number} of every int/float leaf (booleans and machine-dependent times left out)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not any(word in str(key) for word in SKIP):
                out.update(numbers(item, f"{path}.{key}" if path else str(key)))
        return out
    if isinstance(value, list):
        out = {}
        for i, item in enumerate(value):
            out.update(numbers(item, f"{path}[{i}]"))
        return out
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return {path: float(value)}
    return {}


def key(run: dict) -> tuple:
    return tuple((name, run[name]) for name in IDENTITY if name in run)


def compare(shipped: dict, new: dict, tolerance: float) -> tuple[list[str], bool]:
    """Lines to print, and whether every matched run agrees within the tolerance."""
    old_runs = {key(r): r for r in shipped.get("runs", [])}
    lines, ok, matched = [], True, 0
    for run in new.get("runs", []):
        old = old_runs.get(key(run))
        if old is None:
            lines.append(f"{dict(key(run))}: not in the shipped record")
            continue
        matched += 1
        a, b = numbers(old), numbers(run)
        shared = sorted(set(a) & set(b))
        diffs = {p: abs(a[p] - b[p]) for p in shared}
        worst = max(diffs.values(), default=0.0)
        lines.append(f"{dict(key(run))}: {len(shared)} numbers compared, largest difference "
                     f"{worst:.2g}")
        for p, d in diffs.items():
            if d > tolerance:
                ok = False
                lines.append(f"    {p}: shipped {a[p]:g}, re-run {b[p]:g} (differs by {d:.2g})")
    if matched == 0:
        lines.append("no run of the re-run matches a shipped run (seed, model, attention)")
        ok = False
    return lines, ok


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shipped", help="the shipped record (data/NAME.json)")
    parser.add_argument("new", help="the re-run's record")
    parser.add_argument("--tolerance", type=float, default=0.01,
                        help="largest accepted absolute difference (default 0.01)")
    args = parser.parse_args(argv)
    records = []
    for name in (args.shipped, args.new):
        path = Path(name)
        if not path.is_file():
            parser.error(f"no record at {name!r}")
        records.append(json.loads(path.read_text()))
    lines, ok = compare(*records, args.tolerance)
    print("\n".join(lines))
    print(f"{'reproduced' if ok else 'NOT reproduced'} within {args.tolerance:g}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
