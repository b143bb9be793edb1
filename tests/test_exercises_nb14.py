"""Checkers of notebook 14: the solutions pass, each usual mistake gets its own hint, None is
"not answered yet". References written here independently (loops over the tokens, the layers
themselves)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from vitlib.exercises import nb14

pytestmark = pytest.mark.single_backend


def hint(mistakes, name):
    return next(m.hint for m in mistakes if m.name == name)


# --- Exercise 1: axial masks for a video, learner-style answers written with loops ----------------

def masks_by_loops(numbering="frames_first", frame_blind=False, time_as_frame=False, swap=False,
                   divide_by_rows=False):
    def fn(frames, rows, cols):
        n = frames * rows * cols
        where = []
        for i in range(n):
            if numbering == "frames_first":
                f, rest = divmod(i, rows * cols)
                r, c = divmod(rest, rows if divide_by_rows else cols)
            else:
                rest, f = divmod(i, frames)
                r, c = divmod(rest, cols)
            where.append((f, r, c))
        width, height, time = (np.zeros((n, n), bool) for _ in range(3))
        for i, (f, r, c) in enumerate(where):
            for j, (g, s, d) in enumerate(where):
                width[i, j] = r == s and (frame_blind or f == g)
                height[i, j] = c == d and (frame_blind or f == g)
                time[i, j] = f == g if time_as_frame else (r == s and c == d)
        return (height, width, time) if swap else (width, height, time)
    return fn


def test_axial_masks_3d_solution_passes():
    fb = nb14.check_axial_masks_3d(masks_by_loops(), seed=0)
    assert fb.passed and fb.message.startswith("✅"), fb.message


@pytest.mark.parametrize("fn, name", [
    (masks_by_loops(frame_blind=True), "frame_blind"),
    (masks_by_loops(time_as_frame=True), "time_as_frame"),
    (masks_by_loops(numbering="frames_last"), "frames_last"),
    (masks_by_loops(divide_by_rows=True), "rows_for_cols"),
    (masks_by_loops(swap=True), "width_height_swapped"),
])
def test_axial_masks_3d_mistakes_get_their_hint(fn, name):
    for seed in range(3):
        fb = nb14.check_axial_masks_3d(fn, seed=seed)
        assert not fb.passed and fb.mistake == name, (seed, fb.message)
        assert hint(nb14.AXIAL_3D_MISTAKES, name) in fb.message


def test_axial_masks_3d_copying_the_2d_answer_fails():
    from vitlib.axial import axial_masks

    fb = nb14.check_axial_masks_3d(lambda f, r, c: axial_masks(r, c), seed=0)
    assert not fb.passed
    fb = nb14.check_axial_masks_3d(lambda f, r, c: (_ for _ in ()).throw(NotImplementedError), seed=0)
    assert not fb.passed and "not written yet" in fb.message


def test_axial_masks_3d_reference_by_hand():
    width, height, time = nb14.reference_axial_masks_3d(2, 2, 3)  # tokens: f, r, c
    # token 0 = (0, 0, 0); token 2 = (0, 0, 2); token 3 = (0, 1, 0); token 6 = (1, 0, 0)
    assert width[0, 2] and not width[0, 3] and not width[0, 6]
    assert height[0, 3] and not height[0, 2] and not height[0, 6]
    assert time[0, 6] and not time[0, 2] and not time[0, 3]
    assert width.sum() == 12 * 3 and height.sum() == 12 * 2 and time.sum() == 12 * 2


# --- Exercise 2: the ratio of the weights ------------------------------------------------------

def test_weights_ratio_prediction():
    assert nb14.measure_weights_ratio(32) == 1024**2 / (1024 * 64)
    assert nb14.measure_weights_ratio(14) == 196 / 28
    assert nb14.check_weights_ratio_prediction(16).passed
    assert nb14.check_weights_ratio_prediction(16.3).passed
    for wrong, name in ((32, "one_axis"), (1024, "linear"), (512, "square_of_side")):
        fb = nb14.check_weights_ratio_prediction(wrong)
        assert not fb.passed and fb.mistake == name, fb.message
    assert not nb14.check_weights_ratio_prediction(7).passed  # the 14 x 14 answer
    fb = nb14.check_weights_ratio_prediction(None)
    assert not fb.passed and "not answered yet" in fb.message
    assert nb14.check_weights_ratio_prediction("16").mistake == "not_a_number"


# --- Exercise 5: copies of every item ----------------------------------------------------------

def test_duplicates_prediction_on_set_models():
    from vitlib import set_tasks

    keras.utils.set_random_seed(0)
    features = np.random.default_rng(0).normal(size=(4, 12)).astype("float32")
    for build in set_tasks.MODELS.values():
        model = build(12)
        assert nb14.measure_duplicates_change(model, features) < 1e-4
        assert nb14.check_duplicates_prediction(0, model, features).passed
        fb = nb14.check_duplicates_prediction(1.5, model, features)
        assert not fb.passed and "weighted" in fb.message
    for guess, name in ((3, "copies_add_evidence"), (0.5, "copies_add_evidence"), (0.2, "copies_nudge"),
                        (-1, "negative")):
        fb = nb14.check_duplicates_prediction(guess, model, features)
        assert not fb.passed and fb.mistake == name, (guess, fb.message)
    fb = nb14.check_duplicates_prediction(None, model, features)
    assert not fb.passed and "not answered yet" in fb.message
    assert nb14.check_duplicates_prediction("0", model, features).mistake == "not_a_number"
    # the check can fail: a model that sums its elements changes with copies
    inputs = keras.Input((None, 12))
    summed = keras.Model(inputs, keras.layers.Dense(3)(keras.ops.sum(inputs, axis=1)))
    assert nb14.measure_duplicates_change(summed, features) > 1e-2


# --- Exercises 3, 4, 6: interpret; every wrong letter gets its own explanation -----------------

@pytest.mark.parametrize("checker, correct", [(nb14.check_cost_answer, "c"),
                                              (nb14.check_control_answer, "d"),
                                              (nb14.check_sets_answer, "a")])
def test_interpret_checkers(checker, correct):
    assert checker(correct).passed and checker(correct.upper() + " ").passed
    messages = set()
    for letter in "abcd":
        if letter != correct:
            fb = checker(letter)
            assert not fb.passed and fb.mistake == letter
            messages.add(fb.message)
    assert len(messages) == 3  # a different explanation for each wrong letter
    assert "not answered yet" in checker(None).message
    assert checker("e").mistake == "not_an_option"


ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def _record(name):
    path = ROOT / "data" / name
    if not path.is_file():
        pytest.skip(f"data/{name} is made by its command")
    return __import__("json").loads(path.read_text())


def test_the_numbers_the_interpret_checkers_quote_are_the_records():
    cost = _record("axial_cost.json")
    rows = {(r["grid"], r["mode"]): r for r in cost["analysis"]["rows"]}
    assert round(rows[14, "forward"]["cpu_ratio_full_over_axial"], 2) == 1.02  # Exercise 3
    assert rows[14, "forward"]["axial_cpu_clearly_faster"]
    assert cost["analysis"]["crossover"]["forward"]["cpu_time_clearly"] == 14
    assert cost["analysis"]["crossover"]["forward"]["time_clearly"] == 20  # wall-clock: not at 14x14
    assert not rows[14, "forward"]["axial_clearly_faster"] and not rows[14, "forward"]["axial_clearly_slower"]
    assert round(rows[14, "forward"]["time_ratio_full_over_axial"], 2) == 0.98
    load = cost["load_average"]  # Exercise 3 and Step 2: "load 1.8 -> 5.0"
    assert (round(load["start"][0], 1), round(load["end"][0], 1)) == (1.8, 5.0)
    assert all(rows[g, "train"]["axial_cpu_clearly_slower"] for g in (4, 7, 10))
    assert round(rows[14, "train"]["xla_temp_mib"]["full"], 1) == 7.5
    assert round(rows[14, "train"]["xla_temp_mib"]["axial"], 1) == 1.9
    assert round(1 / rows[14, "train"]["cpu_ratio_full_over_axial"], 2) == 1.23
    assert not rows[14, "train"]["axial_cpu_clearly_slower"]  # the samples overlap
    assert cost["analysis"]["crossover"]["train"]["cpu_time_clearly"] == 20
    assert round(rows[64, "train"]["cpu_ratio_full_over_axial"]) == 19
    assert round(rows[64, "forward"]["cpu_ratio_full_over_axial"]) == 17
    runs = _record("axial_segment.json")["runs"]
    cpu = {k: np.mean([r["training_cpu_seconds"] for r in runs if r["attention"] == k]) for k in ("full", "axial")}
    assert round(cpu["axial"] / cpu["full"], 1) == 1.1  # Exercise 3's "1.1x the CPU time"
    seg = _record("axial_segment.json")["summary"]
    assert [round(seg[k]["mean_iou"]["mean"], 3) for k in ("full", "full2", "axial")] == [0.267, 0.257, 0.358]
    assert all(d > 0 for d in seg["axial_minus_full2"]["mean_iou"])  # full2 behind axial in every seed
    assert seg["full2"]["parameters"] == seg["axial"]["parameters"] == 214_923
    assert all(0.07 <= d <= 0.11 for d in seg["axial_minus_full"]["mean_iou"])
    sets = _record("sets.json")
    trials = {(t["model"], t["peak_learning_rate"]): round(t["val_accuracy"], 3)
              for t in sets["learning_rate_trials"]}  # Exercise 6
    rates = (3e-4, 1e-3, 3e-3, 1e-2)
    assert [trials["deep_sets", r] for r in rates] == [0.658, 0.772, 0.823, 0.761]
    assert [trials["set_transformer_sab", r] for r in rates] == [0.78, 0.841, 0.842, 0.531]
    summary = sets["summary"]  # Step 7's prose
    assert [round(summary[k]["test_accuracy"]["mean"], 3) for k in sets["models"]] == [0.798, 0.819, 0.815]
    assert min(summary["set_transformer_isab"]["test_accuracy"]["min"],
               summary["set_transformer_sab"]["test_accuracy"]["min"]) > summary["deep_sets"]["test_accuracy"]["max"]
    assert round(sets["references"]["test"]["classify_then_count"]["accuracy"], 3) == 0.748
    by_size = {k: np.mean([[r["test"]["accuracy_by_size"][str(n)] for n in (6, 8, 10)]
                           for r in sets["runs"] if r["model"] == k], axis=0) for k in sets["models"]}
    lead = by_size["set_transformer_sab"] - by_size["deep_sets"]  # Step 7 and the summary
    assert [round(x, 2) for x in lead] == [0.03, -0.0, 0.06]
    assert round(by_size["set_transformer_sab"][-1], 2) == 0.75
    assert abs(by_size["deep_sets"][-1] - 0.685) < 1e-9  # quoted as 0.69 (rounded half up)
