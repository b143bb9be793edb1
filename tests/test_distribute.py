"""vitlib.distribute and `python -m experiments.train --distribution` (notebook 12).

The layout, the mesh checks and the memory arithmetic are checked in this process. The real
training steps run in subprocesses, because the devices are fixed when JAX starts and the test
process may already hold JAX with one device: JAX with 8 virtual CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=8``) for ``keras.distribution``, and TensorFlow
with 2 logical CPU devices for ``tf.distribute.MirroredStrategy``. Each compares one training step
on several devices with the same step on one device, to ``distribute.TOLERANCE``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

import vitlib
from vitlib import distribute

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.single_backend  # the subprocesses choose their own backend
TINY = dict(image_size=16, patch_size=4, num_classes=10, dim=32, depth=2, num_heads=4, mlp_dim=64,
            channels=1)


def run_python(code: str, backend: str, devices: int = 8, timeout: int = 900) -> dict:
    """Run ``code`` in a fresh Python with ``backend`` and ``devices`` virtual (JAX) or logical
    (TensorFlow, set up by the code) CPU devices; returns the JSON its last output line prints."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2",
           "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}"}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the layout, in this process ------------------------------------------------------------------


def test_layout_splits_qkv_output_and_both_mlp_kernels_of_every_block():
    model = vitlib.ViT(**{**TINY, "depth": 3})
    model.build()
    paths = [v.path for v in model.weights]
    sharded = distribute.check_layout_covers(paths, depth=3)
    # 6 kernels and 4 biases (Q, K, V, fc1) per block, nothing outside the blocks.
    assert len(sharded) == 3 * 10 and all("/block_" in p for p in sharded)
    want = {"query_kernel": (None, "model", None), "query_bias": ("model", None),
            "key_kernel": (None, "model", None), "value_bias": ("model", None),
            "output_kernel": ("model", None, None), "output_bias": None,
            "fc1/kernel": (None, "model"), "fc1/bias": ("model",),
            "fc2/kernel": ("model", None), "fc2/bias": None, "norm1/gamma": None}
    for path in paths:
        for suffix, axes in want.items():
            if path.endswith(suffix):
                assert distribute.axes_for(path) == axes, path
    for path in ("vi_t/patch_embedding/conv/kernel", "vi_t/position_embedding/embedding",
                 "vi_t/class_token/token", "vi_t/head/kernel", "vi_t/norm/gamma"):
        assert distribute.axes_for(path) is None


def test_a_layout_that_misses_a_kernel_is_named():
    paths = [p for p in (v.path for v in vitlib.make_vit("fashion-tiny").weights)
             if not p.endswith("block_1/mlp/fc2/kernel")]
    with pytest.raises(ValueError, match=r"leaves 1 kernels replicated: \['block_1/mlp/fc2/kernel'\]"):
        distribute.check_layout_covers(paths)
    with pytest.raises(ValueError, match="expected block_0 .. block_2"):
        distribute.check_layout_covers(paths, depth=3)
    with pytest.raises(ValueError, match="no encoder block"):
        distribute.check_layout_covers(["dense/kernel"])


def test_keras_layout_map_holds_the_same_rules():
    devices = [f"cpu:{i}" for i in range(8)]
    mesh = keras.distribution.DeviceMesh((2, 4), distribute.MESH_AXES, devices)
    layouts = distribute.layout_map(mesh, num_heads=4, mlp_dim=64)
    for v in _tiny_weights():
        layout = layouts[v.path]  # Keras' own lookup: at most one rule may match
        assert (None if layout is None else tuple(layout.axes)) == distribute.axes_for(v.path)


def _tiny_weights():
    model = vitlib.ViT(**TINY)
    model.build()
    return model.weights


@pytest.mark.parametrize("text, shape", [("2x4", (2, 4)), ("1X8", (1, 8)), ("8x1", (8, 1))])
def test_parse_mesh(text, shape):
    assert distribute.parse_mesh(text) == shape


@pytest.mark.parametrize("text", ["2x", "2x4x1", "0x8", "two", "-2x-4"])
def test_parse_mesh_refuses_bad_text(text):
    with pytest.raises(ValueError, match="`mesh` must be BATCHxMODEL"):
        distribute.parse_mesh(text)


def test_mesh_errors_name_the_argument_and_what_fits():
    assert distribute.check_mesh((2, 4), 8, num_heads=4, mlp_dim=64) == (2, 4)
    with pytest.raises(ValueError, match=r"`mesh_shape`=2x4 needs 8 devices, but 6 are .*3x2"):
        distribute.check_mesh((2, 4), 6)
    with pytest.raises(ValueError, match=r"model axis \(8\) must divide `num_heads`=12.*\[1, 2, 4\]"):
        distribute.check_mesh((1, 8), 8, num_heads=12, mlp_dim=3072)
    with pytest.raises(ValueError, match=r"model axis \(4\) must divide `mlp_dim`=66"):
        distribute.check_mesh((2, 4), 8, num_heads=4, mlp_dim=66)
    assert distribute.default_mesh(8, 12, 3072) == (2, 4)
    assert distribute.default_mesh(8, 16, 4096) == (1, 8)
    assert distribute.default_mesh(8, 3, 768) == (8, 1)


def test_shard_shape_divides_and_refuses_uneven_splits():
    assert distribute.shard_shape((768, 12, 64), (None, "model", None), (2, 4)) == (768, 3, 64)
    assert distribute.shard_shape((768,), None, (2, 4)) == (768,)
    with pytest.raises(ValueError, match="cannot be split into 4 equal parts"):
        distribute.shard_shape((6, 3), ("model", None), (2, 4))


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="the refusal is for other backends")
def test_keras_distribution_refuses_other_backends_by_name():
    with pytest.raises(ValueError, match="data_parallel needs the JAX backend"):
        distribute.data_parallel()
    with pytest.raises(ValueError, match="model_parallel needs the JAX backend"):
        distribute.model_parallel(TINY, (2, 4))


# --- memory from shapes -----------------------------------------------------------------------------


@pytest.mark.parametrize("overrides", [
    {}, {"pooling": "mean"}, {"position": "sincos"}, {"position": "none", "patch_method": "dense"},
])
def test_weight_shapes_are_those_the_model_creates(overrides):
    config = {**TINY, **overrides}
    model = vitlib.ViT(**config)
    model.build()
    built = [(v.path.split("/", 1)[1], tuple(v.shape), v.trainable) for v in model.weights]
    assert distribute.vit_weight_shapes(config) == built


def test_weight_shapes_count_the_papers_models():
    for name, count in (("B/16", 86_567_656), ("L/16", 304_326_632), ("H/14", 632_045_800)):
        shapes = distribute.vit_weight_shapes(vitlib.vit_config(name))
        assert sum(int(np.prod(s)) for _, s, _ in shapes) == count


def test_memory_per_device_counts_parameters_gradients_and_two_moments():
    config = vitlib.vit_config("B/16")
    shapes = distribute.vit_weight_shapes(config)
    n = 86_567_656
    assert distribute.memory_per_device(shapes, "data") == {
        "parameters": 4 * n, "gradients": 4 * n, "optimizer": 8 * n, "total": 16 * n}
    # Independently: what the layout splits (6 kernels + Q/K/V/fc1 biases per block) by 4.
    d, m, depth = config["dim"], config["mlp_dim"], config["depth"]
    split = depth * (4 * d * d + 2 * d * m + 3 * d + m)
    assert distribute.memory_per_device(shapes, "model", (2, 4))["parameters"] == \
        4 * (n - split + split // 4)
    # A non-trainable table (sin-cos) has no gradient and no optimizer state.
    sincos = distribute.vit_weight_shapes({**config, "position": "sincos"})
    table = 197 * 768
    got = distribute.memory_per_device(sincos, "data")
    assert got["parameters"] == 4 * n and got["gradients"] == 4 * (n - table)
    assert got["optimizer"] == 8 * (n - table)


# --- the real steps, in subprocesses ------------------------------------------------------------------

EQUIVALENCE = """
import json
import keras
import numpy as np
import vitlib
from vitlib import distribute as D

config = {config}
rng = np.random.default_rng(0)
x = rng.random((16, 16, 16, 1), dtype=np.float32)
y = keras.utils.to_categorical(rng.integers(0, 10, 16), 10)
keras.utils.set_random_seed(0)
start = vitlib.ViT(**config)
start.build()
w0 = start.get_weights()
one = D.train_step(config, w0, x, y)
data = D.train_step(config, w0, x, y, D.data_parallel())
mp = D.model_parallel(config, (2, 4))
model = D.train_step(config, w0, x, y, mp)
m = model[2]
# The gradients themselves, read from one SGD step (AdamW's first step hides their size).
g_one = D.sgd_gradients(config, w0, x, y)
g_data = D.sgd_gradients(config, w0, x, y, D.data_parallel())
g_model = D.sgd_gradients(config, w0, x, y, mp)
specs = {{v.path.split("/", 1)[1]: [a for a in v.value.sharding.spec] for v in m.weights}}
print(json.dumps({{
    "devices": len(keras.distribution.list_devices()),
    "data": D.step_difference(one, data), "model": D.step_difference(one, model),
    "update": D.largest_update(w0, one[1]),
    "gradients": {{"data": D.gradient_difference(g_one, g_data),
                   "model": D.gradient_difference(g_one, g_model),
                   "largest": max(float(np.max(np.abs(g))) for g in g_one)}},
    "specs": specs,
    "data_shards": [list(s.data.shape) for s in keras.distribution.distribute_tensor(
        x, mp.get_data_layout(x.shape)).addressable_shards],
    "collectives": D.forward_collectives(m, x, mp),
    "bytes_weights": D.bytes_on_device(m.weights),
    "bytes_optimizer": D.bytes_on_device(m.optimizer.variables),
    "expected": D.memory_per_device(D.vit_weight_shapes(config), "model", (2, 4)),
}}))
"""


@pytest.fixture(scope="module")
def jax_steps():
    return run_python(EQUIVALENCE.format(config=repr(TINY)), "jax")


def test_one_step_on_8_devices_equals_one_step_on_one_device(jax_steps):
    r = jax_steps
    assert r["devices"] == 8
    assert r["update"] > 5e-4, "the step moved the weights (by about the learning rate)"
    for kind in ("data", "model"):
        assert r[kind]["loss"] <= distribute.TOLERANCE["loss"], (kind, r[kind])
        assert r[kind]["weights"] <= distribute.TOLERANCE["weights"], (kind, r[kind])


def test_the_gradients_are_averaged_over_the_devices_not_summed(jax_steps):
    # One AdamW step moves each weight by about lr * sign(g) whatever the gradient's size, so the
    # weight check above cannot tell an average from a sum. One SGD step (learning rate 1) applies
    # the gradient itself: a sum over 8 devices would be 8 times the one-device gradient, a
    # relative difference of 7, far above the tolerance.
    r = jax_steps["gradients"]
    assert r["largest"] > 1e-3, "the gradients are not all (close to) zero"
    for kind in ("data", "model"):
        assert r[kind] <= distribute.TOLERANCE["gradients"], (kind, r)


def test_gradient_difference_sees_a_sum_instead_of_a_mean():
    g = [np.array([[0.5, -0.25], [0.125, 0.0]]), np.array([-1.0, 2.0])]
    assert distribute.gradient_difference(g, g) == 0.0
    assert distribute.gradient_difference(g, [8 * a for a in g]) == 7.0
    assert distribute.gradient_difference(g, [8 * a for a in g]) > distribute.TOLERANCE["gradients"]
    with pytest.raises(ValueError, match="2 and 1 gradients"):
        distribute.gradient_difference(g, g[:1])


def test_replica_groups_are_read_in_both_spellings():
    read = distribute._replica_groups
    assert read("channel_id=1, replica_groups=[2,4]<=[8], use_global_device_ids=true") == \
        [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert read("replica_groups=[4,2]<=[2,4]T(1,0), to_apply") == [[0, 4], [1, 5], [2, 6], [3, 7]]
    assert read("replica_groups={{0,2},{1,3}}, to_apply") == [[0, 2], [1, 3]]
    assert read("to_apply=%add") is None


def test_every_weight_is_placed_as_the_layout_says(jax_steps):
    for path, spec in jax_steps["specs"].items():
        axes = distribute.axes_for("m/" + path)
        assert spec == (list(axes) if axes else [None] * len(spec)), path
    # The batch of 16 is split over the batch axis (2), each half copied to 4 model devices.
    assert jax_steps["data_shards"] == [[8, 16, 16, 1]] * 8


def test_one_all_reduce_per_sublayer_in_the_forward_pass(jax_steps):
    found = jax_steps["collectives"]
    assert [c["kind"] for c in found] == ["all-reduce"] * 2 * TINY["depth"]
    where = [c["op"].split("/")[:2] for c in found]
    assert where == [[f"block_{i}", part] for i in range(TINY["depth"]) for part in ("attention", "mlp")]
    assert all(c["shape"] == [8, 17, 32] for c in found)  # (batch / 2, tokens, dim): partial sums
    # Only the 4 devices of a model axis (one row of the 2x4 mesh, one half of the batch) add up
    # their partial sums: two groups, not all 8 devices.
    rows = [[f"cpu:{i}" for i in range(4)], [f"cpu:{i}" for i in range(4, 8)]]
    assert all(c["groups"] == rows for c in found), found[0]["groups"]


def test_bytes_on_a_device_are_what_the_shapes_say(jax_steps):
    expected = jax_steps["expected"]
    assert jax_steps["bytes_weights"] == expected["parameters"]
    # AdamW's two moments, sharded like their weights, plus its step counter and learning rate.
    assert jax_steps["bytes_optimizer"] == expected["optimizer"] + 2 * 4


MIRRORED = """
import json
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
import vitlib
from vitlib import distribute as D

config = {config}
rng = np.random.default_rng(0)
x = rng.random((16, 16, 16, 1), dtype=np.float32)
y = keras.utils.to_categorical(rng.integers(0, 10, 16), 10)
keras.utils.set_random_seed(0)
start = vitlib.ViT(**config)
start.build()
w0 = start.get_weights()
one = D.train_step(config, w0, x, y)
strategy = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
mirrored = D.mirrored_train_step(config, w0, x, y, strategy)
split = strategy.experimental_distribute_dataset(tf.data.Dataset.from_tensor_slices((x, y)).batch(16))
print(json.dumps({{"replicas": strategy.num_replicas_in_sync,
                  "per_replica": [list(v.shape) for v in next(iter(split))[0].values],
                  "mirrored": D.step_difference(one, mirrored),
                  "update": D.largest_update(w0, one[1])}}))
"""


def test_tensorflow_mirrored_strategy_step_equals_one_device():
    r = run_python(MIRRORED.format(config=repr(TINY)), "tensorflow")
    assert r["replicas"] == 2 and r["per_replica"] == [[8, 16, 16, 1]] * 2
    assert r["update"] > 5e-4
    assert r["mirrored"]["loss"] <= distribute.TOLERANCE["loss"], r
    assert r["mirrored"]["weights"] <= distribute.TOLERANCE["weights"], r


# --- the training command ----------------------------------------------------------------------------

COMMAND = """
import contextlib, io, json
import keras
import vitlib
from experiments import train
from vitlib.train import to_inputs
from vitlib.data import load_fashion_mnist

out = {out!r}
common = ["--model", "fashion-tiny", "--epochs", "1", "--limit", "130", "--val-images", "0"]
train.main(common + ["--distribution", "model", "--mesh", "4x2", "--out", out])
record = json.load(open(out.replace(".keras", ".json")))
model = keras.saving.load_model(out)
d = load_fashion_mnist()
rescored = train.score(model, to_inputs(d.x_test), d.y_test)
errors = {{}}
for name, argv in {{"mesh_heads": ["--distribution", "model", "--mesh", "2x4"],
                    "mesh_devices": ["--distribution", "model", "--mesh", "2x2"],
                    "mesh_without_model": ["--distribution", "data", "--mesh", "8x1"],
                    "batch": ["--distribution", "data", "--recipe", "batch_size=60"]}}.items():
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            train.main(common + argv)
        except SystemExit as e:
            errors[name] = [e.code, err.getvalue().strip().splitlines()[-1]]
calls = []
initialize = keras.distribution.initialize
keras.distribution.initialize = lambda *args, **kwargs: calls.append(args)
distribution = train.make_distribution("data", None, vitlib.vit_config("fashion-tiny"), train.RECIPE,
                                       multi_host=True)
keras.distribution.initialize = initialize
_, data_record = train.run("fashion-tiny", epochs=1, limit=128, verbose=0, distribution=distribution)
print(json.dumps({{"record": {{k: record[k] for k in ("distribution", "train_images", "test_accuracy",
                                                  "command")}},
                  "rescored": round(rescored, 4), "errors": errors,
                  "data": data_record["distribution"], "data_images": data_record["train_images"],
                  "initialize_calls": len(calls)}}))
"""


def test_train_command_trains_sharded_on_virtual_devices(tmp_path):
    r = run_python(COMMAND.format(out=str(tmp_path / "vit.keras")), "jax")
    record = r["record"]
    assert record["distribution"]["kind"] == "model" and record["distribution"]["mesh"] == [4, 2]
    assert record["distribution"]["axes"] == ["batch", "model"]
    assert record["train_images"] == 128, "130 images cut to a multiple of the batch axis (4)"
    assert "--distribution model --mesh 4x2" in record["command"]
    assert r["rescored"] == record["test_accuracy"], "the shipped model scores what its record says"
    assert r["data"] == {**r["data"], "kind": "data", "mesh": [8], "devices": 8}
    assert r["data_images"] == 128
    assert r["initialize_calls"] == 1, "--multi-host starts keras.distribution.initialize() first"
    errors = r["errors"]
    assert errors["mesh_heads"][0] == 2 and "must divide `num_heads`=2" in errors["mesh_heads"][1]
    assert "needs 4 devices, but 8 are available" in errors["mesh_devices"][1]
    assert "--mesh is for --distribution model" in errors["mesh_without_model"][1]
    assert "batch_size=60 must be a multiple of the batch axis (8 devices)" in errors["batch"][1]


@pytest.mark.skipif(keras.backend.backend() == "jax", reason="the refusal is for other backends")
def test_train_command_refuses_distribution_without_jax_before_any_work(capsys):
    from experiments import train

    with pytest.raises(SystemExit):
        train.main(["--distribution", "data"])
    assert "--distribution data needs the JAX backend: run with KERAS_BACKEND=jax" in \
        capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main(["--mesh", "2x4"])
    assert "--mesh needs --distribution model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        train.main(["--multi-host"])
    assert "--multi-host needs --distribution data or model" in capsys.readouterr().err
