"""benchmarks/reproduction.py: the record of re-runs against the shipped records."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import reproduction  # noqa: E402

pytestmark = pytest.mark.single_backend


def test_a_rerun_is_compared_and_its_scratch_path_not_shown(tmp_path):
    shipped = tmp_path / "shipped.json"
    rerun = tmp_path / "rerun.json"
    run = {"seed": 0, "test": {"accuracy": 0.8}}
    shipped.write_text(json.dumps({"command": "python -m experiments.x --out data/x.json",
                                   "runs": [run, {**run, "seed": 1}]}))
    rerun.write_text(json.dumps({"command": f"python -m experiments.x --seeds 0 --out {rerun}",
                                 "runs": [{**run, "test": {"accuracy": 0.9}}]}))
    c = reproduction.compare_pair(shipped, rerun, 0.01)
    assert not c["reproduced"] and str(tmp_path) not in c["rerun_command"]
    out = tmp_path / "reproduction.json"
    assert reproduction.main([f"{shipped}={rerun}", "--out", str(out)]) == 1
    record = json.loads(out.read_text())
    assert str(tmp_path) not in record["command"]
    assert "**not reproduced**" in reproduction.render(record)


def test_the_shipped_reproduction_record_covers_the_beyond_classification_commands():
    record = json.loads((ROOT / "benchmarks/results/reproduction.json").read_text())
    shipped = {c["shipped"] for c in record["comparisons"]}
    assert {"data/detr_fashion.json", "data/axial_segment.json", "data/sets.json",
            "data/image_transformer.json", "data/videobert.json"} <= shipped
    for c in record["comparisons"]:
        assert (ROOT / c["shipped"]).is_file() and "/tmp" not in c["rerun_command"]
