#!/usr/bin/env bash
# The GPU run: one command that, on one H200 in about 6–8 minutes,
#   (a) measures pretraining throughput and MFU in bf16 of the small preset and of the iGPT-S
#       shape for pixels-rgb, kmeans and bpe-rgb, and checks CUDA correctness
#       (benchmarks/gpu_pretrain.py: bf16 vs fp32 loss, no host sync, SDPA vs eager, a real run);
#   (b) runs a short compute-matched `toksuite compare` on CIFAR-10 at 32×32
#       (pixels-rgb, kmeans, bpe-rgb) through per-layer probes and samples.
# Results land in OUT: pretrain.json, compare.json, report.html, pretrain-compiled.json, log.txt.
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

start=$SECONDS
stage "(a) throughput, MFU and CUDA checks, eager"
python3 "$root/benchmarks/gpu_pretrain.py" "${eager_args[@]}" >"$out/pretrain.json" 2>>"$log"

stage "(b) compute-matched compare on CIFAR-10, 32x32"
# Progress lines of every stage go to the log (a slow stage shows there, not only at the end).
TOKSUITE_QUIET= python3 -m toksuite compare --encoders pixels-rgb,kmeans,bpe-rgb --data "npz:$data" \
    --budget flops "${compare_args[@]}" --out "$work/compare" --json \
    >"$out/compare.json" 2>>"$log"
cp "$work/compare/report.html" "$out/report.html"

stage "(c) throughput and MFU with torch.compile"
python3 "$root/benchmarks/gpu_pretrain.py" "${compiled_args[@]}" \
    >"$out/pretrain-compiled.json" 2>>"$log"
stage "done"
