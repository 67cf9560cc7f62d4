"""`torchrun -m toksuite pretrain` with 2 CPU processes (gloo): rank 0 writes the run directory."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def _env(tmp_path) -> dict[str, str]:
    return dict(
        os.environ,
        TOKSUITE_QUIET="1",
        OMP_NUM_THREADS="1",
        TOKSUITE_CACHE_DIR=str(tmp_path / "cache"),
    )


def _pretrain(out, *, images: int, checkpoint_every: int) -> list[str]:
    """`-m toksuite pretrain …` on 200 digits with the tiny model, as torchrun runs it."""
    return [
        "-m", "toksuite", "pretrain", "--out", str(out), "--data", "digits",
        "--model", "tiny", "--limit", "200", "--batch-size", "32", "--images", str(images),
        "--log-every", "2", "--checkpoint-every", str(checkpoint_every), "--json",
    ]  # fmt: skip


@pytest.mark.slow
def test_pretrain_under_torchrun_with_two_gloo_processes(tmp_path):
    out = tmp_path / "run"
    env = _env(tmp_path)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--standalone"]
    cmd += _pretrain(out, images=320, checkpoint_every=5)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 10
    assert summary["images_seen"] == 320  # the global batch, split between the ranks
    config = json.loads((out / "config.json").read_text())
    assert config["world_size"] == 2
    assert (out / "model" / "model.safetensors").is_file()
    assert (out / "checkpoint.pt").is_file() and (out / "loss.png").is_file()
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len([json.loads(x) for x in lines if '"train"' in x]) == 5  # rank 0 only wrote
    assert not list(out.glob(".*.tmp"))  # no half-written files left


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_multi_node_launch_form_with_two_single_process_nodes(tmp_path):
    """The documented multi-node command (c10d rendezvous), as two one-process "nodes" on this
    machine: they meet, train one DDP run, and give the single-process run's step count."""
    out = tmp_path / "run"
    env = _env(tmp_path)
    endpoint = f"127.0.0.1:{_free_port()}"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", "toksuite-test",
    ]  # fmt: skip
    cmd += _pretrain(out, images=192, checkpoint_every=0)
    nodes = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [node.communicate(timeout=300) for node in nodes]
    for node, (_, stderr) in zip(nodes, results, strict=True):
        assert node.returncode == 0, stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 6
    assert summary["images_seen"] == 192
    printed = [json.loads(stdout) for stdout, _ in results if stdout.strip()]
    assert len(printed) == 1 and printed[0]["steps"] == 6  # only rank 0 prints the summary
