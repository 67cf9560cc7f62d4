"""The comparison's report: results.json (every number, units, definitions), report.md, report.html.

report.html is one self-contained file: inline CSS, every image a base64 ``data:`` URI, no script
and no external request, so it can be mailed or archived as it is.
"""

from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path
from typing import Any

from toksuite.compare.summary import SUMMARY_COLUMNS, summary_cells, summary_row
from toksuite.formatting import fmt, jsonable
from toksuite.io import write_bytes_atomic, write_json_atomic
from toksuite.progress import status

PLOTS = {
    "bits_flops": "Held-out bits per pixel against training FLOPs",
    "rate_distortion": "Bits per pixel against PSNR (the rate–distortion plane)",
    "squeeze": "Squeezing factor (H·W / tokens, held-out mean)",
    "flops": "Forward FLOPs per image",
    "probe": "Linear-probe accuracy per layer",
}


def quantization_groups(runs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Letter → the quantisation fingerprint and the encoders that share it (in report order)."""
    groups: dict[str, dict[str, Any]] = {}
    for name, run in runs.items():
        fp = run.get("quantization")
        if fp is None:  # a run from before fingerprints were recorded
            continue
        match = next((g for g in groups.values() if g["fingerprint"] == fp), None)
        if match is None:
            letter = chr(ord("A") + len(groups)) if len(groups) < 26 else f"Q{len(groups)}"
            match = groups[letter] = {"fingerprint": fp, "encoders": [], "psnr_db": run["psnr_db"]}
        match["encoders"].append(name)
    return groups


def group_of(groups: dict[str, dict[str, Any]], name: str) -> str | None:
    return next((k for k, g in groups.items() if name in g["encoders"]), None)


def rate_distortion(runs: dict[str, dict[str, Any]], groups: dict) -> list[dict[str, Any]]:
    """One row per encoder's model and per lossless codec on each group's images."""
    keys = ("bits_per_image", "bits_per_pixel", "bits_per_dim")
    rows = [
        {
            "method": name,
            "kind": "model",
            "images": group_of(groups, name),
            **{k: run.get(k) for k in keys},
            "psnr_db": run.get("psnr_db"),
        }
        for name, run in runs.items()
    ]
    for letter, group in groups.items():
        anchors = runs[group["encoders"][0]].get("anchors", {})
        for codec, bits in anchors.items():
            rows.append(
                {
                    "method": f"{codec.upper()} ({letter})",
                    "kind": "codec",
                    "images": letter,
                    **{k: bits[k] for k in keys},
                    "psnr_db": group["psnr_db"],
                }
            )
    return rows


RD_COLUMNS = (
    ("method", "method"),
    ("images", "images"),
    ("bits_per_image", "bits/image"),
    ("bits_per_pixel", "bits/pixel"),
    ("bits_per_dim", "bits/dim"),
    ("psnr_db", "PSNR dB"),
)


def definitions() -> dict[str, str]:
    from toksuite.flops import CONVENTION
    from toksuite.likelihood import DEFINITIONS as LIKELIHOOD
    from toksuite.sample import DEFINITIONS as SAMPLE
    from toksuite.squeeze import DEFINITIONS as SQUEEZE

    out = {key: text for key, _, text in SUMMARY_COLUMNS}
    out |= {f"likelihood.{k}": v for k, v in LIKELIHOOD.items()}
    out |= {f"squeeze.{k}": v for k, v in SQUEEZE.items()}
    out |= {f"sample.{k}": v for k, v in SAMPLE.items()}
    out["flops_convention"] = CONVENTION
    out["completion_psnr_db"] = SAMPLE["completion_psnr_db"]
    out["probe"] = (
        "logistic regression per layer on pooled hidden states (layer 0 = embeddings; the "
        "pooling is the probe's `pool`, see toksuite.pooling), C chosen on a validation split of "
        "train, accuracy on the test split"
    )
    return out


# ---------------------------------------------------------------------------- plots
def write_plots(
    job, entries: dict[str, dict[str, Any]], rows: list[dict], rd_rows: list[dict]
) -> dict[str, str]:
    from toksuite.plots import bar_plot, line_plot, rate_distortion_plot
    from toksuite.probe import plot_probe
    from toksuite.train.metrics_log import MetricsLog
    from toksuite.train.rundir import METRICS_FILE

    folder = job.out / "plots"
    names = [r["encoder"] for r in rows]
    paths = {key: folder / f"{key}.png" for key in PLOTS}
    bar_plot(
        names,
        {"squeeze": [r["squeeze"] for r in rows]},
        paths["squeeze"],
        title=PLOTS["squeeze"],
        ylabel="H·W / tokens",
    )
    bar_plot(
        names,
        {"forward FLOPs per image": [r["fwd_flops_per_image"] for r in rows]},
        paths["flops"],
        title=PLOTS["flops"],
        ylabel="FLOPs (2 × MACs)",
        logy=True,
    )
    series = {}
    for name in names:
        records = MetricsLog(job.run_dir(name) / METRICS_FILE).read()
        evals = [r for r in records if r.get("event") == "eval" and "bits_per_pixel" in r]
        series[name] = ([r["train_flops"] for r in evals], [r["bits_per_pixel"] for r in evals])
    line_plot(
        series,
        paths["bits_flops"],
        title=PLOTS["bits_flops"],
        xlabel="training FLOPs (real tokens)",
        ylabel="held-out bits per pixel",
        logx=True,
    )
    rate_distortion_plot(rd_rows, paths["rate_distortion"], title=PLOTS["rate_distortion"])
    probes = [
        entries[n]["stages"]["probe"].result for n in names if "probe" in entries[n]["stages"]
    ]
    if probes:
        merged = {"runs": [], "controls": probes[0]["controls"], "chance": probes[0].get("chance")}
        for p in probes:
            merged["runs"].append(p["runs"][0] | {"label": p["runs"][0]["encoder"]})
            merged["runs"][-1].pop("random_init", None)  # one line per encoder keeps it legible
        plot_probe(merged, paths["probe"])
    else:
        paths.pop("probe")
    return {k: str(p.relative_to(job.out)) for k, p in paths.items()}


# ---------------------------------------------------------------------------- results.json
def _skipped_files(job, runs: dict[str, dict]) -> dict[str, Any]:
    """Bad files left out (on_error="skip"): of the data loaded in this call and, since reused
    stages load nothing, as each pretraining run recorded them."""
    from toksuite.data.base import merge_skip_reports

    recorded = (run.get("skipped_files") for run in runs.values())
    return merge_skip_reports([job.skip_report(), *recorded])


def write_report(job, entries, skipped, budget, threads) -> dict[str, Any]:
    from toksuite import __version__
    from toksuite.model import resolve_shape
    from toksuite.train.rundir import RunInfo

    config = job.config
    runs = {name: e["stages"]["pretrain"].result for name, e in entries.items()}
    groups = quantization_groups(runs)
    rows = [summary_row(n, e["stages"], group_of(groups, n)) for n, e in entries.items()]
    rd_rows = rate_distortion(runs, groups)
    first = RunInfo.load(job.run_dir(rows[0]["encoder"])).data
    encoders = {}
    for name, e in entries.items():
        st = e["stages"]
        encoders[name] = {
            "run_dir": str(job.run_dir(name).relative_to(job.out)),
            "encoder_dir": str(job.encoder_dir(name).relative_to(job.out)),
            "squeeze": st["fit"].result,
            "flops": st["flops"].result,
            "budget": e["plan"],
            "pretrain": st["pretrain"].result,
            "probe": st["probe"].result if "probe" in st else None,
            "sample": _sample_section(job, st["sample"].result) if "sample" in st else None,
            "stages": {k: v.to_dict() for k, v in st.items()},
            "skipped_stages": e.get("notes", {}),
        }
    results = {
        "toksuite_version": __version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "out": str(job.out),
        "config": config.to_dict(),
        "budget": budget,
        "data": {
            "spec": config.data,
            "image_shape": list(first.image_shape),
            "train_images": first.train_images,
            "heldout_images": first.heldout_images,
            "skipped_files": _skipped_files(job, runs),
        },
        "model": {"preset": config.model, **resolve_shape(config.model).to_dict()},
        "torch_threads": threads,
        "units": {
            "flops": "FLOPs = 2 × multiply-adds",
            "bits_per_pixel": "bits per pixel of the quantised image (the model's code length)",
            "bits_per_dim": "bits per sub-pixel value (H·W·C)",
            "psnr_db": "dB, peak 255",
            "seconds": "wall-clock seconds",
        },
        "definitions": definitions(),
        "summary": rows,
        "rate_distortion": rd_rows,
        "quantization_groups": groups,
        "encoders": encoders,
        "skipped": skipped,
    }
    results["plots"] = write_plots(job, entries, rows, rd_rows)
    results["report"] = {"html": "report.html", "markdown": "report.md", "json": "results.json"}
    results = jsonable(results)
    write_json_atomic(job.out / "results.json", results)
    write_bytes_atomic(job.out / "report.md", markdown(results).encode())
    write_bytes_atomic(job.out / "report.html", to_html(results, job.out).encode())
    status(f"report written to {job.out / 'report.html'}")
    return results


def _sample_section(job, result: dict[str, Any]) -> dict[str, Any]:
    keep = {k: v for k, v in result.items() if k not in ("samples", "completions", "definitions")}

    def malformed(records: list[dict[str, Any]]) -> int:
        return sum(not r.get("well_formed", r["repairs"] == 0) for r in records)

    samples, completions = result.get("samples", []), result.get("completions", [])
    keep["repairs"] = {
        "samples": sum(s["repairs"] for s in samples),
        "malformed_samples": malformed(samples),
        "completions": sum(s["repairs"] for s in completions),
        "malformed_completions": malformed(completions),
    }
    return keep


# ---------------------------------------------------------------------------- markdown
def rd_cells(row: dict[str, Any]) -> list[str]:
    digits = {"bits_per_image": 1, "psnr_db": 2}
    cells = [fmt(row.get(key), digits.get(key, 3)) for key, _ in RD_COLUMNS]
    if row.get("psnr_db") is None:
        cells[-1] = "lossless"
    return cells


def groups_text(groups: dict[str, dict[str, Any]]) -> list[str]:
    """One line per quantisation group: which encoders model the same images."""
    return [
        f"{letter}: {', '.join(g['encoders'])} (quantisation {g['fingerprint']})"
        for letter, g in groups.items()
    ]


RD_NOTE = (
    "Bits are the model's code length of each held-out quantised image (what an arithmetic coder "
    "driven by the model would spend), PSNR the quantisation's distortion. Rows with the same "
    "letter model the same images; PNG and WebP (lossless, Pillow) code those same images, one "
    "file per image: a model above them has learned less than a general-purpose codec."
)


def budget_text(budget: dict[str, Any]) -> str:
    if budget["mode"] == "epochs":
        return f"same epochs for every encoder: {budget['epochs']:g}"
    if budget["mode"] == "time":
        return f"same wall time for every encoder: {budget['seconds_per_encoder']:g} s"
    flops = budget["train_flops"]
    return f"compute-matched: {flops:.3g} training FLOPs per encoder ({budget['definition']})"


def samples_of(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(encoder, caption, relative path) of every sample grid."""
    out = []
    for name, e in results["encoders"].items():
        s = e.get("sample") or {}
        if s.get("samples_png"):
            out.append((name, f"{name}: unconditional samples", s["samples_png"]))
        if s.get("completions_png"):
            out.append(
                (name, f"{name}: completions (prompt / completion / truth)", s["completions_png"])
            )
    return out


def markdown(results: dict[str, Any]) -> str:
    d, m = results["data"], results["model"]
    shape = "×".join(map(str, d["image_shape"]))
    lines = [
        "# toksuite compare",
        "",
        f"Data **{d['spec']}** ({shape}, {d['train_images']:,} train / {d['heldout_images']:,} "
        f"held-out images) · model **{m['preset']}** ({m['n_layer']} layers × {m['n_embd']}) · "
        f"budget: {budget_text(results['budget'])}.",
        "",
        "| " + " | ".join(h for _, h, _ in SUMMARY_COLUMNS) + " |",
        "|" + "---|" * len(SUMMARY_COLUMNS),
    ]
    lines += ["| " + " | ".join(summary_cells(r)) + " |" for r in results["summary"]]
    lines += ["", *(f"- **{h}**: {t}" for _, h, t in SUMMARY_COLUMNS[1:])]
    lines += ["", f"FLOPs: {results['definitions']['flops_convention']}.", ""]
    lines += ["## Rate–distortion", "", RD_NOTE, ""]
    lines += ["| " + " | ".join(h for _, h in RD_COLUMNS) + " |", "|" + "---|" * len(RD_COLUMNS)]
    lines += ["| " + " | ".join(rd_cells(r)) + " |" for r in results["rate_distortion"]]
    lines += ["", *(f"- {line}" for line in groups_text(results["quantization_groups"])), ""]
    for name, reason in results["skipped"].items():
        lines.append(f"Skipped **{name}**: {reason}")
    for key, path in results["plots"].items():
        lines += [f"## {PLOTS[key]}", "", f"![{PLOTS[key]}]({path})", ""]
    if samples_of(results):
        lines += ["## Samples", ""]
        for _, caption, path in samples_of(results):
            lines += [f"![{caption}]({path})", f"*{caption}*", ""]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------- html
CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1200px;
 padding:0 1rem;color:#222;line-height:1.45}
h1{margin-bottom:.2rem} h2{margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
.meta{color:#555} table{border-collapse:collapse;font-size:.9rem;margin:1rem 0}
th,td{padding:.3rem .6rem;border-bottom:1px solid #e4e4e4;text-align:right}
th{background:#f5f5f5;position:sticky;top:0} td:first-child,th:first-child{text-align:left}
tr:hover td{background:#fafafa} .plots{display:grid;grid-template-columns:repeat(2,1fr);gap:1rem}
figure{margin:0} figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:.85rem;color:#555} .samples{display:grid;
 grid-template-columns:repeat(auto-fill,minmax(340px,1fr));gap:1rem}
.card{border:1px solid #e4e4e4;padding:.5rem .8rem} .card h3{margin:.2rem 0 .5rem;font-size:1rem}
.pair{display:flex;gap:1rem;align-items:flex-start}
.pair img{image-rendering:pixelated;height:220px;width:auto;border:none}
dl{font-size:.85rem} dt{font-weight:600}
dd{margin:0 0 .4rem 1rem;color:#444}
pre{background:#f7f7f7;padding:.8rem;overflow:auto;font-size:.8rem}
.skipped{color:#a15c00} .wide{overflow-x:auto} .wide table{font-size:.82rem}
.wide th,.wide td{padding:.3rem .45rem}
"""


def _img(root: Path, path: str, alt: str) -> str:
    data = base64.b64encode((root / path).read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def to_html(results: dict[str, Any], root: Path) -> str:
    e = html.escape
    d, m = results["data"], results["model"]
    shape = "×".join(map(str, d["image_shape"]))
    head = "".join(f'<th title="{e(t)}">{e(h)}</th>' for _, h, t in SUMMARY_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{e(c)}</td>" for c in summary_cells(r)) + "</tr>"
        for r in results["summary"]
    )
    stage_rows = "".join(
        f"<tr><td>{e(name)}</td>"
        + "".join(
            f"<td>{e(s['action'])} · {s['seconds']:.1f} s</td>" for s in enc["stages"].values()
        )
        + "</tr>"
        for name, enc in results["encoders"].items()
    )
    stage_head = "".join(
        f"<th>{e(k)}</th>" for k in next(iter(results["encoders"].values()))["stages"]
    )
    rd_head = "".join(f"<th>{e(h)}</th>" for _, h in RD_COLUMNS)
    rd_body = "".join(
        "<tr>" + "".join(f"<td>{e(c)}</td>" for c in rd_cells(r)) + "</tr>"
        for r in results["rate_distortion"]
    )
    rd_groups = "".join(
        f"<li>{e(line)}</li>" for line in groups_text(results["quantization_groups"])
    )
    plots = "".join(
        f"<figure>{_img(root, path, PLOTS[key])}<figcaption>{e(PLOTS[key])}</figcaption></figure>"
        for key, path in results["plots"].items()
    )
    cards: dict[str, list[str]] = {}
    for name, caption, path in samples_of(results):
        kind = "samples" if "unconditional" in caption else "prompt / completion / truth"
        cards.setdefault(name, []).append(
            f"<figure>{_img(root, path, caption)}<figcaption>{e(kind)}</figcaption></figure>"
        )
    samples = "".join(
        f'<div class="card"><h3>{e(name)}</h3><div class="pair">{"".join(figs)}</div></div>'
        for name, figs in cards.items()
    )
    defs = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in results["definitions"].items())
    skipped = "".join(
        f'<p class="skipped">Skipped <b>{e(n)}</b>: {e(r)}</p>'
        for n, r in results["skipped"].items()
    )
    config = e(json.dumps(results["config"], indent=2))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>toksuite compare · {e(d["spec"])}</title><style>{CSS}</style></head>
<body>
<h1>toksuite compare</h1>
<p class="meta">Data <b>{e(d["spec"])}</b> ({e(shape)}, {d["train_images"]:,} train /
{d["heldout_images"]:,} held-out images) · model <b>{e(m["preset"])}</b> ({m["n_layer"]} layers
× {m["n_embd"]}, {m["n_head"]} heads) · budget: {e(budget_text(results["budget"]))} ·
{e(results["created"])} · toksuite {e(results["toksuite_version"])}</p>
<h2>Summary</h2>
<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>
{skipped}
<h2>Rate–distortion</h2>
<p>{e(RD_NOTE)}</p>
<table><thead><tr>{rd_head}</tr></thead><tbody>{rd_body}</tbody></table>
<ul>{rd_groups}</ul>
<h2>Plots</h2><div class="plots">{plots}</div>
<h2>Samples</h2><div class="samples">{samples or "<p>No samples.</p>"}</div>
<h2>Definitions</h2><dl>{defs}</dl>
<h2>Stages</h2>
<table><thead><tr><th>encoder</th>{stage_head}</tr></thead><tbody>{stage_rows}</tbody></table>
<details><summary>Resolved configuration</summary><pre>{config}</pre></details>
</body></html>
"""
