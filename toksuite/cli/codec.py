"""`toksuite fit`, `encode` and `decode`: see an encoder work on your own data and pictures."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from toksuite.cli import options as opt
from toksuite.cli.app import app
from toksuite.cli.output import JSON_OPTION, emit
from toksuite.data import load_dataset
from toksuite.data.images import read_image, write_png
from toksuite.encoders.base import Encoder
from toksuite.errors import DataError
from toksuite.likelihood import psnr_db
from toksuite.limits import check_size
from toksuite.params import params_for
from toksuite.registry import create_encoder, get_encoder_class, load_encoder
from toksuite.tokenfile import read_tokens, write_tokens


@app.command()
def fit(
    encoder: str = typer.Argument(..., help="Encoder name or alias, e.g. bpe-rgb."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory to save the fitted encoder to."),
    data: str = opt.DATA,
    param: list[str] = opt.PARAM,
    resolution: str = opt.RESOLUTION,
    crop: str = opt.CROP,
    limit: int = opt.LIMIT,
    on_error: str = opt.ON_ERROR,
    seed: int = opt.SEED,
    as_json: bool = JSON_OPTION,
) -> None:
    """Fit an encoder on the train split of --data and save it to --out."""
    cls = get_encoder_class(encoder)
    enc = create_encoder(cls.name, **params_for(cls, param))
    options = opt.parse_load_options(
        resolution=resolution,
        crop=crop,
        limit=limit,
        on_error=on_error,
        seed=seed,
        channels=cls.channels,
    )
    dataset = load_dataset(data, options)
    start = time.perf_counter()
    enc.fit(dataset.x_train, seed=seed)
    seconds = time.perf_counter() - start
    enc.save(out)
    result = {
        "encoder": enc.name,
        "params": enc.get_params(),
        "vocab_size": enc.vocab_size,
        "data": data,
        "train_images": len(dataset.x_train),
        "image_shape": list(dataset.image_shape),
        "fit_seconds": round(seconds, 3),
        "out": str(out),
        "skipped_files": dataset.skip_report(),
    }
    emit(
        result,
        as_json=as_json,
        rows=[{k: v for k, v in result.items() if k not in ("params", "skipped_files")}],
        title=f"Fitted {enc.name}",
    )


def _encoder_from(path_or_name: str, params: list[str] | None) -> Encoder:
    """A saved encoder directory, or the name of one that needs no fitting."""
    if Path(path_or_name).is_dir():
        return load_encoder(path_or_name)
    cls = get_encoder_class(path_or_name)
    enc = create_encoder(cls.name, **params_for(cls, params))
    if not enc.is_fitted:
        raise DataError(
            f"encoder {enc.name!r} must be fitted first: `toksuite fit {enc.name} --out DIR`, "
            "then pass --encoder DIR"
        )
    return enc


@app.command()
def encode(
    image: Path = typer.Argument(..., help="Image file (PNG, JPEG, …)."),
    encoder: str = typer.Option(
        ..., "--encoder", "-e", help="Saved encoder directory, or the name of one with no fitting."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Token file to write (JSON)."),
    param: list[str] = opt.PARAM,
    resolution: str = opt.RESOLUTION,
    as_json: bool = JSON_OPTION,
) -> None:
    """Encode one image file to a token file."""
    enc = _encoder_from(encoder, param)
    size = opt.parse_resolution(resolution)
    if size is not None:
        check_size(*size, "--resolution")  # before the image is read, let alone resized
    pixels = read_image(image, enc.channels)
    if size is not None:
        from toksuite.data.transform import resize_crop

        pixels = resize_crop(pixels[None], size)[0]
    ids = enc.encode(pixels)
    h, w, c = pixels.shape
    write_tokens(out, ids, encoder=enc.name, shape=(h, w, c))
    result = {
        "image": str(image),
        "encoder": enc.name,
        "shape": [h, w, c],
        "tokens": int(ids.size),
        "squeeze": h * w / max(ids.size, 1),
        "psnr_db": psnr_db(pixels, enc.quantize(pixels)),
        "out": str(out),
    }
    emit(result, as_json=as_json, rows=[result], title="Encoded")


@app.command()
def decode(
    tokens: Path = typer.Argument(
        ..., help="Token file written by `toksuite encode` (or a JSON list)."
    ),
    encoder: str = typer.Option(
        ..., "--encoder", "-e", help="Saved encoder directory, or the name of one with no fitting."
    ),
    out: Path = typer.Option(..., "--out", "-o", help="PNG file to write."),
    shape: str = typer.Option(None, "--shape", help="HxW when the token file does not say."),
    param: list[str] = opt.PARAM,
    as_json: bool = JSON_OPTION,
) -> None:
    """Decode a token file to a PNG; malformed sequences are repaired and the repairs counted."""
    enc = _encoder_from(encoder, param)
    doc = read_tokens(tokens)
    size = opt.parse_resolution(shape) or (doc.shape[:2] if doc.shape is not None else None)
    if size is None:
        raise typer.BadParameter(
            "the token file has no shape: give --shape HxW", param_hint="--shape"
        )
    doc.check_encoder(enc.name, tokens)
    decoded = enc.decode_checked(doc.ids, size)
    write_png(out, decoded.image)
    result = {
        "tokens": len(doc.ids),
        "shape": list(decoded.image.shape),
        "repairs": decoded.repairs,
        "notes": list(decoded.notes),
        "out": str(out),
    }
    emit(result, as_json=as_json, rows=[result], title="Decoded")
