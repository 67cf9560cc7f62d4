"""The pretraining loop, top to bottom: data → encoder → sequences → model → steps → report.

Runs unchanged in one process (CPU or CUDA) and under ``torchrun`` (DDP: each process takes a
disjoint shard of every global batch; only rank 0 writes). On CUDA the hot loop never waits for the
GPU: the loss is accumulated on the device and read only at log steps.
"""

from __future__ import annotations

import io
import math
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch

from toksuite.errors import ConfigError
from toksuite.flops import sequence_train_flops
from toksuite.io import write_bytes_atomic, write_json_atomic
from toksuite.likelihood import code_length_units, heldout_report
from toksuite.mfu import mfu, peak_flops
from toksuite.model import CAUSAL_SDPA, build_model, resolve_shape
from toksuite.progress import progress_bar, status
from toksuite.train import checkpoint as ckpt
from toksuite.train import distributed
from toksuite.train.batching import epoch_batches, padded_slots
from toksuite.train.config import (
    TrainConfig,
    eval_interval,
    learning_rate,
    total_steps,
    warmup_steps,
)
from toksuite.train.evaluate import evaluate
from toksuite.train.metrics_log import MetricsLog, plot_loss
from toksuite.train.rundir import (
    BITS_FILE,
    METRICS_FILE,
    MODEL_DIR,
    PLOT_FILE,
    SUMMARY_FILE,
    DataInfo,
    EncoderInfo,
    ModelInfo,
    RunInfo,
    check_run_dir,
    prepare_encoder,
    save_model,
)
from toksuite.train.sequences import (
    context_length,
    encode_images,
    make_batch,
    sequence_table,
    token_nll,
)


@dataclass
class LoopState:
    """Where training stands: what a checkpoint saves and a resumed run starts from."""

    step: int = 0
    elapsed: float = 0.0  # seconds of training, summed over resumes
    train_flops: float = 0.0
    tokens: int = 0
    images: int = 0
    slots: int | None = 0  # token slots the batches paid for (padding included); None: unknown


def make_optimizer(model: torch.nn.Module, config: TrainConfig, device: torch.device):
    """AdamW with weight decay on 2-D weights only (matrices and embeddings, not biases/norms)."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(
        groups, lr=config.lr, betas=(config.beta1, config.beta2), fused=device.type == "cuda"
    )


def train_step(
    model,
    optimizer,
    input_ids,
    labels,
    targets: int,
    *,
    lr: float,
    grad_clip: float,
    autocast=nullcontext,
) -> torch.Tensor:
    """One optimiser step; returns the loss as a device tensor (reading it would sync the GPU)."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    with autocast():
        logits = model(input_ids, use_cache=False).logits  # no KV cache while training
    loss = token_nll(logits, labels).sum() / max(targets, 1)
    loss.backward()
    if grad_clip:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach()


def encode_splits(enc, dataset, d: distributed.Dist):
    """Both splits' token sequences, memory-mapped from the token cache.

    Rank 0 encodes and writes the cache entries first; the other processes then open them (a hit
    where the cache directory is shared, as on one node) instead of encoding the same images
    side by side, and encode for themselves only where it is not (another node's local disk).
    """
    splits = None
    if d.is_main:
        splits = [encode_images(enc, x, progress=True) for x in (dataset.x_train, dataset.x_test)]
    d.barrier()
    if not d.is_main:
        splits = [encode_images(enc, x, progress=False) for x in (dataset.x_train, dataset.x_test)]
    return splits


def pretrain(
    config: TrainConfig, run_dir: str | Path, *, resume: bool = False, force: bool = False
) -> dict[str, Any]:
    """Train (or resume) a run in ``run_dir``; returns the summary (rank 0 writes it to disk)."""
    run_dir = Path(run_dir)
    d = distributed.setup(config.device)
    try:
        summary = _pretrain(config, run_dir, d, resume, force)
    except BaseException:
        distributed.teardown(d, ok=False)
        raise
    distributed.teardown(d)
    return summary


def _pretrain(
    config: TrainConfig, run_dir: Path, d: distributed.Dist, resume: bool, force: bool
) -> dict[str, Any]:
    if d.is_main:
        check_run_dir(run_dir, resume, force)
    d.barrier()
    if resume:  # the saved options win: a resumed run is the same run
        config = RunInfo.load(run_dir).options
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)
    device = d.device
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True

    # ---- data, encoder, sequences
    enc, dataset = prepare_encoder(config, run_dir, d, resume)
    if len(dataset.x_train) == 0 or len(dataset.x_test) == 0:
        raise ConfigError(f"{config.data}: pretraining needs images in both train and test splits")
    train_ids, test_ids = encode_splits(enc, dataset, d)
    context = context_length([train_ids, test_ids], config.context)
    bos = enc.vocab_size
    train = sequence_table(train_ids, bos_id=bos, context=context).to(device)
    test = sequence_table(test_ids, bos_id=bos, context=context).to(device)
    if train.truncated + test.truncated and d.is_main:
        status(
            f"[yellow]warning:[/] --context {context}: {train.truncated} train and "
            f"{test.truncated} held-out sequences cut"
        )

    # ---- model, optimiser, budget
    shape = resolve_shape(config.model)
    vocab = enc.vocab_size + 1  # + BOS
    # Right-padded, mask-free batches: causal SDPA without transformers' host-side mask building.
    model = build_model(
        shape, vocab, context, seed=config.seed, attn_implementation=CAUSAL_SDPA
    ).to(device)
    n_params = sum(p.numel() for p in model.parameters())
    optimizer = make_optimizer(model, config, device)
    batch = min(config.batch_size, len(train))
    if batch < d.world_size:
        raise ConfigError(f"--batch-size {batch} is smaller than the {d.world_size} processes")
    steps_per_epoch = len(train) // batch
    steps = total_steps(
        config,
        n_images=len(train),
        batch_size=batch,
        mean_tokens=float(train.lengths.mean()),
        flops_per_image=sequence_train_flops(shape, vocab, train.lengths) / len(train),
    )
    warmup = warmup_steps(config, steps)
    eval_every = eval_interval(config, steps)
    # Evaluations during training use the first held-out images (the same ones every time); the
    # final evaluation uses all of them, and the curve's last point is its value on those first.
    n_eval = min(config.eval_images, len(test))
    eval_subset = test.head(n_eval)
    peak = peak_flops(device, override=config.peak_flops)

    info = RunInfo(
        options=config,
        encoder=EncoderInfo(enc.name, enc.get_params(), enc.vocab_size, enc.channels),
        model=ModelInfo(shape, vocab, bos_id=bos, n_positions=context, n_params=n_params),
        data=DataInfo(config.data, tuple(dataset.image_shape), len(train), len(test)),
        context=context,
        truncated={"train": train.truncated, "heldout": test.truncated},
        batch_size=batch,
        batching=config.batching,
        steps=steps,
        steps_per_epoch=steps_per_epoch,
        warmup_steps=warmup,
        eval_every=eval_every,
        eval_images=n_eval,
        world_size=d.world_size,
        device=str(device),
    )
    metrics = MetricsLog(run_dir / METRICS_FILE)
    state = LoopState()
    if resume and (run_dir / ckpt.CHECKPOINT_NAME).is_file():
        payload = ckpt.load_checkpoint(run_dir / ckpt.CHECKPOINT_NAME, device)
        model.load_state_dict(payload["model"])
        optimizer.load_state_dict(payload["optimizer"])
        ckpt.set_rng_state(payload["rng"])
        state = LoopState(
            step=payload["step"],
            elapsed=payload["elapsed"],
            train_flops=payload["train_flops"],
            tokens=payload["tokens_seen"],
            images=payload["images_seen"],
            # None: a checkpoint written before token slots were counted (share unknown)
            slots=payload.get("token_slots"),
        )
        if d.is_main:
            metrics.truncate_after(state.step)
            status(f"resuming {run_dir} at step {state.step}")
    elif d.is_main:
        metrics.path.unlink(missing_ok=True)
    if d.is_main:
        info.save(run_dir)

    # ---- the loop
    train_model: torch.nn.Module = model
    if d.enabled:
        from torch.nn.parallel import DistributedDataParallel

        ids = [device.index] if device.type == "cuda" else None
        train_model = DistributedDataParallel(model, device_ids=ids)
    if config.compile:
        train_model = cast(torch.nn.Module, torch.compile(train_model))  # an OptimizedModule
    autocast = (
        partial(torch.autocast, "cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else nullcontext
    )
    # Batch widths are rounded up: to 64 on CUDA (tensor-core tiles), to 8 under torch.compile
    # (fewer shapes to compile); on eager CPU every padded column is pure cost, so not at all.
    multiple = 64 if device.type == "cuda" else 8 if config.compile else 1

    def save() -> None:
        if d.is_main:
            ckpt.save_checkpoint(
                run_dir / ckpt.CHECKPOINT_NAME,
                model=model,
                optimizer=optimizer,
                step=state.step,
                epoch=state.step // max(steps_per_epoch, 1),
                position=state.step % max(steps_per_epoch, 1),
                elapsed=state.elapsed,
                train_flops=state.train_flops,
                tokens_seen=state.tokens,
                images_seen=state.images,
                token_slots=state.slots,
            )
        d.barrier()

    def evaluate_now() -> None:
        """A held-out evaluation on the first images, recorded for the bits-vs-FLOPs curve."""
        if d.is_main:
            result, _ = evaluate(
                model,
                eval_subset,
                image_shape=dataset.image_shape,
                batch_size=config.eval_batch_size,
                autocast=autocast,
            )
            metrics.append(eval_record(state, result))
        d.barrier()

    model.train()
    epoch_of_batches, batches = -1, []
    running = torch.zeros((), device=device)
    since = {"steps": 0, "tokens": 0, "images": 0, "flops": 0.0, "slots": 0}
    t_start = t_log = time.perf_counter()
    elapsed0 = state.elapsed
    last_loss = math.nan
    desc = f"pretrain {enc.name} · {shape.n_layer}×{shape.n_embd}"
    with progress_bar(desc, steps, show=d.is_main) as advance:
        while True:
            state.elapsed = elapsed0 + time.perf_counter() - t_start
            if steps is not None and state.step >= steps:
                break
            if steps is None:
                assert config.time is not None  # no step count: the budget is wall time
                check = not d.enabled or state.step % config.log_every == 0
                if check and d.any(state.elapsed >= config.time):
                    break
            step = state.step
            epoch, position = divmod(step, steps_per_epoch)
            if epoch != epoch_of_batches:  # each epoch's batches depend only on (seed, epoch)
                epoch_of_batches = epoch
                batches = epoch_batches(
                    train.lengths, batch, seed=config.seed, epoch=epoch, batching=config.batching
                )
            global_index = batches[position]
            index = global_index[d.rank :: d.world_size]
            input_ids, labels, _ = make_batch(train, index, multiple=multiple)
            targets = int(train.lengths[index].sum()) - len(index)
            lr = learning_rate(config, step, steps=steps, warmup=warmup, elapsed=state.elapsed)
            running += train_step(
                train_model,
                optimizer,
                input_ids,
                labels,
                targets,
                lr=lr,
                grad_clip=config.grad_clip,
                autocast=autocast,
            )

            # Counters come from the global batch on the host: identical on every process. FLOPs
            # count real tokens only (each sequence at its own length): padding is not work done
            # on the data, so budgets and MFU do not depend on how images were batched.
            lengths = train.lengths[global_index]
            g_tokens = int(lengths.sum())
            g_flops = sequence_train_flops(shape, vocab, lengths)
            g_slots = sum(  # each process pads its own shard to the shard's longest sequence
                padded_slots(train.lengths[global_index[r :: d.world_size]], context, multiple)
                for r in range(d.world_size)
            )
            state.step += 1
            state.tokens += g_tokens
            state.images += len(global_index)
            state.train_flops += g_flops
            if state.slots is not None:
                state.slots += g_slots
            for key, value in (
                ("steps", 1),
                ("tokens", g_tokens),
                ("images", len(global_index)),
                ("flops", g_flops),
                ("slots", g_slots),
            ):
                since[key] += value
            advance(1)
            done = steps is not None and state.step >= steps
            if state.step % config.log_every == 0 or done:
                last_loss = float(d.mean(running).item()) / since["steps"]  # the one sync
                now = time.perf_counter()
                seconds = max(now - t_log, 1e-9)
                record = {
                    "event": "train",
                    "step": state.step,
                    "epoch": state.images / len(train),
                    "loss": last_loss,
                    "lr": lr,
                    "tokens_per_s": since["tokens"] / seconds,
                    "images_per_s": since["images"] / seconds,
                    "flops_per_s": since["flops"] / seconds,
                    "mfu": mfu(since["flops"] / seconds, peak),
                    "real_token_share": since["tokens"] / max(since["slots"], 1),
                    "train_flops": state.train_flops,
                    "tokens_seen": state.tokens,
                    "images_seen": state.images,
                    "elapsed_s": elapsed0 + now - t_start,
                }
                if d.is_main:
                    metrics.append(record)
                running.zero_()
                since = dict.fromkeys(since, 0)
                t_log = time.perf_counter()
            if eval_every and state.step % eval_every == 0 and not done:
                t_eval = time.perf_counter()
                evaluate_now()
                paused = time.perf_counter() - t_eval  # evaluation is not training time
                t_start += paused
                t_log += paused
            if config.checkpoint_every and state.step % config.checkpoint_every == 0:
                state.elapsed = elapsed0 + time.perf_counter() - t_start
                save()
    train_seconds = time.perf_counter() - t_start
    state.elapsed = elapsed0 + train_seconds
    save()

    # ---- the report (rank 0)
    summary: dict[str, Any] = {}
    if d.is_main:
        result, bits = evaluate(
            model,
            test,
            image_shape=dataset.image_shape,
            batch_size=config.eval_batch_size,
            autocast=autocast,
        )
        result |= heldout_report(enc, dataset.x_test, bits)
        curve = code_length_units(bits[:n_eval], dataset.image_shape)  # the same images as above
        metrics.append(eval_record(state, curve | {"heldout_images": n_eval}))
        write_bits(run_dir / BITS_FILE, bits)
        save_model(model, run_dir / MODEL_DIR)
        history = metrics.read()
        train_rows = [r for r in history if r.get("event") == "train"]
        total_time = state.elapsed
        summary = {
            "run": str(run_dir),
            "encoder": enc.name,
            "model": config.model,
            "data": config.data,
            "steps": state.step,
            "epochs": state.images / len(train),
            "images_seen": state.images,
            "tokens_seen": state.tokens,
            "train_flops": state.train_flops,
            "train_seconds": total_time,
            "tokens_per_s": state.tokens / max(total_time, 1e-9),
            "images_per_s": state.images / max(total_time, 1e-9),
            "mfu": mfu(state.train_flops / max(total_time, 1e-9), peak),
            "batching": config.batching,
            "token_slots": state.slots,
            "real_token_share": (
                None if state.slots is None else state.tokens / max(state.slots, 1)
            ),
            "final_train_loss": train_rows[-1]["loss"] if train_rows else last_loss,
            **result,
            "context": context,
            "truncated": train.truncated + test.truncated,
            "vocab_size": vocab,
            "n_params": n_params,
            "device": str(device),
            "world_size": d.world_size,
            "skipped_files": dataset.skip_report(),
        }
        write_json_atomic(run_dir / SUMMARY_FILE, summary)
        plot_loss(metrics.read(), run_dir / PLOT_FILE, title=f"{enc.name} · {config.model}")
    return summary


def eval_record(state: LoopState, result: dict[str, Any]) -> dict[str, Any]:
    """A metrics.jsonl line of one held-out evaluation (a point of the bits-vs-FLOPs curve)."""
    keep = ("heldout_loss", "bits_per_image", "bits_per_pixel", "bits_per_dim", "heldout_images")
    return {
        "event": "eval",
        "step": state.step,
        "train_flops": state.train_flops,
        "tokens_seen": state.tokens,
        **{k: result[k] for k in keep if k in result},
    }


def write_bits(path: Path, bits: np.ndarray) -> None:
    """Per held-out image code lengths (bits, float64) as a plain .npy, written atomically."""
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(bits, np.float64), allow_pickle=False)
    write_bytes_atomic(path, buffer.getvalue())
