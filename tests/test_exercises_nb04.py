"""Checkers of notebook 04: the solution passes, each usual mistake gets its own hint."""

from __future__ import annotations

import numpy as np
import pytest

import vitlib
from vitlib.exercises import nb04

pytestmark = pytest.mark.single_backend


# Learner-style answers, written independently of the checker's references.
def sincos_good(positions, dim):
    pos = np.asarray(positions, dtype=float)[:, None]
    omega = 10000.0 ** (-np.arange(dim // 2) / (dim // 2))
    return np.hstack([np.sin(pos * omega), np.cos(pos * omega)])


def sincos_swapped(positions, dim):
    return np.roll(sincos_good(positions, dim), dim // 2, axis=1)


def sincos_over_dim(positions, dim):
    pos = np.asarray(positions, dtype=float)[:, None]
    omega = 10000.0 ** (-np.arange(dim // 2) / dim)
    return np.hstack([np.sin(pos * omega), np.cos(pos * omega)])


def sincos_interleaved(positions, dim):
    half = sincos_good(positions, dim)
    s, c = half[:, : dim // 2], half[:, dim // 2:]
    return np.stack([s, c], axis=-1).reshape(len(positions), dim)


def cosine_good(e):
    n = np.sqrt((e**2).sum(-1))
    return (e @ e.T) / np.outer(n, n)


def cosine_dot(e):
    return e @ e.T


def cosine_columns(e):
    e = e / np.sqrt((e**2).sum(0))
    return e @ e.T


def test_sincos_solution_and_vitlib_pass():
    assert nb04.check_sincos_1d(sincos_good, seed=0)
    fb = nb04.check_sincos_1d(vitlib.sincos_1d, seed=1)
    assert fb.passed and fb.message.startswith("✅")


@pytest.mark.parametrize("fn, name", [
    (sincos_swapped, "sin_cos_swapped"),
    (sincos_over_dim, "exponent_over_dim"),
    (sincos_interleaved, "interleaved"),
])
def test_sincos_mistakes_get_their_hint(fn, name):
    fb = nb04.check_sincos_1d(fn, seed=0)
    assert not fb.passed
    assert fb.mistake == name
    hint = next(m.hint for m in nb04.SINCOS_MISTAKES if m.name == name)
    assert hint in fb.message


def test_cosine_solution_passes():
    assert nb04.check_cosine_similarity_map(cosine_good, seed=0)


@pytest.mark.parametrize("fn, name", [
    (cosine_dot, "no_normalisation"),
    (cosine_columns, "normalised_wrong_axis"),
    (lambda e: (e @ e.T) / np.linalg.norm(e, axis=1)[:, None], "normalised_once"),
])
def test_cosine_mistakes_get_their_hint(fn, name):
    fb = nb04.check_cosine_similarity_map(fn, seed=0)
    assert not fb.passed and fb.mistake == name


def test_none_raise_stub_and_unknown_error_are_reported():
    fb = nb04.check_sincos_1d(lambda p, d: None, seed=0)
    assert not fb.passed and "returned None" in fb.message
    fb = nb04.check_cosine_similarity_map(lambda e: 1 / 0, seed=0)
    assert not fb.passed and "ZeroDivisionError" in fb.message

    def stub(p, d):
        raise NotImplementedError("Exercise")

    fb = nb04.check_sincos_1d(stub, seed=0)
    assert not fb.passed and "not written yet" in fb.message
    fb = nb04.check_sincos_1d(lambda p, d: sincos_good(p, d) + 0.1, seed=0)
    assert not fb.passed and fb.mistake is None and "values differ" in fb.message
    fb = nb04.check_cosine_similarity_map(lambda e: cosine_good(e)[:, :1], seed=0)
    assert not fb.passed and "wrong shape" in fb.message


# sincos_2d (the notebook's transfer exercise), learner-style answers built from vitlib.sincos_1d.
def sincos_2d_good(rows, cols, dim):
    pos = [(r, c) for r in range(rows) for c in range(cols)]  # row by row
    r = np.array([p[0] for p in pos])
    c = np.array([p[1] for p in pos])
    return np.hstack([vitlib.sincos_1d(r, dim // 2), vitlib.sincos_1d(c, dim // 2)])


def sincos_2d_variant(order="rc", halves=True, row_major=True, line=False, summed=False):
    def fn(rows, cols, dim):
        if line:
            return vitlib.sincos_1d(np.arange(rows * cols), dim)
        if row_major:
            pos = [(r, c) for r in range(rows) for c in range(cols)]
        else:
            pos = [(r, c) for c in range(cols) for r in range(rows)]
        r = np.array([p[0] for p in pos])
        c = np.array([p[1] for p in pos])
        if summed:
            return vitlib.sincos_1d(r, dim) + vitlib.sincos_1d(c, dim)
        width = dim // 2 if halves else dim
        a, b = (r, c) if order == "rc" else (c, r)
        return np.hstack([vitlib.sincos_1d(a, width), vitlib.sincos_1d(b, width)])
    return fn


def test_sincos_2d_solution_and_vitlib_pass():
    assert nb04.check_sincos_2d(sincos_2d_good, seed=0)
    assert nb04.check_sincos_2d(lambda r, c, d: vitlib.sincos_2d((r, c), d), seed=1)


@pytest.mark.parametrize("fn, name", [
    (sincos_2d_variant(line=True), "as_a_line"),
    (sincos_2d_variant(row_major=False), "column_major"),
    (sincos_2d_variant(order="cr"), "rows_cols_swapped"),
    (sincos_2d_variant(summed=True), "summed"),
    (sincos_2d_variant(halves=False), "full_dim_each"),
])
def test_sincos_2d_mistakes_get_their_hint(fn, name):
    fb = nb04.check_sincos_2d(fn, seed=0)
    assert not fb.passed and fb.mistake == name, fb.message
    hint = next(m.hint for m in nb04.SINCOS_2D_MISTAKES if m.name == name)
    assert hint in fb.message
