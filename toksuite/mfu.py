"""Model FLOPs utilisation: achieved FLOP/s over the device's peak, nanoGPT-style.

The one place for both halves of MFU: the peak (`peak_flops`, read from `PEAK_BF16_FLOPS` by the
device's name, or the user's own number) and the ratio (`mfu`). The achieved rate comes from
`toksuite.flops`: `sequence_train_flops` (6·N + 12·L·d·T per trained token, what the training
loop counts) or `training_flops_per_image` (fvcore's count × 3), divided by seconds.

Peaks are **dense bf16 tensor-core FLOP/s** (no 2:4 sparsity; bf16 inputs, fp32 accumulate) from
the vendors' datasheets, where sparsity figures are twice these. A FLOP is half a multiply-add, as
in `toksuite.flops`. A CPU's peak is not known reliably, nor is an unlisted GPU's: their MFU is
None unless the user gives a peak (``override``; other clocks, other precisions).
"""

from __future__ import annotations

import re
from typing import Any

from toksuite.errors import ConfigError

PEAK_BF16_FLOPS: dict[str, float] = {
    "B200": 2250e12,
    "H100-SXM": 989e12,
    "H100-PCIe": 756e12,
    "H100-NVL": 835e12,
    "H200": 989e12,
    "GH200": 989e12,
    "A100": 312e12,
    "A10": 125e12,
    "L40S": 362e12,
    "L40": 181e12,
    "L4": 121e12,
    "RTX-A6000": 155e12,
    "RTX-4090": 165e12,
    "RTX-3090": 71e12,
}

# torch.cuda.get_device_name() → table key; order matters (PCIe/NVL before plain H100, L40S before
# L40 before L4, and A10 must not catch A100 or A10G).
_DEVICE_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"H100.*PCIE", "H100-PCIe"),
    (r"H100.*NVL", "H100-NVL"),
    (r"GH200", "GH200"),
    (r"H200", "H200"),
    (r"H100", "H100-SXM"),
    (r"B200", "B200"),
    (r"A100", "A100"),
    (r"\bA10\b", "A10"),
    (r"L40S", "L40S"),
    (r"\bL40\b", "L40"),
    (r"\bL4\b", "L4"),
    (r"RTX A6000", "RTX-A6000"),
    (r"RTX 4090", "RTX-4090"),
    (r"RTX 3090", "RTX-3090"),
)

# What torch.device() accepts as a string: such a string names a device, not a GPU model.
_TORCH_DEVICE = re.compile(r"^(cpu|cuda|mps|xpu)(:\d+)?$")


def device_name(device: Any = None) -> str | None:
    """The GPU model behind ``device``, as `torch.cuda.get_device_name` spells it; None on CPU.

    ``device``: None (the current CUDA device, if any), a `torch.device` or a string torch
    accepts (``"cuda:1"``), or already a name (``"NVIDIA H100 80GB HBM3"``, a table key).
    """
    if isinstance(device, str) and not _TORCH_DEVICE.match(device):
        return device
    import torch  # here, not at module level: the CLI starts without it

    if device is None:
        return torch.cuda.get_device_name() if torch.cuda.is_available() else None
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name(device)


def device_key(device: Any = None) -> str | None:
    """The `PEAK_BF16_FLOPS` key for ``device`` (as `device_name` takes it); None if unlisted."""
    name = device_name(device)
    if name is None:
        return None
    for key in PEAK_BF16_FLOPS:
        if name.strip().lower() == key.lower():
            return key
    upper = name.upper()
    for pattern, key in _DEVICE_PATTERNS:
        if re.search(pattern, upper):
            return key
    return None


def peak_flops(device: Any = None, *, override: float | None = None) -> float | None:
    """Dense bf16 peak FLOP/s of ``device``: ``override`` when given (the user's number), else
    the table's; None when it is not known (CPU, unlisted GPU)."""
    if override is not None:
        if not override > 0:
            raise ConfigError(f"peak FLOP/s must be positive, got {override}")
        return float(override)
    key = device_key(device)
    return None if key is None else PEAK_BF16_FLOPS[key]


def mfu(flops_per_second: float, peak: float | None) -> float | None:
    """Achieved FLOP/s as a fraction of ``peak`` (from `peak_flops`); None when it is unknown."""
    if peak is None:
        return None
    if not peak > 0:
        raise ConfigError(f"peak FLOP/s must be positive, got {peak}")
    return flops_per_second / peak
