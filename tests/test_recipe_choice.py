"""experiments/recipe_choice.py and its shipped record data/recipe_choice.json (notebook 06)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from experiments import recipe_choice
from vitlib.train import RECIPE

ROOT = Path(__file__).resolve().parent.parent
RECORD = ROOT / "data" / "recipe_choice.json"


def test_the_course_recipe_is_a_candidate_and_the_first_differs_where_the_notebook_says():
    assert recipe_choice.CANDIDATES["course"] == RECIPE
    first = recipe_choice.CANDIDATES["first"]
    changed = {k for k in RECIPE if first[k] != RECIPE[k]}
    assert changed == {"batch_size", "peak_learning_rate", "max_shift"}
    assert (first["batch_size"], first["peak_learning_rate"], first["max_shift"]) == (128, 2e-3, 2)


def test_the_choice_follows_validation_even_when_test_disagrees():
    runs = [{"recipe": "first", "seed": s, "validation_accuracy": 0.80, "test_accuracy": 0.90}
            for s in (0, 1)]
    runs += [{"recipe": "course", "seed": s, "validation_accuracy": v, "test_accuracy": 0.70}
             for s, v in ((0, 0.81), (1, 0.83))]
    summary = recipe_choice.summarise(runs)
    assert summary["course"]["validation_accuracy"]["mean"] == pytest.approx(0.82)
    assert summary["course"]["validation_accuracy"]["std"] == pytest.approx(0.0141, abs=1e-4)
    assert recipe_choice.chosen(summary) == "course"


def test_main_refuses_to_overwrite_before_training(tmp_path, capsys):
    out = tmp_path / "r.json"
    out.write_text("{}")
    with pytest.raises(SystemExit):
        recipe_choice.main(["--epochs", "1", "--out", str(out)])
    assert "exists" in capsys.readouterr().err and out.read_text() == "{}"
    with pytest.raises(SystemExit):
        recipe_choice.main(["--seeds", "0", "-2"])
    assert "argument --seeds: expected an integer >= 0" in capsys.readouterr().err


@pytest.mark.single_backend
def test_shipped_record_recomputes_its_summary_and_choice():
    record = json.loads(RECORD.read_text())
    assert record["command"].startswith("python -m experiments.recipe_choice")
    assert sorted((r["recipe"], r["seed"]) for r in record["runs"]) == sorted(
        (name, s) for name in recipe_choice.CANDIDATES for s in record["seeds"])
    assert len(record["seeds"]) >= 3 and record["validation_images"] == 5000
    assert recipe_choice.summarise(record["runs"]) == record["summary"]
    assert recipe_choice.chosen(record["summary"]) == record["chosen"]
