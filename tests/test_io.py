"""Atomic writes, and the leftovers of killed ones: removed once stale, never someone else's."""

from __future__ import annotations

import os
import time

import pytest
from typer.testing import CliRunner

from toksuite.cli import app
from toksuite.io import STALE_TMP_SECONDS, atomic_dir, remove_stale_tmp


def age(path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def leftovers(tmp_path, name: str):
    """What a killed write of ``name`` leaves: an old and a young temporary directory."""
    old = tmp_path / f".{name}.k1ll3d.tmp"
    (old / "sub").mkdir(parents=True)
    (old / "sub" / "part.npy").write_bytes(b"half")
    age(old, STALE_TMP_SECONDS + 60)
    young = tmp_path / f".{name}.running.tmp"
    young.mkdir()
    return old, young


def test_atomic_dir_removes_only_its_own_stale_temporaries(tmp_path):
    old, young = leftovers(tmp_path, "out")
    other = tmp_path / ".someone-else.tmp"  # not toksuite's, however old
    other.write_text("keep")
    age(other, 10 * STALE_TMP_SECONDS)
    other_target, _ = leftovers(tmp_path, "other-out")
    with atomic_dir(tmp_path / "out") as tmp:
        (tmp / "a.txt").write_text("done")
    assert (tmp_path / "out" / "a.txt").read_text() == "done"
    assert not old.exists()
    assert young.exists()  # may be a write still running
    assert other.exists() and other_target.exists()


def test_remove_stale_tmp_counts_and_tolerates_a_missing_folder(tmp_path):
    old, young = leftovers(tmp_path, "x")
    stale_file = tmp_path / ".x.abc.tmp"
    stale_file.write_text("half")
    age(stale_file, STALE_TMP_SECONDS + 1)
    assert remove_stale_tmp(tmp_path) == 2
    assert not old.exists() and not stale_file.exists() and young.exists()
    assert remove_stale_tmp(tmp_path / "nope") == 0


@pytest.mark.parametrize("existing", [False, True])
def test_fit_cleans_up_after_a_killed_fit(tmp_path, existing):
    out = tmp_path / "enc"
    if existing:  # a fit over an earlier one: the same clean-up, and the old output replaced
        assert CliRunner().invoke(app, ["fit", "pixels-grey", "-o", str(out)]).exit_code == 0
    old, young = leftovers(tmp_path, "enc")
    result = CliRunner().invoke(app, ["fit", "pixels-grey", "-o", str(out), "--limit", "5"])
    assert result.exit_code == 0, result.output
    assert (out / "toksuite.json").is_file()
    assert not old.exists() and young.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".enc.running.tmp", "enc"]
