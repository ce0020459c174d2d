#!/bin/sh
# deepseek-synth: tiny synthetic deepseek32 and deepseek2 files load and run through
# deepseek-bench, quantize, come out the same for the same seed; the qwen2, llama, qwen3 and
# deepseek shapes hold the keys and tensors llama.cpp's converter writes for them and quantize;
# bad options end in one clear line and exit 1, worded as every tool words them (args.h).
# usage: synth.sh DEEPSEEK_SYNTH DEEPSEEK_BENCH DEEPSEEK_QUANTIZE GGUF_CHECK VERSION
set -u
synth=$1 bench=$2 quant=$3 gguf_check=$4 version=$5 tokenizer_model=${6:-}
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
expect 1 "^deepseek-synth: --shape: unknown shape 'v99' (v32, v3, v2lite, qwen2-1.5b, .*, tiny-deepseek-moe)\$" \
    "$synth" -o "$tmp/x.gguf" --shape v99
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
expect 1 "^deepseek-synth: --heads: only the MLA shapes' heads can be set (shape 'qwen2-7b' keeps its 28)\$" "$synth" \
    -o "$tmp/x.gguf" --shape qwen2-7b --heads 4
expect 1 "^deepseek-synth: --experts: the model has no experts (shape 'llama-8b')\$" "$synth" -o "$tmp/x.gguf" \
    --shape llama-8b --experts 4
expect 1 "^deepseek-synth: --dense: the model has no experts (shape 'tiny-qwen3')\$" "$synth" -o "$tmp/x.gguf" \
    --shape tiny-qwen3 --dense 1
expect 1 "^deepseek-synth: --experts: 4 experts, fewer than the 6 each token uses\$" "$synth" -o "$tmp/x.gguf" \
    --shape deepseek-moe-16b --experts 4

# ---- the shapes: v32's defaults are what the help says
expect 0 "^v32 (deepseek32): 2 layers (0 dense), 16 heads, 16 experts (8 used), vocab 32768, indexer 64x128 top 2048: 2.07 B parameters, F16 4.14 GB, as Q8_0 2.20 GB, Q4_K_M 1.29 GB\$" \
    "$synth" --list
check "--list names every shape" sh -c 'for s in v3 v2lite qwen2-1.5b qwen2-7b llama-8b qwen3-8b deepseek-moe-16b \
    tiny-v32 tiny-v3 tiny-v2lite tiny-qwen2 tiny-llama tiny-qwen3 tiny-deepseek-moe; do
    grep -q "^$s (" "$0" || exit 1; done' "$tmp/out"
# whole models: the released checkpoints' parameter counts, and the sizes of their Q4_K_M GGUFs
# (llama.cpp's, less a few MB of tokenizer)
cp "$tmp/out" "$tmp/list"
for line in \
    "qwen2-1.5b (qwen2): 28 layers, 12 heads (2 kv), vocab 151936: 1.78 B parameters, F16 3.55 GB, as Q8_0 1.89 GB, Q4_K_M 1.11 GB" \
    "qwen2-7b (qwen2): 28 layers, 28 heads (4 kv), vocab 152064: 7.62 B parameters, F16 15.23 GB, as Q8_0 8.09 GB, Q4_K_M 4.68 GB" \
    "llama-8b (llama): 32 layers, 32 heads (8 kv), vocab 128256: 8.03 B parameters, F16 16.06 GB, as Q8_0 8.53 GB, Q4_K_M 4.91 GB" \
    "qwen3-8b (qwen3): 36 layers, 32 heads (8 kv), vocab 151936: 8.19 B parameters, F16 16.38 GB, as Q8_0 8.70 GB, Q4_K_M 5.02 GB" \
    "deepseek-moe-16b (deepseek): 28 layers (1 dense), 16 heads (16 kv), 64 experts (6 used), vocab 102400: 16.38 B parameters, F16 32.76 GB, as Q8_0 17.41 GB, Q4_K_M 10.85 GB"; do
    check "--list: $line" grep -qxF "$line" "$tmp/list"
done

# ---- tiny files: written, the same for the same seed, and they run
expect 0 "tiny-v32 (deepseek32): 3 layers (1 dense)" "$synth" -o "$tmp/v32.gguf" --shape tiny-v32
"$synth" -o "$tmp/v32-again.gguf" --shape tiny-v32 2>/dev/null
check "the same seed gives the same file" cmp -s "$tmp/v32.gguf" "$tmp/v32-again.gguf"
"$synth" -o "$tmp/v32-seed2.gguf" --shape tiny-v32 --seed 2 2>/dev/null
check "another seed gives another file" sh -c '! cmp -s "$0" "$1"' "$tmp/v32.gguf" "$tmp/v32-seed2.gguf"
expect 0 "tiny-v32 without its indexers (deepseek2)" "$synth" -o "$tmp/v3.gguf" --shape tiny-v32 --no-indexer --type bf16
expect 0 "tiny-v2lite (deepseek2)" "$synth" -o "$tmp/v2.gguf" --shape tiny-v2lite --type f32 --layers 2 --experts 16
expect 0 "top 40" "$synth" -o "$tmp/v32k.gguf" --shape tiny-v32 --top-k 40 --heads 2 --vocab 500
# --tokenizer: another file's tokenizer and chat template, its token count as the vocabulary
if [ -n "${tokenizer_model:-}" ]; then
    expect 0 "vocab 4096" "$synth" -o "$tmp/v3tok.gguf" --shape tiny-v3 --tokenizer "$tokenizer_model"
    "$gguf_check" dump "$tmp/v3tok.gguf" > "$tmp/v3tok.dump"
    check "--tokenizer: the tokenizer's keys" grep -q "^tokenizer.ggml.model = gpt2" "$tmp/v3tok.dump"
    check "--tokenizer: the chat template" grep -q "^tokenizer.chat_template = " "$tmp/v3tok.dump"
    check "--tokenizer: the vocabulary fits the token list" grep -q "^token_embd.weight .*4096" "$tmp/v3tok.dump"
    expect 1 "^deepseek-synth: --vocab 100: .* tokenizer has 4096 tokens\$" "$synth" -o "$tmp/x.gguf" --shape tiny-v3 \
        --tokenizer "$tokenizer_model" --vocab 100
    expect 1 "^deepseek-synth: --tokenizer: " "$synth" -o "$tmp/x.gguf" --shape tiny-v3 --tokenizer "$tmp/no-such.gguf"
fi
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

# ---- the other architectures: llama.cpp's keys and tensors (the runtime does not run them yet)
# has FILE LINE...: gguf_check's listing of FILE holds each LINE (a key, "KEY = VALUE" or
# "TENSOR TYPE SHAPE"); lacks FILE NAME...: it has no such key or tensor
has() {
    f=$1
    shift
    "$gguf_check" dump "$f" > "$tmp/dump" || { fail=$((fail + 1)); echo "FAIL: gguf_check dump $f"; return; }
    for line in "$@"; do check "$(basename "$f"): $line" grep -qxF -- "$line" "$tmp/dump"; done
}
lacks() {
    f=$1
    shift
    "$gguf_check" dump "$f" > "$tmp/dump"
    for k in "$@"; do
        check "$(basename "$f"): no $k" sh -c '! awk -v k="$0" '\''$1 == k { f = 1 } END { exit !f }'\'' "$1"' "$k" \
            "$tmp/dump"
    done
}
for s in tiny-qwen2 tiny-llama tiny-qwen3 tiny-deepseek-moe; do
    expect 0 "^deepseek-synth: writing .*: $s (" "$synth" -o "$tmp/$s.gguf" --shape $s
done
common="attention.layer_norm_rms_epsilon rope.freq_base"
has "$tmp/tiny-qwen2.gguf" "general.architecture = qwen2" "qwen2.block_count = 3" "qwen2.context_length = 131072" \
    "qwen2.attention.head_count = 4" "qwen2.attention.head_count_kv = 2" "qwen2.vocab_size = 1024" \
    "qwen2.rope.freq_base" "qwen2.attention.layer_norm_rms_epsilon" "tokenizer.ggml.model = none" \
    "token_embd.weight F16 256x1024" "blk.2.attn_q.weight F16 256x256" "blk.2.attn_k.weight F16 256x128" \
    "blk.2.attn_v.weight F16 256x128" "blk.2.attn_q.bias F32 256" "blk.2.attn_k.bias F32 128" \
    "blk.2.attn_v.bias F32 128" "blk.2.attn_output.weight F16 256x256" "blk.2.ffn_down.weight F16 512x256" \
    "output.weight F16 256x1024"
lacks "$tmp/tiny-qwen2.gguf" qwen2.attention.key_length qwen2.rope.dimension_count qwen2.rope.scaling.type
has "$tmp/tiny-llama.gguf" "general.architecture = llama" "llama.attention.head_count_kv = 2" \
    "llama.attention.key_length = 64" "llama.attention.value_length = 64" "llama.rope.dimension_count = 64" \
    "llama.vocab_size = 1024" "llama.attention.layer_norm_rms_epsilon" "rope_freqs.weight F32 32" \
    "blk.0.attn_k.weight F16 256x128" "blk.0.ffn_gate.weight F16 256x512"
lacks "$tmp/tiny-llama.gguf" llama.rope.scaling.type blk.0.attn_q.bias
has "$tmp/tiny-qwen3.gguf" "general.architecture = qwen3" "qwen3.rope.scaling.type = yarn" \
    "qwen3.rope.scaling.factor" "qwen3.rope.scaling.original_context_length = 32768" \
    "qwen3.rope.scaling.yarn_attn_factor" "qwen3.attention.key_length = 128" "qwen3.attention.value_length = 128" \
    "blk.1.attn_q.weight F16 256x512" "blk.1.attn_k.weight F16 256x256" "blk.1.attn_output.weight F16 512x256" \
    "blk.1.attn_q_norm.weight F32 128" "blk.1.attn_k_norm.weight F32 128"
lacks "$tmp/tiny-qwen3.gguf" qwen3.rope.dimension_count blk.1.attn_q.bias rope_freqs.weight
has "$tmp/tiny-deepseek-moe.gguf" "general.architecture = deepseek" "deepseek.attention.head_count_kv = 4" \
    "deepseek.leading_dense_block_count = 1" "deepseek.expert_count = 8" "deepseek.expert_used_count = 3" \
    "deepseek.expert_shared_count = 2" "deepseek.expert_feed_forward_length = 32" "deepseek.expert_gating_func = 1" \
    "deepseek.expert_weights_scale" "deepseek.rope.dimension_count = 64" "deepseek.rope.scaling.type = none" \
    "deepseek.vocab_size = 1024" "blk.0.ffn_down.weight F16 512x256" "blk.1.ffn_gate_inp.weight F32 256x8" \
    "blk.1.ffn_gate_exps.weight F16 256x32x8" "blk.1.ffn_down_exps.weight F16 32x256x8" \
    "blk.1.ffn_up_shexp.weight F16 256x64" "blk.1.ffn_down_shexp.weight F16 64x256"
lacks "$tmp/tiny-deepseek-moe.gguf" blk.1.exp_probs_b.bias blk.1.ffn_gate.weight deepseek.expert_group_count \
    deepseek.expert_weights_norm
# at real widths, one layer (vocabulary cut to keep the file at 95 MB)
"$synth" -o "$tmp/q15.gguf" --shape qwen2-1.5b --layers 1 --vocab 256 --type bf16 2>/dev/null
has "$tmp/q15.gguf" "qwen2.block_count = 1" "blk.0.attn_q.weight BF16 1536x1536" "blk.0.attn_k.weight BF16 1536x256" \
    "blk.0.attn_k.bias F32 256" "blk.0.ffn_up.weight BF16 1536x8960" "blk.0.ffn_down.weight BF16 8960x1536"
rm -f "$tmp/q15.gguf"
# deepseek-quantize takes them, by llama.cpp's rules: 8 experts put attn_k / attn_v at Q8_0; rows
# of 32 give Q4_K's and Q6_K's place to Q5_0 and Q8_0 (ffn_down_exps; layer 2 is a more-bits one)
for s in tiny-qwen2 tiny-llama tiny-qwen3 tiny-deepseek-moe; do
    expect 0 "Q4_K_M" "$quant" "$tmp/$s.gguf" "$tmp/$s-q4km.gguf" Q4_K_M -t 1
done
check "tiny-qwen2 Q4_K_M: llama.cpp's types" "$gguf_check" types "$tmp/tiny-qwen2-q4km.gguf" "bias=F32" \
    "^blk.[01].attn_v.weight=Q4_K" "^blk.2.attn_v.weight=Q6_K" "^blk.[01].ffn_down=Q4_K" "^blk.2.ffn_down=Q6_K" \
    "attn_q.weight=Q4_K" "^output.weight=Q6_K" "^token_embd=Q4_K"
check "tiny-llama Q4_K_M: llama.cpp's types" "$gguf_check" types "$tmp/tiny-llama-q4km.gguf" "^rope_freqs=F32" \
    "attn_k.weight=Q4_K"
check "tiny-qwen3 Q4_K_M: llama.cpp's types" "$gguf_check" types "$tmp/tiny-qwen3-q4km.gguf" "_norm.weight=F32" \
    "attn_output=Q4_K"
check "tiny-deepseek-moe Q4_K_M: llama.cpp's types" "$gguf_check" types "$tmp/tiny-deepseek-moe-q4km.gguf" \
    "attn_[kv].weight=Q8_0" "^blk.1.ffn_down_exps=Q5_0" "^blk.2.ffn_down_exps=Q8_0" "ffn_gate_exps=Q4_K" \
    "ffn_gate_inp=F32" "^blk.0.ffn_down.weight=Q4_K"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
