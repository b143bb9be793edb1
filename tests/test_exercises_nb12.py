"""Checkers of notebook 12: the solution passes, each usual mistake gets its own hint, None is
"not answered yet". The references here are written independently of the checkers."""

from __future__ import annotations

import numpy as np
import pytest

import vitlib
from vitlib import distribute
from vitlib.exercises import nb12

pytestmark = pytest.mark.single_backend


# --- Exercise 1: numbers on one device ---------------------------------------------------------------

def _count_on_one_device(split_biases=True, axis=2, split=True):
    """Independent: build the tiny ViT and divide what a device holds, weight by weight (the
    exercise's 4x2 mesh: model axis 2)."""
    model = vitlib.ViT(**nb12.TINY)
    model.build()
    total = 0
    for v in model.weights:
        n = int(np.prod(v.shape))
        name = v.path.split("/", 2)[-1] if "block_" in v.path else ""
        kernel = name.endswith(("query_kernel", "key_kernel", "value_kernel", "output_kernel",
                                "fc1/kernel", "fc2/kernel"))
        bias = name.endswith(("query_bias", "key_bias", "value_bias", "fc1/bias"))
        total += n // axis if split and (kernel or (bias and split_biases)) else n
    return total


def test_per_device_solution_passes_and_equals_the_layouts_count():
    right = _count_on_one_device()
    assert right == 10_250 == nb12.per_device_numbers()
    fb = nb12.check_per_device_prediction(right)
    assert fb.passed, fb.message
    assert "10,250" in fb.message


def test_the_answer_is_not_the_notebooks_printed_2x4_count():
    # Step 3 prints the bytes of the 2x4 mesh (24,296 = 4 x 6,074); the exercise asks about 4x2.
    assert _count_on_one_device(axis=4) == 6_074 == nb12.per_device_numbers(mesh_shape=(2, 4))
    assert nb12.check_per_device_prediction(6_074).mistake == "axes_swapped"


@pytest.mark.parametrize("prediction, name", [
    (_count_on_one_device(split=False), "replicated"),
    (18_602 // 2, "all_split"),
    (_count_on_one_device(axis=8), "eight_devices"),
    (_count_on_one_device(axis=4), "axes_swapped"),
    (_count_on_one_device(split_biases=False), "kernels_only"),
])
def test_per_device_mistakes_get_their_hint(prediction, name):
    fb = nb12.check_per_device_prediction(prediction)
    assert not fb.passed and fb.mistake == name, fb.message


def test_per_device_unanswered_and_unknown():
    assert "not answered yet" in nb12.check_per_device_prediction(None).message
    fb = nb12.check_per_device_prediction(10_000)
    assert not fb.passed and fb.mistake is None
    assert nb12.check_per_device_prediction("10250").mistake == "not_a_number"


# --- Exercise 2: attention split by heads --------------------------------------------------------------

def _softmax(s):
    e = np.exp(s - s.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def solution(x, w, devices, bias=False, strided=False, scale=True):
    heads, head_dim = w["query_kernel"].shape[1:]
    per = heads // devices
    out = []
    for d in range(devices):
        mine = list(range(d, heads, devices)) if strided else list(range(d * per, (d + 1) * per))
        part = 0
        for h in mine:  # one head at a time, plain matrices
            q, k, v = (x @ w[f"{n}_kernel"][:, h] + w[f"{n}_bias"][h] for n in ("query", "key", "value"))
            a = _softmax(q @ np.swapaxes(k, -1, -2) / (np.sqrt(head_dim) if scale else 1.0))
            part = part + (a @ v) @ w["output_kernel"][h]
        out.append(part + w["output_bias"] if bias else part)
    return out


def _full_attention(x, w):
    """The layer itself: vitlib.MultiHeadSelfAttention with these weights."""
    heads = w["query_kernel"].shape[1]
    layer = vitlib.MultiHeadSelfAttention(heads)
    layer.build(x.shape)
    layer.set_weights([w[k].astype("float32") for k in (
        "query_kernel", "query_bias", "key_kernel", "key_bias", "value_kernel", "value_bias",
        "output_kernel", "output_bias")])
    return np.asarray(layer(x.astype("float32")))


def test_partials_add_up_to_the_layer():
    x, w, devices = nb12._attention_case(np.random.default_rng(0), heads=4, devices=2)
    total = sum(solution(x, w, devices)) + w["output_bias"]
    np.testing.assert_allclose(total, _full_attention(x, w), atol=1e-4)


def test_attention_solution_passes_as_a_list_or_a_stacked_array():
    assert nb12.check_attention_partials(solution, seed=0).passed
    fb = nb12.check_attention_partials(lambda x, w, d: np.stack(solution(x, w, d)), seed=0)
    assert fb.passed, fb.message


def _split_features(x, w, devices):
    heads, head_dim = w["query_kernel"].shape[1:]
    per = head_dim // devices
    out = []
    for d in range(devices):
        f = slice(d * per, (d + 1) * per)
        part = 0
        for h in range(heads):
            q, k, v = (x @ w[f"{n}_kernel"][:, h, f] + w[f"{n}_bias"][h, f]
                       for n in ("query", "key", "value"))
            a = _softmax(q @ np.swapaxes(k, -1, -2) / np.sqrt(per))
            part = part + (a @ v) @ w["output_kernel"][h, f]
        out.append(part)
    return out


def _softmax_over_queries(x, w, devices):
    heads, head_dim = w["query_kernel"].shape[1:]
    per = heads // devices
    out = []
    for d in range(devices):
        part = 0
        for h in range(d * per, (d + 1) * per):
            q, k, v = (x @ w[f"{n}_kernel"][:, h] + w[f"{n}_bias"][h] for n in ("query", "key", "value"))
            s = q @ np.swapaxes(k, -1, -2) / np.sqrt(head_dim)
            e = np.exp(s - s.max(-2, keepdims=True))
            part = part + ((e / e.sum(-2, keepdims=True)) @ v) @ w["output_kernel"][h]
        out.append(part)
    return out


def _divided(x, w, devices):
    whole = sum(solution(x, w, 1))
    return [whole / devices] * devices


@pytest.mark.parametrize("fn, name", [
    (lambda x, w, d: solution(x, w, d, bias=True), "bias_in_every_partial"),
    (lambda x, w, d: solution(x, w, d, strided=True), "strided_heads"),
    (_split_features, "split_features"),
    (lambda x, w, d: solution(x, w, d, scale=False), "no_scale"),
    (_softmax_over_queries, "softmax_over_queries"),
    (_divided, "whole_output_divided"),
])
def test_attention_mistakes_get_their_hint(fn, name):
    fb = nb12.check_attention_partials(fn, seed=0)
    assert not fb.passed and fb.mistake == name, fb.message
    hint = next(m.hint for m in nb12.ATTENTION_MISTAKES if m.name == name)
    assert hint in fb.message


def test_copying_the_mlp_version_or_a_stub_is_reported():
    def mlp_style(x, w, devices):  # the notebook's MLP code pasted: no such weights here
        return [x @ w["fc1_kernel"] for _ in range(devices)]

    fb = nb12.check_attention_partials(mlp_style, seed=0)
    assert not fb.passed and "KeyError" in fb.message

    def stub(x, w, devices):
        raise NotImplementedError

    assert "not written yet" in nb12.check_attention_partials(stub, seed=0).message
    assert "returned None" in nb12.check_attention_partials(lambda x, w, d: None, seed=0).message
    fb = nb12.check_attention_partials(lambda x, w, d: solution(x, w, d)[:1], seed=0)
    assert not fb.passed and fb.mistake is None


# --- Exercise 3: what the memory table says --------------------------------------------------------------

def test_memory_answer_right_and_each_wrong_choice_explained():
    assert nb12.check_memory_answer("b").passed
    assert nb12.check_memory_answer(" B ").passed
    for letter in "acd":
        fb = nb12.check_memory_answer(letter)
        assert not fb.passed and fb.mistake == letter and nb12.MEMORY_OPTIONS[letter] in fb.message
    assert "not answered yet" in nb12.check_memory_answer(None).message
    assert nb12.check_memory_answer("e").mistake == "not_an_option"


def test_the_numbers_the_explanations_quote_are_the_tables():
    shapes = distribute.vit_weight_shapes(vitlib.vit_config("H/14"))
    gb = {mesh: f"{distribute.memory_per_device(shapes, kind, mesh)['total'] / 1e9:.2f}"
          for kind, mesh in (("data", (1, 1)), ("model", (2, 4)), ("model", (1, 8)))}
    text = " ".join(nb12.MEMORY_OPTIONS.values()) + nb12.MEMORY_WHY
    assert gb == {(1, 1): "10.11", (2, 4): "2.56", (1, 8): "1.30"}
    for value in gb.values():
        assert f"{value} GB" in text
    assert "activations" in nb12.MEMORY_WHY and "not count" in nb12.MEMORY_WHY
