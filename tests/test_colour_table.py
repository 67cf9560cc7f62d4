"""The palette's 2^24 colour table and the kernel's in-loop lookup give the reference's ids exactly.

The reference is the k-means encoder's own search (`nearest_centroid`: k-d tree, near-ties by
brute force, lowest index winning), followed by run holding written out in Python.
"""

from __future__ import annotations

import numpy as np
import pytest

from toksuite.data import LoadOptions, load_dataset
from toksuite.encoders import colour_table as colour_table_module
from toksuite.encoders.bpe_palette import BPEPaletteEncoder
from toksuite.encoders.colour_table import COLOURS, colour_table
from toksuite.encoders.kmeans import KMeansEncoder
from toksuite.encoders.kmeans_fit import nearest_centroid, pack_rgb, unpack_rgb
from toksuite.encoders.scan import scan_order

pytest.importorskip("numba")


def reference_ids(codes: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    return nearest_centroid(unpack_rgb(codes).astype(np.float64), centroids)[0]


def reference_symbols(encoder: BPEPaletteEncoder, image: np.ndarray) -> np.ndarray:
    """Nearest colour by the k-means encoder, then runs held along the scan, pixel by pixel."""
    ids = encoder.palette_.encode(image)
    colours = encoder.palette_.palette_.astype(np.float64)
    pixels = image.reshape(-1, 3).astype(np.float64)
    out, prev = [], -1
    for p in scan_order(encoder.scan, *image.shape[:2]):
        s = int(ids[p])
        if encoder.run_tolerance and prev >= 0 and s != prev:
            own = ((pixels[p] - colours[s]) ** 2).sum()
            held = ((pixels[p] - colours[prev]) ** 2).sum()
            s = prev if held <= own + encoder.run_tolerance else s
        out.append(s)
        prev = s
    return np.array(out)


def test_random_centroids_and_colours():
    rng = np.random.default_rng(0)
    for k in (1, 2, 7, 128, 600):
        centroids = rng.uniform(0, 255, (k, 3))
        table = colour_table(centroids)
        codes = rng.choice(COLOURS, 200_000, replace=False)
        np.testing.assert_array_equal(table[codes], reference_ids(codes, centroids))


def test_clustered_centroids_like_a_faces_palette():
    # Many centroids packed in a small region: cells there keep many candidates.
    rng = np.random.default_rng(1)
    centroids = rng.normal([180, 130, 110], 12, (256, 3)).clip(0, 255)
    box = np.stack(np.meshgrid(*[np.arange(140, 220)] * 3, indexing="ij"), -1).reshape(-1, 3)
    codes = np.concatenate([pack_rgb(box.astype(np.uint8)), rng.choice(COLOURS, 100_000)])
    np.testing.assert_array_equal(colour_table(centroids)[codes], reference_ids(codes, centroids))


def test_ties_resolve_to_the_lowest_index_as_the_reference_does():
    # Integer and half-integer centroids: many colours lie exactly halfway between two (or more).
    centroids = np.array(
        [
            [12, 10, 10],  # (11, 10, 10) is as far from this as from the next: index 0 wins
            [10, 10, 10],
            [10, 12, 10],  # (10, 11, 10): tie of 1 and 2
            [200.5, 50, 50],  # (200, y, z) and (201, y, z) tie with the next one
            [199.5, 50, 50],
            [100, 100, 100],
            [100, 100, 100],  # a duplicate: never used, the lower index always wins
            [30, 230, 30],
            [32, 232, 32],
            [31, 231, 33],
        ],
        np.float64,
    )
    table = colour_table(centroids)
    assert table[pack_rgb(np.array([[11, 10, 10]], np.uint8))[0]] == 0
    assert table[pack_rgb(np.array([[10, 11, 10]], np.uint8))[0]] == 1
    assert table[pack_rgb(np.array([[200, 50, 50]], np.uint8))[0]] == 3
    assert table[pack_rgb(np.array([[201, 50, 50]], np.uint8))[0]] == 3
    assert table[pack_rgb(np.array([[100, 100, 100]], np.uint8))[0]] == 5
    assert not (table == 6).any()
    # Every colour near a tie, against the reference.
    near = [np.arange(max(0, c - 6), min(256, c + 7)) for c in (10, 10, 10)]
    boxes = [np.stack(np.meshgrid(*near, indexing="ij"), -1).reshape(-1, 3)]
    for centre in ([200, 50, 50], [100, 100, 100], [31, 231, 31]):
        axes = [np.arange(c - 6, c + 7) for c in centre]
        boxes.append(np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3))
    codes = pack_rgb(np.concatenate(boxes).astype(np.uint8))
    np.testing.assert_array_equal(table[codes], reference_ids(codes, centroids))


@pytest.mark.shared_data
def test_real_faces_kernel_symbols_match_the_reference(shared_data):
    options = LoadOptions(progress=False, crop=(19, 39, 140, 140), resolution=(112, 112), limit=24)
    faces = load_dataset(f"folder:{shared_data / 'celeba-6k'}", options)
    encoder = BPEPaletteEncoder(vocab_size=600, sample_pixels=50_000).fit(faces.x_train[:12])
    # Every colour of the faces, through the table and through the k-d tree.
    codes = np.unique(pack_rgb(faces.x_test.reshape(-1, 3)))
    table = encoder.palette_.colour_table()
    np.testing.assert_array_equal(table[codes], reference_ids(codes, encoder.palette_.centroids_))
    batch = encoder.scan_symbols(faces.x_test)  # parallel stage (≥ 8 images)
    for image, symbols in zip(faces.x_test, batch, strict=True):
        expected = reference_symbols(encoder, image)
        np.testing.assert_array_equal(symbols, expected)
        np.testing.assert_array_equal(encoder.scan_symbols(image[None])[0], expected)


def test_without_numba_the_table_is_filled_from_the_k_d_tree(monkeypatch):
    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (10, 12, 12, 3), dtype=np.uint8)
    compiled = BPEPaletteEncoder(vocab_size=400, k=16, sample_pixels=5000).fit(images)
    monkeypatch.setattr(colour_table_module, "numba", None)
    lazy = BPEPaletteEncoder(vocab_size=400, k=16, sample_pixels=5000).fit(images)
    assert not lazy.palette_._lookup_complete
    for image in images:
        np.testing.assert_array_equal(lazy.encode(image), compiled.encode(image))
        np.testing.assert_array_equal(lazy.quantize(image), compiled.quantize(image))


def test_a_new_palette_gets_a_new_table():
    palette = KMeansEncoder(k=2)
    palette._set_centroids(np.array([[0, 0, 0], [255, 255, 255]], np.float64))
    white = pack_rgb(np.array([[250, 250, 250]], np.uint8))[0]
    assert palette.colour_table()[white] == 1
    palette._set_centroids(np.array([[255, 255, 255], [0, 0, 0]], np.float64))
    assert palette.colour_table()[white] == 0


@pytest.mark.parametrize("tolerance", [0.5, 150.7, 1e12])
def test_fractional_and_huge_tolerances_hold_as_the_reference(tolerance):
    """The kernel compares whole squared errors with ⌊tolerance⌋ (clamped above 3·255²): the same
    decisions as the reference's float comparison, for a fraction and for a huge tolerance."""
    rng = np.random.default_rng(3)
    ramp = np.linspace(0, 255, 24)
    base = np.stack(np.broadcast_arrays(ramp[:, None], ramp[None, :], 128.0), -1)
    images = np.clip(base + rng.normal(0, 12, (6, 24, 24, 3)), 0, 255).astype(np.uint8)
    encoder = BPEPaletteEncoder(vocab_size=200, k=16, run_tolerance=tolerance).fit(images[:3])
    for image in images:
        np.testing.assert_array_equal(
            encoder.scan_symbols(image[None])[0], reference_symbols(encoder, image)
        )
