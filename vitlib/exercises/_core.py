"""A small checker for the notebooks' exercises.

A checker runs the learner's function on fresh random inputs and compares the result with a
reference. When the answer is wrong, it also runs each *known mistake* (a deliberately wrong
implementation of the usual slip: forgot sqrt(d), softmax over the wrong axis, ...) and, if the
learner's output matches one of them, gives that mistake's targeted hint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Mistake:
    """A known wrong answer: ``fn`` has the exercise's signature and makes the mistake."""

    name: str
    fn: Callable
    hint: str


@dataclass(frozen=True)
class Feedback:
    """What a checker says. True when the answer is right; shows as a short message."""

    passed: bool
    message: str
    mistake: str | None = None  # the name of the recognised mistake, if any

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return self.message

    def _repr_markdown_(self) -> str:
        return self.message


def _as_numpy(x):
    if isinstance(x, (tuple, list)):
        return type(x)(_as_numpy(v) for v in x)
    return np.asarray(x)


def _numeric(x) -> bool:
    """True for arrays of numbers (bool, int, float, complex): what can be compared to a value."""
    return isinstance(x, np.ndarray) and x.dtype.kind in "biufc"


def _close(got, want, atol: float, rtol: float = 1e-4) -> bool:
    try:
        got, want = _as_numpy(got), _as_numpy(want)
    except Exception:  # e.g. a ragged list: not the expected value
        return False
    if isinstance(want, (tuple, list)):
        return (isinstance(got, (tuple, list)) and len(got) == len(want)
                and all(_close(g, w, atol, rtol) for g, w in zip(got, want, strict=True)))
    if isinstance(got, (tuple, list)) or not _numeric(got) or got.shape != want.shape:
        return False  # a string, a dict, objects...: not numbers, so not the answer
    return bool(np.allclose(got, want, atol=atol, rtol=rtol))


def _describe(x) -> str:
    x = _as_numpy(x)
    if isinstance(x, (tuple, list)):
        return "(" + ", ".join(_describe(v) for v in x) + ")"
    return f"array of shape {x.shape}" if x.ndim else repr(x.item())


def check(learner: Callable, reference: Callable, make_case: Callable[[np.random.Generator], Sequence],
          mistakes: Sequence[Mistake] = (), title: str = "Exercise", cases: int = 5,
          atol: float = 1e-5, seed: int | None = None, rtol: float = 1e-4) -> Feedback:
    """Run ``learner`` and ``reference`` on ``cases`` random inputs from ``make_case(rng)``.

    Values match when ``|got - want| <= atol + rtol * |want|``; pass ``rtol=0, atol=0`` for
    counts, which must be exact.

    Returns :class:`Feedback`: passed, or the first problem found with a targeted hint.
    """
    rng = np.random.default_rng(seed)
    for i in range(cases):
        args = tuple(make_case(rng))
        want = reference(*args)
        shapes = ", ".join(_describe(a) for a in args)
        try:
            got = learner(*args)
        except NotImplementedError:
            return Feedback(False, f"❌ {title}: not written yet; replace the `raise NotImplementedError`.")
        except Exception as e:  # the learner's code: report any error in plain words
            return Feedback(False, f"❌ {title}: your function raised {type(e).__name__}: {e}\n"
                                   f"   (inputs: {shapes})")
        if got is None:
            return Feedback(False, f"❌ {title}: your function returned None. Did you forget `return`?")
        if _close(got, want, atol, rtol):
            continue
        for m in mistakes:
            try:
                if _close(got, m.fn(*args), atol, rtol):
                    return Feedback(False, f"❌ {title}: {m.hint}", mistake=m.name)
            except Exception:  # a mistake that cannot run on this case simply does not match
                pass
        try:
            g, w = _as_numpy(got), _as_numpy(want)
        except Exception:
            g, w = None, want
        if not isinstance(w, (tuple, list)) and not isinstance(g, (tuple, list)) and not _numeric(g):
            return Feedback(False, f"❌ {title}: your function returned {type(got).__name__} "
                                   f"{got!r:.60}; expected numbers: {_describe(want)}.")
        if not isinstance(w, (tuple, list)) and not isinstance(g, (tuple, list)) and g.shape != w.shape:
            return Feedback(False, f"❌ {title}: wrong shape: got {g.shape}, expected {w.shape} "
                                   f"(inputs: {shapes}).")
        if (not isinstance(w, (tuple, list)) and not isinstance(g, (tuple, list))
                and g.dtype.kind in "fc" and not np.all(np.isfinite(g))):
            return Feedback(False, f"❌ {title}: your output contains nan or inf on random case "
                                   f"{i + 1}: look for an overflow, a division by zero, or -inf "
                                   "that reaches the output without a softmax.")
        if not isinstance(w, (tuple, list)) and not isinstance(g, (tuple, list)):
            err = float(np.max(np.abs(g.astype(np.float64) - w.astype(np.float64))))
            return Feedback(False, f"❌ {title}: the shape is right but the values differ "
                                   f"(largest difference {err:.3g}) on random case {i + 1}.")
        return Feedback(False, f"❌ {title}: expected {_describe(want)}, got {_describe(got)}.")
    return Feedback(True, f"✅ {title}: correct on {cases} random cases.")


# ---------------------------------------------------------------- questions that are not code
# Two kinds of exercise that copying a cell above cannot solve:
# - choose: a multiple-choice question about a measurement or a figure; every wrong choice has
#   its own explanation (why a learner would pick it, and what the evidence says instead);
# - compare_prediction: the learner writes a prediction (a number) BEFORE running anything, then
#   the checker runs the experiment and compares. The learner's variables start as None in the
#   student edition, which the checkers read as "not answered yet".


def _unanswered(title: str, what: str) -> Feedback:
    return Feedback(False, f"❓ {title}: not answered yet; {what}")


def choose(answer, *, options: dict[str, str], correct: str, why: str,
           title: str = "Question") -> Feedback:
    """Check a multiple-choice ``answer`` (one letter, e.g. ``"b"``).

    ``options`` maps each letter to the explanation shown when that (wrong) letter is chosen;
    ``correct`` is the right letter, ``why`` the explanation shown when it is chosen.
    """
    letters = sorted(options)
    if correct not in options:
        raise ValueError(f"correct={correct!r} is not one of the options {letters}")
    if answer is None:
        return _unanswered(title, f"set `answer` to one of {', '.join(map(repr, letters))}.")
    if not isinstance(answer, str) or answer.strip().lower() not in options:
        return Feedback(False, f"❌ {title}: the answer must be one of "
                               f"{', '.join(map(repr, letters))}; got {answer!r}.",
                        mistake="not_an_option")
    answer = answer.strip().lower()
    if answer == correct:
        return Feedback(True, f"✅ {title}: ({answer}) is right. {why}")
    return Feedback(False, f"❌ {title}: not ({answer}). {options[answer]}", mistake=answer)


def compare_prediction(prediction, measured, *, title: str, unit: str = "",
                       rtol: float = 0.0, atol: float = 0.0, why: str = "",
                       mistakes: Sequence[tuple[str, float, str]] = ()) -> Feedback:
    """Compare a learner's numeric ``prediction`` with the ``measured`` value.

    Right when ``|prediction - measured| <= atol + rtol * |measured|``. ``mistakes`` are
    (name, value, hint): a known wrong prediction (e.g. the count without biases) and the hint
    that explains it; ``why`` is shown with the verdict either way.
    """
    if prediction is None:
        return _unanswered(title, "write your prediction first (a number), then run this cell.")
    if isinstance(prediction, bool) or not isinstance(prediction, (int, float, np.integer,
                                                                   np.floating)):
        return Feedback(False, f"❌ {title}: the prediction must be a number; got "
                               f"{type(prediction).__name__} {prediction!r:.40}.",
                        mistake="not_a_number")
    unit = f" {unit}" if unit else ""
    said = f"you predicted {prediction:,.6g}{unit}; the experiment measured {measured:,.6g}{unit}."
    if abs(prediction - measured) <= atol + rtol * abs(measured):
        return Feedback(True, f"✅ {title}: {said} {why}".rstrip())
    for name, value, hint in mistakes:
        if abs(prediction - value) <= atol + rtol * abs(value):
            return Feedback(False, f"❌ {title}: {said} {hint}", mistake=name)
    return Feedback(False, f"❌ {title}: {said} {why}".rstrip())
