"""`compare`: for each encoder fit → squeeze → flops → pretrain → probe → sample, then one report.

Layout of OUT (all of it reusable by a re-run):

* ``config.json`` / ``config.toml`` — the resolved configuration;
* ``encoders/NAME/`` — the fitted encoder (loads with `toksuite.registry.load_encoder`);
* ``runs/NAME/`` — a normal pretraining run dir (``toksuite probe/sample --run`` work on it), its
  samples in ``runs/NAME/samples/``;
* ``stages/NAME/STAGE.json`` and ``stages.jsonl`` — stage records and decisions (`stages`);
* ``results.json``, ``report.md``, ``report.html``, ``plots/`` — the report (`report`).

Fit and squeeze are one stage ("fit"): `toksuite.squeeze.measure_encoder` fits the encoder on the
train split and measures it on the held-out split in one go, and nothing changes one without the
other. An encoder whose parameters do not suit the data (e.g. a BPE vocabulary below its
alphabet) is reported as skipped with the error, and the others go on.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from toksuite.compare.budget import Plan, RunShape, plan_budgets
from toksuite.compare.config import CompareConfig, to_toml
from toksuite.compare.stages import Outcome, StageStore
from toksuite.errors import ToksuiteError
from toksuite.io import write_bytes_atomic, write_json_atomic
from toksuite.progress import progress_bar, status
from toksuite.threads import auto_threads, cpu_threads


class Comparison:
    """The state of one `compare` call: config, output folder, datasets loaded so far."""

    def __init__(self, config: CompareConfig):
        self.config = config
        self.out = Path(config.out)
        self.store = StageStore(self.out)
        self._datasets: dict[int, Any] = {}

    # ------------------------------------------------------------------ shared pieces
    def train_config(self, encoder_dir: Path | str, plan: Plan | None = None):
        from toksuite.train.config import TrainConfig

        c, t = self.config, self.config.train
        budget: dict[str, Any] = {plan.field: plan.value} if plan else {}
        if plan and plan.field == "images":
            budget["images"] = int(plan.value)
        return TrainConfig(
            encoder=str(encoder_dir),
            data=c.data,
            resolution=c.resolution,
            crop=c.crop,
            limit=c.limit,
            on_error=c.on_error,
            model=c.model,
            batch_size=t.batch_size,
            batching=t.batching,
            lr=t.lr,
            min_lr_ratio=t.min_lr_ratio,
            warmup_steps=t.warmup_steps,
            weight_decay=t.weight_decay,
            context=t.context,
            seed=c.seed,
            log_every=t.log_every,
            eval_every=t.eval_every,
            eval_images=t.eval_images,
            checkpoint_every=t.checkpoint_every,
            device=c.device,
            **budget,
        )

    def dataset(self, channels: int):
        """The data as pretraining loads it (same options), once per channel count."""
        from toksuite.data import load_dataset

        if channels not in self._datasets:
            options = self.train_config("unused").load_options(channels)
            self._datasets[channels] = load_dataset(self.config.data, options)
        return self._datasets[channels]

    def skip_report(self) -> dict[str, Any]:
        """Bad files left out of the data loaded so far (under on_error="skip")."""
        from toksuite.data.base import skip_report

        return skip_report(self._datasets.values())

    def data_inputs(self) -> dict[str, Any]:
        c = self.config
        return {
            "data": c.data,
            "resolution": c.resolution,
            "crop": c.crop,
            "limit": c.limit,
            "seed": c.seed,
        }

    def encoder_dir(self, name: str) -> Path:
        return self.out / "encoders" / name

    def run_dir(self, name: str) -> Path:
        return self.out / "runs" / name

    # ------------------------------------------------------------------ stages
    def fit(self, name: str):
        from toksuite.registry import canonical_name, create_encoder
        from toksuite.squeeze import measure_encoder

        params = self.config.params.get(name, {})
        create_encoder(name, **params)  # bad parameters fail here, before any data is loaded

        def compute(resume: bool):
            encoder = create_encoder(name, **params)
            row = measure_encoder(encoder, self.dataset(encoder.channels), seed=self.config.seed)
            encoder.save(self.encoder_dir(name))
            return {**row.to_dict(per_image=False), "channels": encoder.channels}, "ran"

        return self.store.run(
            name,
            "fit",
            {"encoder": canonical_name(name), "params": params, **self.data_inputs()},
            compute,
            artefacts=lambda r: (self.encoder_dir(name) / "toksuite.json").is_file(),
            describe=lambda r: (
                f"vocab {r['vocab']:,}, {r['tokens_mean']:,.1f} tokens/image, "
                f"squeeze {r['squeeze']:.2f}×"
            ),
        )

    def flops(self, name: str, fit_fp: str):
        """Forward FLOPs per image as `toksuite flops --data` counts them, and token lengths."""
        from toksuite.flops import CONVENTION, fit_forward_cost, image_flops
        from toksuite.flops_sweep import DEFINITIONS
        from toksuite.registry import load_encoder
        from toksuite.train.sequences import encode_images

        c = self.config

        def compute(resume: bool):
            encoder = load_encoder(self.encoder_dir(name))
            data = self.dataset(encoder.channels)
            test = data.x_test if len(data.x_test) else data.x_train
            with progress_bar(f"counting FLOPs for {name}", None):
                cost = fit_forward_cost(c.model, encoder.vocab_size, attn_implementation=c.attn)
            held_out = encode_images(encoder, test, progress=False).lengths
            train = encode_images(encoder, data.x_train, progress=False).lengths
            result = {
                "encoder": name,
                "vocab_size": encoder.vocab_size,
                "tokens": float(np.mean(held_out)),
                "tokens_max": int(held_out.max()),
                "longest_train": int(train.max()) if len(train) else 0,
                "train_images": len(train),
                **image_flops(cost, held_out),
                "attn_implementation": c.attn,
                "convention": CONVENTION,
                "definitions": {k: DEFINITIONS[k] for k in ("tokens", "fwd_flops", "train_flops")},
            }
            return result, "ran", {"train_lengths": [int(n) for n in train]}

        return self.store.run(
            name,
            "flops",
            {"model": c.model, "attn": c.attn},
            compute,
            upstream=(fit_fp,),
            keeps=("train_lengths",),  # a record from before they were kept is counted again
            describe=lambda r: f"{r['fwd_flops']:.3g} forward FLOPs per image",
        )

    def run_shape(self, flops: Outcome) -> RunShape:
        """What the budget plan needs of a run: the flops stage's train lengths, cut to context."""
        raw = np.asarray(flops.kept["train_lengths"], dtype=np.int64)
        result = flops.result
        longest = max(int(raw.max(initial=0)), int(result["tokens_max"]))
        context = (
            1 + longest
            if self.config.train.context is None
            else min(1 + longest, self.config.train.context)
        )
        return RunShape(
            lengths=np.minimum(raw + 1, context),
            context=context,
            vocab_size=int(result["vocab_size"]) + 1,
            batch_size=min(self.config.train.batch_size, len(raw)),
            batching=self.config.train.batching,
        )

    def pretrain(self, name: str, fit_fp: str, plan: Plan):
        from toksuite.train import pretrain
        from toksuite.train.checkpoint import CHECKPOINT_NAME
        from toksuite.train.rundir import CONFIG_FILE, ENCODER_DIR, MODEL_DIR, SUMMARY_FILE

        run_dir = self.run_dir(name)
        config = self.train_config(run_dir.resolve() / ENCODER_DIR, plan)
        # on_error is left out: a load that succeeds gives the same images either way (a bad file
        # stops the load under "stop"), so it must not invalidate finished runs.
        inputs = {k: v for k, v in config.to_dict().items() if k not in ("encoder", "on_error")}

        def compute(resume: bool):
            if not resume:  # a fresh start: the encoder this comparison fitted, nothing else
                shutil.rmtree(run_dir, ignore_errors=True)
                shutil.copytree(self.encoder_dir(name), run_dir / ENCODER_DIR)
            summary = pretrain(config, run_dir, resume=resume)
            return summary, "resumed" if resume else "ran"

        return self.store.run(
            name,
            "pretrain",
            inputs,
            compute,
            upstream=(fit_fp,),
            artefacts=lambda r: (
                (run_dir / SUMMARY_FILE).is_file() and (run_dir / MODEL_DIR).is_dir()
            ),
            can_resume=lambda: (
                (run_dir / CONFIG_FILE).is_file() and (run_dir / CHECKPOINT_NAME).is_file()
            ),
            describe=lambda r: (
                f"{r['steps']} steps, {r['epochs']:.2f} epochs, {r['train_flops']:.3g} FLOPs, "
                f"{r['bits_per_pixel']:.3f} bits/pixel"
            ),
        )

    def probe(self, name: str, pretrain_fp: str):
        from toksuite.probe import probe

        p, c = self.config.probe, self.config

        def compute(resume: bool):
            with progress_bar(f"probing {name} (every layer)", None):
                result = probe(
                    [self.run_dir(name)],
                    pool=p.pool,
                    batch_size=p.batch_size,
                    device=c.device,
                    seed=c.seed,
                    random_control=p.random_control,
                )
            return result, "ran"

        return self.store.run(
            name,
            "probe",
            {"pool": p.pool, "random_control": p.random_control, "seed": c.seed},
            compute,
            upstream=(pretrain_fp,),
            describe=lambda r: (
                f"best layer {r['runs'][0]['best_layer']} → {r['runs'][0]['best_accuracy']:.3f}"
            ),
        )

    def sample(self, name: str, pretrain_fp: str):
        from toksuite.sample import sample_run

        s, c = self.config.sample, self.config
        inputs = {k: v for k, v in vars(s).items() if k != "enabled"} | {"seed": c.seed}

        def compute(resume: bool):
            result = sample_run(self.run_dir(name), device=c.device, **inputs)
            for key in ("samples_png", "completions_png", "samples_json", "out_dir", "run"):
                if result.get(key):  # relative to OUT: the folder can be moved or copied
                    result[key] = relative_to(result[key], self.out)
            return result, "ran"

        def present(r: dict[str, Any]) -> bool:
            paths = (r["samples_png"], r["completions_png"])
            return all((self.out / p).is_file() for p in paths if p)

        return self.store.run(
            name,
            "sample",
            inputs,
            compute,
            upstream=(pretrain_fp,),
            artefacts=present,
            describe=lambda r: (
                f"well-formed {_share(r['well_formed_share'])} "
                f"(unconstrained {_share(r.get('unconstrained_well_formed_share'))})"
            ),
        )


def relative_to(path: str | Path, root: Path) -> str:
    """``path`` relative to ``root`` when it lies inside it, else unchanged."""
    try:
        return str(Path(path).resolve().relative_to(root.resolve()))
    except ValueError:
        return str(path)


def _share(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def compare(config: CompareConfig) -> dict[str, Any]:
    """Run (or continue) the comparison in ``config.out``; write and return the report's results."""
    from toksuite.compare.report import write_report
    from toksuite.params import encoder_tables
    from toksuite.registry import canonical_name

    names = [canonical_name(n) for n in config.encoders]  # aliases → names, early errors
    config.params = encoder_tables(config.params)
    config.encoders = names
    job = Comparison(config)
    job.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(job.out / "config.json", config.to_dict())
    write_bytes_atomic(job.out / "config.toml", to_toml(config).encode())

    entries: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    with cpu_threads(config.threads or auto_threads(config.model, config.device)) as threads:
        status(
            f"comparing {', '.join(names)} on {config.data} · model {config.model} · "
            f"budget {config.budget.mode} · {threads} torch thread(s) → {job.out}"
        )
        fits: dict[str, Any] = {}
        for name in names:  # every encoder's fit and FLOPs first: the budget plan needs them all
            try:
                fit = job.fit(name)
                fits[name] = (fit, job.flops(name, fit.fingerprint))
            except ToksuiteError as exc:
                skipped[name] = " ".join(str(exc).split())
                status(f"[yellow]skipped[/] {name}: {skipped[name]}")
                job.store.forget(name)
        if not fits:
            raise ToksuiteError(
                "every encoder was skipped: " + "; ".join(f"{n}: {r}" for n, r in skipped.items())
            )
        shapes = {n: job.run_shape(flops) for n, (_, flops) in fits.items()}
        plans, budget = plan_budgets(config, shapes)
        for name, (fit, flops) in fits.items():
            stages = {"fit": fit, "flops": flops}
            stages["pretrain"] = job.pretrain(name, fit.fingerprint, plans[name])
            notes: dict[str, str] = {}
            for stage in ("probe", "sample"):
                if not getattr(config, stage).enabled:
                    continue
                try:  # e.g. unlabelled data cannot be probed: say so, keep the rest
                    stages[stage] = getattr(job, stage)(name, stages["pretrain"].fingerprint)
                except ToksuiteError as exc:
                    notes[stage] = " ".join(str(exc).split())
                    status(f"[yellow]skipped[/] {name} · {stage}: {notes[stage]}")
            entries[name] = {"plan": plans[name].to_dict(), "stages": stages, "notes": notes}
    return write_report(job, entries, skipped, budget, threads)
