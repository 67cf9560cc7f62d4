"""The configuration of a comparison: defaults, then a TOML file, then command-line options.

One `CompareConfig` holds everything the stages depend on. Settings are grouped as in the TOML file:

```toml
encoders = ["pixels-grey", "bpe-grey"]
data = "digits"
model = "tiny"
on_error = "skip"   # bad image files: "stop" (the default) or "skip" and count them

[budget]            # mode = "epochs" | "flops" | "time"
mode = "flops"
epochs = 3          # epochs mode; in flops mode the reference for the default FLOPs target
train_flops = 2e12  # flops mode: the same training FLOPs for every encoder
time = 30           # time mode: wall seconds per encoder

[train]
batch_size = 64
batching = "bucket"  # or "random"
lr = 2e-3

[probe]
pool = "mean"

[sample]
temperature = 0.9

[params.bpe-grey]   # encoder parameters, per encoder
vocab_size = 1000
```

Unknown keys are errors (a typo must not silently fall back to a default).
"""

from __future__ import annotations

import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from toksuite.data.base import check_on_error
from toksuite.errors import ConfigError
from toksuite.model import check_attn
from toksuite.pooling import DEFAULT_POOL
from toksuite.train.batching import DEFAULT_BATCHING, check_batching

BUILTIN_ENCODERS = ("pixels-grey", "pixels-rgb", "kmeans", "bpe-grey", "bpe-rgb", "bpe-bytelevel")
BUDGET_MODES = ("epochs", "flops", "time")
DEFAULT_EPOCHS = 4.0
DEFAULT_OUT = "toksuite-compare"


@dataclass
class BudgetSettings:
    """How long each encoder trains; `toksuite.compare.budget` turns this into per-run budgets."""

    mode: str = "epochs"
    epochs: float = DEFAULT_EPOCHS
    train_flops: float | None = None  # flops mode; None → the costliest encoder's `epochs`
    time: float | None = None  # time mode: wall seconds per encoder (required there)


@dataclass
class TrainSettings:
    """What every encoder's run shares (optimiser, schedule, batch); see `TrainConfig`."""

    batch_size: int = 64
    batching: str = DEFAULT_BATCHING
    lr: float = 2e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int | None = None
    weight_decay: float = 0.1
    context: int | None = None
    log_every: int = 5
    eval_every: int | None = None  # held-out evaluations for the bits-vs-FLOPs curve
    eval_images: int = 1000
    checkpoint_every: int = 50


@dataclass
class ProbeSettings:
    enabled: bool = True
    pool: str = DEFAULT_POOL
    batch_size: int = 64
    random_control: bool = True


@dataclass
class SampleSettings:
    enabled: bool = True
    n_samples: int = 16
    n_completions: int = 8
    prompt_fraction: float = 0.5
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    batch_size: int = 16
    constrained: bool = True  # only what the encoder's grammar allows (see `toksuite.sample`)


SECTIONS = {
    "budget": BudgetSettings,
    "train": TrainSettings,
    "probe": ProbeSettings,
    "sample": SampleSettings,
}


@dataclass
class CompareConfig:
    encoders: list[str] = field(default_factory=lambda: list(BUILTIN_ENCODERS))
    params: dict[str, dict[str, Any]] = field(default_factory=dict)  # encoder → parameters
    data: str = "digits"
    resolution: list[int] | None = None
    crop: list[int] | None = None
    limit: int | None = None
    on_error: str = "stop"  # bad image files: "stop" with one line, or "skip" and count them
    model: str = "tiny"
    seed: int = 0
    device: str = "auto"
    attn: str = "sdpa"  # attention implementation the FLOPs are counted for
    threads: int | None = None  # torch CPU threads; None → `auto_threads`
    out: str = DEFAULT_OUT
    budget: BudgetSettings = field(default_factory=BudgetSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    sample: SampleSettings = field(default_factory=SampleSettings)

    def __post_init__(self) -> None:
        if not self.encoders:
            raise ConfigError("give at least one encoder")
        if len(set(self.encoders)) != len(self.encoders):
            raise ConfigError(f"encoders listed twice: {', '.join(self.encoders)}")
        b = self.budget
        if b.mode not in BUDGET_MODES:
            raise ConfigError(f"budget {b.mode!r}: expected one of {', '.join(BUDGET_MODES)}")
        if not b.epochs > 0:
            raise ConfigError(f"--epochs {b.epochs}: must be positive")
        if b.mode == "time" and not (b.time and b.time > 0):
            raise ConfigError("--budget time needs --time SECONDS (wall seconds per encoder)")
        if b.train_flops is not None and not b.train_flops > 0:
            raise ConfigError(f"--train-flops {b.train_flops}: must be positive")
        check_batching(self.train.batching)
        check_on_error(self.on_error, ConfigError)
        check_attn(self.attn)
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"--threads {self.threads}: must be at least 1")
        # Parameters of encoders left out of the list are kept but unused, so one config file can
        # hold every encoder's parameters while `-e` picks a few; names are checked in `compare`.

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _defaults() -> dict[str, Any]:
    return CompareConfig().to_dict()


def _check_keys(table: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(allowed))}"
        )


def read_toml(path: str | Path) -> dict[str, Any]:
    """A TOML file as a (partial) nested config dict; unknown keys and bad TOML are errors."""
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    top = {f.name for f in fields(CompareConfig)}
    _check_keys(table, top, str(path))
    for name, cls in SECTIONS.items():
        if name in table:
            if not isinstance(table[name], dict):
                raise ConfigError(f"{path}: [{name}] must be a table")
            _check_keys(table[name], {f.name for f in fields(cls)}, f"{path} [{name}]")
    if "params" in table and not all(isinstance(v, dict) for v in table["params"].values()):
        raise ConfigError(f"{path}: [params.ENCODER] tables hold each encoder's parameters")
    return table


def merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``: sections and per-encoder params merge key by key."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def build_config(
    *, file: str | Path | None = None, cli: dict[str, Any] | None = None
) -> CompareConfig:
    """Defaults ← TOML ``file`` ← ``cli`` (a partial nested dict: only what the user gave)."""
    resolved = _defaults()
    if file is not None:
        resolved = merge(resolved, read_toml(file))
    if cli:
        resolved = merge(resolved, cli)
    return from_dict(resolved)


def from_dict(data: dict[str, Any]) -> CompareConfig:
    data = dict(data)
    for name, cls in SECTIONS.items():
        data[name] = cls(**data.get(name, {}))
    if isinstance(data.get("encoders"), str):
        data["encoders"] = [e.strip() for e in data["encoders"].split(",") if e.strip()]
    try:
        return CompareConfig(**data)
    except TypeError as exc:  # a wrongly typed value the dataclass cannot take
        raise ConfigError(f"configuration: {exc}") from None


def to_toml(config: CompareConfig) -> str:
    """The resolved configuration as TOML (None values are left out: TOML has no null)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, int | float):
            return repr(v)
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        raise TypeError(type(v))

    def lines(table: dict[str, Any]) -> list[str]:
        return [f"{_key(k)} = {value(v)}" for k, v in table.items() if v is not None]

    d = config.to_dict()
    out = lines({k: v for k, v in d.items() if k not in SECTIONS and k != "params"})
    for name in SECTIONS:
        out += ["", f"[{name}]", *lines(d[name])]
    for encoder, params in d["params"].items():
        out += ["", f"[params.{_key(encoder)}]", *lines(params)]
    return "\n".join(out) + "\n"


def _key(name: str) -> str:
    return name if name.replace("-", "").replace("_", "").isalnum() else f'"{name}"'
