"""``idx:`` / ``mnist:`` on IDX files made here (plain and .gz), bad headers, and Debian's copy."""

from __future__ import annotations

import gzip
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from toksuite.cli import app
from toksuite.data import LoadOptions, load_dataset
from toksuite.data.idx import read_idx
from toksuite.errors import DataError

# Debian's dataset-fashion-mnist package installs the four .gz files here.
DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
QUIET = LoadOptions(progress=False)


def idx_bytes(values: np.ndarray, code: int = 0x08) -> bytes:
    header = bytes([0, 0, code, values.ndim]) + struct.pack(f">{values.ndim}I", *values.shape)
    return header + values.astype(np.uint8).tobytes()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)
    return path


def images(n: int, seed: int, h: int = 5, w: int = 4) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w), dtype=np.uint8)


def mnist_folder(root: Path, gz: bool, n_train=12, n_test=6) -> dict[str, np.ndarray]:
    ext = ".gz" if gz else ""
    arrays = {
        "train-images-idx3-ubyte": images(n_train, 0),
        "train-labels-idx1-ubyte": np.arange(n_train) % 10,
        "t10k-images-idx3-ubyte": images(n_test, 1),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) * 3) % 10,
    }
    for name, values in arrays.items():
        write(root / (name + ext), idx_bytes(values))
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_folder_gives_the_official_split_pixels_and_labels(tmp_path, gz):
    arrays = mnist_folder(tmp_path, gz)
    ds = load_dataset(f"mnist:{tmp_path}", QUIET)
    assert ds.x_train.shape == (12, 5, 4, 1) and ds.x_test.shape == (6, 5, 4, 1)
    np.testing.assert_array_equal(ds.x_train[..., 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(ds.x_test[..., 0], arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(ds.y_train, arrays["train-labels-idx1-ubyte"])
    np.testing.assert_array_equal(ds.y_test, arrays["t10k-labels-idx1-ubyte"])
    assert ds.y_train.dtype == np.int64 and ds.spec == f"idx:{tmp_path}"


def test_options_apply_limit_channels_resolution(tmp_path):
    mnist_folder(tmp_path, gz=True, n_train=20, n_test=10)
    ds = load_dataset(
        f"idx:{tmp_path}", LoadOptions(progress=False, limit=7, channels=3, resolution=(8, 8))
    )
    assert ds.x_train.shape == (7, 8, 8, 3) and ds.x_test.shape == (7, 8, 8, 3)
    assert len(ds.y_train) == 7


def test_single_images_file_finds_its_labels_and_is_split(tmp_path):
    arrays = mnist_folder(tmp_path, gz=False, n_train=10)
    ds = load_dataset(f"idx:{tmp_path / 'train-images-idx3-ubyte'}", opts(test_fraction=0.3))
    assert len(ds.x_train) == 7 and len(ds.x_test) == 3
    for x, y in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        for image, label in zip(x, y, strict=True):  # labels 0..9 are the row numbers here
            np.testing.assert_array_equal(image[..., 0], arrays["train-images-idx3-ubyte"][label])


def test_single_file_without_labels_is_unlabelled(tmp_path):
    path = write(tmp_path / "imgs-idx3.bin", idx_bytes(images(5, 0)))
    ds = load_dataset(f"idx:{path}", QUIET)
    assert not ds.labelled and len(ds.x_train) + len(ds.x_test) == 5


def test_dotted_names_and_only_a_train_pair(tmp_path):
    write(tmp_path / "train-images.idx3-ubyte", idx_bytes(images(10, 0)))
    write(tmp_path / "train-labels.idx1-ubyte", idx_bytes(np.arange(10)))
    ds = load_dataset(f"idx:{tmp_path}", QUIET)
    assert len(ds.x_train) == 8 and len(ds.x_test) == 2 and ds.labelled


def opts(**kw) -> LoadOptions:
    return LoadOptions(progress=False, **kw)


def header(code=0x08, ndim=3, dims=(2, 3, 3)) -> bytes:
    return bytes([0, 0, code, ndim]) + struct.pack(f">{len(dims)}I", *dims)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"PK\x03\x04junk", r"not an IDX file \(magic 504b0304\)"),
        (header(code=0x0D) + bytes(72), r"dtype code 0x0d \(float32\); expected 0x08"),
        (header(ndim=2, dims=(2, 9)) + bytes(18), "2 dimensions; expected 3"),
        (header()[:10], "truncated IDX header"),
        (
            header() + bytes(17),
            r"says 2×3×3 = 18 bytes of values, but the file (holds|decompresses to) 17$",
        ),
        (header(dims=(2**31, 2**16, 2**16)) + bytes(18), "header says 2147483648×65536×65536"),
        (header() + bytes(19), r"18 bytes of values, but the file (holds|decompresses to) 19$"),
    ],
)
@pytest.mark.parametrize("gz", [False, True])
def test_bad_files_give_one_line_naming_the_file(tmp_path, data, message, gz):
    path = write(tmp_path / ("x-idx3-ubyte" + (".gz" if gz else "")), data)
    with pytest.raises(DataError, match=message) as info:
        read_idx(path, 3)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_gz_claiming_more_than_deflate_can_hold_is_refused_before_reading(tmp_path):
    # A consistent trailer cannot save a header that no 40-odd compressed bytes could expand to.
    path = write(tmp_path / "x.gz", header(dims=(1000, 100, 100)))
    raw = bytearray(path.read_bytes())
    raw[-4:] = struct.pack("<I", (16 + 10**7) % 2**32)
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="more than .* compressed bytes can hold"):
        read_idx(path, 3)


def test_not_gzip_despite_the_name(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(header() + bytes(18))
    with pytest.raises(DataError, match=r"train-images-idx3-ubyte.gz: unreadable \(Not a gzipped"):
        read_idx(path, 3)


def test_truncated_gz_stream_names_the_file(tmp_path):
    path = write(tmp_path / "t10k-images-idx3-ubyte.gz", idx_bytes(images(50, 0, 20, 20)))
    path.write_bytes(path.read_bytes()[:-200] + path.read_bytes()[-8:])  # keep the trailer
    with pytest.raises(DataError, match=str(path)):
        read_idx(path, 3)


def test_label_count_must_match(tmp_path):
    mnist_folder(tmp_path, gz=False)
    write(tmp_path / "t10k-labels-idx1-ubyte", idx_bytes(np.arange(5)))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte: 5 labels for 6 images"):
        load_dataset(f"idx:{tmp_path}", QUIET)


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="no IDX images file"):
        load_dataset(f"idx:{tmp_path}", QUIET)
    mnist_folder(tmp_path, gz=False)
    (tmp_path / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(DataError, match="has train labels but no t10k labels file"):
        load_dataset(f"idx:{tmp_path}", QUIET)
    write(tmp_path / "train-images-idx3-ubyte.gz", idx_bytes(images(2, 0)))
    with pytest.raises(DataError, match="more than one train images file"):
        load_dataset(f"idx:{tmp_path}", QUIET)
    with pytest.raises(DataError, match="no such file or folder"):
        load_dataset(f"idx:{tmp_path / 'absent'}", QUIET)


def test_cli_squeeze_on_idx_and_a_bad_file_is_one_red_line(tmp_path):
    mnist_folder(tmp_path / "ok", gz=True, n_train=30, n_test=10)
    runner = CliRunner()
    plot = ["--plot", str(tmp_path / "s.png")]
    args = ["squeeze", "-e", "pixels-grey", "--data", f"mnist:{tmp_path / 'ok'}", *plot]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"][0]["images"] == 10
    bad = write(tmp_path / "bad" / "train-images-idx3-ubyte", header(code=0x0C) + bytes(72))
    result = runner.invoke(app, ["squeeze", "-e", "pixels-grey", "--data", f"idx:{bad}", *plot])
    assert result.exit_code == 1
    assert "dtype code 0x0c (int32)" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_cli_error_keeps_brackets_in_paths(tmp_path):
    absent = tmp_path / "mnist[1]"
    result = CliRunner().invoke(app, ["squeeze", "-e", "pixels-grey", "--data", f"idx:{absent}"])
    assert result.exit_code == 1 and f"{absent}: no such file or folder" in result.output


@pytest.fixture
def debian_fashion() -> Path:
    if not (DEBIAN_FASHION / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(
            f"Fashion-MNIST is absent ({DEBIAN_FASHION}: apt install dataset-fashion-mnist)"
        )
    return DEBIAN_FASHION


def test_debian_fashion_mnist(debian_fashion):
    ds = load_dataset(f"mnist:{debian_fashion}", opts(limit=500))
    assert ds.x_train.shape == (500, 28, 28, 1) and ds.x_test.shape == (500, 28, 28, 1)
    full = read_idx(debian_fashion / "t10k-labels-idx1-ubyte.gz", 1)
    # The published test labels: 10,000 of them, 1,000 per class, starting 9, 2, 1, 1, 6.
    assert len(full) == 10_000 and np.bincount(full).tolist() == [1000] * 10
    assert full[:5].tolist() == [9, 2, 1, 1, 6]
