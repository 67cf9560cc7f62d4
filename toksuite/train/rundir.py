"""A run directory: its files, its data options, its encoder, and the saved model."""

from __future__ import annotations

import shutil
from pathlib import Path

from toksuite.data import LoadOptions, load_dataset
from toksuite.errors import ConfigError
from toksuite.io import atomic_dir
from toksuite.registry import create_encoder, get_encoder_class, load_encoder
from toksuite.train import distributed
from toksuite.train.checkpoint import CHECKPOINT_NAME
from toksuite.train.config import TrainConfig

ENCODER_DIR, MODEL_DIR = "encoder", "model"
CONFIG_FILE, SUMMARY_FILE, METRICS_FILE, PLOT_FILE, BITS_FILE = (
    "config.json",
    "summary.json",
    "metrics.jsonl",
    "loss.png",
    "heldout_bits.npy",  # per held-out image, the model's code length in bits (float64)
)


def load_options(config: TrainConfig, channels: int) -> LoadOptions:
    """The data options of a run (the probe reuses them to see the images the same way)."""
    return LoadOptions(
        resolution=tuple(config.resolution) if config.resolution else None,
        crop=tuple(config.crop) if config.crop else None,
        channels=channels,
        limit=config.limit,
        seed=config.seed,
        on_error=config.on_error,  # type: ignore[arg-type]
        progress=False,
    )


def prepare_encoder(config: TrainConfig, run_dir: Path, d: distributed.Dist, resume: bool):
    """Load the run's saved encoder, a saved directory, or fit a named one on the train split."""
    saved = run_dir / ENCODER_DIR
    if resume or Path(config.encoder).is_dir():
        enc = load_encoder(saved if resume else config.encoder)
        if not resume and d.is_main:  # the run directory must hold its own encoder
            enc.save(saved)
        d.barrier()
        return enc, load_dataset(config.data, load_options(config, enc.channels))
    cls = get_encoder_class(config.encoder)
    dataset = load_dataset(config.data, load_options(config, cls.channels))
    enc = create_encoder(cls.name, **config.encoder_params)
    if d.is_main:
        enc.fit(dataset.x_train, seed=config.seed)  # a no-op for encoders with nothing to learn
        enc.save(saved)
    d.barrier()
    if not d.is_main:  # every process uses exactly the encoder rank 0 fitted
        enc = load_encoder(saved)
    return enc, dataset


def check_run_dir(run_dir: Path, resume: bool, force: bool) -> None:
    if resume:
        if not (run_dir / CONFIG_FILE).is_file():
            raise ConfigError(f"{run_dir}: nothing to resume (no {CONFIG_FILE})")
        return
    if (run_dir / CONFIG_FILE).exists():
        if not force:
            raise ConfigError(
                f"{run_dir} already holds a run: pass --resume to continue it, --force to start "
                "over, or choose another --out"
            )
        for name in (ENCODER_DIR, MODEL_DIR):
            shutil.rmtree(run_dir / name, ignore_errors=True)
        for name in (
            CONFIG_FILE,
            SUMMARY_FILE,
            METRICS_FILE,
            PLOT_FILE,
            BITS_FILE,
            CHECKPOINT_NAME,
        ):
            (run_dir / name).unlink(missing_ok=True)


def save_model(model, directory: Path) -> None:
    """``save_pretrained`` (safetensors) atomically, so the directory reloads in transformers."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # its shard bar would break the rich progress on stderr
    with atomic_dir(directory) as tmp:
        model.save_pretrained(tmp)
