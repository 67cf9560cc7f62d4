"""`toksuite probe`: linear-probe accuracy of every layer of one or more pretrained runs."""

from __future__ import annotations

from pathlib import Path

import typer

from toksuite.cli import options as opt
from toksuite.cli.app import app
from toksuite.cli.output import JSON_OPTION, emit, fmt
from toksuite.pooling import DEFAULT_POOL


@app.command()
def probe(
    run: list[Path] = typer.Option(..., "--run", help="Run directory (repeatable)."),
    data: str = typer.Option(
        None, "--data", "-d", help="Labelled data spec (default: each run's own --data)."
    ),
    pool: str = typer.Option(
        DEFAULT_POOL,
        "--pool",
        help="How each layer is pooled per image: mean (over tokens), pixel-mean (over pixels) or "
        "grid[N] (N×N pixel cells, concatenated; grid = grid2), each with an optional ln- prefix "
        "(layer norm first, as iGPT). A comma list probes every pooling from the same passes.",
    ),
    resolution: str = opt.RESOLUTION,
    crop: str = opt.CROP,
    limit: int = opt.LIMIT,
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Images per forward pass."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    seed: int = typer.Option(0, "--seed", help="Seed of the validation split."),
    no_random: bool = typer.Option(
        False, "--no-random-control", help="Skip the random-weights control."
    ),
    plot: Path = typer.Option(None, "--plot", help="Write accuracy against layer as PNG here."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Per-layer linear probes (one forward pass) with raw-pixel and random-weight controls."""
    from toksuite.probe import plot_probe
    from toksuite.probe import probe as run_probe

    pools = opt.parse_list(pool, "--pool")
    result = run_probe(
        list(run),
        data=data,
        pool=pools,
        resolution=opt.parse_resolution(resolution),
        crop=opt.parse_crop(crop),
        limit=limit,
        batch_size=batch_size,
        device=device,
        seed=seed,
        random_control=not no_random,
    )
    if plot is not None:
        plot_probe(result, plot)
        result["plot"] = str(plot)
    rows = _rows(result) if len(pools) == 1 else _rows_by_pool(result)
    raw = result["controls"]["raw_pixels"]
    footer = [
        f"raw pixels (logistic regression): {fmt(raw['test_accuracy'])} · "
        f"chance {fmt(result['chance'])}"
    ]
    for r in result["runs"]:
        for name, scores in r["by_pool"].items():
            label = r["label"] if len(pools) == 1 else f"{r['label']} · {name}"
            line = f"{label}: best layer {scores['best_layer']} → {fmt(scores['best_accuracy'])}"
            if "random_init" in scores:
                line += f" (random weights: {fmt(scores['random_init']['best_accuracy'])})"
            footer.append(line)
    if plot is not None:
        footer.append(f"plot: {plot}")
    emit(
        result,
        as_json=as_json,
        rows=rows,
        title=f"Linear probe test accuracy · {result['data']} · pool {', '.join(pools)}",
        footer=footer,
    )


def _rows(result: dict) -> list[dict]:
    """One row per layer, a column per run (and its random-weights control)."""
    rows = []
    for layer in range(max(len(r["layers"]) for r in result["runs"])):
        row: dict = {"layer": layer}
        for r in result["runs"]:
            row[r["label"]] = _acc(r["layers"], layer)
            if "random_init" in r:
                row[f"{r['label']} (random weights)"] = _acc(r["random_init"]["layers"], layer)
        rows.append(row)
    return rows


def _rows_by_pool(result: dict) -> list[dict]:
    """One row per run and pooling, a column per layer: the poolings of a run side by side."""
    rows = []
    for r in result["runs"]:
        for name, scores in r["by_pool"].items():
            row: dict = {"run": r["label"], "pool": name}
            row |= {f"layer {x['layer']}": x["test_accuracy"] for x in scores["layers"]}
            row["best"] = scores["best_accuracy"]
            if "random_init" in scores:
                row["random weights (best)"] = scores["random_init"]["best_accuracy"]
            rows.append(row)
    return rows


def _acc(layers: list[dict], layer: int) -> float | None:
    return layers[layer]["test_accuracy"] if layer < len(layers) else None
