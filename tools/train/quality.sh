#!/bin/sh
# The default model's quality table (models/README.md): for the shipped file and its
# quantizations by deepseek-quantize, the file size, the held-out perplexity and the MTP layer's
# next-next-token accuracy, as markdown rows.
# usage: tools/train/quality.sh [MODEL.gguf] [TEXT] [TYPE...]   (run from the repository root)
set -eu
model=${1:-models/brown-v3.gguf}
text=${2:-tests/data/default-model/heldout.txt}
[ $# -gt 2 ] && shift 2 || set -- Q8_0 Q6_K Q5_K_M Q5_0 Q4_K_M Q4_0 IQ4_NL Q3_K_M Q2_K
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
row() { # name, file
    build/deepseek-perplexity -m "$2" -f "$text" -c 512 --mtp > "$tmp/out" 2> /dev/null
    ppl=$(sed -n 's/^Final estimate: PPL = \([0-9.]*\) +\/- \([0-9.]*\)/\1 ± \2/p' "$tmp/out")
    mtp=$(sed -n 's/^MTP: next-next-token accuracy \([0-9.]*%\).*main model.s next-token accuracy \([0-9.]*%\)/\1 | \2/p' "$tmp/out")
    size=$(stat -c %s "$2")
    awk -v n="$1" -v s="$size" -v p="$ppl" -v m="$mtp" 'BEGIN { printf "| %s | %.1f MB | %s | %s |\n", n, s / 1e6, p, m }'
}
echo "| weights | file | perplexity | MTP next-next-token accuracy | next-token accuracy |"
echo "|---|---|---|---|---|"
row "BF16 (shipped)" "$model"
for t in "$@"; do
    build/deepseek-quantize "$model" "$tmp/$t.gguf" "$t" > /dev/null 2>&1
    row "$t" "$tmp/$t.gguf"
done
