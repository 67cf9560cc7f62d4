"""Options shared by several commands, and their parsing into library objects."""

from __future__ import annotations

from typing import overload

import typer

from toksuite.data.base import ON_ERROR_CHOICES, LoadOptions

DATA = typer.Option(
    "digits",
    "--data",
    "-d",
    help="Data spec: digits, sample-images, npz:PATH, cifar10:PATH, cifar100:PATH, folder:PATH, "
    "idx:PATH (MNIST-style; alias mnist), hf:PATH (Hugging Face datasets on disk).",
)
RESOLUTION = typer.Option(
    None, "--resolution", "-r", help="Resize and centre-crop to N (square) or HxW, e.g. 112."
)
CROP = typer.Option(
    None,
    "--crop",
    help="Crop box LEFT,TOP,WIDTH,HEIGHT applied before resizing, e.g. 19,39,140,140.",
)
LIMIT = typer.Option(None, "--limit", min=1, help="At most this many images per split.")
ON_ERROR_HELP = "Bad image files: 'stop' with one line, or 'skip' and count them."
ON_ERROR = typer.Option("stop", "--on-error", help=ON_ERROR_HELP)
SEED = typer.Option(0, "--seed", help="Seed for splits, fitting and training.")
BATCHING = typer.Option(
    "bucket",
    "--batching",
    help="bucket: batches of similar lengths, little padding (default); random: uniform batches.",
)
PARAM = typer.Option(
    None,
    "--param",
    "-p",
    help="Encoder parameter [ENCODER:]KEY=VALUE (repeatable); see `toksuite encoders`.",
)


@overload
def parse_resolution(text: str) -> tuple[int, int]: ...
@overload
def parse_resolution(text: None) -> None: ...
def parse_resolution(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    parts = text.lower().replace("×", "x").split("x")
    try:
        dims = [int(p) for p in parts]
    except ValueError:
        raise typer.BadParameter(
            f"{text!r}: expected N or HxW", param_hint="--resolution"
        ) from None
    if len(dims) == 1:
        dims *= 2
    if len(dims) != 2 or min(dims) < 1:
        raise typer.BadParameter(f"{text!r}: expected N or HxW", param_hint="--resolution")
    return dims[0], dims[1]


@overload
def parse_crop(text: str) -> tuple[int, int, int, int]: ...
@overload
def parse_crop(text: None) -> None: ...
def parse_crop(text: str | None) -> tuple[int, int, int, int] | None:
    if text is None:
        return None
    try:
        box = tuple(int(p) for p in text.split(","))
    except ValueError:
        box = ()
    if len(box) != 4 or min(box[2:]) < 1 or min(box[:2]) < 0:
        raise typer.BadParameter(f"{text!r}: expected LEFT,TOP,WIDTH,HEIGHT", param_hint="--crop")
    return box


def parse_list(text: str, option: str) -> list[str]:
    items = [p.strip() for p in text.split(",") if p.strip()]
    if not items:
        raise typer.BadParameter("expected a comma-separated list", param_hint=option)
    return items


def parse_ints(text: str, option: str) -> list[int]:
    try:
        return [int(p) for p in parse_list(text, option)]
    except ValueError:
        raise typer.BadParameter(f"{text!r}: expected integers", param_hint=option) from None


def check_on_error(value: str | None) -> None:
    """A bad --on-error is a usage error (exit 2), as any option value typer checks itself."""
    if value is not None and value not in ON_ERROR_CHOICES:
        raise typer.BadParameter(f"{value!r}: expected stop or skip", param_hint="--on-error")


def parse_load_options(
    *,
    resolution: str | None,
    crop: str | None = None,
    limit: int | None = None,
    on_error: str = "stop",
    seed: int = 0,
    channels: int | None = None,
) -> LoadOptions:
    """The data options of a command that loads data, from its option texts."""
    check_on_error(on_error)
    return LoadOptions(
        resolution=parse_resolution(resolution),
        crop=parse_crop(crop),
        channels=channels,
        limit=limit,
        seed=seed,
        on_error=on_error,  # type: ignore[arg-type]
    )
