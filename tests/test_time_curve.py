"""benchmarks/time_curve.py and its shipped record data/accuracy_vs_time.json (notebook 06)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import time_curve  # noqa: E402

RECORD = ROOT / "data" / "accuracy_vs_time.json"
pytestmark = pytest.mark.single_backend


@pytest.fixture(scope="module")
def record():
    return json.loads(RECORD.read_text())


def test_every_model_and_budget_has_every_seed(record):
    assert record["seeds"] == [0, 1, 2] and record["train_images"] == 60_000
    for model in time_curve.CONTENDERS:
        for budget in record["budgets_seconds"]:
            seeds = sorted(r["seed"] for r in record["results"]
                           if r["model"] == model and r["budget_seconds"] == budget)
            assert seeds == record["seeds"], (model, budget, seeds)
    assert all(r["steps"] > 0 and 0.0 <= r["test_accuracy"] <= 1.0 for r in record["results"])


def test_long_runs_are_the_records_they_name(record):
    """Each long run repeats the numbers of its own record; the shipped checkpoint's is current."""
    for run in record["long_runs"]:
        source = json.loads((ROOT / run["record"]).read_text())
        source = source.get("hybrid", source)
        assert (run["test_accuracy"], run["training_seconds"], run["epochs"]) == (
            source["test_accuracy"], source["training_seconds"], source["epochs"]), run["label"]
    assert any(r["record"] == "data/vit_fashion_medium.json" for r in record["long_runs"])


def test_summary_is_mean_min_max_over_seeds(record):
    stats = time_curve.summary(record)
    for (model, budget), (mean, low, high) in stats.items():
        values = [r["test_accuracy"] for r in record["results"]
                  if r["model"] == model and r["budget_seconds"] == budget]
        assert mean == pytest.approx(sum(values) / len(values)) and (low, high) == (min(values), max(values))
    assert "| vit |" in time_curve.render(record)


@pytest.mark.parametrize("budgets, seeds", [([], [0]), ([0], [0]), ([60], [])])
def test_bad_arguments_are_refused_before_any_training(budgets, seeds):
    with pytest.raises(ValueError, match="`budgets`|`seeds`"):
        time_curve.run(budgets, seeds)
