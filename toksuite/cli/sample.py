"""`toksuite sample`: unconditional samples and completions of a pretrained run, as PNG grids."""

from __future__ import annotations

from pathlib import Path

import typer

from toksuite.cli.app import app
from toksuite.cli.output import JSON_OPTION, emit

SHOWN = (
    ("encoder", "encoder"),
    ("n_samples", "samples"),
    ("constrained", "constrained to the encoder's grammar"),
    ("well_formed_share", "well-formed share (samples)"),
    ("unconstrained_well_formed_share", "well-formed share unconstrained (samples)"),
    ("mean_sample_tokens", "tokens per sample"),
    ("n_completions", "completions"),
    ("prompt_rows", "prompt rows"),
    ("completion_well_formed_share", "well-formed share (completions)"),
    ("completion_unconstrained_well_formed_share", "well-formed share unconstrained (completions)"),
    ("completion_psnr_db", "completion PSNR vs quantised truth (dB)"),
    ("completion_psnr_original_db", "completion PSNR vs original (dB)"),
    ("samples_png", "samples grid"),
    ("completions_png", "completions grid"),
    ("samples_json", "numbers"),
)


@app.command()
def sample(
    run: Path = typer.Option(..., "--run", help="Run directory written by `toksuite pretrain`."),
    out: Path = typer.Option(None, "--out", "-o", help="Output directory (default RUN/samples)."),
    data: str = typer.Option(
        None, "--data", "-d", help="Data spec of the held-out prompts (default: the run's)."
    ),
    n_samples: int = typer.Option(16, "-n", "--samples", min=0, help="Unconditional samples."),
    completions: int = typer.Option(
        8, "--completions", min=0, help="Held-out images to complete from their top rows."
    ),
    prompt_fraction: float = typer.Option(
        0.5, "--prompt-fraction", help="Share of rows given as the prompt (0 ≤ f < 1)."
    ),
    temperature: float = typer.Option(1.0, "--temperature", "-t", help="Softmax temperature."),
    top_k: int = typer.Option(None, "--top-k", help="Sample among the K most likely tokens."),
    top_p: float = typer.Option(
        None, "--top-p", help="Nucleus sampling: smallest set with mass P."
    ),
    seed: int = typer.Option(0, "--seed", help="Same seed, same samples."),
    batch_size: int = typer.Option(16, "--batch-size", "-b", help="Sequences generated at once."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    unconstrained: bool = typer.Option(
        False,
        "--unconstrained",
        help="Let the model write any id (BOS, rows of the wrong length …) instead of only what "
        "the encoder's grammar allows; the well-formed share is then measured, not 1.",
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Sample images and complete held-out prompts (the paper's Figure 4); PNG grids + JSON.

    By default every step samples only the ids the encoder's grammar allows next, so every
    sample decodes to an image of the run's shape; the share an unconstrained sampler would get
    right is estimated from the same samples (importance weights).
    """
    from toksuite.sample import sample_run

    result = sample_run(
        run,
        out_dir=out,
        data=data,
        n_samples=n_samples,
        n_completions=completions,
        prompt_fraction=prompt_fraction,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
        batch_size=batch_size,
        device=device,
        constrained=not unconstrained,
    )
    rows = [
        {"measure": label, "value": result[key]} for key, label in SHOWN if result[key] is not None
    ]
    settings = f"temperature {result['temperature']:g}"
    if result["top_k"] is not None:
        settings += f" · top-k {result['top_k']}"
    if result["top_p"] is not None:
        settings += f" · top-p {result['top_p']:g}"
    emit(
        result,
        as_json=as_json,
        rows=rows,
        title=f"Samples · {result['run']} · {settings} · seed {result['seed']}",
    )
