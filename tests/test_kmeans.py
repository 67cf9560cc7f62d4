"""The k-means palette encoder: contract, known answers, determinism, OpenAI's centre file."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from toksuite.encoders.kmeans import KMeansEncoder
from toksuite.errors import (
    DataError,
    EncoderParamError,
    ManifestError,
    NotFittedError,
    ToksuiteError,
)
from toksuite.hookspecs import hookimpl


def random_images(seed: int, n: int = 8, size: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


@functools.cache
def small_encoder() -> KMeansEncoder:
    """One fitted encoder shared by the property tests (fitting per example would be slow)."""
    return KMeansEncoder(k=16).fit(random_images(0), seed=0)


def brute_force_ids(pixels: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """Nearest centroid by squared distance in float64, lowest index on ties."""
    diff = pixels.reshape(-1, 1, 3).astype(np.float64) - centroids[None, :, :]
    return np.argmin((diff * diff).sum(2), axis=1)


images = st.tuples(st.integers(1, 7), st.integers(1, 9)).flatmap(
    lambda hw: arrays(np.uint8, (hw[0], hw[1], 3))
)
slow_ok = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


# ---------------------------------------------------------------------- the contract
@slow_ok
@given(image=images)
def test_decode_of_encode_is_quantize_and_ids_in_range(image):
    enc = small_encoder()
    ids = enc.encode(image)
    assert ids.shape == (image.shape[0] * image.shape[1],)
    assert enc.sequence_length(*image.shape[:2]) == ids.size
    assert ids.min() >= 0 and ids.max() < enc.vocab_size == 16
    np.testing.assert_array_equal(enc.decode(ids, image.shape), enc.quantize(image))
    np.testing.assert_array_equal(ids, brute_force_ids(image, enc.centroids_))


@slow_ok
@given(ids=st.lists(st.integers(-(2**40), 2**40), max_size=40), h=st.integers(1, 5))
def test_decode_never_raises_on_model_output(ids, h):
    out = small_encoder().decode_checked(ids, (h, 4))
    assert out.image.shape == (h, 4, 3) and out.image.dtype == np.uint8
    assert out.ok == (len(ids) == 4 * h and all(0 <= i < 16 for i in ids))


def test_malformed_decode_is_repaired_and_counted():
    enc = small_encoder()
    out = enc.decode_checked([3, 99, -1, 5], (2, 2))
    assert out.repairs == 2 and not out.ok
    assert "2 ids outside 0..15 dropped" in out.notes[0] and "padded" in out.notes[1]
    np.testing.assert_array_equal(out.image.reshape(-1, 3), enc.palette_[[3, 5, 5, 5]])
    cut = enc.decode_checked(list(range(10)), (1, 3))
    assert cut.repairs == 1 and "cut" in cut.notes[0]
    assert enc.decode_checked([], (2, 1)).image.shape == (2, 1, 3)
    assert enc.decode_checked([1, 2], (1, 2)).ok


def test_encode_batch_matches_encode_for_arrays_and_odd_sizes():
    enc = small_encoder()
    batch = random_images(5, n=4, size=5)
    for got, image in zip(enc.encode_batch(batch), batch, strict=True):
        np.testing.assert_array_equal(got, enc.encode(image))
    mixed = [batch[0][:1, :1], batch[1][:1], batch[2][:3, :5], batch[3]]
    for got, image in zip(enc.encode_batch(mixed), mixed, strict=True):
        np.testing.assert_array_equal(got, enc.encode(image))
    assert enc.encode_batch([]) == []


# ---------------------------------------------------------------------- known answers
def test_exactly_k_colours_are_reproduced_with_zero_inertia():
    colours = np.array([[0, 0, 0], [255, 0, 0], [0, 255, 0], [7, 8, 9], [9, 8, 7], [255] * 3])
    image = colours[[0, 1, 2, 3, 4, 5, 5, 3, 1, 0, 0, 0]].reshape(3, 4, 3).astype(np.uint8)
    enc = KMeansEncoder(k=6).fit([image])
    assert enc.inertia_ == 0.0
    np.testing.assert_array_equal(enc.quantize(image), image)
    assert sorted(map(tuple, enc.palette_.tolist())) == sorted(map(tuple, colours.tolist()))


def test_two_clusters_by_hand():
    # Cluster A: (10,10,10) twice and (13,10,10) → mean (11,10,10), cost 2·1² + 2² = 6.
    # Cluster B: (200,100,50) and (210,100,50)   → mean (205,100,50), cost 2·5² = 50.
    pixels = [[10, 10, 10], [10, 10, 10], [13, 10, 10], [200, 100, 50], [210, 100, 50]]
    image = np.array(pixels, dtype=np.uint8)[None]
    enc = KMeansEncoder(k=2).fit([image], seed=3)
    got = sorted(map(tuple, enc.centroids_.tolist()))
    assert got == [(11.0, 10.0, 10.0), (205.0, 100.0, 50.0)]
    assert enc.inertia_ == pytest.approx(56.0)
    ids = enc.encode(image)
    assert len(set(ids[:3].tolist())) == 1 and ids[3] == ids[4] != ids[0]


def test_sampling_draws_from_every_image_size():
    rng = np.random.default_rng(1)
    imgs = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(1, 1), (3, 7), (20, 9)]]
    enc = KMeansEncoder(k=4, sample_pixels=50, init_pixels=20).fit(imgs, seed=2)
    assert enc.centroids_.shape == (4, 3)
    np.testing.assert_array_equal(enc.decode(enc.encode(imgs[1]), (3, 7)), enc.quantize(imgs[1]))


# ---------------------------------------------------------------------- determinism
def test_same_seed_gives_bit_identical_centroids():
    data = random_images(1)
    params = dict(k=32, sample_pixels=1500, init_pixels=800)
    a = KMeansEncoder(**params).fit(data, seed=7).centroids_
    b = KMeansEncoder(**params).fit(data, seed=7).centroids_
    c = KMeansEncoder(**params).fit(data, seed=8).centroids_
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()


# ---------------------------------------------------------------------- OpenAI's layout
def igpt_color_quantize(image: np.ndarray, clusters: np.ndarray) -> np.ndarray:
    """iGPT's own code (openai/image-gpt, src/utils): normalise, squared distances, argmin."""
    x = image.reshape(-1, 3) / 127.5 - 1.0
    d = (x**2).sum(1)[:, None] - 2 * x @ clusters.T + (clusters**2).sum(1)[None, :]
    return np.argmin(d, axis=1)


def test_openai_centres_map_as_igpt_does(tmp_path):
    rng = np.random.default_rng(0)
    clusters = rng.uniform(-1, 1, (512, 3)).astype(np.float32)
    path = tmp_path / "kmeans_centers.npy"
    np.save(path, clusters)
    enc = KMeansEncoder.from_openai_centers(path)
    assert enc.vocab_size == 512 and enc.centers == str(path)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(enc.encode(image), igpt_color_quantize(image, clusters))
    expected_palette = np.clip(np.rint((clusters.astype(np.float64) + 1) * 127.5), 0, 255)
    np.testing.assert_array_equal(enc.palette_, expected_palette.astype(np.uint8))
    # The same file through the constructor: fit loads it and ignores the images.
    same = KMeansEncoder(centers=str(path)).fit(random_images(3))
    assert same.centroids_.tobytes() == enc.centroids_.tobytes()
    with pytest.raises(EncoderParamError, match="holds 512 centres but k=16"):
        KMeansEncoder(k=16, centers=str(path)).fit([])


@pytest.mark.parametrize(
    ("writer", "message"),
    [
        (lambda p: np.save(p, np.zeros((512, 4), np.float32)), "shape"),
        (lambda p: np.save(p, np.full((512, 3), 2.0, np.float32)), r"\[-1, 1\]"),
        (lambda p: np.save(p, np.array([{"a": 1}], dtype=object)), "plain numeric"),
        (lambda p: p.write_text("not an array"), "plain numeric"),
        (lambda p: None, "no such file"),
    ],
    ids=["wrong-shape", "out-of-range", "pickle", "not-npy", "missing"],
)
def test_bad_openai_file_is_a_clear_error(tmp_path, writer, message):
    path = tmp_path / "kmeans_centers.npy"
    writer(path)
    with pytest.raises(DataError, match=message) as info:
        KMeansEncoder.from_openai_centers(path)
    assert isinstance(info.value, ToksuiteError) and str(path) in str(info.value)


# ---------------------------------------------------------------------- state
class _KMeansPlugin:
    @hookimpl
    def toksuite_register_encoders(self, register):
        register(KMeansEncoder)


@pytest.fixture
def kmeans_registered():
    """The registry with `kmeans` in it, whether or not every built-in module imports yet."""
    from toksuite import registry

    host = registry.PluginHost(autoload=False)
    if "kmeans" not in host.encoders.entries:
        host = registry.PluginHost(autoload=False, extra_plugins=(_KMeansPlugin(),))
    registry.reset_host(host)


def test_save_load_round_trip(tmp_path, kmeans_registered):
    enc = KMeansEncoder(k=8, max_iter=20).fit(random_images(2), seed=1)
    enc.save(tmp_path / "enc")
    manifest = json.loads((tmp_path / "enc" / "toksuite.json").read_text())
    assert manifest["encoder"] == "kmeans" and manifest["params"]["k"] == 8
    back = KMeansEncoder.load(tmp_path / "enc")
    assert back.centroids_.tobytes() == enc.centroids_.tobytes()
    image = random_images(4, n=1)[0]
    np.testing.assert_array_equal(back.encode(image), enc.encode(image))
    assert back.fingerprint() == enc.fingerprint()


def test_corrupt_saved_centroids_are_a_clear_error(tmp_path, kmeans_registered):
    KMeansEncoder(k=8).fit(random_images(2)).save(tmp_path / "enc")
    path = tmp_path / "enc" / "centroids.npy"
    np.save(path, np.zeros((7, 3)))
    with pytest.raises(ManifestError, match="expected \\(8, 3\\)"):
        KMeansEncoder.load(tmp_path / "enc")
    np.save(path, np.array([None] * 3, dtype=object))
    with pytest.raises(ManifestError, match="centroids.npy"):
        KMeansEncoder.load(tmp_path / "enc")


def test_unfitted_use_raises(tmp_path):
    enc = KMeansEncoder(k=4)
    image = random_images(0, n=1, size=2)[0]
    for call in (
        lambda: enc.encode(image),
        lambda: enc.quantize(image),
        lambda: enc.decode([0], (1, 1)),
        lambda: enc.save(tmp_path / "x"),
    ):
        with pytest.raises(NotFittedError, match="not fitted"):
            call()


@pytest.mark.parametrize("params", [dict(k=0), dict(max_iter=0), dict(tol=-1.0), dict(k=2.5)])
def test_bad_params_are_rejected(params):
    with pytest.raises(EncoderParamError):
        KMeansEncoder(**params)


def test_params_parse_from_cli_strings():
    params = KMeansEncoder.parse_params(["k=64", "centers=none", "tol=0.001"])
    assert params == {"k": 64, "centers": None, "tol": 0.001}


def test_real_images_round_trip(shared_data):
    x = np.load(shared_data / "cifar10-20k.npz")["x_train"][:300]
    enc = KMeansEncoder(k=64, sample_pixels=50_000).fit(x, seed=0)
    ids = enc.encode_batch(x)
    assert all(i.size == 32 * 32 for i in ids)
    decoded = np.stack([enc.decode(i, (32, 32)) for i in ids])
    np.testing.assert_array_equal(decoded, np.stack([enc.quantize(im) for im in x]))
    mse = ((decoded.astype(float) - x) ** 2).mean()
    assert 10 * np.log10(255**2 / mse) > 25  # 64 colours already give a recognisable image


def test_empty_cluster_is_reseeded_at_the_costliest_colour():
    from toksuite.encoders.kmeans_fit import lloyd

    # The centre at white attracts nothing; it moves to (100,0,0), the colour that costs most
    # where it is (5 · 95²), and the two clusters settle at (5,0,0) and (100,0,0).
    points = np.array([[0, 0, 0], [10, 0, 0], [100, 0, 0]], dtype=np.float64)
    weights = np.array([1.0, 1.0, 5.0])
    start = np.array([[5.0, 0, 0], [255.0, 255, 255]])
    result = lloyd(points, weights, start, max_iter=10, tol=0.0)
    np.testing.assert_array_equal(np.sort(result.centroids, axis=0), [[5.0, 0, 0], [100.0, 0, 0]])
    assert result.inertia == pytest.approx(50.0) and result.converged


def test_array_and_list_inputs_fit_the_same_palette():
    data = random_images(6, n=6, size=12)
    params = dict(k=8, sample_pixels=300, init_pixels=100)
    a = KMeansEncoder(**params).fit(data, seed=4).centroids_
    b = KMeansEncoder(**params).fit(list(data), seed=4).centroids_
    assert a.tobytes() == b.tobytes()
