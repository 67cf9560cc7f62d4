"""GPU check of pretraining: throughput and MFU in bf16, and CUDA correctness. Prints JSON.

For each (model preset, encoder) pair: encode synthetic 32×32 RGB images (smooth random colour
fields, seeded; no files needed) with the encoder (pixels-rgb → 3,072 tokens + BOS, kmeans → 1,024),
then time N training steps after a warm-up with the same step function the `pretrain` loop uses
(bf16 autocast, fused AdamW, SDPA, TF32, batches gathered on the device) and the same batches
(``--batching bucket`` by default: BPE's variable lengths in batches of similar length). FLOPs and
MFU count real tokens only, as the loop does, and each row reports its ``real_token_share``.
Checks:

* ``bf16_vs_fp32``: the loss of one batch under bf16 autocast is within 2% of the fp32 loss;
* ``no_host_sync``: the timed steps run under ``torch.cuda.set_sync_debug_mode("error")``, so any
  hidden device→host sync in the hot loop raises;
* ``sdpa_vs_eager``: transformers' SDPA and the causal SDPA training uses give eager attention's
  fp32 logits (causal mask correct);
* ``loss_falls``: the loss after the timed steps is below the first step's;
* ``end_to_end``: a short real ``pretrain`` run on digits on CUDA (checkpoint, eval, save).

Each row also profiles ``--profile-steps`` more steps (``torch.profiler``) and keeps the kernels
that took most of the device time (on CPU: the operators and their CPU time), so a run that misses
its MFU target also says where the step's time went.

On a GPU the defaults take about 2–4 minutes (igpt-s at T=3,073 dominates; ``--compile`` adds
about a minute per shape). ``--smoke`` runs tiny sizes on CPU in under a minute (checks the script).

    python benchmarks/gpu_pretrain.py [--presets small,igpt-s] [--encoders pixels-rgb,kmeans]
        [--steps 20] [--warmup 5] [--batch-size 16] [--compile] [--peak-flops F]
        [--profile-steps 2] [--smoke]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import traceback
from functools import partial
from pathlib import Path

os.environ.setdefault("TOKSUITE_QUIET", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from toksuite.flops import sequence_train_flops  # noqa: E402
from toksuite.io import write_json_atomic  # noqa: E402
from toksuite.mfu import mfu, peak_flops  # noqa: E402
from toksuite.model import CAUSAL_SDPA, build_model, resolve_shape  # noqa: E402
from toksuite.registry import create_encoder  # noqa: E402
from toksuite.train.batching import BATCHINGS, epoch_batches, padded_slots  # noqa: E402
from toksuite.train.config import TrainConfig  # noqa: E402
from toksuite.train.loop import make_optimizer, train_step  # noqa: E402
from toksuite.train.sequences import make_batch, sequence_table, token_nll  # noqa: E402


def synthetic_images(n: int, size: int, seed: int = 0) -> np.ndarray:
    """Smooth colour fields (upsampled noise): structured enough that a palette means something."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(n, 4, 4, 3)).astype(np.float32)
    t = torch.from_numpy(coarse).permute(0, 3, 1, 2)
    up = torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
    noise = rng.normal(0, 8, size=(n, 3, size, size)).astype(np.float32)
    img = (up.numpy() + noise).clip(0, 255).round().astype(np.uint8)
    return np.ascontiguousarray(img.transpose(0, 2, 3, 1))


def encode(encoder_name: str, images: np.ndarray, smoke: bool):
    params = {"k": 16} if encoder_name == "kmeans" and smoke else {}
    enc = create_encoder(encoder_name, **params)
    enc.fit(images[: min(len(images), 256)], seed=0)
    ids = enc.encode_batch(images)
    context = 1 + max(len(s) for s in ids)
    return enc, sequence_table(ids, bos_id=enc.vocab_size, context=context)


def training_batches(lengths: np.ndarray, args) -> list[np.ndarray]:
    """``warmup + steps`` batches as `toksuite pretrain` draws them (``--batching``), epoch after
    epoch."""
    batches: list[np.ndarray] = []
    epoch = 0
    while len(batches) < args.warmup + args.steps:
        batches += epoch_batches(
            lengths, args.batch_size, seed=0, epoch=epoch, batching=args.batching
        )
        epoch += 1
    return batches[: args.warmup + args.steps]


def bench_pair(preset, enc, data, device, args) -> dict:
    shape = resolve_shape(preset)
    vocab, context = enc.vocab_size + 1, data.context
    config = TrainConfig(lr=3e-4)
    # The attention `toksuite pretrain` trains with (causal SDPA, no mask building).
    model = build_model(shape, vocab, context, seed=0, attn_implementation=CAUSAL_SDPA).to(device)
    optimizer = make_optimizer(model, config, device)
    train_model = torch.compile(model) if args.compile else model
    cuda = device.type == "cuda"
    autocast = partial(torch.autocast, "cuda", dtype=torch.bfloat16) if cuda else None
    autocast = autocast or (lambda: torch.autocast("cpu", enabled=False))
    data = data.to(device)
    batches = training_batches(data.lengths, args)
    multiple = 64 if cuda else 8
    out: dict = {
        "preset": preset,
        "encoder": enc.name,
        "tokens_per_image": round(float(data.lengths.mean()) - 1, 1),
        "context": context,
        "batch_size": args.batch_size,
        "batching": args.batching,
        "vocab_size": vocab,
        "n_params": sum(p.numel() for p in model.parameters()),
    }

    # bf16 against fp32 on the same batch (before any update), TF32 off for the reference
    ids, labels, real = make_batch(data, batches[0], multiple=multiple)
    targets = real - len(batches[0])
    with torch.no_grad():
        torch.backends.cuda.matmul.allow_tf32 = False
        ref = (token_nll(model(ids, use_cache=False).logits, labels).sum() / targets).item()
        torch.backends.cuda.matmul.allow_tf32 = True
        with autocast():
            low = (token_nll(model(ids, use_cache=False).logits, labels).sum() / targets).item()
    out["loss_fp32"], out["loss_bf16"] = ref, low
    out["bf16_vs_fp32_ok"] = abs(low - ref) / ref < 0.02

    def step(i: int) -> torch.Tensor:
        ids, labels, real = make_batch(data, batches[i], multiple=multiple)
        return train_step(
            train_model,
            optimizer,
            ids,
            labels,
            real - len(batches[i]),
            lr=config.lr,
            grad_clip=1.0,
            autocast=autocast,
        )

    first = step(0).item()
    for i in range(1, args.warmup):
        step(i)
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    timed = batches[args.warmup :]
    tokens = sum(int(data.lengths[b].sum()) for b in timed)
    # As the loop counts them: real tokens only, each sequence at its own length.
    flops = sum(sequence_train_flops(shape, vocab, data.lengths[b]) for b in timed)
    slots = sum(padded_slots(data.lengths[b], context, multiple) for b in timed)
    out["real_token_share"] = round(tokens / slots, 4)
    running = torch.zeros((), device=device)
    sync_mode = "error" if cuda else None
    try:
        if sync_mode:
            torch.cuda.set_sync_debug_mode(sync_mode)
        start = time.perf_counter()
        for i in range(args.warmup, args.warmup + args.steps):
            running += step(i)
        if sync_mode:
            torch.cuda.set_sync_debug_mode(0)
        out["no_host_sync_ok"] = True if cuda else None
    except RuntimeError as exc:  # the sync debug mode raises on the first hidden sync
        torch.cuda.set_sync_debug_mode(0)
        out["no_host_sync_ok"] = False
        out["sync_error"] = str(exc).splitlines()[0]
        start = time.perf_counter()
        for i in range(args.warmup, args.warmup + args.steps):
            running += step(i)
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    if args.profile_steps:
        out["profile"] = profile_steps(step, args.profile_steps, cuda)
    last = step(0).item()
    peak = peak_flops(device, override=args.peak_flops)
    out.update(
        {
            "steps": args.steps,
            "seconds": seconds,
            "ms_per_step": 1000 * seconds / args.steps,
            "tokens_per_s": tokens / seconds,
            "images_per_s": args.steps * args.batch_size / seconds,
            "flops_per_s": flops / seconds,
            "peak_flops": peak,
            "mfu": mfu(flops / seconds, peak),
            "first_loss": first,
            "loss_after": last,
            "loss_falls_ok": last < first,
            "max_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        }
    )
    return out


def profile_steps(step, steps: int, cuda: bool, top: int = 15) -> dict:
    """The ``top`` kernels by device time over ``steps`` training steps (CPU: operators, CPU time).

    Self time, so nothing is counted twice; ``share`` is of all the kernels' time, which on a GPU
    that never idles is the step's time.
    """
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        for i in range(steps):
            step(i)
        if cuda:
            torch.cuda.synchronize()
    events = list(prof.key_averages())
    if cuda:
        events = [e for e in events if e.device_type == DeviceType.CUDA]

    def self_us(event) -> float:
        return event.self_device_time_total if cuda else event.self_cpu_time_total

    events.sort(key=self_us, reverse=True)
    total = sum(self_us(e) for e in events) or 1.0
    return {
        "steps": steps,
        "clock": "device" if cuda else "cpu",
        "kernel_ms_per_step": total / 1000 / steps,
        "top": [
            {
                "name": e.key[:120],
                "calls_per_step": e.count / steps,
                "ms_per_step": self_us(e) / 1000 / steps,
                "share": self_us(e) / total,
            }
            for e in events[:top]
        ],
    }


def sdpa_matches_eager(device) -> dict:
    """transformers' SDPA and toksuite's mask-free causal SDPA against eager attention."""
    ids = torch.randint(0, 100, (2, 200), device=device)
    torch.backends.cuda.matmul.allow_tf32 = False
    logits = {}
    for attn in ("eager", "sdpa", CAUSAL_SDPA):
        model = build_model("small", 101, 256, seed=1, attn_implementation=attn).to(device).eval()
        with torch.no_grad():
            logits[attn] = model(ids, use_cache=False).logits
    torch.backends.cuda.matmul.allow_tf32 = True
    diff = max((logits[a] - logits["eager"]).abs().max().item() for a in ("sdpa", CAUSAL_SDPA))
    return {"max_abs_diff": diff, "ok": diff < 1e-3}


def end_to_end(device, smoke: bool) -> dict:
    from toksuite.train import pretrain

    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(
            model="tiny", epochs=1 if smoke else 3, checkpoint_every=10, device=str(device)
        )
        summary = pretrain(config, Path(tmp) / "run")
        files = sorted(p.name for p in (Path(tmp) / "run").iterdir())
    keep = ("steps", "heldout_loss", "bits_per_pixel", "tokens_per_s", "device", "mfu")
    return {
        **{k: summary[k] for k in keep},
        "files": files,
        "ok": summary["bits_per_pixel"] < 8 and "model" in files,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", default="small,igpt-s")
    parser.add_argument("--encoders", default="pixels-rgb,kmeans")
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--batching", choices=BATCHINGS, default="bucket")
    parser.add_argument("--peak-flops", type=float, default=None)
    parser.add_argument(
        "--profile-steps", type=int, default=2, help="steps profiled per row (0: none)"
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on CPU")
    parser.add_argument(
        "--out",
        type=Path,
        help="also rewrite the report here after every row (a killed run keeps them)",
    )
    args = parser.parse_args()
    if args.smoke:
        args.presets, args.resolution, args.images = "tiny", 8, 64
        args.steps, args.warmup, args.batch_size = 3, 1, 8
        device = torch.device("cpu")
    elif not torch.cuda.is_available():
        sys.exit("no CUDA device: run with --smoke to check the script on CPU")
    else:
        device = torch.device("cuda")
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    report: dict = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "resolution": args.resolution,
        "runs": [],
    }

    def save() -> None:
        if args.out:
            write_json_atomic(args.out, report)

    images = synthetic_images(args.images, args.resolution)
    for name in args.encoders.split(","):
        try:
            enc, data = encode(name, images, args.smoke)
        except Exception as exc:
            report["runs"].append({"encoder": name, "error": f"{type(exc).__name__}: {exc}"})
            continue
        for preset in args.presets.split(","):
            try:
                report["runs"].append(bench_pair(preset, enc, data, device, args))
            except Exception as exc:  # one failing pair (e.g. out of memory) must not hide others
                report["runs"].append(
                    {
                        "preset": preset,
                        "encoder": name,
                        "error": f"{type(exc).__name__}: {exc}",
                        "trace": traceback.format_exc(limit=3),
                    }
                )
            if device.type == "cuda":
                torch.cuda.empty_cache()
            save()
    for key, check in (("sdpa_vs_eager", sdpa_matches_eager), ("end_to_end", end_to_end)):
        try:
            report[key] = check(device) if key == "sdpa_vs_eager" else check(device, args.smoke)
        except Exception as exc:
            report[key] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        save()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
