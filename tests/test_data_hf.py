"""``hf:`` on tiny datasets built here: save_to_disk folders, parquet, arrow, options, errors."""

from __future__ import annotations

import io
import json
import socket
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from toksuite.cli import app
from toksuite.data import LoadOptions, load_dataset
from toksuite.errors import DataError

datasets = pytest.importorskip("datasets", reason="the 'datasets' library (toksuite[hf]) is absent")

QUIET = LoadOptions(progress=False)
NAMES = ["cat", "dog", "owl"]


def opts(**kw) -> LoadOptions:
    return LoadOptions(progress=False, **kw)


def pixels(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 4, 5, 3), dtype=np.uint8)


def make(x: np.ndarray, labels, image="image", label="label", label_feature=None):
    features = {image: datasets.Image()}
    if label is not None:
        features[label] = label_feature or datasets.ClassLabel(names=NAMES)
    columns = {image: [Image.fromarray(a) for a in x]}
    if label is not None:
        columns[label] = list(labels)
    return datasets.Dataset.from_dict(columns, features=datasets.Features(features))


@pytest.fixture
def tiny(tmp_path):
    """A DatasetDict (train 9, test 3) saved to disk, and the arrays it holds."""
    x_train, x_test = pixels(9, 0), pixels(3, 1)
    y_train, y_test = [i % 3 for i in range(9)], [2, 0, 1]
    splits = datasets.DatasetDict(
        train=make(x_train, y_train), test=make(x_test, y_test)
    )  # fmt: skip
    splits.save_to_disk(str(tmp_path / "dict"))
    return tmp_path, (x_train, np.array(y_train), x_test, np.array(y_test)), splits


def test_save_to_disk_dict_round_trips_pixels_labels_and_names(tiny):
    root, (x_train, y_train, x_test, y_test), _ = tiny
    ds = load_dataset(f"hf:{root / 'dict'}", QUIET)
    np.testing.assert_array_equal(ds.x_train, x_train)
    np.testing.assert_array_equal(ds.x_test, x_test)
    np.testing.assert_array_equal(ds.y_train, y_train)
    np.testing.assert_array_equal(ds.y_test, y_test)
    assert ds.class_names == NAMES and ds.spec == f"hf:{root / 'dict'}"


def test_parquet_arrow_and_single_dataset_folder_agree(tiny):
    root, (x_train, y_train, *_), splits = tiny
    splits["train"].to_parquet(str(root / "train.parquet"))
    splits["train"].save_to_disk(str(root / "one"))
    arrow = next((root / "one").glob("*.arrow"))
    loaded = [
        load_dataset(f"hf:{p}", opts(test_fraction=0.25))
        for p in (root / "train.parquet", arrow, root / "one")
    ]
    for ds in loaded:  # one split: divided at random, the same way for each container
        assert len(ds.x_train) == 7 and len(ds.x_test) == 2 and ds.class_names == NAMES
        np.testing.assert_array_equal(ds.x_train, loaded[0].x_train)
        np.testing.assert_array_equal(ds.y_test, loaded[0].y_test)
    both = np.concatenate([loaded[0].x_train, loaded[0].x_test])
    assert sorted(map(bytes, both)) == sorted(map(bytes, x_train))


def test_hub_style_parquet_folder_groups_shards_by_split(tiny):
    root, (x_train, _, x_test, _), splits = tiny
    hub = root / "hub" / "data"
    hub.mkdir(parents=True)
    splits["train"].select(range(5)).to_parquet(str(hub / "train-00000-of-00002.parquet"))
    splits["train"].select(range(5, 9)).to_parquet(str(hub / "train-00001-of-00002.parquet"))
    splits["test"].to_parquet(str(hub / "test-00000-of-00001.parquet"))
    ds = load_dataset(f"hf:{root / 'hub'}", QUIET)
    np.testing.assert_array_equal(ds.x_train, x_train)
    np.testing.assert_array_equal(ds.x_test, x_test)


def test_split_options_and_limit(tiny):
    root, (x_train, _, x_test, _), _ = tiny
    swapped = load_dataset(f"hf:{root / 'dict'}?train=test&test=train", QUIET)
    np.testing.assert_array_equal(swapped.x_train, x_test)
    one = load_dataset(f"hf:{root / 'dict'}?test=none", opts(test_fraction=1 / 3))
    assert len(one.x_train) == 6 and len(one.x_test) == 3
    small = load_dataset(f"hf:{root / 'dict'}", opts(limit=2, resolution=(8, 8), channels=1))
    assert small.x_train.shape == (2, 8, 8, 1) and small.x_test.shape == (2, 8, 8, 1)
    assert len(small.y_train) == 2


def test_validation_split_is_the_default_test(tmp_path):
    datasets.DatasetDict(
        train=make(pixels(4, 0), [0, 1, 2, 0]), validation=make(pixels(2, 1), [1, 1])
    ).save_to_disk(str(tmp_path / "d"))
    ds = load_dataset(f"hf:{tmp_path / 'd'}", QUIET)
    assert len(ds.x_train) == 4 and ds.y_test.tolist() == [1, 1]


def test_named_columns_int_and_string_labels(tmp_path):
    ds = make(pixels(4, 0), [5, 7, 5, 9], "pic", "y", datasets.Value("int64"))
    ds.save_to_disk(str(tmp_path / "ints"))
    loaded = load_dataset(f"hf:{tmp_path / 'ints'}?label=y&test=none", opts(test_fraction=0))
    assert loaded.y_train.tolist() == [5, 7, 5, 9] and loaded.class_names is None
    unlabelled = load_dataset(f"hf:{tmp_path / 'ints'}?label=none", QUIET)
    assert not unlabelled.labelled
    words = make(pixels(3, 0), ["owl", "ant", "owl"], label_feature=datasets.Value("string"))
    words.save_to_disk(str(tmp_path / "words"))
    loaded = load_dataset(f"hf:{tmp_path / 'words'}", opts(test_fraction=0))
    assert loaded.class_names == ["ant", "owl"] and loaded.y_train.tolist() == [1, 0, 1]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?image=label", "column 'label' is ClassLabel"),
        ("?label=fine", r"no column 'fine' \(columns: image, label\)"),
        ("?colour=red", r"unknown option 'colour' \(options: image, label, train, test\)"),
        ("?train=dev", r"no split 'dev' \(splits: test, train\)"),
        ("?test=dev", r"no split 'dev'"),
    ],
)
def test_bad_options_give_one_line(tiny, query, message):
    root = tiny[0]
    with pytest.raises(DataError, match=message) as info:
        load_dataset(f"hf:{root / 'dict'}{query}", QUIET)
    assert "\n" not in str(info.value)


def test_bad_paths(tmp_path):
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match=r"junk.parquet: not a readable parquet file"):
        load_dataset(f"hf:{tmp_path / 'junk.parquet'}", QUIET)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="expected a save_to_disk folder, or a .parquet"):
        load_dataset(f"hf:{tmp_path / 'notes.txt'}", QUIET)
    datasets.Dataset.from_dict({"a": [1, 2]}).save_to_disk(str(tmp_path / "numbers"))
    with pytest.raises(DataError, match=r"no column of the Image feature \(columns: a\)"):
        load_dataset(f"hf:{tmp_path / 'numbers'}", QUIET)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no save_to_disk dataset"):
        load_dataset(f"hf:{tmp_path / 'empty'}", QUIET)


def test_bad_image_cell_stops_or_is_skipped(tmp_path):
    good = io.BytesIO()
    Image.fromarray(pixels(1, 0)[0]).save(good, format="PNG")
    cells = [{"bytes": good.getvalue(), "path": None}, {"bytes": b"garbage", "path": None}] * 2
    features = datasets.Features({"image": datasets.Image(), "label": datasets.Value("int64")})
    ds = datasets.Dataset.from_dict({"image": cells, "label": [0, 1, 2, 3]}, features=features)
    ds.save_to_disk(str(tmp_path / "d"))
    with pytest.raises(DataError, match=r"d:train\[1\]: not an image file PIL can read"):
        load_dataset(f"hf:{tmp_path / 'd'}", opts(test_fraction=0))
    skipped = load_dataset(f"hf:{tmp_path / 'd'}", opts(test_fraction=0, on_error="skip"))
    assert skipped.skipped == 2 and skipped.y_train.tolist() == [0, 2]


def test_nothing_touches_the_network(tiny, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    ds = load_dataset(f"hf:{tiny[0] / 'dict'}", QUIET)
    assert len(ds.x_train) == 9


def test_missing_library_names_the_extra(tiny, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    result = CliRunner().invoke(
        app, ["squeeze", "-e", "pixels-rgb", "--data", f"hf:{tiny[0] / 'dict'}"]
    )
    assert result.exit_code == 1
    assert "pip install 'toksuite[hf]'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_squeeze_reads_a_saved_dataset(tiny):
    root = tiny[0]
    args = ["squeeze", "-e", "pixels-rgb", "--data", f"hf:{root / 'dict'}", "--json"]
    result = CliRunner().invoke(app, [*args, "--plot", str(root / "s.png")])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"][0]["images"] == 3
    missing = ["squeeze", "-e", "pixels-rgb", "--data", f"hf:{root / 'dict'}?image=photo"]
    result = CliRunner().invoke(app, [*missing, "--plot", str(root / "s.png")])
    assert result.exit_code == 1 and "no column 'photo'" in result.output


def test_paths_with_a_question_mark_stay_paths(tmp_path):
    make(pixels(2, 0), [0, 1]).save_to_disk(str(tmp_path / "what?"))
    assert len(load_dataset(f"hf:{tmp_path / 'what?'}", opts(test_fraction=0)).x_train) == 2


def test_hf_alias(tiny):
    assert len(load_dataset(f"huggingface:{tiny[0] / 'dict'}", QUIET).x_test) == 3
