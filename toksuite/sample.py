"""Samples from a pretrained run: unconditional images and completions of held-out prompts.

Every sequence starts with BOS (``encoder.vocab_size``), as in training. Generation is a plain
loop over a KV cache (`generate`), seeded by its own ``torch.Generator`` so the global RNG is left
alone and the same seed gives the same samples. On CPU it runs at the speed of ``transformers``'
``generate`` (docs/benchmarks.md) and lets each sample stop as soon as its image is complete.

What a sample may contain (``constrained``, the default): each step samples only the ids the
encoder's grammar allows next (`toksuite.encoders.grammar`: a BPE token must fit what is left of
its row, byte-fallback tokens must spell a pixel, never BOS), applied as a logits mask on the
device (`toksuite.constrain`), so every sample and completion is an image of the run's shape and
stops exactly when its last pixel is written. How often an unconstrained sampler would have
written a well-formed image is estimated from the same samples (importance weights) and reported
beside it. ``constrained=False`` (``--unconstrained``) lets the model write any id, BOS included:
a sample stops when the grammar says its image is complete, and one that leaves the grammar runs
to its token budget and is decoded with repairs. An encoder without a grammar (a plugin that
defines none, with no fixed length) is sampled unconstrained and stops at the shortest sequence
that decodes without repair.

Token budget: ``sequence_length`` tokens for fixed-length encoders, else the run's context minus
BOS and prompt; constrained sampling also leaves room to finish the image within it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from toksuite.constrain import GrammarMask
from toksuite.errors import ConfigError, DataError
from toksuite.likelihood import psnr_from_mse

SAMPLES_PNG, COMPLETIONS_PNG, SAMPLES_JSON = "samples.png", "completions.png", "samples.json"
DEFAULT_DIR = "samples"

DEFINITIONS = {
    "constrained": (
        "true when every step sampled only the ids the encoder's grammar allows (the default)"
    ),
    "well_formed_share": (
        "share of unconditional samples that decode without any repair (Decoded.repairs == 0) "
        "and that the encoder's grammar accepts: only encoder ids (no BOS), no token across a "
        "row end, exactly the pixels of the run's shape; 1 by construction when constrained"
    ),
    "unconstrained_well_formed_share": (
        "the well-formed share of a sampler that may write any id (same temperature, top-k, "
        "top-p): measured when unconstrained; when constrained, estimated without drawing one "
        "unconstrained sample, as the mean over samples of the product over steps of "
        "p_unconstrained(chosen id) / p_constrained(chosen id), an unbiased importance-sampling "
        "estimate of that probability"
    ),
    "completion_well_formed_share": "the same share for the completions (prompt + continuation)",
    "completion_unconstrained_well_formed_share": "the same estimate for the completions",
    "completion_psnr_db": (
        "PSNR in dB (peak 255) of the completed rows (below the prompt) against the same rows of "
        "the ground truth as the encoder quantises it (encoder.quantize: what a perfect model "
        "with this encoder would produce); from the mean squared error pooled over every "
        "completed pixel of every completion, so one exact completion does not make it infinite "
        "(per-completion values are null where a completion is exact)"
    ),
    "completion_psnr_original_db": (
        "as completion_psnr_db, against the original ground-truth pixels (includes the "
        "encoder's quantisation error)"
    ),
    "prompt_rows": "rows given as the prompt: floor(prompt_fraction × H), at most H - 1",
    "stop_rule": (
        "a sample stops when the encoder's grammar says its image is complete (fixed-length "
        "encoders: after sequence_length(H, W) tokens), or at its token budget (the context); "
        "an encoder without a grammar stops at the shortest sequence that decodes without repair"
    ),
    "mean_sample_tokens": "mean number of tokens generated per unconditional sample (BOS excluded)",
}


# ---------------------------------------------------------------------------- generation
def logits_processors(temperature: float, top_k: int | None, top_p: float | None):
    """transformers' own temperature / top-k / top-p warpers, so the options mean what HF means."""
    from transformers.generation import (
        LogitsProcessorList,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    if not temperature > 0:
        raise ConfigError(f"--temperature {temperature}: must be positive")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"--top-k {top_k}: must be at least 1")
    if top_p is not None and not 0 < top_p <= 1:
        raise ConfigError(f"--top-p {top_p}: must be in (0, 1]")
    processors = LogitsProcessorList()
    if temperature != 1.0:
        processors.append(TemperatureLogitsWarper(temperature))
    if top_k is not None:
        processors.append(TopKLogitsWarper(top_k))
    if top_p is not None and top_p < 1.0:
        processors.append(TopPLogitsWarper(top_p))
    return processors


@torch.no_grad()
def generate(
    model,
    prompts: Sequence[np.ndarray],
    *,
    bos_id: int,
    max_new_tokens: Sequence[int],
    processors: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    generator: torch.Generator,
    is_complete: Callable[[int, np.ndarray], bool] | None = None,
    grammar: GrammarMask | None = None,
    constrained: bool = False,
    pad_id: int = 0,
) -> list[np.ndarray]:
    """Sample a continuation of ``[BOS] + prompt`` for each prompt, as one batch.

    Row i stops after ``max_new_tokens[i]`` tokens, or as soon as its image is complete: when
    ``grammar`` (a `GrammarMask` over the batch) says so, else when ``is_complete(i, new_ids)``.
    With ``constrained``, each step samples only the ids the grammar allows (the mask goes on
    before the processors, as in ``transformers``) and ``grammar.log_weight`` gathers
    log p(unconstrained) - log p(constrained) of every chosen id. Prompts of different lengths
    are left-padded with an attention mask and explicit positions, so every row sees exactly what
    it would see alone.
    """
    device = generator.device
    n = len(prompts)
    inputs = [np.concatenate([[bos_id], np.asarray(p, np.int64)]) for p in prompts]
    width = max(len(x) for x in inputs)
    ids = torch.full((n, width), pad_id, dtype=torch.int64)
    mask = torch.zeros((n, width), dtype=torch.int64)
    for i, x in enumerate(inputs):
        ids[i, width - len(x) :] = torch.from_numpy(x)
        mask[i, width - len(x) :] = 1
    ids, mask = ids.to(device), mask.to(device)
    padded = bool((mask == 0).any())
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    limits = np.asarray(max_new_tokens, np.int64)
    # Finished rows keep being fed (the batch moves together); hold their position at the last one
    # they may use, so a short row next to a long one never runs past the position table.
    last_position = torch.as_tensor(
        [len(x) - 1 + max(0, int(k)) for x, k in zip(inputs, limits, strict=True)], device=device
    )[:, None]
    new: list[list[int]] = [[] for _ in range(n)]
    done = limits <= 0
    if grammar is not None:
        done |= grammar.done.cpu().numpy()
    cache, step_ids, history = None, ids, ids
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    while not done.all():
        extra = {"attention_mask": mask, "position_ids": positions} if padded else {}
        with autocast:
            out = model(step_ids, cache=cache, use_cache=True, logits_to_keep=1, **extra)
        cache = out.cache
        logits = out.logits[:, -1].float()
        if constrained and grammar is not None:
            scores = processors(history, logits.masked_fill(~grammar.allowed(), -torch.inf))
            step_ids = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=generator)
            # log p_free(id) - log p_masked(id), from the two normalisers (no full log-softmax).
            free = processors(history, logits)
            ratio = (free.gather(1, step_ids) - scores.gather(1, step_ids))[:, 0]
            ratio += torch.logsumexp(scores, -1) - torch.logsumexp(free, -1)
            active = torch.as_tensor(~done, device=device)
            grammar.log_weight += torch.where(active, ratio.double(), 0.0)
        else:
            scores = processors(history, logits)
            step_ids = torch.multinomial(torch.softmax(scores, dim=-1), 1, generator=generator)
        if grammar is not None:
            grammar.advance(step_ids[:, 0])
            complete = grammar.done.cpu().numpy()
        history = torch.cat([history, step_ids], dim=1)
        chosen = step_ids[:, 0].tolist()
        for i in np.flatnonzero(~done).tolist():
            new[i].append(chosen[i])
            if len(new[i]) >= limits[i]:
                done[i] = True
            elif grammar is not None:
                done[i] = complete[i]
            elif is_complete is not None and is_complete(int(i), np.asarray(new[i], np.int64)):
                done[i] = True
        if padded:
            mask = torch.cat([mask, torch.ones_like(step_ids)], dim=1)
            positions = torch.minimum(positions[:, -1:] + 1, last_position)
    return [np.asarray(x, np.int64) for x in new]


# ---------------------------------------------------------------------------- the command's core
def prompt_row_count(prompt_fraction: float, height: int) -> int:
    if not 0 <= prompt_fraction < 1:
        raise ConfigError(f"--prompt-fraction {prompt_fraction}: must be in [0, 1)")
    return min(height - 1, int(prompt_fraction * height))


def sample_run(
    run_dir: str | Path,
    *,
    out_dir: str | Path | None = None,
    data: str | None = None,
    n_samples: int = 16,
    n_completions: int = 8,
    prompt_fraction: float = 0.5,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    batch_size: int = 16,
    device: str | None = None,
    constrained: bool = True,
) -> dict[str, Any]:
    """Write samples.png, completions.png and samples.json for a run; return the numbers.

    ``constrained`` (the default) samples only what the encoder's grammar allows, so every sample
    is an image of the run's shape; False samples any id, as the model would alone.
    """
    from toksuite.grids import completion_grid, prompt_image, sample_grid, save_png
    from toksuite.io import write_json_atomic
    from toksuite.progress import status
    from toksuite.train.distributed import choose_device
    from toksuite.train.rundir import load_run

    if n_samples < 0 or n_completions < 0 or n_samples + n_completions == 0:
        raise ConfigError("ask for at least one sample or completion (and no negative counts)")
    if batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size}: must be at least 1")
    processors = logits_processors(temperature, top_k, top_p)
    started = time.perf_counter()
    run = load_run(run_dir)
    encoder, info = run.encoder, run.info
    shape = info.data.image_shape
    height, width = info.image_hw
    prompt_rows = prompt_row_count(prompt_fraction, height)
    context, bos_id = info.context, info.model.bos_id
    fixed = encoder.sequence_length(height, width)
    grammar = encoder.grammar(height, width)
    if grammar is None and constrained:
        status(f"[yellow]warning:[/] {encoder.name} has no grammar: sampling unconstrained")
    constrained = constrained and grammar is not None
    dev = choose_device(device or "auto")
    model = run.model.to(dev).eval()
    out = Path(out_dir) if out_dir is not None else run.path / DEFAULT_DIR
    # Two streams, so the completions do not change when only the number of samples does.
    seeds = np.random.SeedSequence(seed).generate_state(2, np.uint64)

    def budget(prompt_len: int) -> int:
        room = context - 1 - prompt_len
        return room if fixed is None else min(room, fixed - prompt_len)

    def start_state(prompt: np.ndarray, room: int, label: str):
        """The grammar state after ``prompt``; refuse what cannot end as an image in ``room``."""
        try:
            state = grammar.walk(prompt).state
        except DataError as exc:
            raise DataError(
                f"{label}: the prompt breaks {encoder.name}'s grammar ({exc})"
            ) from None
        if constrained and grammar.fewest_tokens(state) > room:
            raise ConfigError(
                f"{run.label}: the context ({context}) leaves {room} tokens after the prompt, "
                f"and an image needs at least {grammar.fewest_tokens(state)}; "
                "sample with --unconstrained"
            )
        return state

    def run_batches(prompts: list[np.ndarray], stream: int, label: str):
        from toksuite.progress import progress_bar

        generator = torch.Generator(device=dev).manual_seed(int(seeds[stream]) % 2**63)
        outputs: list[np.ndarray] = []
        weights: list[float] = []
        with progress_bar(label, len(prompts)) as advance:
            for start in range(0, len(prompts), batch_size):
                batch = prompts[start : start + batch_size]
                rooms = [budget(len(p)) for p in batch]

                def complete(i: int, new: np.ndarray, batch=batch) -> bool:
                    return encoder.decode_checked(np.concatenate([batch[i], new]), shape).ok

                mask = None
                if grammar is not None:
                    states = [start_state(p, r, label) for p, r in zip(batch, rooms, strict=True)]
                    mask = GrammarMask(grammar, states, rooms, width=bos_id + 1, device=dev)
                new = generate(
                    model,
                    batch,
                    bos_id=bos_id,
                    max_new_tokens=rooms,
                    processors=processors,
                    generator=generator,
                    is_complete=complete,
                    grammar=mask,
                    constrained=constrained,
                )
                outputs += [np.concatenate([p, x]) for p, x in zip(batch, new, strict=True)]
                if constrained:  # unconstrained, every id is the model's own: no weight
                    assert mask is not None  # a constrained run always has its mask
                    weights += torch.exp(mask.log_weight).tolist()
                advance(len(batch))
        return outputs, weights

    def well_formed(sequence: np.ndarray, decoded) -> bool:
        """Decoded without repair and, where the encoder has a grammar, written by its rules."""
        if not decoded.ok:
            return False
        try:
            return grammar is None or grammar.walk(sequence).complete
        except DataError:
            return False

    def unconstrained_share(oks: list[bool], weights: list[float]) -> float:
        # Constrained: the importance-sampling estimate (mean weight); else the share itself.
        return float(np.mean(weights)) if constrained else float(np.mean(oks))

    result: dict[str, Any] = {
        "run": str(run.path),
        "encoder": encoder.name,
        "image_shape": list(shape),
        "context": context,
        "bos_id": bos_id,
        "fixed_length": fixed,
        "device": str(dev),
        "n_samples": n_samples,
        "n_completions": n_completions,
        "prompt_fraction": prompt_fraction,
        "prompt_rows": prompt_rows,
        "temperature": temperature,
        "top_k": top_k,
        "top_p": top_p,
        "seed": seed,
        "batch_size": batch_size,
        "constrained": constrained,
        "grammar": grammar is not None,
        "data": None,
        "well_formed_share": None,
        "unconstrained_well_formed_share": None,
        "completion_well_formed_share": None,
        "completion_unconstrained_well_formed_share": None,
        "completion_psnr_db": None,
        "completion_psnr_original_db": None,
        "mean_sample_tokens": None,
        "out_dir": str(out),
        "samples_png": None,
        "completions_png": None,
        "samples_json": str(out / SAMPLES_JSON),
        "skipped_files": None,  # with completions: the held-out load's skip_report
    }

    # ------------------------------------------------------------------ unconditional
    samples: list[dict[str, Any]] = []
    if n_samples:
        empty = np.zeros(0, np.int64)
        sequences, weights = run_batches([empty] * n_samples, 0, f"{run.label}: sampling")
        decoded = [encoder.decode_checked(s, shape) for s in sequences]
        oks = [well_formed(s, d) for s, d in zip(sequences, decoded, strict=True)]
        samples = [
            {"tokens": len(s), "repairs": d.repairs, "well_formed": ok, "notes": list(d.notes)}
            for s, d, ok in zip(sequences, decoded, oks, strict=True)
        ]
        if constrained:
            for record, weight in zip(samples, weights, strict=True):
                record["importance_weight"] = weight
        save_png(sample_grid([d.image for d in decoded]), out / SAMPLES_PNG)
        result.update(
            well_formed_share=float(np.mean(oks)),
            unconstrained_well_formed_share=unconstrained_share(oks, weights),
            mean_sample_tokens=float(np.mean([len(s) for s in sequences])),
            samples_png=str(out / SAMPLES_PNG),
        )

    # ------------------------------------------------------------------ completions
    completions: list[dict[str, Any]] = []
    if n_completions:
        truths, labels, spec, skipped = held_out_images(run, data, n_completions, shape)
        # For pixel and palette encoders and row-split BPE, the ids of the top rows are exactly a
        # prefix of the whole image's ids (rows are encoded independently); with rows="separator"
        # the prefix lacks the last row break, which the model then generates; with "joined" BPE
        # merges may straddle the cut, so the prompt is close to, not exactly, a training prefix.
        prompts = [
            np.asarray(encoder.encode(t[:prompt_rows]), np.int64)[: context - 1]
            if prompt_rows
            else np.zeros(0, np.int64)
            for t in truths
        ]
        sequences, weights = run_batches(prompts, 1, f"{run.label}: completing")
        decoded = [encoder.decode_checked(s, shape) for s in sequences]
        oks = [well_formed(s, d) for s, d in zip(sequences, decoded, strict=True)]
        quantised = [encoder.quantize(t) for t in truths]
        err_q, err_o = [], []
        for i, (d, q, t) in enumerate(zip(decoded, quantised, truths, strict=True)):
            below = d.image[prompt_rows:].astype(np.float64)
            err_q.append(np.mean((below - q[prompt_rows:]) ** 2))
            err_o.append(np.mean((below - t[prompt_rows:]) ** 2))
            completions.append(
                {
                    "index": i,
                    "label": None if labels is None else int(labels[i]),
                    "prompt_tokens": len(prompts[i]),
                    "tokens": len(sequences[i]),
                    "repairs": d.repairs,
                    "well_formed": oks[i],
                    "notes": list(d.notes),
                    "psnr_db": psnr_from_mse(err_q[-1]),
                    "psnr_original_db": psnr_from_mse(err_o[-1]),
                }
            )
        shown = [prompt_image(q, prompt_rows) for q in quantised]
        save_png(completion_grid(shown, [d.image for d in decoded], truths), out / COMPLETIONS_PNG)
        result.update(
            data=spec,
            completion_well_formed_share=float(np.mean(oks)),
            completion_unconstrained_well_formed_share=unconstrained_share(oks, weights),
            completion_psnr_db=psnr_from_mse(float(np.mean(err_q))),
            completion_psnr_original_db=psnr_from_mse(float(np.mean(err_o))),
            completions_png=str(out / COMPLETIONS_PNG),
            skipped_files=skipped,
        )

    for name, key in ((SAMPLES_PNG, "samples_png"), (COMPLETIONS_PNG, "completions_png")):
        if result[key] is None:  # a grid from an earlier call would contradict samples.json
            (out / name).unlink(missing_ok=True)
    result["seconds"] = time.perf_counter() - started
    result["definitions"] = DEFINITIONS
    result["samples"], result["completions"] = samples, completions
    result = _finite(result)  # what is returned is what samples.json holds
    write_json_atomic(out / SAMPLES_JSON, result)
    status(f"{run.label}: samples in {out} ({result['seconds']:.1f}s)")
    return result


def held_out_images(run, data: str | None, n: int, shape: tuple[int, ...]):
    """The first ``n`` held-out images (and labels) from the run's data spec, or ``data``; also
    the spec and the load's `skip_report`."""
    from toksuite.data import load_dataset

    spec = data or run.info.options.data
    dataset = load_dataset(spec, run.load_options())
    if len(dataset.x_test) == 0:
        raise DataError(f"{spec}: no held-out images to complete")
    if tuple(dataset.x_test.shape[1:]) != shape:
        raise ConfigError(
            f"{spec}: images are {'×'.join(map(str, dataset.x_test.shape[1:]))}, the run was "
            f"trained on {'×'.join(map(str, shape))}"
        )
    labels = None if dataset.y_test is None else dataset.y_test[:n]
    return dataset.x_test[:n], labels, spec, dataset.skip_report()


def _finite(obj: Any) -> Any:
    """JSON has no infinity: a non-finite float is written as null."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj
