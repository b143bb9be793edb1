"""Checkers of notebook 09: the solution passes, each usual mistake gets its own hint."""

from __future__ import annotations

import numpy as np
import pytest

from vitlib.exercises import nb09

pytestmark = pytest.mark.single_backend


# Learner-style answers, written independently of the checker's references.
def query_heads_loop(x, kernel, bias):
    tokens, (_, heads, head_dim) = len(x), kernel.shape
    q = np.zeros((tokens, heads, head_dim))
    for t in range(tokens):
        for h in range(heads):
            q[t, h] = x[t] @ kernel[:, h, :] + bias[h]
    return q


def masked_mse_loop(target, predicted, mask):
    errors = [np.mean((p - t) ** 2) for t, p, m in zip(target, predicted, mask, strict=True) if m]
    return sum(errors) / len(errors)


def test_solutions_pass():
    assert nb09.check_query_heads(query_heads_loop, seed=0)
    assert nb09.check_query_heads(lambda x, k, b: np.einsum("td,dhk->thk", x, k) + b, seed=1)
    assert nb09.check_masked_mse(masked_mse_loop, seed=0)


def test_masked_mse_by_hand():
    target = np.zeros((3, 2))
    predicted = np.array([[1.0, 1.0], [2.0, 0.0], [3.0, 3.0]])  # per-patch MSE 1, 2, 9
    assert masked_mse_loop(target, predicted, np.array([1, 1, 0])) == pytest.approx(1.5)
    assert nb09._masked_mse(target, predicted, np.array([1.0, 1.0, 0.0])) == pytest.approx(1.5)


@pytest.mark.parametrize("fn, name", [
    (lambda x, k, b: np.einsum("td,dhk->thk", x, k), "no_bias"),
    (lambda x, k, b: np.einsum("td,dhk->htk", x, k) + b[:, None, :], "heads_first"),
    (lambda x, k, b: (x @ k.transpose(0, 2, 1).reshape(len(k), -1)).reshape(len(x), *b.shape) + b,
     "wrong_reshape"),
])
def test_query_heads_mistakes_get_their_hint(fn, name):
    fb = nb09.check_query_heads(fn, seed=0)
    assert not fb.passed and fb.mistake == name, fb.message


@pytest.mark.parametrize("fn, name", [
    (lambda t, p, m: np.mean((p - t) ** 2), "all_patches"),
    (lambda t, p, m: masked_mse_loop(t, p, 1 - m), "visible"),
    (lambda t, p, m: float(np.sum(np.mean((p - t) ** 2, axis=1)[m == 1])), "sum"),
    (lambda t, p, m: float(np.sum(np.mean((p - t) ** 2, axis=1)[m == 1])) / len(m),
     "divided_by_all"),
])
def test_masked_mse_mistakes_get_their_hint(fn, name):
    fb = nb09.check_masked_mse(fn, seed=0)
    assert not fb.passed and fb.mistake == name, fb.message


def test_unrecognised_wrong_answer_reports_the_difference():
    fb = nb09.check_masked_mse(lambda t, p, m: 2 * masked_mse_loop(t, p, m), seed=0)
    assert not fb.passed and fb.mistake is None and "differ" in fb.message
