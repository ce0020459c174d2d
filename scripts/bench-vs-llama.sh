#!/bin/sh
# scripts/bench-vs-llama.sh: this runtime against llama.cpp on the same DeepSeek-V2-Lite-shaped
# GGUF files, side by side: pp512 and tg64 with 1 and 2 threads, alternating (ours, llama.cpp,
# then llama.cpp, ours, ...) ROUNDS times, medians; and our tg64 after 4096 tokens of context.
#
#   scripts/bench-vs-llama.sh              env: LAYERS (8), QUANTS ("Q4_K_M Q8_0"), ROUNDS (3),
#                                               PEER_DIR (~/.cache/deepseek-peer), BUILD (build)
#
# It builds the peer when missing (../shared/peer/setup.sh: llama.cpp v0.5.0's prebuilt CPU
# libraries from npm), makes the model as ../shared/peer/bench_v2lite.sh does (make_deepseek2.py:
# random weights, V2-Lite's widths, LAYERS layers, F16; quantized by llama.cpp's own quantizer)
# and builds this runtime (meson, BUILD). Both programs run their defaults: llama.cpp its F16
# KV cache and repacked weight buffers (REPACK / AMX where the CPU has them), this runtime its
# F32 latent cache. The peer's driver has no context-depth option, so the 4k row is ours only.
# Nothing else should run meanwhile: two cores, and each run's number is its median of one
# repetition per round. Prints a Markdown table; the CPU model heads it.
set -eu
cd "$(dirname "$0")/.."
PEER=${PEER:-../shared/peer}
PEER_DIR=${PEER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/deepseek-peer}
export PEER_DIR
LAYERS=${LAYERS:-8}
QUANTS=${QUANTS:-"Q4_K_M Q8_0"}
ROUNDS=${ROUNDS:-3}
BUILD=${BUILD:-build}
PL="$PEER_DIR/bin/peer_llama"
M="$PEER_DIR/models/bench"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

[ -x "$PL" ] || sh "$PEER/setup.sh" >&2
if [ ! -x "$BUILD/deepseek-bench" ]; then
    [ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" >&2
    meson compile -C "$BUILD" deepseek-bench >&2
fi
mkdir -p "$M"
src="$M/v2lite-L$LAYERS-f16.gguf"
[ -f "$src" ] || /usr/bin/python3 "$PEER/make_deepseek2.py" "$src" --preset v2lite --layers "$LAYERS" --type f16 --quiet >&2
for q in $QUANTS; do
    [ -f "$M/v2lite-L$LAYERS-$q.gguf" ] || "$PL" quantize "$src" "$M/v2lite-L$LAYERS-$q.gguf" "$q" --threads 2 >&2
done

# one round of one program on one file: "test threads t/s" lines into $tmp/<prog>-<q>
ours() {
    "$BUILD/deepseek-bench" -m "$1" -p 512 -n 64 -t 1,2 -r 1 -o csv 2>/dev/null |
        awk -F, 'NR > 1 { gsub(/"/, "", $12); print $12, $9, $17 }' >> "$2"
}
theirs() {
    "$PL" bench "$1" --pp 512 --tg 64 --threads 1,2 --reps 1 2>/dev/null |
        awk -F'|' '/^\| (pp|tg)/ { gsub(/ /, "", $2); gsub(/ /, "", $3); gsub(/ /, "", $4); print $2, $3, $4 }' >> "$2"
}
median() { # test threads file
    awk -v t="$1" -v n="$2" '$1 == t && $2 == n { v[c++] = $3 } END {
        if (!c) { print "-"; exit }
        for (i = 0; i < c; i++) for (j = i + 1; j < c; j++) if (v[j] < v[i]) { x = v[i]; v[i] = v[j]; v[j] = x }
        printf "%.2f", c % 2 ? v[int(c / 2)] : (v[c / 2 - 1] + v[c / 2]) / 2 }' "$3"
}

for q in $QUANTS; do
    f="$M/v2lite-L$LAYERS-$q.gguf"
    : > "$tmp/ours-$q"
    : > "$tmp/llama-$q"
    r=1
    while [ "$r" -le "$ROUNDS" ]; do
        if [ $((r % 2)) -eq 1 ]; then ours "$f" "$tmp/ours-$q"; theirs "$f" "$tmp/llama-$q"
        else theirs "$f" "$tmp/llama-$q"; ours "$f" "$tmp/ours-$q"; fi
        echo "$q: round $r of $ROUNDS done" >&2
        r=$((r + 1))
    done
    "$BUILD/deepseek-bench" -m "$f" -p 0 -n 64 -t 2 -r 1 --ctx 4096 -o csv 2>/dev/null |
        awk -F, 'NR > 1 { printf "%.2f\n", $17 }' > "$tmp/depth-$q"
done

cpu=$(sed -n 's/^model name[^:]*: *//p' /proc/cpuinfo | head -1)
echo "$cpu, $(nproc) CPUs; DeepSeek-V2-Lite-shaped, $LAYERS layers, random weights; $ROUNDS alternating rounds, medians (t/s)"
echo
echo "| file | test | threads | deepseek | llama.cpp v0.5.0 | ratio |"
echo "|---|---|---|---|---|---|"
for q in $QUANTS; do
    for t in pp512 tg64; do
        for n in 1 2; do
            a=$(median "$t" "$n" "$tmp/ours-$q")
            b=$(median "$t" "$n" "$tmp/llama-$q")
            ratio=$(awk -v a="$a" -v b="$b" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", a / b; else print "-" }')
            echo "| $q | $t | $n | $a | $b | $ratio |"
        done
    done
    echo "| $q | tg64 @ d4096 | 2 | $(cat "$tmp/depth-$q") | (no depth option in the peer) | - |"
done
