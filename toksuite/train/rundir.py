"""A run directory as a typed contract: its files, ``RunInfo`` (what config.json holds, written by
the training loop and read by every consumer), ``load_run``, its data options and its encoder.

config.json keeps the layout it always had (nested ``options``, ``encoder``, ``model``, ``data``
objects), so a run written by an older toksuite still loads: keys added since then get the value
such a run had.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from toksuite.data import LoadOptions, load_dataset
from toksuite.errors import ConfigError
from toksuite.io import atomic_dir, read_json, write_json_atomic
from toksuite.model import ModelShape
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


@dataclass(frozen=True)
class EncoderInfo:
    """The run's encoder as it was fitted (saved in ``saved``, relative to the run directory)."""

    name: str
    params: dict[str, Any]
    vocab_size: int
    channels: int
    saved: str = ENCODER_DIR


@dataclass(frozen=True)
class ModelInfo:
    """The run's GPT-2: the shared shape, with the vocabulary and context of its encoder."""

    shape: ModelShape
    vocab_size: int  # the encoder's vocabulary + BOS
    bos_id: int
    n_positions: int
    n_params: int
    saved: str = MODEL_DIR

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"shape": self.shape.to_dict()}


@dataclass(frozen=True)
class DataInfo:
    spec: str
    image_shape: tuple[int, ...]  # H, W, C of every image the run saw
    train_images: int
    heldout_images: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"image_shape": list(self.image_shape)}


@dataclass(frozen=True)
class RunInfo:
    """A run's config.json: its options and everything the loop resolved from them."""

    options: TrainConfig
    encoder: EncoderInfo
    model: ModelInfo
    data: DataInfo
    context: int  # positions of the model: BOS + the longest sequence, or --context
    truncated: dict[str, int] = field(default_factory=lambda: {"train": 0, "heldout": 0})
    batch_size: int = 0
    batching: str = "random"  # runs saved before `batching` existed trained on random batches
    steps: int | None = None  # None: a wall-time budget
    steps_per_epoch: int = 0
    warmup_steps: int = 0
    eval_every: int | None = None  # None: a run saved before evaluations during training
    eval_images: int | None = None
    world_size: int = 1
    device: str = "cpu"

    @property
    def image_hw(self) -> tuple[int, int]:
        return int(self.data.image_shape[0]), int(self.data.image_shape[1])

    def to_dict(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return out | {
            "options": self.options.to_dict(),
            "encoder": asdict(self.encoder),
            "model": self.model.to_dict(),
            "data": self.data.to_dict(),
            "truncated": dict(self.truncated),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> RunInfo:
        """Read a config.json of any toksuite version (unknown keys are ignored)."""
        try:
            model = doc["model"]
            info = {k: v for k, v in doc.items() if k in {f.name for f in fields(cls)}}
            return cls(
                **info
                | {
                    "options": TrainConfig.from_dict(doc["options"]),
                    "encoder": EncoderInfo(**_known(EncoderInfo, doc["encoder"])),
                    "model": ModelInfo(
                        **_known(ModelInfo, model) | {"shape": ModelShape(**model["shape"])}
                    ),
                    "data": DataInfo(
                        **_known(DataInfo, doc["data"])
                        | {"image_shape": tuple(int(n) for n in doc["data"]["image_shape"])}
                    ),
                }
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"not a run's {CONFIG_FILE} ({type(exc).__name__}: {exc})") from None

    def save(self, run_dir: Path) -> None:
        write_json_atomic(Path(run_dir) / CONFIG_FILE, self.to_dict())

    @classmethod
    def load(cls, run_dir: str | Path) -> RunInfo:
        path = Path(run_dir) / CONFIG_FILE
        doc = read_json(
            path,
            ConfigError,
            missing=f"{run_dir}: not a run directory (no {CONFIG_FILE})",
            invalid=f"{path}: not JSON",
        )
        try:
            return cls.from_dict(doc)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None


def _known(cls: type, doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k in {f.name for f in fields(cls)}}


@dataclass
class Run:
    """A finished run, loaded: its info, its encoder and its trained model."""

    path: Path
    info: RunInfo
    encoder: Any
    model: Any  # transformers.GPT2LMHeadModel

    @property
    def label(self) -> str:
        return self.path.name or str(self.path)

    def load_options(self) -> LoadOptions:
        """The data options the run was trained with, for its encoder's channels (to see other
        images the same way)."""
        return self.info.options.load_options(self.encoder.channels)


def load_run(run_dir: str | Path) -> Run:
    """A finished pretraining run: config.json, the saved encoder and the saved model."""
    from transformers import GPT2LMHeadModel
    from transformers.utils import logging as hf_logging

    path = Path(run_dir)
    if not (path / CONFIG_FILE).is_file() or not (path / MODEL_DIR).is_dir():
        raise ConfigError(
            f"{path}: not a finished pretraining run (no {CONFIG_FILE} or {MODEL_DIR}/)"
        )
    info = RunInfo.load(path)
    hf_logging.disable_progress_bar()  # keep stderr to toksuite's own progress
    model = GPT2LMHeadModel.from_pretrained(path / info.model.saved)
    return Run(path, info, load_encoder(path / info.encoder.saved), model)


def prepare_encoder(config: TrainConfig, run_dir: Path, d: distributed.Dist, resume: bool):
    """Load the run's saved encoder, a saved directory, or fit a named one on the train split."""
    saved = run_dir / ENCODER_DIR
    if resume or Path(config.encoder).is_dir():
        enc = load_encoder(saved if resume else config.encoder)
        if not resume and d.is_main:  # the run directory must hold its own encoder
            enc.save(saved)
        d.barrier()
        return enc, load_dataset(config.data, config.load_options(enc.channels))
    cls = get_encoder_class(config.encoder)
    dataset = load_dataset(config.data, config.load_options(cls.channels))
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
