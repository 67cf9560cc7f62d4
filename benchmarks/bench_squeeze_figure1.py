"""The paper's Figure 1: squeeze against vocabulary size on CelebA faces at 112², with PSNR.

Setting of the paper: CelebA faces (``DATA_DIR/celeba-6k``, the 140×140 box at (19, 39) resized to
112²), grey and RGB, vocabularies 1k, 5k, 10k and 30k, BPE learned on 2,000 train faces, squeeze
measured on held-out test faces (mean of H·W / tokens, paper §3.3). The paper's recipe
(``bpe-bytelevel-grey`` / ``bpe-bytelevel``: ``chr()`` text, ``ByteLevelBPETokenizer``) runs side by
side with toksuite's ``bpe-grey`` / ``bpe-rgb`` on the same images; ``ratio`` is toksuite's
squeeze ÷ the paper recipe's at the same channels and vocabulary. PSNR is that of the 10-level
quantisation against the original (bin centres; the same for both recipes). The paper reports
about 9× (grey) and 4× (RGB) at 30k with its recipe.

Writes the Figure-1-style plot to ``--plot`` (PNG) through `toksuite.plots.line_plot`; the same
sweep is ``toksuite squeeze --data folder:../shared/data/celeba-6k --crop 19,39,140,140
--resolution 112 --plot figure1.png`` on one channel count.

    python benchmarks/bench_squeeze_figure1.py [--data-dir ../shared/data] [--quick]

Takes about 15–20 minutes on 2 idle cores (16 fits on 2,000 faces; the 30k fits are the longest);
on a shared machine (load average 10+) a fit took 1.5–7 minutes and the whole well over an hour —
``--channels 1`` or ``--channels 3`` runs one half. ``--quick`` (200 train and 50 test faces,
vocab 1k and 5k) takes 1–2 minutes. Prints JSON.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from _common import add_data_argument, emit, load_faces, machine

from toksuite.data.base import Dataset
from toksuite.plots import line_plot
from toksuite.squeeze import measure_encoder

PAIRS = {1: ("bpe-bytelevel-grey", "bpe-grey"), 3: ("bpe-bytelevel", "bpe-rgb")}
PAPER_AT_30K = {1: 9.0, 3: 4.0}  # read off the paper's Figure 1 ("about")


def encoder_class(name: str):
    from toksuite.encoders.bytelevel import ByteLevelGreyBPEEncoder
    from toksuite.registry import get_encoder_class

    # The grey byte-level recipe is a class of its own that may not be registered by name.
    return ByteLevelGreyBPEEncoder if name == "bpe-bytelevel-grey" else get_encoder_class(name)


def faces(data_dir: Path, channels: int, train: int, test: int) -> Dataset:
    data = load_faces(data_dir, 112, channels=channels, limit=max(train, test))
    return Dataset(data.spec, data.x_train[:train], data.x_test[:test])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_data_argument(parser)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--vocab", default="1000,5000,10000,30000")
    parser.add_argument("--channels", default="1,3", help="1 (grey), 3 (RGB) or both")
    parser.add_argument("--plot", type=Path, default=Path("squeeze_figure1.png"))
    args = parser.parse_args()
    if args.quick:
        args.train, args.test, args.vocab = 200, 50, "1000,5000"
    vocabs = [int(v) for v in args.vocab.split(",")]
    start = machine()

    rows = []
    for channels in map(int, args.channels.split(",")):
        names = PAIRS[channels]
        dataset = faces(args.data_dir, channels, args.train, args.test)
        for vocab in vocabs:
            for name in names:
                if name == "bpe-rgb" and vocab < 1000:
                    continue  # below its 1,000-symbol alphabet
                row = measure_encoder(encoder_class(name)(vocab_size=vocab), dataset, seed=0)
                # The fitted vocabulary may fall short of the target: keep both.
                extra = {"target_vocab": vocab, "channels": channels, "train_images": args.train}
                rows.append(row.to_dict() | extra)
                print(rows[-1], file=sys.stderr)
    ratios = []
    for channels, (paper, ours) in PAIRS.items():
        for vocab in vocabs:
            a = [r for r in rows if r["encoder"] == paper and _target(r, vocab)]
            b = [r for r in rows if r["encoder"] == ours and _target(r, vocab)]
            if a and b:
                ratios.append(
                    {
                        "channels": channels,
                        "vocab": vocab,
                        "paper_recipe_squeeze": round(a[0]["squeeze"], 3),
                        "toksuite_squeeze": round(b[0]["squeeze"], 3),
                        "ratio": round(b[0]["squeeze"] / a[0]["squeeze"], 3),
                    }
                )
    series = {}
    for row in rows:
        label = f"{row['encoder']} ({'grey' if row['channels'] == 1 else 'RGB'})"
        xs, ys = series.setdefault(label, ([], []))
        xs.append(row["target_vocab"])
        ys.append(row["squeeze"])
    line_plot(
        series,
        args.plot,
        title=f"Squeeze on CelebA 112² ({args.test} held-out faces, BPE on {args.train})",
        xlabel="vocabulary size",
        ylabel="squeeze (H·W / tokens)",
        logx=True,
        xticks=vocabs,
    )
    result = {"args": vars(args), "paper_at_30k": PAPER_AT_30K, "rows": rows, "ratios": ratios}
    emit(result | {"plot": str(args.plot)}, start)


def _target(row: dict, vocab: int) -> bool:
    return row["target_vocab"] == vocab


if __name__ == "__main__":
    main()
