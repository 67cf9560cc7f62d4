"""Image BPE encoders: bpe-grey, bpe-rgb (private-use alphabet) and bpe-bytelevel (paper recipe)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from toksuite import registry
from toksuite.encoders.bpe import BPEGreyEncoder, BPERGBEncoder
from toksuite.encoders.bytelevel import ByteLevelBPEEncoder, ByteLevelGreyBPEEncoder
from toksuite.encoders.symbols import Quantizer, symbols_to_text, text_to_symbols
from toksuite.errors import EncoderParamError, NotFittedError
from toksuite.hookspecs import hookimpl

CLASSES = (BPEGreyEncoder, BPERGBEncoder, ByteLevelBPEEncoder, ByteLevelGreyBPEEncoder)
PAPER_PIXEL = [150, 112, 255]  # levels 150//26=5, 112//26=4, 255//26=9 → 5·100 + 4·10 + 9 = 549


def all_colours() -> np.ndarray:
    """A 10×100 RGB image holding each of the 1,000 symbols once (pixel of symbol s at s)."""
    s = np.arange(1000)
    levels = np.stack([s // 100, s // 10 % 10, s % 10], axis=-1)
    return (levels * 26 + 13).astype(np.uint8).reshape(10, 100, 3)


def training_images(channels: int, n: int = 24, seed: int = 0) -> list[np.ndarray]:
    """Blocky random images: flat patches give BPE repeated runs to merge."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(n):
        small = rng.integers(0, 256, (6, 6, channels), dtype=np.uint8)
        images.append(np.kron(small, np.ones((3, 3, 1), np.uint8)))
    return images


@pytest.fixture(scope="module")
def fitted() -> dict[str, object]:
    """One fitted encoder per class and row mode (module-scoped: fitting is the slow part)."""
    encoders = {}
    for cls in CLASSES:
        modes = ("split", "separator", "joined") if cls.name in ("bpe-grey", "bpe-rgb") else (None,)
        for rows in modes:
            params = {"rows": rows} if rows else {}
            vocab = 1300 if cls.channels == 3 else 300
            encoder = cls(vocab_size=vocab, **params)
            images = training_images(cls.channels)
            if cls.channels == 3:
                images.append(all_colours())
            encoders[f"{cls.name}:{rows}" if rows else cls.name] = encoder.fit(images)
    # Alphabet of the seen symbols only, fitted on images that lack most colours / grey levels:
    # every other symbol must come back through byte fallback.
    encoders["bpe-rgb:sparse"] = BPERGBEncoder(vocab_size=400, min_symbol_count=2).fit(
        training_images(3)
    )
    dark = [x // 4 for x in training_images(1)]  # grey levels 0..2 only
    encoders["bpe-grey:sparse"] = BPEGreyEncoder(vocab_size=40).fit(dark)
    return encoders


def image_strategy(channels: int):
    shapes = st.tuples(st.integers(1, 9), st.integers(1, 13)).map(lambda hw: (*hw, channels))
    return shapes.flatmap(lambda shape: arrays(np.uint8, shape))


# ---------------------------------------------------------------------- known answers by hand
def test_paper_pixel_is_symbol_549_and_decodes_to_bin_centres():
    q = Quantizer(10, 3)
    assert q.step == 26
    assert q.symbols(np.array([[PAPER_PIXEL]], np.uint8)).tolist() == [[549]]
    # Bin k covers [26k, 26k+25] (the last one [234, 255]); centres round down.
    assert q.centres.tolist() == [12, 38, 64, 90, 116, 142, 168, 194, 220, 244]
    assert q.image(np.array([[549]])).tolist() == [[[142, 116, 244]]]
    assert Quantizer(10, 1).symbols(np.array([[[0], [25], [26], [255]]], np.uint8)).tolist() == [
        [0, 0, 1, 9]
    ]


def test_symbol_text_is_private_use_and_round_trips_beyond_the_bmp():
    symbols = np.array([0, 549, 6399, 6400, 20000])
    text = symbols_to_text(symbols)
    assert [hex(ord(c)) for c in text] == ["0xe000", "0xe225", "0xf8ff", "0xf0000", "0xf3520"]
    assert text_to_symbols(text).tolist() == symbols.tolist()
    assert text_to_symbols("a\n").tolist() == [-1, -1]


# The 4×4 image: every row is A B A B with A = the paper's pixel (symbol 549, U+E225) and B = black
# (symbol 0, U+E000). The alphabet is numbered in code-point order, so symbol s has id s.
#  split:  four words "ABAB" (one per row). Pair counts: AB 8, BA 4 → merge 1: A+B = id 1000.
#          Words are now "AB AB": pair (AB, AB) 4 → merge 2: AB+AB = id 1001. Each row: [1001].
#  separator: "\n" (U+000A) sorts before the private-use area, so it is id 0 and every symbol
#          shifts by one; the same merges get ids 1001 and 1002 and rows are split by id 0.
#  joined: one word ABAB…AB (16 symbols): AB 8 > BA 7 → 1000; then (AB, AB) 7 → 1001; the word
#          becomes four ABAB tokens, leftmost pairs first.
# These use alphabet="all" (every one of the 1,000 symbols has an id); see the "seen" test below.
KNOWN = {
    "split": (1002, [1001] * 4, [("\ue225", "\ue000"), ("\ue225\ue000", "\ue225\ue000")]),
    "separator": (1003, [1002, 0, 1002, 0, 1002, 0, 1002], None),
    "joined": (1002, [1001] * 4, None),
}


@pytest.mark.parametrize("rows", list(KNOWN))
def test_repeated_pixel_pairs_give_the_merges_by_hand(rows, tmp_path):
    vocab, expected_ids, expected_merges = KNOWN[rows]
    pair = np.array([PAPER_PIXEL, [0, 0, 0]], np.uint8)
    image = np.tile(pair, (4, 2, 1))  # 4×4×3, rows A B A B
    encoder = BPERGBEncoder(vocab_size=vocab, rows=rows, alphabet="all").fit([image])
    assert encoder.vocab_size == vocab
    assert encoder.encode(image).tolist() == expected_ids
    assert (encoder.decode(expected_ids, image.shape) == encoder.quantize(image)).all()
    if expected_merges:
        encoder.save(tmp_path / "enc")
        saved = json.loads((tmp_path / "enc" / "tokenizer.json").read_text())
        assert [tuple(m) for m in saved["model"]["merges"]] == expected_merges


def test_seen_alphabet_by_hand_and_unseen_colours_fall_back_to_bytes():
    # The same 4×4 image with alphabet="seen": only B = U+E000 (id 0) and A = U+E225 (id 1) get
    # ids, then the merges AB (2) and ABAB (3). The 998 unseen symbols U+E001..U+E3E7 are written
    # as UTF-8 bytes EE 80..8F 80..BF: 65 byte tokens, appended in byte order, 0x80 → 4 … 0xBF →
    # 67, 0xEE → 68. Vocab 69 = 2 symbols + 2 merges + 65 bytes.
    pair = np.array([PAPER_PIXEL, [0, 0, 0]], np.uint8)
    image = np.tile(pair, (4, 2, 1))
    encoder = BPERGBEncoder(vocab_size=69).fit([image])
    assert encoder.vocab_size == 69
    assert encoder.encode(image).tolist() == [3] * 4
    # White is symbol 999 = U+E3E7 = UTF-8 EE 8F A7 → ids 68, 4 + 0x0F, 4 + 0x27.
    white = np.full((1, 2, 3), 255, np.uint8)
    assert encoder.encode(white).tolist() == [68, 19, 43] * 2
    assert (encoder.decode([68, 19, 43] * 2, (1, 2)) == encoder.quantize(white)).all()
    # All 1,000 colours survive, 998 of them as bytes.
    colours = all_colours()
    assert (
        encoder.decode(encoder.encode(colours), colours.shape) == encoder.quantize(colours)
    ).all()


def test_broken_byte_runs_are_repairs_not_errors():
    encoder = BPERGBEncoder(vocab_size=69).fit([np.zeros((2, 2, 3), np.uint8)])
    lead = encoder.tokenizer_.token_to_id("<0xEE>")
    black = encoder.tokenizer_.token_to_id("\ue000")
    # A lone lead byte, then a pixel, then a stray continuation byte: two broken characters.
    decoded = encoder.decode_checked([lead, black, lead - 1], (1, 1))
    assert decoded.image.shape == (1, 1, 3) and (decoded.image == 12).all()
    assert decoded.repairs == 1 and decoded.notes[0].startswith("2 byte-fallback")


def test_seen_alphabet_keeps_the_most_frequent_symbols_when_vocab_is_small():
    counts = np.array([5, 0, 9, 2, 7, 7, 1, 0, 0, 4])
    # Counts >= 3: symbols 0, 2, 4, 5, 9. The others (1, 3, 6, 7, 8 = U+E001 … U+E008) are
    # EE 80 81, EE 80 83, EE 80 86 … EE 80 88: 7 distinct bytes; 5 + 7 <= 14, so all five stay.
    symbols, fallback = BPEGreyEncoder(
        vocab_size=14, min_symbol_count=3, max_alphabet_share=1
    ).fit_alphabet(counts)
    assert symbols.tolist() == [0, 2, 4, 5, 9]
    assert fallback == [0x80, 0x81, 0x83, 0x86, 0x87, 0x88, 0xEE]
    # RGB, 60 colours seen (0..59, rarer and rarer), vocab 100: 60 + 65 bytes > 100, so only the
    # 100 - 65 = 35 most frequent keep an id of their own.
    rgb_counts = np.zeros(1000, np.int64)
    rgb_counts[:60] = 1000 - np.arange(60)
    symbols, fallback = BPERGBEncoder(vocab_size=100, max_alphabet_share=1).fit_alphabet(rgb_counts)
    assert symbols.tolist() == list(range(35)) and len(fallback) == 65
    # max_alphabet_share=0.2: at most 20 symbols, the most frequent.
    symbols, _ = BPERGBEncoder(vocab_size=100, max_alphabet_share=0.2).fit_alphabet(rgb_counts)
    assert symbols.tolist() == list(range(20))
    assert BPEGreyEncoder(vocab_size=20, alphabet="all").fit_alphabet(counts)[1] == []


# ---------------------------------------------------------------------- the contract, by property
@pytest.mark.parametrize(
    "key",
    [
        "bpe-grey:split",
        "bpe-grey:separator",
        "bpe-grey:joined",
        "bpe-grey:sparse",
        "bpe-bytelevel-grey",
    ],
)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(image=image_strategy(1))
def test_grey_round_trip(fitted, key, image):
    check_round_trip(fitted[key], image)


@pytest.mark.parametrize(
    "key",
    ["bpe-rgb:split", "bpe-rgb:separator", "bpe-rgb:joined", "bpe-rgb:sparse", "bpe-bytelevel"],
)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(image=image_strategy(3))
def test_rgb_round_trip(fitted, key, image):
    check_round_trip(fitted[key], image)


def check_round_trip(encoder, image):
    ids = encoder.encode(image)
    assert ids.ndim == 1 and np.issubdtype(ids.dtype, np.integer)
    assert ((ids >= 0) & (ids < encoder.vocab_size)).all()
    decoded = encoder.decode_checked(ids, image.shape)
    assert decoded.repairs == 0, decoded.notes
    assert decoded.image.dtype == np.uint8
    assert (decoded.image == encoder.quantize(image)).all()


def test_encode_batch_equals_encode(fitted):
    encoder = fitted["bpe-rgb:split"]
    images = training_images(3, n=5, seed=1)
    batch = encoder.encode_batch(images)
    assert [b.tolist() for b in batch] == [encoder.encode(x).tolist() for x in images]


@pytest.mark.parametrize(
    "key", ["bpe-rgb:split", "bpe-rgb:separator", "bpe-rgb:sparse", "bpe-bytelevel"]
)
def test_all_1000_rgb_symbols_survive(fitted, key):
    encoder, image = fitted[key], all_colours()
    decoded = encoder.decode(encoder.encode(image), image.shape)
    assert (decoded == encoder.quantize(image)).all()
    symbols = Quantizer(10, 3).symbols(decoded)
    # The seed code decoded symbol 10 as 20 and 101 as 102: all 1,000 must stay distinct here.
    assert sorted(symbols.reshape(-1).tolist()) == list(range(1000))


# ---------------------------------------------------------------------- save / load, HF
class _TestPlugin:
    """Registers the BPE classes the built-in hook does not (yet) provide."""

    def __init__(self, classes):
        self.classes = classes

    @hookimpl
    def toksuite_register_encoders(self, register):
        for cls in self.classes:
            register(cls)


def install_host_with_bpe() -> None:
    host = registry.PluginHost()
    missing = tuple(c for c in CLASSES if c.name not in host.encoders.entries)
    if missing:
        host = registry.PluginHost(extra_plugins=(_TestPlugin(missing),))
    registry.reset_host(host)


@pytest.mark.parametrize(
    "key", ["bpe-grey:split", "bpe-rgb:separator", "bpe-rgb:sparse", "bpe-bytelevel"]
)
def test_save_load_and_hf_tokenizer_give_the_same_ids(fitted, key, tmp_path):
    from transformers import PreTrainedTokenizerFast

    install_host_with_bpe()
    encoder = fitted[key]
    image = training_images(encoder.channels, n=1, seed=5)[0]
    if key == "bpe-rgb:sparse":  # add colours never seen in training: byte-fallback ids
        image = np.concatenate([image, all_colours()[:, :18]])
    ids = encoder.encode(image).tolist()
    encoder.save(tmp_path / "enc")
    manifest = json.loads((tmp_path / "enc" / "toksuite.json").read_text())
    assert manifest["encoder"] == encoder.name and manifest["params"] == encoder.get_params()

    loaded = registry.load_encoder(tmp_path / "enc")
    assert type(loaded) is type(encoder) and loaded.vocab_size == encoder.vocab_size
    assert loaded.encode(image).tolist() == ids
    assert (loaded.decode(ids, image.shape) == encoder.quantize(image)).all()

    hf = PreTrainedTokenizerFast(tokenizer_file=str(tmp_path / "enc" / "tokenizer.json"))
    assert hf(encoder.image_to_text(image))["input_ids"] == ids


def test_fit_is_deterministic_and_honours_max_fit_images():
    images = training_images(3, n=12)
    a = BPERGBEncoder(vocab_size=1100).fit(images)
    b = BPERGBEncoder(vocab_size=1100).fit(images)
    assert a.tokenizer_.to_str() == b.tokenizer_.to_str()
    # One 18×18 image (324 pixels) cannot give 1,000 merges; twelve give more than one does.
    one = BPERGBEncoder(vocab_size=2000, max_fit_images=1, alphabet="all").fit(images, seed=3)
    again = BPERGBEncoder(vocab_size=2000, max_fit_images=1, alphabet="all").fit(images, seed=3)
    all_ = BPERGBEncoder(vocab_size=2000, alphabet="all").fit(images)
    assert one.vocab_size < 1324 < all_.vocab_size
    assert one.tokenizer_.to_str() == again.tokenizer_.to_str()


@pytest.mark.parametrize("cls", [BPERGBEncoder, ByteLevelBPEEncoder])
def test_max_fit_images_below_one_is_refused_not_a_fit_on_nothing(cls):
    with pytest.raises(EncoderParamError, match=r"max_fit_images must be >= 1 or None, got 0"):
        cls(max_fit_images=0).fit(training_images(3, n=2))


# ---------------------------------------------------------------------- malformed model output
@pytest.mark.parametrize(
    "key",
    ["bpe-grey:split", "bpe-rgb:separator", "bpe-rgb:joined", "bpe-rgb:sparse", "bpe-bytelevel"],
)
def test_malformed_sequences_are_repaired_not_raised(fitted, key):
    encoder = fitted[key]
    image = training_images(encoder.channels, n=1, seed=7)[0]
    shape, ids = image.shape, encoder.encode(image)
    vocab = encoder.vocab_size
    rng = np.random.default_rng(0)
    assert encoder.decode_checked(ids, shape).repairs == 0
    bad_inputs = {
        "random": rng.integers(0, vocab, 7),
        "out of range": np.concatenate([[-1, vocab, vocab + 99], ids]),
        "too short": ids[: len(ids) // 2],
        "too long": np.concatenate([ids, ids]),
        "empty": np.zeros(0, np.int64),
        "floats": [0.5, "x"],
    }
    for what, bad in bad_inputs.items():
        decoded = encoder.decode_checked(bad, shape)
        assert decoded.image.shape == shape and decoded.image.dtype == np.uint8, what
        assert decoded.repairs > 0 and decoded.notes, what


@pytest.mark.parametrize(
    "key", ["bpe-rgb:separator", "bpe-grey:joined", "bpe-rgb:sparse", "bpe-bytelevel"]
)
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    ids=st.lists(st.integers(-(2**40), 2**40) | st.integers(0, 1400), max_size=60),
    hw=st.tuples(st.integers(1, 6), st.integers(1, 6)),
)
def test_decode_never_raises_on_arbitrary_ids(fitted, key, ids, hw):
    encoder = fitted[key]
    decoded = encoder.decode_checked(ids, hw)
    assert decoded.image.shape == (*hw, encoder.channels)
    assert decoded.ok == (decoded.repairs == 0)


def test_separator_mode_repairs_each_bad_row(fitted):
    encoder = fitted["bpe-rgb:separator"]
    image = np.zeros((3, 4, 3), np.uint8)  # three rows of black
    sep = encoder.tokenizer_.token_to_id("\n")
    black = encoder.tokenizer_.token_to_id("\ue000")
    # Row 0 one pixel short, row 1 right, row 2 two pixels long: rows stay where they are.
    decoded = encoder.decode_checked(
        [black] * 3 + [sep] + [black] * 4 + [sep] + [black] * 6, (3, 4)
    )
    assert decoded.image.shape == (3, 4, 3)
    assert (decoded.image == encoder.quantize(image)).all()
    assert decoded.repairs == 1 and "2 rows" in decoded.notes[0]


def test_bytelevel_broken_utf8_is_counted(fitted):
    encoder = fitted["bpe-bytelevel"]
    lone_lead_byte = encoder.tokenizer_.token_to_id("Ã")  # GPT-2's stand-in for byte 0xC3
    decoded = encoder.decode_checked([lone_lead_byte, lone_lead_byte], (2, 2))
    assert decoded.image.shape == (2, 2, 3) and decoded.repairs == 2


def test_bytelevel_category_splits_block_merges_and_can_be_turned_off():
    """Symbols 65 ('A', a letter) and 49 ('1', a digit) alternate: GPT-2's regex cuts them."""
    letter, digit = (np.array([s // 100, s // 10 % 10, s % 10]) * 26 + 13 for s in (65, 49))
    row = np.stack([letter, digit] * 4).astype(np.uint8)[None]  # 1×8: "A1A1A1A1"
    split = ByteLevelBPEEncoder(vocab_size=300).fit([row] * 4)
    joined = ByteLevelBPEEncoder(vocab_size=300, split_categories=False).fit([row] * 4)
    assert split.image_to_text(row) == "A1A1A1A1"
    assert len(split.encode(row)) == 8  # every character is a piece of its own: nothing merges
    assert len(joined.encode(row)) == 1  # A1 → A1A1 → A1A1A1A1
    assert (joined.decode(joined.encode(row), row.shape) == joined.quantize(row)).all()


# ---------------------------------------------------------------------- errors
@pytest.mark.parametrize("cls", CLASSES)
def test_unfitted_use_raises_not_fitted(cls, tmp_path):
    encoder = cls()
    image = np.zeros((2, 2, cls.channels), np.uint8)
    for call in (
        lambda: encoder.encode(image),
        lambda: encoder.decode([1], (2, 2)),
        lambda: encoder.vocab_size,
        lambda: encoder.save(tmp_path / "x"),
    ):
        with pytest.raises(NotFittedError, match=cls.name):
            call()
    assert (encoder.quantize(image) == 12).all()  # quantising needs no fitting


def test_bad_params_are_clear_errors():
    with pytest.raises(EncoderParamError, match="smaller than the 1000 symbols"):
        BPERGBEncoder(vocab_size=999, alphabet="all")
    with pytest.raises(EncoderParamError, match="smaller than 66: the byte-fallback tokens"):
        BPERGBEncoder(vocab_size=65)
    with pytest.raises(EncoderParamError, match="alphabet must be seen or all"):
        BPERGBEncoder(alphabet="some")
    with pytest.raises(EncoderParamError, match="levels"):
        BPEGreyEncoder(levels=1)
    with pytest.raises(EncoderParamError, match="rows"):
        BPERGBEncoder(rows="diagonal")
    assert BPERGBEncoder.parse_params(["rows=joined", "max_fit_images=5"]) == {
        "rows": "joined",
        "max_fit_images": 5,
    }
