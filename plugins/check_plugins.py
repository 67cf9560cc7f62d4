"""Check that the example plugins are installed and reachable through the `toksuite` CLI.

Run after ``pip install -e plugins/NAME`` for every plugin (``make test`` does this), with the
Python that has toksuite installed. It runs the real CLI (``python -m toksuite``) with plugin
autoload on, and fails with a message naming what is wrong when an example encoder is not listed
by ``toksuite encoders``, when ``toksuite plugins`` reports a failure, or when a tiny
``toksuite squeeze`` run over all of them does not produce a row for each. About 20-30 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

EXPECTED = {
    "tutorial": ["pixels-grey4"],
    "bpe-extras": ["bpe-rgb-snake", "bpe-rgb-hilbert"],
}


def toksuite(*args: str) -> dict | list:
    env = {k: v for k, v in os.environ.items() if k != "TOKSUITE_DISABLE_PLUGIN_AUTOLOAD"}
    env["TOKSUITE_QUIET"] = "1"
    done = subprocess.run(
        [sys.executable, "-m", "toksuite", *args, "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        command = " ".join(["toksuite", *args])
        sys.exit(f"{command} failed (exit {done.returncode}): {done.stderr.strip()}")
    return json.loads(done.stdout)


def main() -> None:
    listed = {e["name"]: e["plugin"] for e in toksuite("encoders")}
    for plugin, names in EXPECTED.items():
        for name in names:
            if listed.get(name) != plugin:
                sys.exit(f"`toksuite encoders` does not list {name!r} from plugin {plugin!r}")
    report = toksuite("plugins")
    if report["failures"]:
        sys.exit(f"`toksuite plugins` reports failures: {report['failures']}")
    names = [n for group in EXPECTED.values() for n in group]
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["TOKSUITE_CACHE_DIR"] = os.path.join(tmp, "cache")
        result = toksuite(
            "squeeze", "-e", ",".join(names), "--vocab", "1100",
            "-d", "sample-images", "--limit", "40", "--plot", os.path.join(tmp, "squeeze.png"),
        )  # fmt: skip
        measured = {row["encoder"] for row in result["rows"]}
        if measured != set(names):
            sys.exit(f"`toksuite squeeze` measured {sorted(measured)}, expected {sorted(names)}")
        # compare runs the whole pipeline (fit, pretrain, probe, sample) on each of them.
        report = toksuite(
            "compare", "-e", ",".join(names), "-d", "sample-images", "--limit", "24",
            "-r", "8", "-m", "tiny", "--epochs", "1", "--samples", "2",
            "-p", "vocab_size=1100", "--out", os.path.join(tmp, "compare"),
        )  # fmt: skip
    compared = {row["encoder"] for row in report["summary"]}
    if compared != set(names):
        sys.exit(f"`toksuite compare` ran {sorted(compared)}, expected {sorted(names)}")
    print(
        f"ok: {', '.join(names)} listed, loaded without failures, measured by squeeze and "
        "run end to end by compare"
    )


if __name__ == "__main__":
    main()
