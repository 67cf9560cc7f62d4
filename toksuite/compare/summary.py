"""The comparison's summary table, defined once: its columns (key, header, definition), one row
per encoder from its stages' results, and each row's cells as text. The CLI table, report.md and
report.html all print it from here.
"""

from __future__ import annotations

from typing import Any

from toksuite.formatting import fmt
from toksuite.pooling import DEFAULT_POOL

# (key, header, unit/definition) of the summary table, in order.
SUMMARY_COLUMNS = (
    ("encoder", "encoder", "registry name"),
    (
        "images",
        "images",
        "which quantised images the row models: rows with the same letter have the same "
        "quantize() on every held-out image, and their bits compare directly",
    ),
    ("vocab", "vocab", "encoder vocabulary (the model adds one BOS id)"),
    ("tokens_per_image", "tokens/image", "mean tokens per held-out image"),
    ("squeeze", "squeeze", "mean over held-out images of H·W / tokens (paper §3.3)"),
    ("psnr_db", "PSNR dB", "quantisation PSNR of the encoder (dB, peak 255); – when lossless"),
    ("fwd_flops_per_image", "fwd FLOPs/image", "forward FLOPs per held-out image (2 × MACs)"),
    (
        "train_flops",
        "train FLOPs",
        "training FLOPs the run spent on real tokens, each sequence at its own length n "
        "(6·N + 12·L·d·n per token; padding not counted)",
    ),
    ("epochs", "epochs", "passes over the train split"),
    (
        "real_token_share",
        "real tokens",
        "real tokens / padded token slots the model processed in training (1 = no padding)",
    ),
    (
        "bits_per_pixel",
        "bits/pixel",
        "held-out code length of the quantised image (sum of -log2 p over its tokens) / (H·W): "
        "ranks every encoder; read it with PSNR, since rows with other letters model other images",
    ),
    ("bits_per_dim", "bits/dim", "the same / (H·W·C)"),
    ("best_probe_layer", "probe layer", "layer with the best linear-probe test accuracy"),
    (
        "best_probe_accuracy",
        "probe acc",
        f"its test accuracy with the probe's pooling (default {DEFAULT_POOL}; toksuite.pooling)",
    ),
    (
        "well_formed_share",
        "well-formed",
        "share of unconditional samples that decode without repair and follow the encoder's "
        "grammar (1 when sampling is constrained to it: the default)",
    ),
    (
        "unconstrained_well_formed_share",
        "unconstrained",
        "the same share for a sampler that may write any id: how well the model learned the "
        "grammar (estimated from the constrained samples' importance weights, or measured with "
        "--unconstrained)",
    ),
)


SHARE_COLUMNS = ("well_formed_share", "unconstrained_well_formed_share", "real_token_share")


def summary_row(name: str, stages: dict[str, Any], group: str | None) -> dict[str, Any]:
    fit, flops, run = (stages[s].result for s in ("fit", "flops", "pretrain"))
    probe = stages["probe"].result["runs"][0] if "probe" in stages else {}
    sample = stages["sample"].result if "sample" in stages else {}
    return {
        "encoder": name,
        "images": group,
        "quantization": run.get("quantization"),
        "vocab": fit["vocab"],
        "tokens_per_image": fit["tokens_mean"],
        "squeeze": fit["squeeze"],
        "psnr_db": fit["psnr_db"],
        "fwd_flops_per_image": flops["fwd_flops"],
        "train_flops": run["train_flops"],
        "epochs": run["epochs"],
        "real_token_share": run.get("real_token_share"),
        "bits_per_image": run.get("bits_per_image"),
        "bits_per_pixel": run["bits_per_pixel"],
        "bits_per_dim": run.get("bits_per_dim"),
        "best_probe_layer": probe.get("best_layer"),
        "best_probe_accuracy": probe.get("best_accuracy"),
        "well_formed_share": sample.get("well_formed_share"),
        "unconstrained_well_formed_share": sample.get("unconstrained_well_formed_share"),
        "completion_well_formed_share": sample.get("completion_well_formed_share"),
        "completion_psnr_db": sample.get("completion_psnr_db"),
    }


def summary_cells(row: dict[str, Any]) -> list[str]:
    """A summary row's cells as text, in column order (the same in the CLI, Markdown, HTML)."""
    out = []
    for key, _, _ in SUMMARY_COLUMNS:
        v = row.get(key)
        if key in ("fwd_flops_per_image", "train_flops") and v is not None:
            out.append(f"{v:.3g}")
        elif key in SHARE_COLUMNS and v is not None:
            out.append(f"{100 * v:.0f}%")
        else:
            out.append(
                fmt(v, 2 if key in ("tokens_per_image", "squeeze", "psnr_db", "epochs") else 3)
            )
    return out


def summary_table(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Header → cell text for each row (what `toksuite compare` prints)."""
    headers = [header for _, header, _ in SUMMARY_COLUMNS]
    return [dict(zip(headers, summary_cells(row), strict=True)) for row in rows]
