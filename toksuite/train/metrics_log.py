"""A run's training log: metrics.jsonl (append-only, truncated on resume) and its loss plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class MetricsLog:
    """Append-only JSON lines; on resume, lines past the checkpoint's step are dropped first."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def truncate_after(self, step: int) -> None:
        if not self.path.exists():
            return
        keep = [line for line in self.read() if line.get("step", 0) <= step]
        from toksuite.io import write_bytes_atomic

        write_bytes_atomic(self.path, "".join(json.dumps(r) + "\n" for r in keep).encode())

    def append(self, record: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


def plot_loss(records: list[dict[str, Any]], path: Path, *, title: str = "") -> None:
    """Two panels: training loss against steps and against training FLOPs."""
    rows = [r for r in records if r.get("event") == "train"]
    if not rows:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from toksuite.io import atomic_path

    fig, (ax_steps, ax_flops) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    steps = [r["step"] for r in rows]
    flops = [r["train_flops"] for r in rows]
    loss = [r["loss"] for r in rows]
    ax_steps.plot(steps, loss)
    ax_steps.set_xlabel("step")
    ax_flops.plot(flops, loss)
    ax_flops.set_xscale("log")
    ax_flops.set_xlabel("training FLOPs")
    for ax in (ax_steps, ax_flops):
        ax.set_ylabel("train loss (nats/token)")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
