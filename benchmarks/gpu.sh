#!/usr/bin/env bash
# The GPU run: one command that, on one H200 within 8 minutes,
#   (a) measures pretraining throughput and MFU in bf16 of the small preset and of the iGPT-S
#       shape for pixels-rgb, kmeans and bpe-rgb (length-bucketed batches, as `pretrain` trains
#       them; each row reports its real-token share), and checks CUDA correctness
#       (benchmarks/gpu_pretrain.py: bf16 vs fp32 loss, no host sync, SDPA vs eager, a real run);
#   (c) measures the iGPT-S shape again under torch.compile;
#   (b) runs a short compute-matched `toksuite compare` on CIFAR-10 at 32×32
#       (pixels-rgb, kmeans, bpe-rgb) through per-layer probes and samples.
# In that order, with 210 s, 120 s and 150 s at most (LIMIT_A, LIMIT_C, LIMIT_B; 0 = no limit).
# Results land in OUT: pretrain.json, pretrain-compiled.json, compare.json, report.html, log.txt.
#
#   bash benchmarks/gpu.sh [OUT] [CIFAR_NPZ]     # on a CUDA machine
#   bash benchmarks/gpu.sh --smoke [OUT]         # tiny sizes on CPU: checks the script end to end
#
# toksuite need not be installed: the repository root is put on PYTHONPATH. Missing Python
# packages (fvcore and its pure-Python needs on a bare GPU image) can be pip-installed from
# wheels first, e.g. `pip install --no-index --target /tmp/site WHEELS/*.whl` and PYTHONPATH.
set -euo pipefail
smoke=0
if [[ "${1:-}" == "--smoke" ]]; then smoke=1; shift; fi
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-gpu-results}
data=${2:-$root/../shared/data/cifar10-20k.npz}
mkdir -p "$out"
out=$(cd "$out" && pwd)
# Caches and the compare folder go to WORK (default OUT/work), so OUT holds only the results.
work=${WORK:-$out/work}
mkdir -p "$work"
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export TOKSUITE_CACHE_DIR="$work/cache" TOKSUITE_QUIET=1
log="$out/log.txt"
python3 -c "import torch, transformers, fvcore; print('torch', torch.__version__, \
'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())" | tee "$log"

if (( smoke )); then
    eager_args=(--smoke --encoders pixels-rgb,kmeans,bpe-rgb)
    compiled_args=(--smoke --encoders kmeans --compile)
    compare_args=(--model tiny --limit 64 --resolution 8 --epochs 1 --samples 2)
else
    eager_args=(--presets small,igpt-s --encoders pixels-rgb,kmeans,bpe-rgb --batch-size 32)
    compiled_args=(--presets igpt-s --encoders kmeans,pixels-rgb --batch-size 32 --compile)
    compare_args=(--model small --limit 2000 --resolution 32 --epochs 3 --samples 16
                  --batch-size 64)
fi
stage() { echo "== $1 ($((SECONDS - start)) s)" | tee -a "$log"; }
# Each stage has its own time limit (seconds, 0 = none) and a failed or cut stage does not stop
# the next: what a stage finished is in OUT either way (gpu_pretrain.py rewrites its JSON after
# every row). The MFU stages run first; the compare, the longest, last.
limit_a=${LIMIT_A:-0} limit_c=${LIMIT_C:-0} limit_b=${LIMIT_B:-0}
if (( ! smoke )); then limit_a=${LIMIT_A:-210} limit_c=${LIMIT_C:-120} limit_b=${LIMIT_B:-150}; fi
run() { local limit=$1; shift; timeout "$limit" "$@" || echo "   exit $? (124: time limit)" | tee -a "$log"; }

start=$SECONDS
stage "(a) throughput, MFU and CUDA checks, eager"
run "$limit_a" python3 "$root/benchmarks/gpu_pretrain.py" "${eager_args[@]}" \
    --out "$out/pretrain.json" >/dev/null 2>>"$log"

stage "(c) throughput and MFU with torch.compile"
run "$limit_c" python3 "$root/benchmarks/gpu_pretrain.py" "${compiled_args[@]}" \
    --out "$out/pretrain-compiled.json" >/dev/null 2>>"$log"

stage "(b) compute-matched compare on CIFAR-10, 32x32"
# Progress lines go to the log (a slow stage shows there, not only at the end).
TOKSUITE_QUIET= run "$limit_b" python3 -m toksuite compare --encoders pixels-rgb,kmeans,bpe-rgb \
    --data "npz:$data" --budget flops "${compare_args[@]}" --out "$work/compare" --json \
    >"$out/compare.json" 2>>"$log"
[[ -f "$work/compare/report.html" ]] && cp "$work/compare/report.html" "$out/report.html"
stage "done"
