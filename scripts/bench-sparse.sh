#!/bin/sh
# Decode speed against context depth: DeepSeek-V3.2's sparse attention vs plain V3 (MLA over
# every key), on synthetic models with V3.2's layer widths (deepseek-synth --shape v32 with one
# layer and a 4096-token vocabulary, so that the layer, not the head, sets the time, and its
# --no-indexer twin: the same weights less the indexers), quantized to Q8_0. The README's table
# is this script's output.
#
#   scripts/bench-sparse.sh [DIR] [THREADS] [DEPTHS]
#
# DIR holds the model files (made once, 0.9 GB each; default build-bench/), THREADS defaults to
# 2 and DEPTHS to 2048,4096,8192,16384. Filling 16k tokens of context takes minutes per model;
# run it on a quiet machine: the two models run one after the other, never at once.
set -eu
cd "$(dirname "$0")/.."
dir=${1:-build-bench}
threads=${2:-2}
depths=${3:-2048,4096,8192,16384}
[ -x build/deepseek-bench ] || { meson setup build >/dev/null && meson compile -C build >/dev/null; }
mkdir -p "$dir"
for m in v32 v3; do
    [ -f "$dir/$m-1l-q8_0.gguf" ] && continue
    flag=""
    [ "$m" = v3 ] && flag=--no-indexer
    # shellcheck disable=SC2086
    build/deepseek-synth -o "$dir/$m-f16.gguf" --shape v32 --layers 1 --vocab 4096 $flag
    build/deepseek-quantize "$dir/$m-f16.gguf" "$dir/$m-1l-q8_0.gguf" Q8_0
    rm -f "$dir/$m-f16.gguf"
done
lscpu | sed -n 's/^Model name: *//p'
for m in v32 v3; do
    build/deepseek-bench -m "$dir/$m-1l-q8_0.gguf" -p 0 -n 64 -r 3 -t "$threads" --ctx "$depths"
done
