"""The compiled merge kernel gives exactly HF tokenizers' ids, and HF takes over where it cannot."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from tokenizers import Tokenizer, models

from toksuite.data import LoadOptions, load_dataset
from toksuite.encoders import bpe_kernel
from toksuite.encoders.bpe import BPEGreyEncoder, BPERGBEncoder
from toksuite.encoders.hf_base import HFTokenizerEncoder

pytestmark = pytest.mark.skipif(bpe_kernel.numba is None, reason="numba is not installed")


def hf_ids(encoder, images) -> list[list[int]]:
    """The same encoder's ids through HF tokenizers (the reference)."""
    return [ids.tolist() for ids in HFTokenizerEncoder.encode_batch(encoder, images)]


def kernel_ids(encoder, images) -> list[list[int]]:
    assert encoder._merge_table is not None, "the kernel should take this tokenizer"
    return [ids.tolist() for ids in encoder.encode_batch(images)]


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    """scikit-learn's two photos cut into 32×32 crops, RGB and grey."""
    out = {}
    for channels in (1, 3):
        options = LoadOptions(progress=False, resolution=(32, 32), channels=channels)
        out[f"c{channels}"] = load_dataset("sample-images", options).x_train[:240]
    return out


@pytest.fixture(scope="module")
def encoders(photos) -> dict[str, object]:
    """Fitted on half the crops, small vocabularies: most rows end in several tokens."""
    fitted = {}
    for rows in ("split", "separator", "joined"):
        fitted[f"rgb:{rows}"] = BPERGBEncoder(vocab_size=1500, rows=rows).fit(photos["c3"][::2])
        fitted[f"grey:{rows}"] = BPEGreyEncoder(vocab_size=400, rows=rows).fit(photos["c1"][::2])
    # Few levels: long runs of one symbol, so merges (a, a) meet runs "a a a ..." of every length.
    fitted["grey:runs"] = BPEGreyEncoder(vocab_size=60, levels=3).fit(photos["c1"][::2])
    fitted["rgb:all"] = BPERGBEncoder(vocab_size=1500, alphabet="all").fit(photos["c3"][::2])
    for scan in ("snake", "hilbert"):  # pixels reordered before the kernel
        for rows in ("split", "separator"):
            fitted[f"rgb:{rows}:{scan}"] = BPERGBEncoder(vocab_size=1500, rows=rows, scan=scan).fit(
                photos["c3"][::2]
            )
    return fitted


KEYS = ["rgb:split", "rgb:separator", "rgb:joined", "grey:split", "grey:separator", "grey:joined"]


SCANNED = ["rgb:split:snake", "rgb:split:hilbert", "rgb:separator:snake", "rgb:separator:hilbert"]


@pytest.mark.parametrize("key", [*KEYS, "grey:runs", "rgb:all", *SCANNED])
def test_kernel_gives_hf_ids_on_real_photos(encoders, photos, key):
    encoder = encoders[key]
    images = photos[f"c{encoder.channels}"]
    assert kernel_ids(encoder, images) == hf_ids(encoder, images)


def palette_images(channels: int):
    """Images of a few colours, some never seen in training (byte fallback), in runs."""
    colours = st.lists(arrays(np.uint8, (channels,)), min_size=1, max_size=4)
    shapes = st.tuples(st.integers(1, 12), st.integers(1, 40))

    def draw(args):
        palette, (h, w) = args
        return arrays(np.uint8, (h, w), elements=st.integers(0, len(palette) - 1)).map(
            lambda index: np.stack(palette)[index]
        )

    return st.tuples(colours, shapes).flatmap(draw)


@pytest.mark.parametrize("key", [*KEYS, "grey:runs"])
@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_kernel_gives_hf_ids_on_arbitrary_images(encoders, key, data):
    encoder = encoders[key]
    images = [data.draw(palette_images(encoder.channels)) for _ in range(3)]
    images.append(data.draw(arrays(np.uint8, (5, 7, encoder.channels))))  # noise
    assert kernel_ids(encoder, images) == hf_ids(encoder, images)


def test_a_small_alphabet_reads_its_first_merges_from_a_table(encoders, photos):
    """Grey levels (one id per symbol, at most 256 symbols) take their first merges from a k×k
    table; the ids are the hash probe's."""
    table = encoders["grey:split"]._merge_table
    assert table.one_id_per_symbol and table.pair_ranks.size == table.char_ids.size**2
    assert encoders["rgb:split"]._merge_table.pair_ranks.size == 0  # 1,000 colour symbols
    with_table = kernel_ids(encoders["grey:split"], photos["c1"])
    kept, table.pair_ranks = table.pair_ranks, bpe_kernel._NO_PAIR_RANKS
    try:
        assert kernel_ids(encoders["grey:split"], photos["c1"]) == with_table
    finally:
        table.pair_ranks = kept


def test_runs_of_one_symbol_merge_leftmost_first():
    """Merges learned on pairs only: "a a a a a" → (a a)(a a) a, as HF does it."""
    grey = np.zeros((4, 2, 1), np.uint8)
    encoder = BPEGreyEncoder(vocab_size=40, levels=2, alphabet="all").fit([grey])
    row = np.zeros((1, 5, 1), np.uint8)
    pair = encoder.tokenizer_.token_to_id(encoder.image_to_text(grey[:1]))
    single = encoder.tokenizer_.token_to_id(encoder.image_to_text(row[:, :1]))
    assert encoder.encode(row).tolist() == [pair, pair, single] == hf_ids(encoder, [row])[0]


def test_mixed_shapes_in_one_batch(encoders, photos):
    encoder = encoders["rgb:separator"]
    images = [photos["c3"][0], photos["c3"][1][:7, :9], photos["c3"][2], photos["c3"][3][:1]]
    assert kernel_ids(encoder, images) == [encoder.encode(x).tolist() for x in images]
    assert kernel_ids(encoder, images) == hf_ids(encoder, images)


def test_what_the_kernel_cannot_do_is_left_to_hf(encoders, photos, monkeypatch):
    encoder = encoders["rgb:split"]
    images = photos["c3"][:4]
    expected = hf_ids(encoder, images)
    characters = encoder.alphabet()
    # Dropout makes BPE random: only HF can sample it.
    spec = json.loads(encoder.tokenizer_.to_str())
    spec["model"]["dropout"] = 0.1
    random_bpe = Tokenizer.from_str(json.dumps(spec))
    assert bpe_kernel.MergeTable.from_tokenizer(random_bpe, characters, split_rows=True) is None
    # A token made by two merges, used by a merge between them: the rank walk would miss it.
    vocab = {c: i for i, c in enumerate(["a", "b", "c", "x", "ab", "abc", "xabc", "bc"])}
    merges = [("a", "b"), ("ab", "c"), ("x", "abc"), ("b", "c"), ("a", "bc")]
    handmade = Tokenizer(models.BPE(vocab, merges))
    assert bpe_kernel.MergeTable.from_tokenizer(handmade, ["a", "b"], split_rows=True) is None
    # Without numba, the encoder still encodes, through HF, to the same ids.
    monkeypatch.setattr(bpe_kernel, "numba", None)
    fresh = BPERGBEncoder(vocab_size=1500)
    fresh._set_tokenizer(encoder.tokenizer_)
    assert fresh._merge_table is None
    assert [ids.tolist() for ids in fresh.encode_batch(images)] == expected


@pytest.mark.parametrize("key", SCANNED)
def test_a_scan_order_round_trips_and_its_grammar_follows_the_scan(encoders, photos, key):
    from toksuite.testing import check_constrained_sampling, check_grammar_accepts

    encoder = encoders[key]
    for image in photos["c3"][1:40:2]:  # held out
        decoded = encoder.decode_checked(encoder.encode(image), image.shape)
        assert decoded.ok, decoded.notes
        np.testing.assert_array_equal(decoded.image, encoder.quantize(image))
        check_grammar_accepts(encoder, image)
    check_constrained_sampling(encoder, 6, 5)
    # Along a Hilbert curve a token is a patch, not a strip: fewer tokens than row by row.
    if key == "rgb:split:hilbert":
        raster = encoders["rgb:split"]
        held_out = photos["c3"][1::2]
        assert sum(map(len, encoder.encode_batch(held_out))) < sum(
            map(len, raster.encode_batch(held_out))
        )
