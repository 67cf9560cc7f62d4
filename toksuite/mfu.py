"""Model FLOPs utilisation: achieved FLOP/s over the GPU's peak, nanoGPT-style.

Peaks are **dense bf16 tensor-core FLOP/s** (no 2:4 sparsity; bf16 inputs, fp32 accumulate) from
the vendors' datasheets, where sparsity figures are twice these. A FLOP is half a multiply-add, as
in `toksuite.flops`. Pass ``peak=`` to use your own number (other clocks, other precisions).
"""

from __future__ import annotations

import re

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


def _current_device_name() -> str | None:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return None
    if not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name()


def device_key(device: str | None = None) -> str | None:
    """The table key for a key or a CUDA device name (None: the current CUDA device, if any)."""
    name = _current_device_name() if device is None else device
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


def peak_flops(device: str | None = None) -> float | None:
    """Dense bf16 peak FLOP/s of ``device`` (a table key or a CUDA device name); None if unknown."""
    key = device_key(device)
    return None if key is None else PEAK_BF16_FLOPS[key]


def estimate_mfu(
    flops_per_second_achieved: float,
    device: str | None = None,
    *,
    peak: float | None = None,
) -> float | None:
    """Achieved FLOP/s as a fraction of peak; None when the peak is unknown (CPU, unlisted GPU).

    Compute the achieved rate with the nanoGPT convention, `toksuite.flops.flops_per_token`
    × tokens per second (6·N + 12·L·d·T per trained token), or with
    `toksuite.flops.training_flops_per_image` × images per second (fvcore's count × 3).
    """
    if peak is None:
        peak = peak_flops(device)
        if peak is None:
            return None
    if peak <= 0:
        raise ConfigError(f"peak FLOP/s must be positive, got {peak}")
    return flops_per_second_achieved / peak
