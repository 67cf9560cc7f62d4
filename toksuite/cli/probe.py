"""`toksuite probe`: linear-probe accuracy of every layer of one or more pretrained runs."""

from __future__ import annotations

from pathlib import Path

import typer

from toksuite.cli import options as opt
from toksuite.cli.app import app
from toksuite.cli.output import JSON_OPTION, emit, fmt


@app.command()
def probe(
    run: list[Path] = typer.Option(..., "--run", help="Run directory (repeatable)."),
    data: str = typer.Option(
        None, "--data", "-d", help="Labelled data spec (default: each run's own --data)."
    ),
    pool: str = typer.Option(
        "ln-mean", "--pool", help="ln-mean (layer norm, then mean; as iGPT) or mean."
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

    result = run_probe(
        list(run),
        data=data,
        pool=pool,  # type: ignore[arg-type]
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
    n_layers = max(len(r["layers"]) for r in result["runs"])
    rows = []
    for layer in range(n_layers):
        row: dict = {"layer": layer}
        for r in result["runs"]:
            row[r["label"]] = _acc(r["layers"], layer)
            if "random_init" in r:
                row[f"{r['label']} (random weights)"] = _acc(r["random_init"]["layers"], layer)
        rows.append(row)
    raw = result["controls"]["raw_pixels"]
    footer = [
        f"raw pixels (logistic regression): {fmt(raw['test_accuracy'])} · "
        f"chance {fmt(result['chance'])}"
    ]
    for r in result["runs"]:
        line = f"{r['label']}: best layer {r['best_layer']} → {fmt(r['best_accuracy'])}"
        if "random_init" in r:
            line += f" (random weights: {fmt(r['random_init']['best_accuracy'])})"
        footer.append(line)
    if plot is not None:
        footer.append(f"plot: {plot}")
    emit(
        result,
        as_json=as_json,
        rows=rows,
        title=f"Linear probe test accuracy · {result['data']} · pool {pool}",
        footer=footer,
    )


def _acc(layers: list[dict], layer: int) -> float | None:
    return layers[layer]["test_accuracy"] if layer < len(layers) else None
