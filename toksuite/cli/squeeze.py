"""`toksuite squeeze`: squeezing factor against vocabulary size (the paper's Figure 1)."""

from __future__ import annotations

from pathlib import Path

import typer

from toksuite.cli import options as opt
from toksuite.cli.app import app
from toksuite.cli.output import JSON_OPTION, emit
from toksuite.data import load_dataset
from toksuite.progress import status
from toksuite.registry import get_encoder_class


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
    param: list[str] = opt.PARAM,
    resolution: str = opt.RESOLUTION,
    crop: str = opt.CROP,
    limit: int = opt.LIMIT,
    on_error: str = opt.ON_ERROR,
    seed: int = opt.SEED,
    plot: Path = typer.Option(
        Path("squeeze.png"), "--plot", help="PNG plot of squeeze against vocab size."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Fit each encoder on the train split and measure squeeze, tokens and PSNR on held-out images.

    Squeeze is the mean over held-out images of H·W / tokens (paper §3.3). PSNR is that of the
    encoder's quantisation against the original, pooled over all held-out pixels.
    """
    from toksuite.plots import line_plot
    from toksuite.squeeze import DEFINITIONS, sweep

    names = [get_encoder_class(n).name for n in opt.parse_list(encoders, "--encoders")]
    vocabs = opt.parse_ints(vocab, "--vocab")
    params = opt.shared_encoder_params(names, param)
    options = opt.load_options(
        resolution=resolution, crop=crop, limit=limit, on_error=on_error, seed=seed
    )
    dataset = load_dataset(data, options)
    rows = sweep(names, dataset, vocabs, params=params, seed=seed)
    h, w = dataset.image_shape[:2]

    series: dict[str, tuple[list[float], list[float]]] = {}
    for row in rows:
        xs, ys = series.setdefault(row.encoder, ([], []))
        xs.append(row.vocab)
        ys.append(row.squeeze)
    line_plot(
        series,
        plot,
        title=f"Squeezing factor on {Path(data).name or data}\n"
        f"({h}×{w}, {rows[0].images} held-out images)",
        xlabel="vocabulary size",
        ylabel="squeeze (H·W / tokens)",
        logx=True,
    )
    status(f"plot written to {plot}")
    result = {
        "data": data,
        "image_shape": list(dataset.image_shape),
        "train_images": len(dataset.x_train),
        "test_images": len(dataset.x_test),
        "definitions": DEFINITIONS,
        "rows": [r.to_dict() for r in rows],
        "plot": str(plot),
    }
    emit(
        result,
        as_json=as_json,
        rows=[r.to_dict() for r in rows],
        title=f"Squeeze on {data}, {h}×{w}",
    )
