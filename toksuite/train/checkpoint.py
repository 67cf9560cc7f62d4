"""Checkpoints that resume bit for bit: weights, optimiser, RNG states and the data position.

Everything is stored as tensors and plain Python types so that ``torch.load(weights_only=True)``
reads it back (no pickle of arbitrary objects). The file is written to a temporary name and renamed,
so a kill at any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from toksuite.errors import ConfigError
from toksuite.io import atomic_path

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT = 1


def rng_state() -> dict[str, Any]:
    """Every RNG a run touches, as tensors / plain types."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    version, py_state, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": str(kind),
            "keys": torch.from_numpy(np.asarray(keys, np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "python": {"version": version, "state": list(py_state), "gauss_next": gauss_next},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    keys = n["keys"].numpy().astype(np.uint32)
    np.random.set_state((n["kind"], keys, n["pos"], n["has_gauss"], n["cached_gaussian"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss_next"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    path: Path,
    *,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    step: int,
    epoch: int,
    position: int,
    elapsed: float,
    train_flops: float,
    tokens_seen: int,
    images_seen: int,
    token_slots: int | None = None,
) -> None:
    """Write the checkpoint atomically (temporary file, then rename)."""
    payload = {
        "format": FORMAT,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        # The schedule is a pure function of (step, elapsed), so these two are its whole state.
        "scheduler": {"step": step, "elapsed": elapsed},
        "rng": rng_state(),
        "step": step,
        "epoch": epoch,
        "position": position,
        "elapsed": elapsed,
        "train_flops": train_flops,
        "tokens_seen": tokens_seen,
        "images_seen": images_seen,
        "token_slots": token_slots,  # padded slots processed (for the real-token share)
    }
    with atomic_path(path, suffix=".pt") as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: Path, map_location: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` (weights_only: tensors and plain data)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no checkpoint to resume from")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise ConfigError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ConfigError(f"{path}: not a toksuite checkpoint (format {FORMAT})")
    return payload
