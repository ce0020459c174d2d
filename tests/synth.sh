#!/bin/sh
# deepseek-synth: tiny synthetic deepseek32 and deepseek2 files load and run through
# deepseek-bench, quantize, come out the same for the same seed, and bad options end in one
# clear line and exit 1, worded as every tool words them (args.h).
# usage: synth.sh DEEPSEEK_SYNTH DEEPSEEK_BENCH DEEPSEEK_QUANTIZE VERSION
set -u
synth=$1 bench=$2 quant=$3 version=$4
. "$(dirname "$0")/expect.sh" # tmp, pass / fail, expect, check

# ---- the common words
expect 0 "^deepseek-synth $version\$" "$synth" --version
"$synth" --help > "$tmp/help" 2> "$tmp/help.err"
check "--help: exit 0, usage on stdout, nothing on stderr" \
    sh -c '[ "$0" -eq 0 ] && grep -q "^usage: deepseek-synth " "$1" && grep -q "tiny-v32" "$1" && [ ! -s "$2" ]' $? \
    "$tmp/help" "$tmp/help.err"
expect 1 "^deepseek-synth: unknown option '--frobnicate' (see deepseek-synth --help)\$" "$synth" --frobnicate
expect 1 "^deepseek-synth: unexpected argument 'stray' (see deepseek-synth --help)\$" "$synth" stray
expect 1 "^deepseek-synth: -o: missing value\$" "$synth" -o
expect 1 "^deepseek-synth: no shape given (--shape NAME; see deepseek-synth --help)\$" "$synth" -o "$tmp/x.gguf"
expect 1 "^deepseek-synth: no output file given (-o FILE; see deepseek-synth --help)\$" "$synth" --shape tiny-v3
expect 1 "^deepseek-synth: --layers needs an integer in \[1, 4096\], got '0'\$" "$synth" -o "$tmp/x.gguf" \
    --shape tiny-v3 --layers 0
expect 1 "^deepseek-synth: --heads needs an integer in \[1, 1024\], got 'abc'\$" "$synth" -o "$tmp/x.gguf" \
    --shape tiny-v3 --heads abc

# ---- what cannot make a model
expect 1 "^deepseek-synth: --shape: unknown shape 'v99' (v32, v3, v2lite, tiny-v32" "$synth" -o "$tmp/x.gguf" \
    --shape v99
expect 1 "^deepseek-synth: --type: type 'q8_0' is not written here" "$synth" -o "$tmp/x.gguf" --shape tiny-v3 \
    --type q8_0
expect 1 "^deepseek-synth: --experts: 12 experts do not split into the shape's 8 expert groups\$" "$synth" \
    -o "$tmp/x.gguf" --shape v32 --experts 12
expect 1 "^deepseek-synth: --experts: with 8 experts, the 4 groups a token uses hold fewer than its 8 experts (give at least 16)\$" \
    "$synth" -o "$tmp/x.gguf" --shape v32 --experts 8
expect 1 "^deepseek-synth: --experts: 4 experts, fewer than the 6 each token uses\$" "$synth" -o "$tmp/x.gguf" \
    --shape v2lite --experts 4
expect 1 "^deepseek-synth: --dense: 4 leading dense layers, but the model has 3 layers\$" "$synth" -o "$tmp/x.gguf" \
    --shape tiny-v3 --dense 4
expect 1 "^deepseek-synth: --top-k: the model has no indexer (shape 'tiny-v3')\$" "$synth" -o "$tmp/x.gguf" \
    --shape tiny-v3 --top-k 8
expect 1 "^deepseek-synth: --top-k: the model has no indexer (shape 'tiny-v32', --no-indexer)\$" "$synth" \
    -o "$tmp/x.gguf" --shape tiny-v32 --no-indexer --top-k 8
expect 1 "^deepseek-synth: $tmp/no/such/dir/x.gguf: cannot create" "$synth" -o "$tmp/no/such/dir/x.gguf" --shape tiny-v3

# ---- the shapes: v32's defaults are what the help says
expect 0 "^v32 (deepseek32): 2 layers (0 dense), 16 heads, 16 experts (8 used), vocab 32768, indexer 64x128 top 2048: 2.07 B parameters, F16 4.14 GB, as Q8_0 2.20 GB\$" \
    "$synth" --list
check "--list names every shape" sh -c 'for s in v3 v2lite tiny-v32 tiny-v3 tiny-v2lite; do
    grep -q "^$s (deepseek" "$0" || exit 1; done' "$tmp/out"

# ---- tiny files: written, the same for the same seed, and they run
expect 0 "tiny-v32 (deepseek32): 3 layers (1 dense)" "$synth" -o "$tmp/v32.gguf" --shape tiny-v32
"$synth" -o "$tmp/v32-again.gguf" --shape tiny-v32 2>/dev/null
check "the same seed gives the same file" cmp -s "$tmp/v32.gguf" "$tmp/v32-again.gguf"
"$synth" -o "$tmp/v32-seed2.gguf" --shape tiny-v32 --seed 2 2>/dev/null
check "another seed gives another file" sh -c '! cmp -s "$0" "$1"' "$tmp/v32.gguf" "$tmp/v32-seed2.gguf"
expect 0 "tiny-v32 without its indexers (deepseek2)" "$synth" -o "$tmp/v3.gguf" --shape tiny-v32 --no-indexer --type bf16
expect 0 "tiny-v2lite (deepseek2)" "$synth" -o "$tmp/v2.gguf" --shape tiny-v2lite --type f32 --layers 2 --experts 16
expect 0 "top 40" "$synth" -o "$tmp/v32k.gguf" --shape tiny-v32 --top-k 40 --heads 2 --vocab 500
for f in v32 v3 v2 v32k; do
    expect 0 "| tg4 " "$bench" -m "$tmp/$f.gguf" -p 8 -n 4 -r 1 -t 1
done
expect 0 "^deepseek32: 3 layers (1 dense) + 0 MTP, .* sparse: indexer 8x128 top 16," "$bench" -m "$tmp/v32.gguf" \
    -p 8 -n 4 -r 1 -t 1
expect 0 "| synth-tiny-v32-no-indexer | .* | BF16 | " "$bench" -m "$tmp/v3.gguf" -p 8 -n 4 -r 1 -t 1
expect 0 "^deepseek2: 2 layers (1 dense) + 0 MTP, .* q_lora 0, .* 16 experts (3 used, 2 shared, softmax" "$bench" \
    -m "$tmp/v2.gguf" -p 8 -n 4 -r 1 -t 1
expect 0 "2 heads.*indexer 8x128 top 40,.*vocab 500" "$bench" -m "$tmp/v32k.gguf" -p 0 -n 2 -r 1 -t 1
# past the indexer's top 16, at depth, and on two threads
expect 0 "| tg4 @ d32 " "$bench" -m "$tmp/v32.gguf" -p 8 -n 4 -r 1 -t 1,2 --ctx 24,32
# quantized by deepseek-quantize, it still runs
expect 0 "Q8_0" "$quant" "$tmp/v32.gguf" "$tmp/v32-q8.gguf" Q8_0 -t 1
expect 0 "| synth-tiny-v32 | .* | Q8_0 | " "$bench" -m "$tmp/v32-q8.gguf" -p 8 -n 4 -r 1 -t 1

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
