"""Record whether re-runs of the experiment commands reproduce the records shipped in ``data/``.

    .venv/bin/python benchmarks/reproduction.py data/NAME.json=RERUN.json [...] [--tolerance 0.01]

Each pair is a shipped record and the record a re-run of its command wrote elsewhere (often for
one seed: ``--seeds 0``); ``tools/compare_records.py`` matches their runs by seed (and model or
attention) and compares every number but the times. Writes ``benchmarks/results/reproduction.json``
(refused if it exists, unless ``--overwrite``); ``render`` turns it into a section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import common

from experiments import harness

sys.path.insert(0, str(common.ROOT / "tools"))
import compare_records  # noqa: E402

OUT = common.RESULTS_DIR / "reproduction.json"
TITLE = "Re-runs of the shipped experiments"


def _scratch(command: str) -> str:
    """The re-run's command with its scratch output path named, not spelled out."""
    return re.sub(r"(--out\s+)\S+", r"\1NEW", command)


def compare_pair(shipped_path: Path, rerun_path: Path, tolerance: float) -> dict:
    shipped, rerun = (json.loads(Path(p).read_text()) for p in (shipped_path, rerun_path))
    lines, ok = compare_records.compare(shipped, rerun, tolerance)
    return {"shipped": f"data/{Path(shipped_path).name}", "shipped_command": shipped.get("command"),
            "rerun_command": _scratch(rerun.get("command", "")), "rerun_date": rerun.get("date"),
            "reproduced": ok, "lines": lines}


def render(record: dict) -> str:
    out = [f"## {TITLE}\n", f"Command: `{record['command']}` ({record['date'][:10]}); numbers "
           f"compared within {record['tolerance']:g}, times left out "
           "(`tools/compare_records.py`).\n", "| Shipped record | Re-run | Result |",
           "|---|---|---|"]
    for c in record["comparisons"]:
        detail = "; ".join(line.strip() for line in c["lines"][:4])
        verdict = "reproduced" if c["reproduced"] else "**not reproduced**"
        out.append(f"| `{c['shipped']}` | `{c['rerun_command']}` | {verdict}: {detail} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pairs", nargs="+", help="data/NAME.json=RERUN.json")
    parser.add_argument("--tolerance", type=float, default=0.01)
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--overwrite", action="store_true")
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    pairs = []
    for pair in args.pairs:
        shipped, sep, rerun = pair.partition("=")
        if not sep or not Path(shipped).is_file() or not Path(rerun).is_file():
            parser.error(f"{pair!r}: expected SHIPPED.json=RERUN.json, both existing files")
        pairs.append((Path(shipped), Path(rerun)))
    harness.refuse_existing([Path(args.out)], args.overwrite)
    # The re-runs live in scratch folders: the command names them RERUN, not by their paths.
    shown = [f"data/{s.name}=RERUN" for s, _ in pairs] + ([f"--tolerance={args.tolerance:g}"]
                                                if args.tolerance != 0.01 else [])
    record = harness.header(harness.script_line([str(Path(__file__)), *shown]))
    record["tolerance"] = args.tolerance
    record["comparisons"] = [compare_pair(s, r, args.tolerance) for s, r in pairs]
    for c in record["comparisons"]:
        print(c["shipped"], "reproduced" if c["reproduced"] else "NOT reproduced", *c["lines"],
              sep="\n  ")
    harness.write_record(harness.finish(record), args.out, overwrite=True)
    return 0 if all(c["reproduced"] for c in record["comparisons"]) else 1


if __name__ == "__main__":
    sys.exit(main())
