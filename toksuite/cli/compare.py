"""`toksuite compare`: every encoder through fit → squeeze → flops → pretrain → probe → sample."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from toksuite.cli import options as opt
from toksuite.cli.app import app
from toksuite.cli.output import JSON_OPTION, emit
from toksuite.compare.config import BUILTIN_ENCODERS, DEFAULT_EPOCHS, DEFAULT_OUT
from toksuite.model import PRESET_HELP
from toksuite.params import params_by_encoder
from toksuite.pooling import DEFAULT_POOL, POOL_HELP


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


@app.command()
def compare(
    encoders: str = typer.Option(
        None,
        "--encoders",
        "-e",
        help=f"Comma-separated encoders (default: {','.join(BUILTIN_ENCODERS)}).",
    ),
    data: str = typer.Option(
        None, "--data", "-d", help="Data spec (default digits); see `toksuite pretrain --help`."
    ),
    model: str = typer.Option(
        None, "--model", "-m", help=f"Preset (default tiny): {PRESET_HELP}; or WxDxH."
    ),
    budget: str = typer.Option(
        None,
        "--budget",
        help="epochs (same passes for every encoder, as the paper; default), flops (the same "
        "training FLOPs: shorter sequences get more images) or time (same wall seconds).",
    ),
    epochs: float = typer.Option(
        None,
        "--epochs",
        help=f"Epochs per encoder (default {DEFAULT_EPOCHS:g}); with --budget flops and no "
        "--train-flops, the target is what the costliest encoder spends in these epochs.",
    ),
    train_flops: float = typer.Option(
        None, "--train-flops", help="--budget flops: training FLOPs per encoder."
    ),
    time_s: float = typer.Option(None, "--time", help="--budget time: wall seconds per encoder."),
    out: Path = typer.Option(
        None,
        "--out",
        "-o",
        help=f"Output folder (default ./{DEFAULT_OUT}); re-running continues it.",
    ),
    config_file: Path = typer.Option(
        None, "--config", "-c", help="TOML file of settings (the CLI wins over it)."
    ),
    param: list[str] = opt.PARAM,
    resolution: str = opt.RESOLUTION,
    crop: str = opt.CROP,
    limit: int = opt.LIMIT,
    on_error: str = typer.Option(None, "--on-error", help=opt.ON_ERROR_HELP + " (default stop)"),
    batch_size: int = typer.Option(
        None, "--batch-size", "-b", help="Images per step (default 64)."
    ),
    batching: str = typer.Option(
        None,
        "--batching",
        help="bucket: batches of similar lengths, little padding (default); random: uniform.",
    ),
    lr: float = typer.Option(None, "--lr", help="Peak learning rate (default 2e-3)."),
    seed: int = typer.Option(None, "--seed", help="Seed for splits, fitting, training, sampling."),
    pool: str = typer.Option(
        None, "--pool", help=f"Probe pooling (default {DEFAULT_POOL}): {POOL_HELP}."
    ),
    probe: bool = typer.Option(
        None, "--probe/--no-probe", help="Run the linear probes (default on)."
    ),
    sample: bool = typer.Option(None, "--sample/--no-sample", help="Draw samples (default on)."),
    n_samples: int = typer.Option(None, "--samples", help="Unconditional samples (default 16)."),
    temperature: float = typer.Option(
        None, "--temperature", help="Sampling temperature (default 1)."
    ),
    unconstrained: bool = typer.Option(
        None,
        "--unconstrained",
        help="Sample any id instead of only what each encoder's grammar allows (see `sample`).",
    ),
    device: str = typer.Option(None, "--device", help="auto (default), cpu, cuda or cuda:N."),
    threads: int = typer.Option(
        None, "--threads", help="torch CPU threads (default: 1 for models under 1M parameters)."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Compare encoders end to end with one shared configuration, and write one report.

    For each encoder: fit + squeeze, FLOPs, pretrain, probe, sample. Then OUT/results.json,
    OUT/report.md and a self-contained OUT/report.html.

    Re-running continues: finished stages are reused, an interrupted pretraining resumes from its
    checkpoint, and a changed setting re-runs only what depends on it.

    With no options: every built-in encoder on `digits` with the tiny model (a few minutes on CPU).
    """
    from toksuite.compare import build_config
    from toksuite.compare import compare as run_compare
    from toksuite.registry import canonical_name

    opt.check_on_error(on_error)
    cli: dict[str, Any] = _given(
        encoders=opt.parse_list(encoders, "--encoders") if encoders else None,
        data=data,
        model=model,
        out=str(out) if out is not None else None,
        resolution=list(opt.parse_resolution(resolution)) if resolution else None,
        crop=list(opt.parse_crop(crop)) if crop else None,
        limit=limit,
        on_error=on_error,
        seed=seed,
        device=device,
        threads=threads,
    )
    sections = {
        "budget": _given(mode=budget, epochs=epochs, train_flops=train_flops, time=time_s),
        "train": _given(batch_size=batch_size, batching=batching, lr=lr),
        "probe": _given(enabled=probe, pool=pool),
        "sample": _given(
            enabled=sample,
            n_samples=n_samples,
            temperature=temperature,
            constrained=None if unconstrained is None else not unconstrained,
        ),
    }
    cli |= {k: v for k, v in sections.items() if v}
    config = build_config(file=config_file, cli=cli)
    if param:
        names = [canonical_name(n) for n in config.encoders]
        cli["params"] = params_by_encoder(names, param)
        config = build_config(file=config_file, cli=cli)
    results = run_compare(config)
    from toksuite.compare.report import budget_text, groups_text
    from toksuite.compare.summary import summary_table

    footer = [f"budget: {budget_text(results['budget'])}"]
    footer += [f"images {line}" for line in groups_text(results["quantization_groups"])]
    footer += [f"[yellow]skipped[/] {n}: {r}" for n, r in results["skipped"].items()]
    bad = results["data"]["skipped_files"]
    if bad["count"]:  # said again here: a re-run that reuses every stage loads (and warns) nothing
        footer.append(f"[yellow]skipped {bad['count']} bad image file(s)[/] (--json lists them)")
    footer.append(f"report: {Path(config.out) / 'report.html'}")
    emit(
        results,
        as_json=as_json,
        rows=summary_table(results["summary"]),
        title=f"toksuite compare · {config.data} · {config.model}",
        footer=footer,
    )
