"""`toksuite compare`: configuration, budgets, stage reuse, report vs the single commands."""

from __future__ import annotations

import json
import shutil
import tomllib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from toksuite.cli.app import app
from toksuite.compare import build_config, compare
from toksuite.compare.budget import RunShape, epoch_steps, plan_budgets, step_flops
from toksuite.compare.config import CompareConfig, from_dict, to_toml
from toksuite.errors import ConfigError

ENCODERS = ["pixels-grey", "bpe-grey"]
SMALL = {
    "encoders": ENCODERS,
    "params": {"bpe-grey": {"vocab_size": 300}},
    "limit": 200,
    "budget": {"epochs": 1.0},
    "train": {"batch_size": 32, "checkpoint_every": 2, "log_every": 2},
    "probe": {"random_control": False},
    "sample": {"n_samples": 4, "n_completions": 2, "batch_size": 4},
}


def small_config(out: Path, **changes) -> CompareConfig:
    from toksuite.compare.config import merge

    return build_config(cli=merge(SMALL | {"out": str(out)}, changes))


def actions(results: dict) -> dict[tuple[str, str], str]:
    return {
        (name, stage): s["action"]
        for name, e in results["encoders"].items()
        for stage, s in e["stages"].items()
    }


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> tuple[Path, dict]:
    """One small comparison (2 encoders, 200 images per split, 1 epoch), shared by the tests."""
    root = tmp_path_factory.mktemp("compare")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TOKSUITE_CACHE_DIR", str(root / "cache"))
        mp.setenv("TOKSUITE_QUIET", "1")
        results = compare(small_config(root / "out"))
    return root / "out", results


def copy_of(base_run, tmp_path) -> Path:
    out = tmp_path / "out"
    shutil.copytree(base_run[0], out)
    return out


# ---------------------------------------------------------------------------- configuration
def test_toml_then_cli_precedence(tmp_path):
    file = tmp_path / "c.toml"
    file.write_text(
        'encoders = ["pixels-grey", "bpe-grey"]\nmodel = "tiny"\nseed = 3\n'
        '[budget]\nmode = "flops"\nepochs = 5\n[probe]\npool = "mean"\n'
        "[params.bpe-grey]\nvocab_size = 500\n"
    )
    config = build_config(file=file, cli={"seed": 7, "probe": {"enabled": False}})
    assert config.seed == 7  # CLI wins over the file
    assert config.probe.pool == "mean" and config.probe.enabled is False  # sections merge
    assert config.budget.mode == "flops" and config.budget.epochs == 5  # file wins over defaults
    assert config.train.batch_size == 64  # default
    assert config.params == {"bpe-grey": {"vocab_size": 500}}
    again = from_dict(tomllib.loads(to_toml(config)) | {"params": config.params})
    assert again == config  # the written TOML reads back to the same configuration


def test_sampling_is_constrained_unless_asked_not_to_be(tmp_path, monkeypatch):
    assert build_config(cli={}).sample.constrained is True
    file = tmp_path / "c.toml"
    file.write_text("[sample]\nconstrained = false\n")
    assert build_config(file=file, cli={}).sample.constrained is False
    seen = []

    def capture(config):  # stands in for the comparison: only the configuration matters here
        seen.append(config)
        raise ConfigError("stop here")

    import toksuite.compare

    monkeypatch.setattr(toksuite.compare, "compare", capture)
    result = CliRunner().invoke(app, ["compare", "--unconstrained", "-o", str(tmp_path / "o")])
    assert result.exit_code == 1 and "stop here" in result.output
    assert seen[0].sample.constrained is False


@pytest.mark.parametrize(
    "text, message",
    [
        ("epoch = 3\n", "unknown key"),
        ("[budget]\nmode = 'gpu-hours'\n", "budget 'gpu-hours'"),
        ("[budget]\nmode = 'time'\n", "needs --time"),
        ("encoders = [\n", "not valid TOML"),
        ("[train]\nbatching = 'sorted'\n", "--batching 'sorted': expected one of bucket"),
    ],
)
def test_bad_config_names_the_problem(tmp_path, text, message):
    file = tmp_path / "bad.toml"
    file.write_text(text)
    with pytest.raises(ConfigError, match=message):
        build_config(file=file)


# ---------------------------------------------------------------------------- budgets
def run_shape(lengths, batch=4, context=None, vocab=20) -> RunShape:
    lengths = np.asarray(lengths)
    return RunShape(lengths, context or int(lengths.max()), vocab, batch, "bucket")


def test_flops_budget_plans_more_images_for_shorter_sequences():
    config = CompareConfig(
        encoders=["a", "b"], budget=replace(CompareConfig().budget, mode="flops")
    )
    runs = {"a": run_shape([65] * 40), "b": run_shape([17] * 40)}
    plans, budget = plan_budgets(config, runs)
    assert budget["reference"] == "a"  # the costlier encoder sets the target
    assert plans["a"].planned_steps == epoch_steps(runs["a"], config.budget.epochs)
    assert plans["b"].planned_steps > 3 * plans["a"].planned_steps
    for name, plan in plans.items():
        per_step = step_flops(runs[name], "tiny", 0, plan.planned_steps)
        assert per_step.sum() >= budget["train_flops"] > per_step[:-1].sum()

    timed = replace(config, budget=replace(config.budget, mode="time", time=12.5))
    plans, budget = plan_budgets(timed, runs)
    assert {p.field for p in plans.values()} == {"time"} and budget["seconds_per_encoder"] == 12.5


def test_a_stage_hands_what_it_keeps_to_later_stages_and_a_record_without_it_reruns(tmp_path):
    """The flops stage's train lengths reach the budget plan in memory, and from its record when
    it is reused; a record written before lengths were kept is computed again."""
    from toksuite.compare.stages import StageStore

    store = StageStore(tmp_path)
    calls = []

    def compute(resume):
        calls.append(resume)
        return {"fwd_flops": 1.0}, "ran", {"train_lengths": [3, 5]}

    first = store.run("a", "flops", {"model": "tiny"}, compute, keeps=("train_lengths",))
    assert first.kept == {"train_lengths": [3, 5]} and first.action == "ran"
    again = store.run("a", "flops", {"model": "tiny"}, compute, keeps=("train_lengths",))
    assert again.action == "reused" and again.kept == first.kept and len(calls) == 1
    assert "train_lengths" not in again.result  # not in the report's flops section

    record = json.loads(store.path("a", "flops").read_text())
    del record["kept"]  # as an older toksuite wrote it
    store.path("a", "flops").write_text(json.dumps(record))
    third = store.run("a", "flops", {"model": "tiny"}, compute, keeps=("train_lengths",))
    assert third.action == "ran" and third.kept == first.kept and len(calls) == 2
    assert not list(tmp_path.rglob("*.npy"))


def test_the_cli_table_report_md_and_html_share_one_set_of_columns():
    from toksuite.compare.report import markdown
    from toksuite.compare.summary import SUMMARY_COLUMNS, summary_table

    row = {key: None for key, _, _ in SUMMARY_COLUMNS} | {
        "encoder": "bpe-grey",
        "squeeze": 2.345,
        "train_flops": 1.23456e9,
        "real_token_share": 0.964,
    }
    (table,) = summary_table([row])
    assert list(table) == [header for _, header, _ in SUMMARY_COLUMNS]
    assert table["encoder"] == "bpe-grey" and table["squeeze"] == "2.35"
    assert table["train FLOPs"] == "1.23e+09" and table["real tokens"] == "96%"
    results = {
        "data": {"spec": "digits", "image_shape": [8, 8, 1], "train_images": 1}
        | {"heldout_images": 1},
        "model": {"preset": "tiny", "n_layer": 2, "n_embd": 64},
        "budget": {"mode": "epochs", "epochs": 1.0},
        "summary": [row],
        "definitions": {"flops_convention": "FLOPs = 2 × multiply-adds"},
        "rate_distortion": [],
        "quantization_groups": {},
        "skipped": {},
        "plots": {},
        "encoders": {},
    }
    text = markdown(results)
    assert "| " + " | ".join(table) + " |" in text
    assert "| " + " | ".join(table.values()) + " |" in text


# ---------------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_results_agree_with_the_single_commands(base_run):
    from toksuite.data import LoadOptions, load_dataset
    from toksuite.flops_sweep import LengthSource, flops_table
    from toksuite.probe import probe
    from toksuite.registry import create_encoder
    from toksuite.squeeze import measure_encoder

    out, results = base_run
    for key in ("config", "budget", "data", "model", "definitions", "summary", "encoders", "plots"):
        assert results[key], key
    assert json.loads((out / "results.json").read_text()) == results
    assert json.loads((out / "config.json").read_text())["limit"] == 200
    for name in ("report.html", "report.md", "config.toml", *results["plots"].values()):
        assert (out / name).is_file(), name
    assert set(actions(results).values()) == {"ran"}
    assert results["budget"]["mode"] == "epochs"

    options = LoadOptions(limit=200, seed=0, channels=1, progress=False)
    data = load_dataset("digits", options)
    for row in results["summary"]:
        name = row["encoder"]
        entry = results["encoders"][name]
        params = SMALL["params"].get(name, {})
        single = measure_encoder(create_encoder(name, **params), data, seed=0).to_dict(False)
        single.pop("fit_seconds")
        assert {k: entry["squeeze"][k] for k in single} == single
        run = json.loads((out / entry["run_dir"] / "summary.json").read_text())
        assert row["bits_per_pixel"] == run["bits_per_pixel"] == entry["pretrain"]["bits_per_pixel"]
        assert row["train_flops"] == run["train_flops"]
        table = flops_table(
            [name],
            [(8, 8)],
            model="tiny",
            lengths=LengthSource(data="digits", options=options, params={name: params}),
        )
        assert entry["flops"]["fwd_flops"] == pytest.approx(
            table["rows"][0]["fwd_flops"], rel=1e-12
        )
        assert row["best_probe_accuracy"] == entry["probe"]["runs"][0]["best_accuracy"]
        assert (out / entry["sample"]["samples_png"]).is_file()
    # one rate–distortion plane: a row per model, PNG and WebP rows per set of images
    groups = results["quantization_groups"]
    assert [g["encoders"] for g in groups.values()] == [["pixels-grey"], ["bpe-grey"]]
    methods = [r["method"] for r in results["rate_distortion"]]
    assert methods == ["pixels-grey", "bpe-grey", "PNG (A)", "WEBP (A)", "PNG (B)", "WEBP (B)"]
    for row in results["summary"]:
        run = results["encoders"][row["encoder"]]["pretrain"]
        assert run["psnr_db"] == results["encoders"][row["encoder"]]["squeeze"]["psnr_db"]
        assert row["bits_per_dim"] == run["bits_per_dim"] == run["bits_per_pixel"]  # grey
    assert {"bits_flops", "rate_distortion"} <= set(results["plots"])
    assert "## Rate–distortion" in (out / "report.md").read_text()
    alone = probe([out / "runs" / "pixels-grey"], random_control=False)["runs"][0]
    assert alone["layers"] == results["encoders"]["pixels-grey"]["probe"]["runs"][0]["layers"]


@pytest.mark.slow
def test_changed_setting_reruns_only_what_depends_on_it(base_run, tmp_path):
    out = copy_of(base_run, tmp_path)
    same = compare(small_config(out))
    assert set(actions(same).values()) == {"reused"}
    assert same["summary"] == base_run[1]["summary"]

    pooled = compare(small_config(out, probe={"pool": "mean"}))
    for (name, stage), action in actions(pooled).items():
        assert action == ("ran" if stage == "probe" else "reused"), (name, stage)
    assert pooled["encoders"]["bpe-grey"]["probe"]["pool"] == "mean"

    # A lost output re-runs its stage: here one encoder's sample grid.
    (out / pooled["encoders"]["pixels-grey"]["sample"]["samples_png"]).unlink()
    again = compare(small_config(out, probe={"pool": "mean"}))
    ran = {k for k, a in actions(again).items() if a != "reused"}
    assert ran == {("pixels-grey", "sample")}
    log = [json.loads(x) for x in (out / "stages.jsonl").read_text().splitlines()]
    assert log[-1]["action"] in ("ran", "reused") and len(log) >= 4 * 5


@pytest.mark.slow
def test_interrupted_pretraining_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    import toksuite.train.loop as loop

    real_step, calls = loop.train_step, []

    def counting_step(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt  # Ctrl-C after 4 steps (checkpoint every 2)
        return real_step(*args, **kwargs)

    config = small_config(tmp_path / "out", encoders=["pixels-grey"], probe={"enabled": False})
    monkeypatch.setattr(loop, "train_step", counting_step)
    with pytest.raises(KeyboardInterrupt):
        compare(config)
    results = compare(config)
    acts = actions(results)
    assert acts[("pixels-grey", "fit")] == "reused"
    assert acts[("pixels-grey", "pretrain")] == "resumed"
    entry = results["encoders"]["pixels-grey"]
    assert entry["pretrain"]["steps"] == entry["budget"]["planned_steps"]
    # 4 steps, the interrupted 5th, then only the steps after the checkpoint at step 4
    assert len(calls) == 5 + entry["budget"]["planned_steps"] - 4


@pytest.mark.slow
def test_compute_matched_budget_spends_the_same_flops(tmp_path):
    from toksuite.flops import flops_per_token
    from toksuite.model import resolve_shape

    config = small_config(
        tmp_path / "out",
        encoders=["pixels-grey", "pixels-rgb", "bpe-grey"],
        budget={"mode": "flops", "epochs": 0.5},
        probe={"enabled": False},
        sample={"enabled": False},
    )
    results = compare(config)
    target = results["budget"]["train_flops"]
    assert results["budget"]["reference"] == "pixels-rgb"
    spent, images, step_max = {}, {}, 0.0
    for name, entry in results["encoders"].items():
        run = entry["pretrain"]
        spent[name], images[name] = run["train_flops"], run["images_seen"]
        # the most one step can count: a full batch at the full context
        width = run["context"]
        flops = flops_per_token(resolve_shape("tiny"), run["vocab_size"], width)
        step_max = max(step_max, SMALL["train"]["batch_size"] * width * flops)
        assert target <= run["train_flops"] == pytest.approx(entry["budget"]["planned_train_flops"])
    assert max(spent.values()) - min(spent.values()) <= step_max
    assert images["bpe-grey"] > images["pixels-grey"] > images["pixels-rgb"]
    assert "compute-matched" in (tmp_path / "out" / "report.md").read_text()


@pytest.mark.slow
def test_malformed_samples_still_give_a_grid_and_counted_repairs(base_run, tmp_path, monkeypatch):
    import toksuite.sample as sample

    def garbage(model, prompts, *, bos_id, max_new_tokens, **kwargs):
        # BOS is never an encoder id and the length is wrong: every sequence needs repair
        return [np.full(3, bos_id, np.int64) for _ in prompts]

    monkeypatch.setattr(sample, "generate", garbage)
    out = copy_of(base_run, tmp_path)
    results = compare(small_config(out, sample={"temperature": 0.9}))
    ran = {k for k, a in actions(results).items() if a != "reused"}
    assert ran == {(name, "sample") for name in ENCODERS}
    for row in results["summary"]:
        s = results["encoders"][row["encoder"]]["sample"]
        assert row["well_formed_share"] == 0.0
        assert s["repairs"]["malformed_samples"] == SMALL["sample"]["n_samples"]
        assert s["repairs"]["samples"] > 0
        assert (out / s["samples_png"]).stat().st_size > 0
    assert "0%" in (out / "report.md").read_text()


# ---------------------------------------------------------------------------- CLI
@pytest.mark.slow
def test_cli_config_file_json_and_skipped_encoder(base_run, tmp_path):
    out = copy_of(base_run, tmp_path)
    file = tmp_path / "c.toml"
    text = to_toml(small_config(out))
    file.write_text(text.replace('encoders = ["pixels-grey", "bpe-grey"]', 'encoders = ["nope"]'))
    runner = CliRunner()
    result = runner.invoke(app, ["compare", "--config", str(file)])
    assert result.exit_code == 1
    assert "nope" in result.output and "pixels-grey" in result.output  # suggestions

    # An encoder whose parameters cannot work is reported as skipped; the others go on.
    args = ["compare", "--config", str(file), "-e", "pixels-grey,bpe-grey,kmeans"]
    result = runner.invoke(app, [*args, "-p", "kmeans:k=0", "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert printed == json.loads((out / "results.json").read_text())
    assert "kmeans" in printed["skipped"] and "k must" in printed["skipped"]["kmeans"]
    assert [r["encoder"] for r in printed["summary"]] == ENCODERS
    assert set(actions(printed).values()) == {"reused"}, actions(printed)

    result = runner.invoke(app, ["compare", "--budget", "time", "-o", str(tmp_path / "t")])
    assert result.exit_code == 1 and "--time" in result.output


@pytest.mark.slow
def test_the_matched_control_shares_bpes_images(tmp_path):
    """`pixels-grey levels=10` models exactly the images `bpe-grey` models: one letter."""
    config = small_config(
        tmp_path / "out",
        params={"pixels-grey": {"levels": 10}, "bpe-grey": {"vocab_size": 300}},
        budget={"epochs": 0.5},
        probe={"enabled": False},
        sample={"enabled": False},
    )
    results = compare(config)
    groups = results["quantization_groups"]
    assert list(groups) == ["A"] and groups["A"]["encoders"] == ENCODERS
    assert {r["images"] for r in results["summary"]} == {"A"}
    psnr = {r["method"]: r["psnr_db"] for r in results["rate_distortion"]}
    assert psnr["pixels-grey"] == psnr["bpe-grey"] == psnr["PNG (A)"] is not None


def test_cli_bad_batching_is_one_line(tmp_path):
    result = CliRunner().invoke(app, ["compare", "--batching", "sorted", "-o", str(tmp_path / "o")])
    assert result.exit_code == 1 and "--batching 'sorted'" in result.output
    assert len(result.output.strip().splitlines()) == 1
