"""The two exercise kinds that are not code: multiple choice and predict-then-run."""

from __future__ import annotations

import pytest

from vitlib.exercises import choose, compare_prediction

pytestmark = pytest.mark.single_backend

OPTIONS = {"a": "A is the distractor: it confuses tokens and pixels.",
           "b": "right",
           "c": "C ignores the class token."}


def test_choose_right_wrong_unanswered_and_invalid():
    right = choose("b", options=OPTIONS, correct="b", why="Because 49 + 1.", title="Q1")
    assert right.passed and "Because 49 + 1." in right.message and "✅" in right.message
    for letter in ("a", "c"):
        wrong = choose(letter.upper(), options=OPTIONS, correct="b", why="-", title="Q1")
        assert not wrong.passed and wrong.mistake == letter
        assert OPTIONS[letter] in wrong.message
    none = choose(None, options=OPTIONS, correct="b", why="-")
    assert not none.passed and "not answered yet" in none.message
    bad = choose("e", options=OPTIONS, correct="b", why="-")
    assert not bad.passed and "'a', 'b', 'c'" in bad.message and "'e'" in bad.message
    with pytest.raises(ValueError, match="correct='z'"):
        choose("a", options=OPTIONS, correct="z", why="-")


def test_compare_prediction_tolerance_mistakes_and_bad_input():
    kw = dict(title="params", why="Each head adds 3 kernels.",
              mistakes=[("no_bias", 96.0, "You forgot the biases.")])
    assert compare_prediction(100, 100.0, **kw).passed
    assert compare_prediction(104, 100.0, rtol=0.05, **kw).passed
    assert not compare_prediction(106, 100.0, rtol=0.05, **kw).passed
    miss = compare_prediction(96, 100.0, **kw)
    assert not miss.passed and miss.mistake == "no_bias" and "biases" in miss.message
    assert "you predicted 96" in miss.message and "measured 100" in miss.message
    other = compare_prediction(7, 100.0, **kw)
    assert not other.passed and other.mistake is None and "Each head" in other.message
    assert "not answered yet" in compare_prediction(None, 1.0, title="t").message
    text = compare_prediction("100", 100.0, title="t")
    assert not text.passed and text.mistake == "not_a_number"
    assert compare_prediction(True, 1.0, title="t").mistake == "not_a_number"
