"""`toksuite squeeze`: squeezing factor against vocabulary size (the paper's Figure 1)."""

from __future__ import annotations

from pathlib import Path

import typer

from toksuite.cli import options as opt
from toksuite.cli.app import app
from toksuite.cli.output import JSON_OPTION, emit
from toksuite.data import load_dataset
from toksuite.progress import status
from toksuite.registry import canonical_name


@app.command()
def squeeze(
    encoders: str = typer.Option(
        "bpe-grey,bpe-rgb,bpe-bytelevel,kmeans,pixels-rgb",
        "--encoders",
        "-e",
        help="Comma-separated encoder names.",
    ),
    vocab: str = typer.Option(
        "1000,5000,10000,30000", "--vocab", help="Vocabulary sizes for encoders that take one."
    ),
    data: str = opt.DATA,
    param: list[str] = typer.Option(
        None,
        "--param",
        "-p",
        help="Encoder parameter KEY=VALUE for every encoder that takes KEY (repeatable); "
        "KEY=V1,V2,… sweeps the values, and several swept keys run every combination.",
    ),
    resolution: str = opt.RESOLUTION,
    crop: str = opt.CROP,
    limit: int = opt.LIMIT,
    on_error: str = opt.ON_ERROR,
    seed: int = opt.SEED,
    plot: Path = typer.Option(
        Path("squeeze.png"), "--plot", help="PNG plot of squeeze against vocab size."
    ),
    frontier: Path = typer.Option(
        None,
        "--frontier",
        help="PNG plot of squeeze against PSNR: every encoder × setting a point, the Pareto "
        "front drawn, the paper's recipe (bpe-bytelevel) starred.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Fit each encoder on the train split and measure squeeze, tokens, PSNR and SSIM on held-out
    images.

    Squeeze is the mean over held-out images of H·W / tokens (paper §3.3). PSNR is that of the
    encoder's quantisation against the original, pooled over all held-out pixels; SSIM is the
    mean of each held-out image's (scikit-image). Rows on the squeeze–PSNR Pareto front are marked.

    Data with no held-out images (a folder of one image) is measured on the training images
    instead, with a warning and "measured_on": "train" in --json. The table shows the vocabulary
    asked for beside the one reached: BPE stops early when the images have no more pairs to merge,
    which is warned about once.
    """
    from toksuite.params import param_grid
    from toksuite.plots import frontier_plot, line_plot
    from toksuite.squeeze import DEFINITIONS, pareto_front, sweep

    names = [canonical_name(n) for n in opt.parse_list(encoders, "--encoders")]
    vocabs = opt.parse_ints(vocab, "--vocab")
    params = param_grid(names, param)
    options = opt.parse_load_options(
        resolution=resolution, crop=crop, limit=limit, on_error=on_error, seed=seed
    )
    dataset = load_dataset(data, options)
    rows = sweep(names, dataset, vocabs, params=params, seed=seed)
    h, w = dataset.image_shape[:2]
    measured_on = rows[0].measured_on
    where = "held-out" if measured_on == "test" else "training"

    series: dict[str, tuple[list[float], list[float]]] = {}
    for row in rows:
        xs, ys = series.setdefault(_label(row, vocab=False), ([], []))
        xs.append(row.vocab)
        ys.append(row.squeeze)
    on_front = pareto_front([(r.squeeze, r.psnr_db) for r in rows])
    line_plot(
        series,
        plot,
        title=f"Squeezing factor on {Path(data).name or data}\n"
        f"({h}×{w}, {rows[0].images} {where} images)",
        xlabel="vocabulary size",
        ylabel="squeeze (H·W / tokens)",
        logx=True,
    )
    status(f"plot written to {plot}")
    points = [
        {"label": _label(r), "pareto": front, **r.to_dict(per_image=False)}
        for r, front in zip(rows, on_front, strict=True)
    ]
    if frontier is not None:
        frontier_plot(
            points,
            frontier,
            title=f"Squeeze against fidelity on {Path(data).name or data} ({h}×{w})",
        )
        status(f"frontier written to {frontier}")
    result = {
        "data": data,
        "image_shape": list(dataset.image_shape),
        "train_images": len(dataset.x_train),
        "test_images": len(dataset.x_test),
        "measured_on": measured_on,
        "skipped_files": dataset.skip_report(),
        "definitions": DEFINITIONS,
        "rows": [r.to_dict() | {"pareto": f} for r, f in zip(rows, on_front, strict=True)],
        "plot": str(plot),
        "frontier": str(frontier) if frontier is not None else None,
    }
    shown = ("squeeze", "tokens_mean", "psnr_db", "ssim", "fit_seconds")
    emit(
        result,
        as_json=as_json,
        rows=[
            {
                "encoder": p["label"],
                # asked for and reached: BPE stops early when the images run out of pairs
                "vocab asked": p["vocab_requested"],
                "vocab": p["vocab"],
                **{k: p[k] for k in shown},
                "front": "●" if p["pareto"] else "",
            }
            for p in points
        ],
        title=f"Squeeze on {data}, {h}×{w}"
        + ("" if measured_on == "test" else " (measured on the training images)"),
    )


def _label(row, *, vocab: bool = True) -> str:
    """``bpe-rgb levels=8`` (+ ``@1000`` for the vocabulary asked for): a row's encoder and swept
    settings. The requested size, not the reached one: capped rows must stay distinguishable."""
    set_here = {k: v for k, v in row.params.items() if k != "vocab_size"}
    text = " ".join([row.encoder, *(f"{k}={v}" for k, v in set_here.items())])
    return f"{text} @{row.vocab_requested:,}" if vocab and row.vocab_requested is not None else text
