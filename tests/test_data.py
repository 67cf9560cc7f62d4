"""Data sources on small files made here: npz, CIFAR archives, image folders, bad input, options."""

from __future__ import annotations

import io
import os
import pickle
import struct
import tarfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from toksuite.data import LoadOptions, load_dataset, parse_spec
from toksuite.data.images import read_image
from toksuite.data.transform import to_channels
from toksuite.errors import DataError, UnknownNameError

QUIET = LoadOptions(progress=False)


def opts(**kw) -> LoadOptions:
    return LoadOptions(progress=False, **kw)


def save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)
    return path


def solid(value, size=(6, 8)) -> np.ndarray:
    """An H×W×3 image of one colour."""
    return np.full((*size, 3), value, np.uint8)


# ----------------------------------------------------------------------------- specs and built-ins
def test_parse_spec_keeps_path_colons():
    assert parse_spec("NPZ:a:b.npz") == ("npz", "a:b.npz")
    assert parse_spec("digits") == ("digits", None)


def test_unknown_source_suggests():
    with pytest.raises(UnknownNameError, match="cifar10"):
        load_dataset("cifar1:x", QUIET)


def test_path_source_needs_path():
    with pytest.raises(DataError, match="needs a path"):
        load_dataset("npz", QUIET)


def test_digits_labels_and_names():
    ds = load_dataset("digits", opts(limit=50))
    assert ds.x_train.shape == (50, 8, 8, 1) and ds.x_train.dtype == np.uint8
    assert ds.class_names == [str(i) for i in range(10)]
    assert ds.labelled and set(ds.y_train) <= set(range(10))


def test_sample_images_tiles():
    ds = load_dataset("sample-images", opts(resolution=(100, 100), channels=1))
    # Two 427×640 photos → 4×6 tiles each = 48 tiles, split 80/20.
    assert len(ds.x_train) + len(ds.x_test) == 48
    assert ds.image_shape == (100, 100, 1) and not ds.labelled


# ----------------------------------------------------------------------------- npz
def test_npz_x_y_layout_is_split(tmp_path):
    x = np.arange(10 * 4 * 5, dtype=np.uint8).reshape(10, 4, 5)  # NHW → C = 1
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(10))
    ds = load_dataset(f"npz:{tmp_path / 'd.npz'}", opts(test_fraction=0.3))
    assert ds.x_train.shape == (7, 4, 5, 1) and ds.x_test.shape == (3, 4, 5, 1)
    # Labels travel with their images.
    for xs, ys in ((ds.x_train, ds.y_train), (ds.x_test, ds.y_test)):
        for image, label in zip(xs, ys, strict=True):
            np.testing.assert_array_equal(image[..., 0], x[label])


def test_npz_split_layout_and_class_names(tmp_path):
    rgb = np.zeros((4, 3, 3, 3), np.uint8)
    np.savez(
        tmp_path / "s.npz",
        x_train=rgb,
        y_train=np.array([0, 1, 0, 1]),
        x_test=rgb[:2],
        y_test=np.array([1, 0]),
        class_names=np.array(["cat", "dog"]),
    )
    ds = load_dataset(f"npz:{tmp_path / 's.npz'}", QUIET)
    assert ds.x_train.shape == (4, 3, 3, 3) and ds.x_test.shape == (2, 3, 3, 3)
    assert ds.class_names == ["cat", "dog"] and list(ds.y_test) == [1, 0]


def test_npz_wrong_keys_names_file_and_keys(tmp_path):
    np.savez(tmp_path / "bad.npz", images=np.zeros((2, 2, 2), np.uint8), target=np.zeros(2))
    with pytest.raises(DataError, match=r"bad\.npz.*found: images, target"):
        load_dataset(f"npz:{tmp_path / 'bad.npz'}", QUIET)


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x": np.zeros((2, 3, 3), np.float32)}, "float32; expected uint8"),
        ({"x": np.zeros((2, 3, 3, 4), np.uint8)}, r"shape \(2, 3, 3, 4\)"),
        ({"x": np.zeros((2, 3, 3), np.uint8), "y": np.zeros(3, int)}, "3 labels for 2 images"),
        ({"x": np.array([None, 1], dtype=object)}, "Python objects"),
    ],
)
def test_npz_bad_arrays(tmp_path, arrays, message):
    np.savez(tmp_path / "b.npz", **arrays)
    with pytest.raises(DataError, match=message):
        load_dataset(f"npz:{tmp_path / 'b.npz'}", QUIET)


def test_npz_not_an_archive(tmp_path):
    # numpy would call this pickled data and advise allow_pickle, which is refused here anyway.
    (tmp_path / "junk.npz").write_bytes(b"definitely not a zip file")
    with pytest.raises(DataError) as info:
        load_dataset(f"npz:{tmp_path / 'junk.npz'}", QUIET)
    assert (
        str(info.value)
        == f"{tmp_path / 'junk.npz'}: not a zip/npz archive (no zip or .npy signature)"
    )
    assert "pickle" not in str(info.value)


def test_npz_truncated_zip_is_one_line(tmp_path):
    np.savez(tmp_path / "t.npz", x=np.zeros((4, 3, 3), np.uint8))
    data = (tmp_path / "t.npz").read_bytes()
    (tmp_path / "t.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"t.npz: not a readable .npz file"):
        load_dataset(f"npz:{tmp_path / 't.npz'}", QUIET)


def _is_mapped(array: np.ndarray) -> bool:
    while array is not None:
        if isinstance(array, np.memmap):
            return True
        array = array.base if isinstance(array.base, np.ndarray) else None
    return False


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_uncompressed_members_are_memory_mapped(tmp_path, compressed):
    """np.savez members are mapped from the file (read as they are used), savez_compressed ones
    are read; both give the same pixels, and writing to a mapped array leaves the file alone."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (30, 5, 4, 1), dtype=np.uint8),
        "y_train": np.arange(30) % 3,
        "x_test": rng.integers(0, 256, (7, 5, 4), dtype=np.uint8),  # N×H×W grey → N×H×W×1
        "y_test": np.arange(7) % 3,
    }
    path = tmp_path / "d.npz"
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    before = path.read_bytes()
    ds = load_dataset(f"npz:{path}", QUIET)
    np.testing.assert_array_equal(ds.x_train, arrays["x_train"])
    np.testing.assert_array_equal(ds.x_test, arrays["x_test"][..., None])
    assert _is_mapped(ds.x_train) is (not compressed)
    assert _is_mapped(ds.x_test) is (not compressed)
    ds.x_train[0] = 0  # copy-on-write: this process sees it, the file does not
    assert path.read_bytes() == before
    limited = load_dataset(f"npz:{path}", LoadOptions(limit=10, progress=False))
    assert len(limited.x_train) == 10 and not _is_mapped(limited.x_train)  # the subset is read


def test_npz_member_memmap_reads_what_np_load_reads(tmp_path):
    """Fortran order, an empty array, other dtypes, a member stored after a compressed one."""
    import zipfile

    from toksuite.npyfile import npz_member_memmap

    arrays = {
        "f": np.asfortranarray(np.arange(24, dtype=np.int32).reshape(4, 6)),
        "empty": np.zeros((0, 3), np.uint16),
        "big": np.arange(5000, dtype=np.float64),
    }
    path = tmp_path / "m.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("first.npy", b"padding " * 100, compress_type=zipfile.ZIP_DEFLATED)
        for key, value in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, value)
            archive.writestr(f"{key}.npy", buffer.getvalue())  # stored: the default
    for key, value in arrays.items():
        mapped = npz_member_memmap(path, key)
        assert mapped.dtype == value.dtype and mapped.shape == value.shape
        np.testing.assert_array_equal(mapped, value)
    assert npz_member_memmap(path, "first") is None  # compressed, and not a .npy
    assert npz_member_memmap(path, "missing") is None


# ----------------------------------------------------------------------------- CIFAR
def cifar_rows(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 3072), dtype=np.uint8)


def cifar_batch(n: int, seed: int, label_key=b"labels") -> bytes:
    batch = {
        b"batch_label": b"fake",
        b"data": cifar_rows(n, seed),
        label_key: [i % 10 for i in range(n)],
    }
    return pickle.dumps(batch, protocol=2)


def cifar10_files(test_batch: bytes | None = None) -> dict[str, bytes]:
    files = {f"data_batch_{i}": cifar_batch(3, i) for i in range(1, 6)}
    files["test_batch"] = test_batch or cifar_batch(2, 9)
    names = [f"class{i}".encode() for i in range(10)]
    files["batches.meta"] = pickle.dumps({b"label_names": names, b"num_vis": 3072}, protocol=2)
    return files


def write_tar(path: Path, top: str, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def write_folder(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def test_cifar10_archive_layout_and_pixels(tmp_path):
    archive = write_tar(tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py", cifar10_files())
    ds = load_dataset(f"cifar10:{archive}", QUIET)
    assert ds.x_train.shape == (15, 32, 32, 3) and ds.x_test.shape == (2, 32, 32, 3)
    assert ds.class_names == [f"class{i}" for i in range(10)]
    assert list(ds.y_train[:4]) == [0, 1, 2, 0]
    row = cifar_rows(3, 1)[0]  # first image of data_batch_1: R plane, G plane, B plane
    r, c = 5, 7
    assert tuple(ds.x_train[0, r, c]) == (
        row[r * 32 + c],
        row[1024 + r * 32 + c],
        row[2048 + r * 32 + c],
    )


def test_cifar10_extracted_folder_equals_archive(tmp_path):
    files = cifar10_files()
    archive = write_tar(tmp_path / "c.tar.gz", "cifar-10-batches-py", files)
    folder = write_folder(tmp_path / "x" / "cifar-10-batches-py", files)
    a = load_dataset(f"cifar10:{archive}", QUIET)
    for path in (folder, folder.parent):  # the batch folder itself or the folder above it
        b = load_dataset(f"cifar10:{path}", QUIET)
        np.testing.assert_array_equal(a.x_train, b.x_train)
        np.testing.assert_array_equal(a.y_test, b.y_test)


def test_cifar100_fine_labels(tmp_path):
    files = {
        "train": cifar_batch(4, 1, b"fine_labels"),
        "test": cifar_batch(2, 2, b"fine_labels"),
        "meta": pickle.dumps({b"fine_label_names": [f"f{i}".encode() for i in range(100)]}, 2),
    }
    ds = load_dataset(
        f"cifar100:{write_tar(tmp_path / 'c.tar.gz', 'cifar-100-python', files)}", QUIET
    )
    assert len(ds.x_train) == 4 and ds.class_names[99] == "f99"


def test_cifar_python2_module_names_are_admitted(tmp_path):
    # The official files were pickled by numpy 1.x under Python 2: numpy.core.multiarray.
    files = {
        k: v.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
        for k, v in cifar10_files().items()
    }
    assert b"numpy.core.multiarray\n_reconstruct" in files["test_batch"]
    ds = load_dataset(f"cifar10:{write_folder(tmp_path / 'c', files)}", QUIET)
    assert ds.x_test.shape == (2, 32, 32, 3)


class Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_pickle_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "pwned"
    evil = pickle.dumps({b"data": Evil(marker), b"labels": []}, protocol=2)
    archive = write_tar(tmp_path / "c.tar.gz", "cifar-10-batches-py", cifar10_files(evil))
    with pytest.raises(DataError, match=r"test_batch: refused to unpickle (posix|os)\.system"):
        load_dataset(f"cifar10:{archive}", QUIET)
    assert not marker.exists()


def test_cifar_not_a_tar(tmp_path):
    (tmp_path / "c.tar.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DataError, match=r"c\.tar\.gz: not a readable tar"):
        load_dataset(f"cifar10:{tmp_path / 'c.tar.gz'}", QUIET)


def test_cifar_missing_batch(tmp_path):
    files = cifar10_files()
    del files["data_batch_3"]
    archive = write_tar(tmp_path / "c.tar.gz", "cifar-10-batches-py", files)
    with pytest.raises(DataError, match="missing data_batch_3"):
        load_dataset(f"cifar10:{archive}", QUIET)


def test_cifar_wrong_shape(tmp_path):
    bad = pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, protocol=2)
    archive = write_tar(tmp_path / "c.tar.gz", "cifar-10-batches-py", cifar10_files(bad))
    with pytest.raises(DataError, match=r"test_batch: data has shape \(2, 100\)"):
        load_dataset(f"cifar10:{archive}", QUIET)


# ----------------------------------------------------------------------------- folders
def test_folder_classes_sorted_to_labels(tmp_path):
    for name, value in (("dog", 200), ("cat", 10), ("cat", 11)):
        save(tmp_path / name / f"{value}.png", solid(value))
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    ds = load_dataset(f"folder:{tmp_path}", opts(test_fraction=0))
    assert ds.class_names == ["cat", "dog"]
    assert sorted(zip(ds.x_train[:, 0, 0, 0].tolist(), ds.y_train.tolist(), strict=True)) == [
        (10, 0),
        (11, 0),
        (200, 1),
    ]
    assert any("ignored 1" in note for note in ds.notes)


def test_folder_flat_is_unlabelled(tmp_path):
    for i in range(5):
        save(tmp_path / f"{i}.PNG", solid(i))
    ds = load_dataset(f"folder:{tmp_path}", opts(test_fraction=0.4))
    assert not ds.labelled and len(ds.x_train) == 3 and len(ds.x_test) == 2


def test_folder_train_test_split(tmp_path):
    save(tmp_path / "train" / "a" / "1.png", solid(1))
    save(tmp_path / "train" / "b" / "2.png", solid(2))
    save(tmp_path / "test" / "b" / "3.png", solid(3))
    ds = load_dataset(f"folder:{tmp_path}", QUIET)
    assert ds.class_names == ["a", "b"]
    assert ds.y_train.tolist() == [0, 1] and ds.y_test.tolist() == [1]
    assert ds.x_test[0, 0, 0, 0] == 3


def test_empty_folder(tmp_path):
    (tmp_path / "only.txt").write_text("x")
    with pytest.raises(DataError, match="no image files"):
        load_dataset(f"folder:{tmp_path}", QUIET)


def test_sizes_differ_suggests_resolution(tmp_path):
    save(tmp_path / "a.png", solid(1, (4, 4)))
    save(tmp_path / "b.png", solid(1, (5, 4)))
    with pytest.raises(DataError, match="--resolution"):
        load_dataset(f"folder:{tmp_path}", QUIET)
    assert load_dataset(f"folder:{tmp_path}", opts(resolution=(3, 3))).image_shape == (3, 3, 3)


def jpeg_bytes(size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    image = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    Image.fromarray(image).save(buf, format="JPEG")
    return buf.getvalue()


def huge_png() -> bytes:
    """A valid PNG header claiming 30000×30000 pixels (no need to allocate them)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("zero.jpg", b"", "empty file"),
        ("text.png", b"hello, I am text", "not an image"),
        ("truncated.jpg", jpeg_bytes()[:400], "truncated"),
        ("corrupt.jpg", jpeg_bytes()[:300] + bytes(range(256)) * 8, "corrupt"),
        ("bomb.png", huge_png(), "too large"),
    ],
)
def test_bad_files_stop_or_skip(tmp_path, name, content, message):
    save(tmp_path / "good.png", solid(7, (48, 64)))
    (tmp_path / name).write_bytes(content)
    with pytest.raises(DataError, match=message) as err:
        load_dataset(f"folder:{tmp_path}", opts(test_fraction=0))
    assert name in str(err.value) and "\n" not in str(err.value)
    ds = load_dataset(f"folder:{tmp_path}", opts(test_fraction=0, on_error="skip"))
    assert ds.skipped == 1 and len(ds.x_train) == 1


def test_odd_modes_convert_sensibly(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # opaque red; the others transparent → white
    assert read_image(save(tmp_path / "rgba.png", rgba)).tolist()[0][:2] == [[255, 0, 0], [255] * 3]
    la = np.array([[[0, 0], [50, 255]]], np.uint8)
    assert read_image(save(tmp_path / "la.png", la, "LA"))[..., 0].tolist() == [[255, 50]]
    Image.fromarray(np.array([[0, 65535]], np.uint16)).save(tmp_path / "i16.png")
    assert read_image(tmp_path / "i16.png")[..., 0].tolist() == [[0, 255]]
    Image.new("CMYK", (2, 2), (0, 255, 255, 0)).save(tmp_path / "cmyk.tif")
    assert read_image(tmp_path / "cmyk.tif")[0, 0].tolist() == [255, 0, 0]
    Image.new("1", (2, 2), 1).save(tmp_path / "bw.png")
    assert read_image(tmp_path / "bw.png").shape == (2, 2, 1)
    Image.new("P", (2, 2), 0).save(tmp_path / "p.gif")
    assert read_image(tmp_path / "p.gif").shape == (2, 2, 3)


# ----------------------------------------------------------------------------- options
def test_luma_matches_hand_computed_value(tmp_path):
    red = np.zeros((1, 1, 1, 3), np.uint8)
    red[..., 0] = 255
    # 0.299 · 255 = 76.2 → 76, as PIL computes it for files.
    assert to_channels(red, 1).item() == 76
    assert read_image(save(tmp_path / "r.png", red[0]), channels=1).item() == 76
    assert to_channels(np.full((1, 1, 1, 1), 9, np.uint8), 3).tolist() == [[[[9, 9, 9]]]]


def test_crop_box_then_resolution(tmp_path):
    image = np.zeros((20, 30, 3), np.uint8)
    image[5:15, 10:20] = 255  # a white 10×10 square at left 10, top 5
    save(tmp_path / "a.png", image)
    crop = load_dataset(f"folder:{tmp_path}", opts(test_fraction=0, crop=(10, 5, 10, 10)))
    assert crop.image_shape == (10, 10, 3) and crop.x_train.min() == 255
    small = load_dataset(
        f"folder:{tmp_path}", opts(test_fraction=0, crop=(10, 5, 10, 10), resolution=(4, 4))
    )
    assert small.image_shape == (4, 4, 3) and small.x_train.min() == 255
    with pytest.raises(DataError, match="does not fit"):
        load_dataset(f"folder:{tmp_path}", opts(crop=(25, 0, 10, 10)))


def test_resolution_centre_crops_the_longer_side():
    ds = load_dataset("digits", opts(resolution=(16, 8), limit=3))
    assert ds.image_shape == (16, 8, 1)
    x = np.random.default_rng(0).integers(0, 256, (1, 10, 20, 3), dtype=np.uint8)
    from toksuite.data.transform import apply_geometry

    # The shorter side already fits: no resampling, just the centre 10×10 of the 10×20.
    np.testing.assert_array_equal(apply_geometry(x, opts(resolution=(10, 10)), "x"), x[:, :, 5:15])


def test_limit_and_split_are_deterministic(tmp_path):
    np.savez(
        tmp_path / "d.npz", x=np.arange(100, dtype=np.uint8).reshape(100, 1, 1), y=np.arange(100)
    )
    spec = f"npz:{tmp_path / 'd.npz'}"
    a, b = load_dataset(spec, opts(seed=1)), load_dataset(spec, opts(seed=1))
    c = load_dataset(spec, opts(seed=2))
    assert a.y_test.tolist() == b.y_test.tolist() != c.y_test.tolist()
    assert not set(a.y_train) & set(a.y_test) and len(a.y_test) == 20
    limited = load_dataset(spec, opts(seed=1, limit=5))
    assert len(limited.y_train) == 5 and len(limited.y_test) == 5
    assert set(limited.y_test) <= set(a.y_test)


@pytest.mark.shared_data
def test_celeba_folder_with_limit(shared_data):
    options = opts(crop=(19, 39, 140, 140), resolution=(112, 112), limit=40)
    ds = load_dataset(f"folder:{shared_data / 'celeba-6k'}", options)
    assert ds.x_train.shape == (40, 112, 112, 3) and ds.x_test.shape == (40, 112, 112, 3)
    assert len(ds.class_names) == 200 and ds.class_names[0] == "id000"
    assert ds.y_train.min() >= 0 and ds.y_train.max() < 200 and len(set(ds.y_train)) > 10
    assert 60 < ds.x_train.mean() < 200  # faces, not black frames


def test_skipped_files_keep_labels_aligned(tmp_path):
    for name, value in (("a", 10), ("b", 20), ("c", 30)):
        save(tmp_path / name / "ok.png", solid(value))
    (tmp_path / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    ds = load_dataset(f"folder:{tmp_path}", opts(test_fraction=0, on_error="skip"))
    assert ds.skipped == 1 and any("skipped 1" in note for note in ds.notes)
    assert ds.x_train[:, 0, 0, 0].tolist() == [10, 20, 30] and ds.y_train.tolist() == [0, 1, 2]


def test_grey_and_colour_files_become_rgb(tmp_path):
    save(tmp_path / "a.png", np.full((3, 3), 40, np.uint8))  # grey first
    save(tmp_path / "b.png", solid(90, (3, 3)))
    ds = load_dataset(f"folder:{tmp_path}", opts(test_fraction=0))
    assert ds.x_train.shape == (2, 3, 3, 3) and ds.x_train[:, 0, 0].tolist() == [[40] * 3, [90] * 3]
    grey = load_dataset(f"folder:{tmp_path}", opts(test_fraction=0, channels=1))
    assert grey.x_train[:, 0, 0, 0].tolist() == [40, 90]
