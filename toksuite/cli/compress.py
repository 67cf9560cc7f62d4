"""`toksuite compress` and `decompress`: a pretrained run as a codec of quantised images."""

from __future__ import annotations

from pathlib import Path

import typer

from toksuite.cli.app import app
from toksuite.cli.output import JSON_OPTION, emit

RUN = typer.Option(..., "--run", help="Run directory written by `toksuite pretrain`.")


@app.command()
def compress(
    images: list[Path] = typer.Argument(None, help="Image files (framed as the run's data)."),
    run: Path = RUN,
    heldout: int = typer.Option(
        0, "--heldout", min=0, help="Also the run's first N held-out images (checked against it)."
    ),
    out: Path = typer.Option(None, "--out", "-o", help="Output folder (default RUN/compressed)."),
    verify: bool = typer.Option(
        True, "--verify/--no-verify", help="Decode each file back and compare with quantize()."
    ),
    as_json: bool = JSON_OPTION,
) -> None:
    """Compress images to real bytes: the run's model drives a range coder (constriction).

    Each image becomes OUT/NAME.tsz: a 15-byte header (shape, token count) and the coder's words.
    The table compares each file with the model's code length of the image (the bits behind
    `bits_per_image`) and, for --heldout images, with the run's own heldout_bits.npy.
    """
    from toksuite.compress import compress_files

    result = compress_files(run, list(images or []), heldout=heldout, out=out, verify=verify)
    rows = [
        {
            "image": r["image"],
            "tokens": r["tokens"],
            "code length (bits)": r["code_length_bits"],
            "file bytes": r["file_bytes"],
            "payload bits": r["payload_bits"],
            "overhead": f"{100 * r['overhead']:+.2f}%",
            "round trip": r.get("round_trip"),
            "run's bits": r.get("heldout_bits"),
        }
        for r in result["images"]
    ]
    emit(result, as_json=as_json, rows=rows, title=f"Compressed with {run} ({result['encoder']})")


@app.command()
def decompress(
    files: list[Path] = typer.Argument(..., help=".tsz files written by `toksuite compress`."),
    run: Path = RUN,
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the decoded PNGs."),
    as_json: bool = JSON_OPTION,
) -> None:
    """Decode .tsz files with the run that wrote them; each becomes OUT/NAME.png."""
    from toksuite.compress import decompress_files

    result = decompress_files(run, files, out=out)
    emit(result, as_json=as_json, rows=result["images"], title=f"Decompressed with {run}")
