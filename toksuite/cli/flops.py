"""`toksuite flops`: forward and training FLOPs per image by encoder and resolution (Figure 2)."""

from __future__ import annotations

from pathlib import Path

import typer

from toksuite.cli import options as opt
from toksuite.cli.app import app
from toksuite.cli.output import JSON_OPTION, emit, fmt
from toksuite.errors import ConfigError
from toksuite.flops_sweep import DEFAULT_CONTEXT, LengthSource, flops_table
from toksuite.model import PRESET_HELP, check_attn
from toksuite.params import params_by_encoder


def _table_row(row: dict) -> dict[str, str]:
    """Short headers and units so the table fits a terminal; --json has every field in full."""
    return {
        "encoder": row["encoder"],
        "res": row["resolution"],
        "tokens": fmt(row["tokens"], 1),
        "from": row["tokens_from"],
        "vocab": fmt(row["vocab_size"]),
        "fwd FLOPs": f"{row['fwd_flops']:.3g}",
        "train FLOPs": f"{row['train_flops']:.3g}",
        "attn": f"{100 * row['attention_share']:.0f}%",
        "vs pixels": f"{row['vs_pixels_rgb']:.3g}×",
        "fits": "yes" if row["fits_context"] else "[yellow]NO[/]",
    }


@app.command()
def flops(
    encoders: str = typer.Option(
        "pixels-rgb,pixels-grey,kmeans",
        "--encoders",
        "-e",
        help="Comma-separated encoder names. BPE encoders need --data or --squeeze.",
    ),
    resolution: str = typer.Option(
        "32,64,112", "--resolution", "-r", help="Comma-separated resolutions: N (square) or HxW."
    ),
    model: str = typer.Option(
        "paper", "--model", "-m", help=f"Model preset or WIDTHxDEPTHxHEADS. Presets: {PRESET_HELP}."
    ),
    data: str = typer.Option(
        None,
        "--data",
        "-d",
        help="Measure BPE sequence lengths on the held-out split of this data (fit on train).",
    ),
    squeeze: float = typer.Option(
        None,
        "--squeeze",
        help="Without --data: assume H·W / X tokens per image for encoders of variable length.",
    ),
    attn: str = typer.Option("sdpa", "--attn", help="Attention implementation: sdpa or eager."),
    context: int = typer.Option(
        DEFAULT_CONTEXT,
        "--context",
        min=1,
        help="The model's context: longer sequences are flagged (and counted in full).",
    ),
    param: list[str] = opt.PARAM,
    crop: str = opt.CROP,
    limit: int = opt.LIMIT,
    on_error: str = opt.ON_ERROR,
    seed: int = opt.SEED,
    plot: Path = typer.Option(
        None, "--plot", help="Also write a PNG of forward FLOPs per image against resolution."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Forward and training FLOPs per image for each encoder and resolution on one GPT-2.

    Counted with fvcore on the meta device (nothing is computed), attention included.

    FLOPs = 2 × multiply-adds; training = 3 × forward.

    The paper's comparison at 64×64, with a BPE that squeezes 4×:

        toksuite flops -e pixels-rgb,kmeans,bpe-rgb -r 64 --squeeze 4 -p vocab_size=30000
    """
    try:
        check_attn(attn)
    except ConfigError as exc:  # a usage error (exit 2), as any option value typer checks
        raise typer.BadParameter(str(exc), param_hint="--attn") from None
    if squeeze is not None and squeeze <= 0:
        raise typer.BadParameter(f"{squeeze:g}: must be positive", param_hint="--squeeze")
    if data is not None and squeeze is not None:
        raise typer.BadParameter("give --data or --squeeze, not both", param_hint="--squeeze")
    sizes = [opt.parse_resolution(r) for r in opt.parse_list(resolution, "--resolution")]
    names = opt.parse_list(encoders, "--encoders")
    params = params_by_encoder(names, param)
    options = opt.parse_load_options(
        resolution=None, crop=crop, limit=limit, on_error=on_error, seed=seed
    )
    source = LengthSource(data=data, squeeze=squeeze, options=options, params=params)
    result = flops_table(
        names, sizes, model=model, lengths=source, attn_implementation=attn, context=context
    )
    rows = result["rows"]
    if plot is not None:
        _plot(result, plot)
        result["plot"] = str(plot)
    footer = [f"[dim]{result['convention']}[/]"]
    too_long = [r for r in rows if not r["fits_context"]]
    if too_long:
        footer.append(
            f"[yellow]{len(too_long)} row(s) longer than the context of {context:,} tokens[/] "
            "(counted in full, as if the context were long enough): "
            + ", ".join(
                f"{r['encoder']} {r['resolution']} (longest {fmt(r['tokens_max'], 0)})"
                for r in too_long
            )
        )
    if result["missed_matmul_ops"]:
        footer.append("[red]uncounted multiply-add ops: " + ", ".join(result["missed_matmul_ops"]))
    footer.append(
        f"fvcore vs closed form: max difference {fmt(100 * result['max_closed_form_rel_diff'], 2)}%"
    )
    m = result["model"]
    emit(
        result,
        as_json=as_json,
        rows=[_table_row(r) for r in rows],
        footer=footer,
        title=f"FLOPs per image, GPT-2 {m['n_layer']}×{m['n_embd']} ({model}), {attn} attention",
    )


def _plot(result: dict, path: Path) -> None:
    from toksuite.plots import line_plot
    from toksuite.progress import status

    series: dict[str, tuple[list[float], list[float]]] = {}
    for row in result["rows"]:
        xs, ys = series.setdefault(row["encoder"], ([], []))
        xs.append(int(row["resolution"].split("×")[0]))
        ys.append(row["fwd_flops"])
    m = result["model"]
    line_plot(
        series,
        path,
        title=f"Forward FLOPs per image, GPT-2 {m['n_layer']}×{m['n_embd']}",
        xlabel="resolution (pixels per side)",
        ylabel="forward FLOPs per image (2 × MACs)",
        logy=True,
        xticks=sorted({x for xs, _ in series.values() for x in xs}),
    )
    status(f"plot written to {path}")
