"""Small PNG plots shared by the commands (squeeze vs vocab and vs PSNR, FLOPs vs resolution …).

matplotlib runs on the Agg backend (no display needed) and every file is written atomically.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from toksuite.io import atomic_path

Series = Mapping[str, tuple[Sequence[float], Sequence[float]]]


def _figure(title: str | None, xlabel: str, ylabel: str, figsize: tuple[float, float]):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize, constrained_layout=True)
    if title:
        ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, which="major", alpha=0.3)
    return fig, ax


def _save(fig, path: str | os.PathLike[str], dpi: int, *, tight: bool = False) -> None:
    """Write ``fig`` as PNG atomically and close it; ``tight`` keeps a legend outside the axes."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight" if tight else None)
    finally:
        plt.close(fig)


def line_plot(
    series: Series,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    xlabel: str = "",
    ylabel: str = "",
    logx: bool = False,
    logy: bool = False,
    markers: bool = True,
    xticks: Sequence[float] | None = None,
    figsize: tuple[float, float] = (6.4, 4.2),
    dpi: int = 120,
) -> None:
    """One line per name in ``series`` (name → (xs, ys)), written to ``path`` as PNG.

    ``xticks`` puts ticks (labelled as plain numbers) at exactly these x values.
    """
    fig, ax = _figure(title, xlabel, ylabel, figsize)
    for name, (xs, ys) in series.items():
        ax.plot(list(xs), list(ys), marker="o" if markers else None, label=name)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if xticks is not None:
        ax.set_xticks(list(xticks), [f"{x:g}" for x in xticks])
        ax.set_xticks([], minor=True)  # a log axis would add labels like 2×10³ between them
    if len(series) > 1:
        ax.legend()
    _save(fig, path, dpi)


def bar_plot(
    groups: Sequence[str],
    series: Mapping[str, Sequence[float]],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    xlabel: str = "",
    ylabel: str = "",
    logy: bool = False,
    figsize: tuple[float, float] = (6.4, 4.2),
    dpi: int = 120,
) -> None:
    """Grouped bars: one group per label in ``groups``, one bar per name in ``series``.

    ``series[name][i]`` is the bar of ``name`` in group ``groups[i]``; NaN leaves a gap.
    """
    fig, ax = _figure(title, xlabel, ylabel, figsize)
    n = max(len(series), 1)
    width = 0.8 / n
    for k, (name, values) in enumerate(series.items()):
        offsets = [i - 0.4 + width * (k + 0.5) for i in range(len(groups))]
        ax.bar(offsets, list(values), width=width, label=name)
    ax.set_xticks(range(len(groups)), list(groups))
    if logy:
        ax.set_yscale("log")
    if len(series) > 1:
        ax.legend()
    _save(fig, path, dpi)


def rate_distortion_plot(
    rows: Sequence[Mapping],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    dpi: int = 120,
) -> None:
    """Bits per pixel against PSNR: models as coloured dots, codecs as grey markers.

    ``rows`` are `toksuite.compare.report.rate_distortion` rows. Lossless rows (PSNR None) sit at
    a column of their own on the right, labelled "lossless".
    """
    finite = [r["psnr_db"] for r in rows if r.get("psnr_db") is not None]
    lossless_x = (max(finite) + 4.0) if finite else 40.0
    fig, ax = _figure(title, "PSNR of the quantisation (dB, peak 255)", "bits per pixel", (7, 4.6))
    markers = {"PNG": "s", "WEBP": "^"}
    labels: dict[tuple[float, float, str], list[str]] = {}  # codecs that land on one point
    for row in rows:
        if row.get("bits_per_pixel") is None:
            continue
        x = lossless_x if row.get("psnr_db") is None else row["psnr_db"]
        y = row["bits_per_pixel"]
        if row["kind"] == "model":
            ax.scatter([x], [y], s=40, zorder=3, label=row["method"])
        else:
            codec = row["method"].split(" ")[0]
            ax.scatter([x], [y], marker=markers.get(codec, "x"), s=30, color="grey", zorder=2)
            labels.setdefault((round(x, 2), round(y, 2), codec), []).append(row["images"])
    for (x, y, codec), groups in labels.items():
        ax.annotate(
            f"{codec} ({', '.join(groups)})",
            (x, y),
            fontsize=7,
            color="grey",
            xytext=(-5, 3),  # left of the marker: the legend sits right of the axes
            textcoords="offset points",
            ha="right",
        )
    ys = [r["bits_per_pixel"] for r in rows if r.get("bits_per_pixel")]
    if ys and max(ys) > 8 * min(ys):  # codecs far above the models (tiny images): a log axis
        from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(ScalarFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
    ticks = sorted(set(round(x, 1) for x in finite))
    ax.set_xticks([*ticks, lossless_x], [*(f"{t:g}" for t in ticks), "lossless"])
    ax.margins(x=0.25)
    ax.tick_params(axis="x", labelrotation=45, labelsize=8)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _save(fig, path, dpi, tight=True)


def frontier_plot(
    points: Sequence[Mapping],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    recipe: Sequence[str] = ("bpe-bytelevel", "bpe-bytelevel-grey"),
    dpi: int = 120,
) -> None:
    """Squeeze against PSNR, a point per encoder × setting, the Pareto front as a line.

    ``points``: mappings with ``encoder``, ``label``, ``squeeze``, ``psnr_db`` (None: lossless,
    drawn at the right edge) and ``pareto``. Rows of ``recipe`` (the paper's own) are starred.
    """
    finite = [p["psnr_db"] for p in points if p["psnr_db"] is not None]
    lossless_x = (max(finite) + 3) if finite else 50.0
    fig, ax = _figure(title, "PSNR of the quantisation (dB)", "squeeze (H·W / tokens)", (7.2, 4.8))
    colours: dict[str, str] = {}
    for p in points:
        x = lossless_x if p["psnr_db"] is None else p["psnr_db"]
        first = p["encoder"] not in colours
        colour = colours.setdefault(p["encoder"], f"C{len(colours) % 10}")
        starred = p["encoder"] in recipe
        ax.scatter(
            x,
            p["squeeze"],
            color=colour,
            marker="*" if starred else "o",
            s=140 if starred else 36,
            label=(f"{p['encoder']} (the paper's recipe)" if starred else p["encoder"])
            if first
            else None,
            zorder=3,
        )
        ax.annotate(
            p["label"], (x, p["squeeze"]), fontsize=7, xytext=(4, 3), textcoords="offset points"
        )
    front = sorted(
        (
            (lossless_x if p["psnr_db"] is None else p["psnr_db"], p["squeeze"])
            for p in points
            if p["pareto"]
        ),
    )
    if front:
        ax.step(
            [x for x, _ in front],
            [y for _, y in front],
            where="post",
            color="black",
            alpha=0.5,
            lw=1,
            label="Pareto front",
            zorder=2,
        )
    if len(finite) < len(points):
        ax.axvline(lossless_x, ls=":", color="grey")
        ax.annotate(
            "lossless",
            (lossless_x, ax.get_ylim()[0]),
            fontsize=8,
            rotation=90,
            xytext=(3, 4),
            textcoords="offset points",
            color="grey",
        )
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _save(fig, path, dpi, tight=True)
