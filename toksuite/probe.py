"""Linear probes on every layer of a pretrained run (iGPT §4, the paper's Figure 5).

For each labelled image: one forward pass gives the hidden states of every layer (embedding output
included); each layer is pooled over the image's tokens, by every pooling asked for at once
(`toksuite.pooling`: the mean over tokens, the mean over pixels, or a grid of pixel cells; layer
norm first or not), padding and BOS excluded. A logistic regression per layer, on standardised
features with its regularisation chosen on a validation split carved from train, then gives test
accuracy. Two controls share the table: logistic regression on the raw pixels, and the same
architecture with its initial (untrained) weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from toksuite.errors import ConfigError, DataError
from toksuite.linear_probe import fit_probe, fit_probes
from toksuite.pooling import (
    DEFAULT_POOL,
    PixelWeights,
    PoolSpec,
    parse_pool,
    pixel_weights,
    pool_hidden,
)

if TYPE_CHECKING:
    from toksuite.train.rundir import Run


def random_init_model(run: Run):
    """The run's architecture with the weights it started from (same seed), never trained."""
    from toksuite.model import build_model

    m = run.info.model
    return build_model(m.shape, m.vocab_size, m.n_positions, seed=run.info.options.seed)


# ---------------------------------------------------------------------------- features
@torch.no_grad()
def layer_features(
    model,
    input_ids: torch.Tensor,
    lengths: torch.Tensor,
    pools: Sequence[PoolSpec | str] | PoolSpec | str,
    weights: dict[int, torch.Tensor] | None = None,
):
    """Pooled features of every layer (embeddings first) from ONE forward pass.

    One pool: a list of B×F per layer; several: pool name → that list. ``weights`` holds, per
    cells a side, the B×L×slots weights of the pixel-space pools (`PixelWeights.dense`).
    """
    single = isinstance(pools, PoolSpec | str)
    given = [pools] if isinstance(pools, PoolSpec | str) else list(pools)
    specs = [p if isinstance(p, PoolSpec) else parse_pool(p) for p in given]
    out = model.transformer(input_ids, output_hidden_states=True, use_cache=False)
    pooled = {
        s.name: [
            pool_hidden(h, lengths, s, (weights or {}).get(s.cells)) for h in out.hidden_states
        ]
        for s in specs
    }
    return pooled[specs[0].name] if single else pooled


def extract_features(
    model,
    data,
    *,
    pools: Sequence[PoolSpec],
    pixels: dict[int, PixelWeights] | None = None,
    batch_size: int = 64,
    device: torch.device,
) -> dict[str, list[np.ndarray]]:
    """Pool name → per-layer N×F features of a `SequenceTable`, batched (bf16 autocast on CUDA).

    ``pixels`` holds the token-to-pixel weights of the pixel-space pools (`pixel_weights`).
    """
    from toksuite.model import causal_sdpa
    from toksuite.train.batching import sorted_batches
    from toksuite.train.sequences import host_to_device, make_batch

    model = model.to(device).eval()
    data = data.to(device)
    features: dict[str, list[np.ndarray]] = {}
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    with causal_sdpa(model):  # right-padded, no mask: padding only follows the image tokens
        # Batches of similar lengths waste little on padding; rows go back to the images' order.
        for index in sorted_batches(data.lengths, batch_size):
            input_ids, _, _ = make_batch(data, index)
            lengths = host_to_device(data.lengths[index], device)
            weights = {
                cells: w.dense(index, input_ids.shape[1], data.lengths[index])
                for cells, w in (pixels or {}).items()
            }
            with autocast:
                layers = layer_features(model, input_ids, lengths, pools, weights)
            for name, pooled in layers.items():
                if name not in features:
                    features[name] = [np.zeros((len(data), f.shape[1]), np.float32) for f in pooled]
                for out, f in zip(features[name], pooled, strict=True):
                    out[index] = f.float().cpu().numpy()
    return features


# ---------------------------------------------------------------------------- logistic regression
def probe_layers(features_train, y_train, features_test, y_test, *, seed: int = 0) -> dict:
    """A probe per layer, all fitted side by side (see `toksuite.linear_probe`)."""
    pairs = zip(features_train, features_test, strict=True)
    scores = fit_probes([(a, y_train, b, y_test) for a, b in pairs], seed=seed)
    layers = [{"layer": i, **s} for i, s in enumerate(scores)]
    best = max(layers, key=lambda r: (r["test_accuracy"], -r["layer"]))
    return {"layers": layers, "best_layer": best["layer"], "best_accuracy": best["test_accuracy"]}


_RAW_CONTROLS: dict[tuple[str, int], dict[str, float]] = {}


def raw_pixel_control(dataset, seed: int) -> dict[str, float]:
    """Logistic regression on the flattened pixels, fitted once per (images, seed) per process.

    On 32×32 RGB it is the costliest probe (3,072 features), and `compare` probes each encoder's
    run on the same images, so it is remembered rather than refitted for every run.
    """
    key = (dataset.fingerprint(), seed)
    if key not in _RAW_CONTROLS:
        flat = [x.reshape(len(x), -1).astype(np.float32) for x in (dataset.x_train, dataset.x_test)]
        _RAW_CONTROLS[key] = fit_probe(flat[0], dataset.y_train, flat[1], dataset.y_test, seed=seed)
    return dict(_RAW_CONTROLS[key])


# ---------------------------------------------------------------------------- the command's core
def probe(
    run_dirs: list[str | Path],
    *,
    data: str | None = None,
    pool: str | Sequence[str] = DEFAULT_POOL,
    resolution: tuple[int, int] | None = None,
    crop: tuple[int, int, int, int] | None = None,
    limit: int | None = None,
    batch_size: int = 64,
    device: str = "auto",
    seed: int = 0,
    random_control: bool = True,
) -> dict[str, Any]:
    """Probe every layer of each run; the same images (train/test) for all runs and controls.

    ``pool``: one pooling or several (`toksuite.pooling`), all from the same forward passes; each
    run's entry holds every pooling's scores under ``by_pool``, and the first one's at its top.
    """
    from dataclasses import replace

    from toksuite.data import load_dataset
    from toksuite.data.base import skip_report
    from toksuite.train.distributed import choose_device
    from toksuite.train.rundir import load_run
    from toksuite.train.sequences import encode_images, sequence_table

    specs = [parse_pool(p) for p in ([pool] if isinstance(pool, str) else pool)]
    if not specs or len({s.name for s in specs}) != len(specs):
        raise ConfigError(f"--pool: give each pooling once ({', '.join(s.name for s in specs)})")
    if not run_dirs:
        raise ConfigError("give at least one --run")
    dev = choose_device(device)
    names = [s.name for s in specs]
    result: dict[str, Any] = {
        "data": data,
        "pool": names[0],
        "pools": names,
        "runs": [],
        "controls": {},
    }
    loaded = []  # every dataset read, for the record of skipped files
    for i, run_dir in enumerate(run_dirs):
        run = load_run(run_dir)
        load = run.load_options()
        load = replace(
            load,
            resolution=resolution or load.resolution,
            crop=crop or load.crop,
            limit=limit or load.limit,
        )
        spec = data or run.info.options.data
        dataset = load_dataset(spec, load)
        loaded.append(dataset)
        if not dataset.labelled:
            raise DataError(f"{spec}: probing needs labelled images (train and test)")
        context, bos = run.info.context, run.info.model.bos_id
        encoded = [
            encode_images(run.encoder, x, progress=False) for x in (dataset.x_train, dataset.x_test)
        ]
        splits = [sequence_table(ids, bos_id=bos, context=context) for ids in encoded]
        shape = dataset.x_train.shape[1:3]
        grids = sorted({s.cells for s in specs if s.in_pixels})  # pixel-mean: the 1×1 grid
        pixels = [pixel_weights(run.encoder, ids, shape, grids) if grids else {} for ids in encoded]
        models = [("trained", run.model)]
        if random_control:
            models.append(("random", random_init_model(run)))
        entry: dict[str, Any] = {
            "run": str(run.path),
            "label": run.label,
            "encoder": run.encoder.name,
            "context": context,
            "truncated": splits[0].truncated + splits[1].truncated,
        }
        entry["by_pool"] = {name: {} for name in names}
        for kind, model in models:
            feats = [
                extract_features(
                    model, split, pools=specs, pixels=w, batch_size=batch_size, device=dev
                )
                for split, w in zip(splits, pixels, strict=True)
            ]
            for name in names:
                scores = probe_layers(
                    feats[0][name], dataset.y_train, feats[1][name], dataset.y_test, seed=seed
                )
                pooled = entry["by_pool"][name]
                pooled.update(scores) if kind == "trained" else pooled.update(random_init=scores)
        entry.update(entry["by_pool"][names[0]])
        result["runs"].append(entry)
        if i == 0:
            result["controls"]["raw_pixels"] = raw_pixel_control(dataset, seed)
            n_classes = len(np.unique(np.concatenate([dataset.y_train, dataset.y_test])))
            result["chance"] = 1.0 / n_classes
            result["data"] = spec
            result["train_images"], result["test_images"] = (
                len(dataset.x_train),
                len(dataset.x_test),
            )
    result["skipped_files"] = skip_report(loaded)
    return result


def plot_probe(result: dict[str, Any], path: str | Path) -> None:
    """Accuracy against layer, one line per run; controls as horizontal dashed lines."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    from toksuite.io import atomic_path

    fig, ax = plt.subplots(figsize=(6.4, 4.2), constrained_layout=True)
    for run in result["runs"]:
        xs = [r["layer"] for r in run["layers"]]
        (line,) = ax.plot(
            xs,
            [r["test_accuracy"] for r in run["layers"]],
            marker="o",
            label=run["label"]
            if run["label"] == run["encoder"]
            else f"{run['label']} ({run['encoder']})",
        )
        if "random_init" in run:
            ax.axhline(
                run["random_init"]["best_accuracy"],
                ls="--",
                color=line.get_color(),
                alpha=0.7,
                label=f"{run['label']}: random weights (best layer)",
            )
    raw = result["controls"].get("raw_pixels")
    if raw:
        ax.axhline(raw["test_accuracy"], ls="--", color="black", label="raw pixels")
    if "chance" in result:
        ax.axhline(result["chance"], ls=":", color="grey", label="chance")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel("linear probe test accuracy")
    ax.grid(alpha=0.3)
    # Outside the axes: inside, it hides the lines of whichever run sits under it.
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=120, format="png", bbox_inches="tight")
    plt.close(fig)
