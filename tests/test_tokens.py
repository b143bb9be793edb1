"""vitlib.tokens: the pixel model is causal and its bits per dimension add up; the masked-token
model sees both sides; k-means, clips and baselines against hand computations."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
from keras import ops

from vitlib import tokens

LEVELS, SIDE = 4, 3  # a 3x3 "image" of 4 grey levels: 9 tokens


def small_pixel_model(seed=0, **kwargs):
    keras.utils.set_random_seed(seed)
    model = tokens.PixelTransformer(levels=LEVELS, tokens=SIDE * SIDE, dim=16, depth=2,
                                    num_heads=2, mlp_dim=32, **kwargs)
    model.build()
    # larger random weights than the initialisation, so that every dependence shows
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    return model


def logits(model, x):
    """The model's logits through its compiled call (tokens.forward), which equals a plain call
    (test_a_prefix_gives_the_same_predictions_and_forward_equals_call): fast on both backends."""
    return tokens.forward(model)(np.asarray(x))


# --- pixels as tokens ---------------------------------------------------------------------------

def test_downsample_and_quantise_against_loops():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 6, 8)).astype(np.uint8)
    small = tokens.downsample(images, 2)
    assert small.shape == (3, 3, 4)
    for n in range(3):
        for r in range(3):
            for c in range(4):
                block = images[n, 2 * r:2 * r + 2, 2 * c:2 * c + 2].astype(float) / 255
                assert small[n, r, c] == pytest.approx(block.mean())
    levels = tokens.quantise(small, 4)
    for value, level in zip(small.ravel(), levels.ravel(), strict=True):
        want = 3 if value >= 0.75 else 2 if value >= 0.5 else 1 if value >= 0.25 else 0
        assert level == want
    assert tokens.quantise(np.array([0.0, 0.2499, 0.25, 1.0]), 4).tolist() == [0, 0, 1, 3]
    assert tokens.dequantise(np.array([0, 3]), 4).tolist() == [0.125, 0.875]


def test_pixel_helpers_refuse_bad_input():
    with pytest.raises(ValueError, match="factor"):
        tokens.downsample(np.zeros((1, 5, 5), np.uint8), 2)
    with pytest.raises(ValueError, match="levels"):
        tokens.quantise(np.zeros((1, 2)), 1)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        tokens.quantise(np.full((1, 2), 3.0), 4)


# --- the causal pixel model -----------------------------------------------------------------

def test_prediction_for_pixel_i_ignores_pixels_from_i_on():
    """The independent check of the causal mask in the whole model: change pixels >= i and the
    logits for pixels 0..i stay; change a pixel < i and the logits for pixel i move."""
    model = small_pixel_model()
    rng = np.random.default_rng(1)
    x = rng.integers(0, LEVELS, (2, SIDE * SIDE))
    base = logits(model, x)
    for i in (0, 4, 8):
        y = x.copy()
        y[:, i:] = rng.integers(0, LEVELS, y[:, i:].shape)
        y[:, i] = (x[:, i] + 1) % LEVELS  # pixel i itself surely changes
        np.testing.assert_allclose(logits(model, y)[:, :i + 1], base[:, :i + 1], atol=1e-5)
    for i in (1, 5, 8):
        y = x.copy()
        y[:, i - 1] = (x[:, i - 1] + 2) % LEVELS
        assert np.abs(logits(model, y)[:, i] - base[:, i]).max() > 1e-4


def test_a_prefix_gives_the_same_predictions_and_forward_equals_call():
    model = small_pixel_model(seed=2)
    x = np.random.default_rng(3).integers(0, LEVELS, (3, SIDE * SIDE))
    full = logits(model, x)
    for k in (1, 5, 9):
        np.testing.assert_allclose(logits(model, x[:, :k]), full[:, :k], atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(model(x)), full, atol=1e-5)  # a plain call
    assert tokens.forward(model) is tokens.forward(model)  # kept on the model


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="a TensorFlow graph")
def test_a_length_unknown_while_tracing():
    """The masked-token model takes any length in a graph; the pixel model needs its causal mask's
    size, and says so instead of failing inside the attention layer."""
    import tensorflow as tf

    spec = [tf.TensorSpec((None, None), tf.int32)]
    words = small_word_model(seed=8)
    x = np.array([[1, 6, 2], [0, 3, 6]], np.int32)
    graph = tf.function(lambda z: words(z), input_signature=spec)
    np.testing.assert_allclose(graph(x).numpy(), ops.convert_to_numpy(words(x)), atol=1e-5)
    model = small_pixel_model(seed=8)
    with pytest.raises(ValueError, match="known length"):
        tf.function(lambda z: model(z), input_signature=spec).get_concrete_function()
    fixed = tf.function(lambda z: model(z), input_signature=[tf.TensorSpec((None, 9), tf.int32)])
    p = np.random.default_rng(0).integers(0, LEVELS, (2, 9)).astype(np.int32)
    np.testing.assert_allclose(fixed(p).numpy(), ops.convert_to_numpy(model(p)), atol=1e-5)


def test_bits_per_dim_two_ways_agree():
    """(1) teacher forcing, NumPy log-softmax; (2) Keras' cross-entropy / ln 2; (3) the chain rule
    one pixel at a time, as sampling computes it: pixels 0..i-1 given, every later one zero, and
    a softmax written out here."""
    model = small_pixel_model(seed=4)
    x = np.random.default_rng(5).integers(0, LEVELS, (5, SIDE * SIDE))
    one = tokens.bits_per_dim(model, x, batch_size=2)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    two = float(ops.convert_to_numpy(loss(x, model(x)))) / math.log(2)
    total = 0.0
    for i in range(SIDE * SIDE):
        known = np.where(np.arange(SIDE * SIDE) < i, x, 0)  # pixel i and later: not drawn yet
        z = logits(model, known)[:, i].astype(np.float64)
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        total += -np.log2(p[np.arange(len(x)), x[:, i]]).sum()
    three = total / x.size
    assert one == pytest.approx(two, abs=1e-5)
    assert one == pytest.approx(three, abs=1e-5)
    assert tokens.pixel_log_likelihoods(model, x).shape == x.shape


def test_log2_probabilities_by_hand():
    z = np.array([[[0.0, 1.0, 2.0], [3.0, 3.0, 3.0]]])
    got = tokens.log2_probabilities(z, np.array([[2, 0]]))
    want = [math.log2(math.exp(2) / (1 + math.e + math.exp(2))), math.log2(1 / 3)]
    np.testing.assert_allclose(got[0], want, atol=1e-12)
    with pytest.raises(ValueError, match="agree"):
        tokens.log2_probabilities(z, np.array([[2, 0, 1]]))


def test_marginal_baselines_against_counting_by_hand():
    train = np.array([[0, 1, 3], [0, 1, 1], [2, 1, 3], [0, 0, 3]])
    test = np.array([[0, 1, 2], [2, 0, 3]])
    bits = []
    for row in test:
        for j, v in enumerate(row):
            count = sum(r[j] == v for r in train)
            bits.append(-math.log2((count + 1) / (len(train) + 4)))
    assert tokens.marginal_bits_per_dim(train, test, 4) == pytest.approx(np.mean(bits))
    overall = np.bincount(train.ravel(), minlength=4)
    want = np.mean([-math.log2((overall[v] + 1) / (train.size + 4)) for v in test.ravel()])
    assert tokens.marginal_bits_per_dim(train, test, 4, per_pixel=False) == pytest.approx(want)
    # smoothing only (no training image has these levels): every level 1/4, 2 bits
    assert tokens.marginal_bits_per_dim(np.zeros((0, 3), int), test, 4) == pytest.approx(2.0)


def test_sampling_is_seeded_keeps_a_prefix_and_follows_the_model():
    model = small_pixel_model(seed=6)
    a, b = tokens.sample(model, 3, seed=0), tokens.sample(model, 3, seed=0)
    assert a.shape == (3, SIDE * SIDE) and np.array_equal(a, b)
    assert a.min() >= 0 and a.max() < LEVELS
    prefix = np.array([[1, 2, 3], [0, 0, 0], [3, 3, 3]])
    c = tokens.sample(model, 3, seed=1, prefix=prefix)
    assert np.array_equal(c[:, :3], prefix)
    # a head that strongly prefers level 2 everywhere: every sampled pixel is 2
    kernel, bias = model.head.get_weights()
    model.head.set_weights([np.zeros_like(kernel), np.array([0, 0, 30, 0], "float32")])
    assert (tokens.sample(model, 2, seed=0) == 2).all()
    model.head.set_weights([kernel, bias])


def test_pixel_model_refuses_bad_input_and_arguments():
    model = small_pixel_model()
    with pytest.raises(ValueError, match="levels 0..3"):
        model(np.full((1, 4), 4))
    with pytest.raises(ValueError, match="1..9"):
        model(np.zeros((1, 10), int))
    with pytest.raises(ValueError, match="integer"):
        model(np.zeros((1, 4), np.float32))
    with pytest.raises(ValueError, match="num_heads"):
        tokens.PixelTransformer(dim=10, num_heads=4)
    with pytest.raises(ValueError, match="levels"):
        tokens.PixelTransformer(levels=1)


def test_pixel_model_saves_and_loads(tmp_path):
    model = small_pixel_model(seed=7)
    x = np.random.default_rng(0).integers(0, LEVELS, (2, SIDE * SIDE))
    path = tmp_path / "pixels.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, tokens.PixelTransformer) and loaded.get_config() == model.get_config()
    np.testing.assert_allclose(logits(loaded, x), logits(model, x), atol=1e-6)


# --- visual words ---------------------------------------------------------------------------

def test_kmeans_finds_separated_blobs_and_assign_is_the_nearest_centroid():
    rng = np.random.default_rng(0)
    centres = np.array([[0, 0], [10, 0], [0, 10], [10, 10]], float)
    truth = rng.integers(0, 4, 400)
    x = centres[truth] + rng.normal(0, 0.5, (400, 2))
    c, words, inertia = tokens.kmeans(x, 4, seed=0)
    # every true blob maps to one word, and the words are all different
    mapping = {t: set(words[truth == t]) for t in range(4)}
    assert all(len(v) == 1 for v in mapping.values())
    assert len({next(iter(v)) for v in mapping.values()}) == 4
    brute = np.array([np.argmin([np.sum((p - q) ** 2) for q in c]) for p in x])
    assert np.array_equal(words, brute) and np.array_equal(tokens.assign(x, c), brute)
    assert inertia == pytest.approx(sum(np.sum((p - c[w]) ** 2) for p, w in zip(x, words, strict=True)))
    again = tokens.kmeans(x, 4, seed=0)
    assert np.array_equal(again[0], c)
    with pytest.raises(ValueError, match="k"):
        tokens.kmeans(x[:3], 4)


def test_word_images_are_the_mean_frames_of_each_word():
    frames = np.arange(5 * 2 * 2, dtype=float).reshape(5, 2, 2)
    words = np.array([0, 2, 0, 2, 2])
    img = tokens.word_images(frames, words, 3)
    np.testing.assert_allclose(img[0], (frames[0] + frames[2]) / 2)
    np.testing.assert_allclose(img[1], 0)
    np.testing.assert_allclose(img[2], (frames[1] + frames[3] + frames[4]) / 3)


def test_clips_move_one_whole_item_in_a_straight_line():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (20, 28, 28)).astype(np.uint8)  # no black pixel: the item shows
    clips = tokens.make_clips(images, 30, frames=8, size=28, factor=2, max_speed=2, seed=3)
    assert clips.x.shape == (30, 8, 28, 28)
    small = tokens.downsample(images, 2)
    for c in range(30):
        p, v = clips.positions[c], clips.velocity[c]
        assert np.array_equal(p, p[0] + v * np.arange(8)[:, None])
        assert p.min() >= 0 and p.max() <= 14
        for t in (0, 7):
            r, col = p[t]
            np.testing.assert_allclose(clips.x[c, t, r:r + 14, col:col + 14], small[clips.items[c]],
                                       atol=1e-6)
            assert clips.x[c, t].sum() == pytest.approx(small[clips.items[c]].sum(), rel=1e-5)
    again = tokens.make_clips(images, 30, seed=3)
    assert np.array_equal(again.x, clips.x)
    with pytest.raises(ValueError, match="max_speed"):
        tokens.make_clips(images, 2, max_speed=3)


# --- the masked-token model and the baselines ------------------------------------------------

def small_word_model(seed=0, cls=tokens.MaskedTokenModel, **kwargs):
    keras.utils.set_random_seed(seed)
    model = cls(vocab_size=6, length=5, dim=16, depth=2, num_heads=2, mlp_dim=32, **kwargs)
    model.build()
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") for w in model.get_weights()])
    return model


def test_masked_token_model_sees_both_sides():
    model = small_word_model()
    x = np.array([[1, 2, 6, 4, 5]])  # 6 = [MASK]
    base = logits(model, x)
    later = x.copy()
    later[0, 4] = 0
    earlier = x.copy()
    earlier[0, 0] = 3
    assert np.abs(logits(model, later)[0, 2] - base[0, 2]).max() > 1e-4  # not causal
    assert np.abs(logits(model, earlier)[0, 2] - base[0, 2]).max() > 1e-4
    with pytest.raises(ValueError, match="tokens"):
        model(np.full((1, 5), 7))


def test_masked_inputs_and_predictions_one_position_at_a_time():
    words = np.array([[0, 1, 2, 3, 4], [5, 5, 1, 1, 0]])
    x, y, w = tokens.masked_inputs(words, 6)
    assert x.shape == y.shape == w.shape == (10, 5)
    for c in range(2):
        for j in range(5):
            row = c * 5 + j
            want = words[c].copy()
            want[j] = 6
            assert np.array_equal(x[row], want) and np.array_equal(y[row], words[c])
            assert w[row].tolist() == [1.0 if k == j else 0.0 for k in range(5)]
    model = small_word_model(seed=1)
    predicted = tokens.masked_predictions(model, words)
    for c in range(2):
        for j in range(5):
            want = words[c].copy()
            want[j] = 6
            assert predicted[c, j] == logits(model, want[None])[0, j].argmax()


def test_baselines_against_hand_computations():
    train = np.array([[1, 1, 2], [1, 3, 2], [1, 3, 2], [0, 0, 0]])
    test = np.array([[1, 0, 2], [4, 4, 4]])
    # word 1 appears 4 times, 0 and 2 three times, 3 twice
    assert tokens.most_frequent_baseline(train, test).tolist() == [[1, 1, 1], [1, 1, 1]]
    assert tokens.most_frequent_baseline(train[3:], test).tolist() == [[0, 0, 0], [0, 0, 0]]
    assert tokens.copy_baseline(test).tolist() == [[0, 1, 0], [4, 4, 4]]
    # between 1 and 2 the training clips had 1 once and 3 twice -> 3; first frame with right
    # neighbour 0 -> 0 (from [0, 0, 0]); last frame with left neighbour 0 -> 0; unseen -> copy
    assert tokens.neighbour_count_baseline(train, test).tolist() == [[0, 3, 0], [4, 4, 4]]
    assert tokens.accuracy([[1, 2], [3, 4]], [[1, 0], [3, 4]]) == 0.75


def test_videobert_carries_its_vocabulary_through_save_and_load(tmp_path):
    model = small_word_model(seed=2, cls=tokens.VideoBERT, feature_dim=3, frame_size=4)
    rng = np.random.default_rng(0)
    codebook = rng.normal(size=(6, 3))
    images = rng.random((6, 4, 4))
    model.set_vocabulary(codebook, images)
    features = rng.normal(size=(10, 3))
    assert np.array_equal(model.words(features), tokens.assign(features, codebook))
    path = tmp_path / "videobert.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(ops.convert_to_numpy(loaded.word_images), images, atol=1e-6)
    assert np.array_equal(loaded.words(features), model.words(features))
    x = np.array([[1, 6, 2, 3, 0]])
    np.testing.assert_allclose(logits(loaded, x), logits(model, x), atol=1e-6)
    assert len(loaded.trainable_weights) == len(model.trainable_weights)
    with pytest.raises(ValueError, match="codebook"):
        model.set_vocabulary(codebook[:2], images)
