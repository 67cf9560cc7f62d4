"""Bad image files: every command that loads data takes --on-error, and a skip is never silent
(a warning on stderr even under TOKSUITE_QUIET, and the files in --json)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from toksuite import progress
from toksuite.compare import build_config
from toksuite.errors import ConfigError

runner = CliRunner()


def run(*args: str):
    from toksuite.cli import app

    return runner.invoke(app, list(args))


@pytest.fixture
def bad_folder(tmp_path):
    """30 small grey images and one file that only claims to be a PNG."""
    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(30):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(folder / f"{i:02}.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return folder


def assert_one_skip(report: dict, folder) -> None:
    assert report["count"] == 1
    [entry] = report["files"]
    assert entry["file"] == str(folder / "broken.png")
    assert "broken.png" not in entry["reason"] and entry["reason"]  # the why, without the path


def test_quiet_hides_progress_bars_only(monkeypatch):
    for value in ("", "0", "false", "False", "no", " off "):
        monkeypatch.setenv(progress.QUIET_ENV, value)
        assert progress.enabled(), value
    for value in ("1", "yes", "true"):
        monkeypatch.setenv(progress.QUIET_ENV, value)
        assert not progress.enabled(), value
    monkeypatch.delenv(progress.QUIET_ENV)
    assert progress.enabled()


def test_fit_skips_and_records_the_file(bad_folder, tmp_path):
    data = f"folder:{bad_folder}"
    result = run("fit", "pixels-grey", "-o", str(tmp_path / "e"), "-d", data, "--json")
    assert result.exit_code == 1 and "broken.png" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    args = ["fit", "pixels-grey", "-o", str(tmp_path / "e"), "-d", data]
    result = run(*args, "--on-error", "skip", "--json")
    assert result.exit_code == 0, result.output
    # TOKSUITE_QUIET is set for the tests: the warning must still be there.
    assert "skipped 1 unreadable image file" in result.stderr and "broken.png" in result.stderr
    doc = json.loads(result.stdout)
    assert_one_skip(doc["skipped_files"], bad_folder)
    assert doc["train_images"] + 1 <= 30
    assert run(*args, "--on-error", "maybe").exit_code == 2


def test_squeeze_records_skipped_files(bad_folder, tmp_path):
    data = f"folder:{bad_folder}"
    plot = str(tmp_path / "s.png")
    result = run("squeeze", "-e", "pixels-grey", "-d", data, "--plot", plot, "--on-error", "skip",
                 "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert_one_skip(json.loads(result.stdout)["skipped_files"], bad_folder)


@pytest.mark.slow
def test_flops_records_skipped_files(bad_folder):
    data = f"folder:{bad_folder}"
    flops = ["flops", "-e", "bpe-grey", "-p", "vocab_size=300", "-r", "8", "-d", data, "--json"]
    result = run(*flops)
    assert result.exit_code == 1 and "broken.png" in result.stderr
    result = run(*flops, "--on-error", "skip")
    assert result.exit_code == 0, result.output
    assert_one_skip(json.loads(result.stdout)["skipped_files"], bad_folder)


def test_clean_data_records_no_skips(tmp_path):
    result = run("fit", "pixels-grey", "-o", str(tmp_path / "e"), "--limit", "20", "--json")
    assert json.loads(result.stdout)["skipped_files"] == {"count": 0, "files": []}


def test_compare_config_takes_on_error(tmp_path, bad_folder):
    file = tmp_path / "c.toml"
    file.write_text('on_error = "skip"\n')
    assert build_config(file=file).on_error == "skip"
    assert build_config(file=file, cli={"on_error": "stop"}).on_error == "stop"  # the CLI wins
    assert build_config().on_error == "stop"
    file.write_text('on_error = "ignore"\n')
    with pytest.raises(ConfigError, match="on_error 'ignore': expected stop or skip"):
        build_config(file=file)
    out = str(tmp_path / "o")
    result = run("compare", "-e", "pixels-grey", "-d", f"folder:{bad_folder}", "-o", out)
    assert result.exit_code == 1 and "broken.png" in result.stderr.splitlines()[-1]
    assert run("compare", "--on-error", "maybe", "-o", out).exit_code == 2


@pytest.mark.slow
def test_compare_skips_a_bad_file_end_to_end(tmp_path, bad_folder):
    args = ["compare", "-e", "pixels-grey", "-d", f"folder:{bad_folder}", "-o", str(tmp_path / "o"),
            "--epochs", "0.5", "--batch-size", "8", "--no-probe", "--no-sample"]  # fmt: skip
    result = run(*args, "--on-error", "skip", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["config"]["on_error"] == "skip"
    assert_one_skip(doc["data"]["skipped_files"], bad_folder)
    run_dir = tmp_path / "o" / doc["encoders"]["pixels-grey"]["run_dir"]
    assert_one_skip(json.loads((run_dir / "summary.json").read_text())["skipped_files"], bad_folder)
    # A re-run reuses every stage and loads nothing: the record comes from the run's summary.
    again = json.loads(run(*args, "--on-error", "skip", "--json").stdout)
    assert {s["action"] for s in again["encoders"]["pixels-grey"]["stages"].values()} == {"reused"}
    assert_one_skip(again["data"]["skipped_files"], bad_folder)
