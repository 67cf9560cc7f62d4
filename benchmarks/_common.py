"""What the benchmark scripts share: data paths, CelebA faces, the machine, timing, JSON output.

Every script prints one JSON object whose ``machine`` block says where and when it ran (cores, CPU
model, library versions, load average before and after), so a table in docs/benchmarks.md can be
traced to the run that produced it. Timings are medians of ``time.perf_counter`` over repeats;
ratios are always taken between rows of the same run.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data"  # ../shared/data relative to the repo root
# The paper's framing of a 178×218 aligned CelebA face: the 140×140 box at (19, 39).
FACE_CROP = (19, 39, 140, 140)

os.environ.setdefault("TOKSUITE_QUIET", "1")  # progress bars would swamp the JSON on a terminal


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """Cores, CPU model, versions, date and the 1-minute load average (machines are shared)."""
    import sklearn
    import tokenizers
    import torch
    import transformers

    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "gpu": None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "sklearn": sklearn.__version__,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def add_data_argument(parser) -> None:
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA,
        help="folder holding celeba-6k/ and cifar10-20k.npz (default: ../shared/data)",
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run")


def load_faces(
    data_dir: Path, resolution: int, *, channels: int = 3, limit: int | None = None, seed: int = 0
):
    """CelebA faces from ``data_dir/celeba-6k`` (train/ and test/), framed as in the paper."""
    from toksuite.data import LoadOptions, load_dataset

    options = LoadOptions(
        crop=FACE_CROP,
        resolution=(resolution, resolution),
        channels=channels,
        limit=limit,
        seed=seed,
        progress=False,
    )
    return load_dataset(f"folder:{data_dir / 'celeba-6k'}", options)


def median_seconds(run: Callable[[], object], repeats: int = 3) -> float:
    """Median wall-clock seconds of ``repeats`` calls of ``run``."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(result: dict[str, Any], start_machine: dict[str, Any]) -> None:
    """Print ``result`` as JSON with the machine block (load average at the end added)."""
    start_machine = dict(start_machine)
    start_machine["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    json.dump({"machine": start_machine, **result}, sys.stdout, indent=2, default=_plain)
    print()


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")
