"""`toksuite pretrain`: the same GPT-2, optimiser and schedule on one encoder's sequences."""

from __future__ import annotations

from pathlib import Path

import typer

from toksuite.cli import options as opt
from toksuite.cli.app import app
from toksuite.cli.output import JSON_OPTION, emit
from toksuite.model import PRESET_HELP
from toksuite.threads import auto_threads, cpu_threads
from toksuite.train.config import DEFAULT_EPOCHS, TrainConfig

SHOWN = (
    ("encoder", "encoder"),
    ("model", "model"),
    ("steps", "steps"),
    ("epochs", "epochs"),
    ("train_flops", "training FLOPs"),
    ("train_seconds", "seconds"),
    ("tokens_per_s", "tokens/s"),
    ("images_per_s", "images/s"),
    ("mfu", "MFU"),
    ("batching", "batching"),
    ("real_token_share", "real-token share (real tokens / padded slots)"),
    ("final_train_loss", "final train loss"),
    ("heldout_loss", "held-out loss (nats/token)"),
    ("bits_per_image", "held-out bits per image (code length)"),
    ("bits_per_pixel", "held-out bits per pixel"),
    ("bits_per_dim", "held-out bits per dim"),
    ("png_bits_per_pixel", "PNG bits per pixel (same images)"),
    ("webp_bits_per_pixel", "WebP-lossless bits per pixel (same images)"),
    ("psnr_db", "quantisation PSNR (dB)"),
    ("context", "context"),
    ("truncated", "sequences cut to context"),
    ("n_params", "parameters"),
)


@app.command()
def pretrain(
    out: Path = typer.Option(..., "--out", "-o", help="Run directory (created)."),
    encoder: str = typer.Option(
        "pixels-grey",
        "--encoder",
        "-e",
        help="Encoder name (fitted on the train split) or a saved encoder directory.",
    ),
    param: list[str] = opt.PARAM,
    data: str = opt.DATA,
    resolution: str = opt.RESOLUTION,
    crop: str = opt.CROP,
    limit: int = opt.LIMIT,
    on_error: str = opt.ON_ERROR,
    model: str = typer.Option("tiny", "--model", "-m", help=f"Preset: {PRESET_HELP}; or WxDxH."),
    epochs: float = typer.Option(
        None, "--epochs", help=f"Budget: passes over the train split (default {DEFAULT_EPOCHS:g})."
    ),
    tokens: int = typer.Option(None, "--tokens", help="Budget: training tokens (BOS included)."),
    images: int = typer.Option(None, "--images", help="Budget: training images (sequences)."),
    train_flops: float = typer.Option(None, "--train-flops", help="Budget: training FLOPs."),
    time_s: float = typer.Option(None, "--time", help="Budget: wall-clock seconds of training."),
    batch_size: int = typer.Option(64, "--batch-size", "-b", help="Images per step (all ranks)."),
    batching: str = opt.BATCHING,
    lr: float = typer.Option(2e-3, "--lr", help="Peak learning rate (AdamW, cosine decay)."),
    warmup_steps: int = typer.Option(
        None, "--warmup-steps", help="Linear warmup steps (default 5% of the run, at most 500)."
    ),
    weight_decay: float = typer.Option(0.1, "--weight-decay", help="On 2-D weights only."),
    context: int = typer.Option(
        None, "--context", help="Cap on 1 + tokens per image; longer sequences are cut (reported)."
    ),
    seed: int = opt.SEED,
    log_every: int = typer.Option(10, "--log-every", help="Steps between metrics lines."),
    eval_every: int = typer.Option(
        None,
        "--eval-every",
        help="Steps between held-out evaluations (default: 8 in a run; 0: only at the end).",
    ),
    eval_images: int = typer.Option(
        1000, "--eval-images", help="Held-out images of those evaluations (the final uses all)."
    ),
    checkpoint_every: int = typer.Option(
        100, "--checkpoint-every", help="Steps between checkpoints (0: only at the end)."
    ),
    compile_model: bool = typer.Option(False, "--compile", help="torch.compile the model."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    threads: int = typer.Option(
        None, "--threads", min=1, help="CPU threads (default: 1 for models under 1M parameters)."
    ),
    peak_flops: float = typer.Option(
        None, "--peak-flops", help="Peak FLOP/s for MFU (default: known GPUs; none on CPU)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out (its options)."),
    force: bool = typer.Option(False, "--force", help="Start over in an --out that holds a run."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Pretrain the shared GPT-2 on one encoder's sequences; works under torchrun (DDP).

    One image is one sequence ([BOS] + tokens); batches group images of similar length
    (--batching bucket) so that little compute goes to padding. Writes RUN_DIR/config.json,
    metrics.jsonl, checkpoint.pt, encoder/, model/ (transformers, safetensors), summary.json,
    heldout_bits.npy (each held-out image's code length) and loss.png.
    """
    from toksuite.params import params_for
    from toksuite.registry import get_encoder_class
    from toksuite.train import pretrain as run_pretrain

    opt.check_on_error(on_error)
    params: dict = {}
    if param and not Path(encoder).is_dir():
        params = params_for(get_encoder_class(encoder), param)
    config = TrainConfig(
        encoder=encoder,
        encoder_params=params,
        data=data,
        resolution=list(opt.parse_resolution(resolution)) if resolution else None,
        crop=list(opt.parse_crop(crop)) if crop else None,
        limit=limit,
        on_error=on_error,
        model=model,
        epochs=epochs,
        tokens=tokens,
        images=images,
        train_flops=train_flops,
        time=time_s,
        batch_size=batch_size,
        batching=batching,
        lr=lr,
        warmup_steps=warmup_steps,
        weight_decay=weight_decay,
        context=context,
        seed=seed,
        log_every=log_every,
        eval_every=eval_every,
        eval_images=eval_images,
        checkpoint_every=checkpoint_every,
        compile=compile_model,
        device=device,
        peak_flops=peak_flops,
    )
    with cpu_threads(threads or auto_threads(model, device)):
        summary = run_pretrain(config, out, resume=resume, force=force)
    if not summary:  # ranks other than 0 print nothing
        return
    flat = summary | {
        f"{codec}_bits_per_pixel": value["bits_per_pixel"]
        for codec, value in summary.get("anchors", {}).items()
    }
    rows = [{"metric": label, "value": flat.get(key)} for key, label in SHOWN]
    emit(summary, as_json=as_json, rows=rows, title=f"Pretrained → {out}")
