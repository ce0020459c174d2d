#!/bin/sh
# deepseek-quantize and deepseek-convert --outtype against llama.cpp, and their behaviour.
#
#   quantize.sh fixture QUANTIZE CHECK F32.gguf TYPE FTYPE LLAMA.gguf [--pure]
#     quantize F32.gguf (our converter's F32 file of a fixture) to TYPE and compare every tensor
#     (order, name, type, shape, bytes) with LLAMA.gguf, the file llama.cpp's own quantizer made
#     from the same weights (tests/data/llama-quantized); general.file_type must be FTYPE.
#   quantize.sh cli QUANTIZE CONVERT CHECK F32.gguf HF_DIR TOKENIZER_DIR
#     overrides give the types they name, the DeepSeek recipe, --pure, float file types with
#     rules, --dry-run, requantizing, importance matrices in both of llama.cpp's forms, split
#     models, bad
#     arguments failing with one line and exit 1, and convert --outtype equal to convert f32 +
#     quantize byte for byte.
set -u
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

ok() { pass=$((pass + 1)); }
ko() { fail=$((fail + 1)); echo "FAIL: $*"; }

# expect STATUS NEEDLE CMD...: exit status STATUS and NEEDLE (if not empty) in stderr+stdout
expect() {
    want=$1 needle=$2
    shift 2
    "$@" >"$tmp/out" 2>&1
    got=$?
    if [ "$got" -eq "$want" ] && { [ -z "$needle" ] || grep -q -- "$needle" "$tmp/out"; }; then
        ok
    else
        ko "$* -> exit $got (want $want, output containing '$needle'):"
        sed 's/^/    /' "$tmp/out"
    fi
}

finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit $?
}

mode=$1
shift
if [ "$mode" = fixture ]; then
    q=$1 check=$2 f32=$3 type=$4 ftype=$5 llama=$6
    shift 6
    expect 0 "wrote" "$q" -t 2 "$@" "$f32" "$tmp/out.gguf" "$type"
    expect 0 "tensors identical" "$check" same "$tmp/out.gguf" "$llama"
    expect 0 "" "$check" kv "$tmp/out.gguf" general.file_type "$ftype"
    expect 0 "" "$check" kv "$tmp/out.gguf" general.quantization_version 2
    finish
fi

q=$1 conv=$2 check=$3 f32=$4 hf=$5 tok=$6
o=$tmp/o.gguf

# --- the DeepSeek recipe: low-bit routed experts, high-bit attention, mix elsewhere
expect 0 "wrote" "$q" --expert-type q2_k --attn-type q8_0 "$f32" "$o" Q4_K_M
expect 0 "" "$check" types "$o" 'ffn_(gate|up)_exps=Q2_K' 'ffn_down_exps=Q4_0' \
    'attn_.*norm=F32' 'attn_=Q8_0' 'blk\.2\.ffn_down_shexp=Q8_0' 'ffn_down_shexp=Q5_0' \
    'shexp=Q4_K' \
    'ffn_gate_inp=F32' 'exp_probs_b=F32' '^output\.=Q6_K' 'token_embd=Q4_K' 'norm=F32'
# --tensor-type: first match wins, before --expert-type; Q6_K's fallback is Q8_0
expect 0 "wrote" "$q" --tensor-type 'blk\.2\..*shexp=q5_1' --tensor-type 'FFN_UP=q8_0' \
    --expert-type iq4_nl "$f32" "$o" Q6_K
expect 0 "" "$check" types "$o" 'blk\.2\..*shexp=Q5_1' 'ffn_up=Q8_0' 'ffn_gate_exps=IQ4_NL' \
    'ffn_down_exps=IQ4_NL' 'blk\.1\.ffn_gate_shexp=Q6_K' 'blk\.1\.ffn_down_shexp=Q8_0' \
    'attn_q_b=Q8_0' 'attn_q_a\.=Q6_K' '^output\.=Q6_K'
# --pure with the output and embedding types named
expect 0 "pure" "$q" --pure --output-tensor-type q8_0 --token-embedding-type f16 "$f32" "$o" Q4_0
expect 0 "" "$check" types "$o" '^output\.=Q8_0' 'token_embd=F16' 'norm=F32' 'ffn_gate_inp=F32' \
    'exp_probs_b=F32' 'weight=Q4_0'
expect 0 "" "$check" kv "$o" general.file_type 2
# a float file type with rules: only the experts quantized
expect 0 "wrote" "$q" --expert-type q4_k "$f32" "$o" bf16
expect 0 "" "$check" types "$o" 'ffn_(gate|up)_exps=Q4_K' 'ffn_down_exps=Q5_0' 'norm=F32' \
    'ffn_gate_inp=F32' 'weight=BF16'
expect 0 "" "$check" kv "$o" general.file_type 32
expect 0 "wrote" "$q" --leave-output-tensor "$f32" "$o" q3_k_l
expect 0 "" "$check" types "$o" '^output\.=F32' 'ffn_down_exps=Q5_1' 'attn_output=Q5_1' \
    'blk\.0\.ffn_down=Q5_K' 'token_embd=Q3_K' 'ffn_gate_exps=Q3_K'
# --dry-run lists every tensor and writes nothing
rm -f "$o"
expect 0 "blk.1.ffn_down_exps.weight .* F32 -> Q5_0" "$q" --dry-run "$f32" "$o" Q4_K_M
if [ -e "$o" ]; then ko "--dry-run wrote $o"; else ok; fi

# --- requantizing is refused unless asked for; the same type is a copy
expect 0 "wrote" "$q" "$f32" "$tmp/q8.gguf" Q8_0
expect 1 "needs --allow-requantize" "$q" "$tmp/q8.gguf" "$o" Q4_K_M
expect 0 "wrote" "$q" --allow-requantize "$tmp/q8.gguf" "$o" Q4_K_M
expect 0 "wrote" "$q" "$tmp/q8.gguf" "$o" Q8_0
expect 0 "tensors identical" "$check" same "$o" "$tmp/q8.gguf"

# --- importance matrices: GGUF and legacy forms read to the same values
expect 0 "entries" "$check" imatrix "$f32" "$tmp/im.gguf" "$tmp/im.dat"
expect 1 "needs an importance matrix" "$q" "$f32" "$o" IQ2_XXS
expect 1 "needs an importance matrix" "$q" "$f32" "$o" Q2_K_S
expect 0 "wrote" "$q" --imatrix "$tmp/im.gguf" "$f32" "$tmp/a.gguf" IQ2_XXS
expect 0 "wrote" "$q" --imatrix "$tmp/im.dat" "$f32" "$tmp/b.gguf" IQ2_XXS
expect 0 "tensors identical" "$check" same "$tmp/a.gguf" "$tmp/b.gguf"
expect 0 "" "$check" types "$tmp/a.gguf" 'attn_output=IQ4_NL' 'attn_q_a\.=IQ2_XXS' \
    'ffn_down_exps=IQ4_NL' 'token_embd=Q2_K' '^output\.=Q5_K' 'ffn_up_exps=IQ2_XXS'
expect 0 "" "$check" kv "$tmp/a.gguf" quantize.imatrix.chunks_count 4
expect 0 "wrote" "$q" --imatrix "$tmp/im.gguf" "$f32" "$tmp/a.gguf" IQ1_S
expect 0 "" "$check" types "$tmp/a.gguf" 'attn_q_a\.=IQ1_S' 'attn_kv_a_mqa=IQ1_S'
expect 0 "wrote" "$q" --imatrix "$tmp/im.dat" "$f32" "$tmp/a.gguf" Q4_K_M
expect 0 "wrote" "$q" "$f32" "$tmp/b.gguf" Q4_K_M
expect 1 "differs in bytes" "$check" same "$tmp/a.gguf" "$tmp/b.gguf"
expect 1 "not an importance matrix" "$q" --imatrix "$hf/config.json" "$f32" "$o" IQ2_XXS

# --- a split model (gguf-split's naming): the first part names the rest; one file comes out
expect 0 "3 parts" "$check" split "$f32" "$tmp/sp" 3
expect 0 "wrote" "$q" "$tmp/sp-00001-of-00003.gguf" "$o" Q4_K_M
expect 0 "wrote" "$q" "$f32" "$tmp/whole.gguf" Q4_K_M
expect 0 "tensors identical" "$check" same "$o" "$tmp/whole.gguf"
expect 1 "part 2 of a split model" "$q" "$tmp/sp-00002-of-00003.gguf" "$o" Q4_K_M
rm "$tmp/sp-00003-of-00003.gguf"
expect 1 "sp-00003-of-00003.gguf: cannot open" "$q" "$tmp/sp-00001-of-00003.gguf" "$o" Q4_K_M

# --- bad arguments: one line, exit 1
expect 1 "need IN.gguf OUT.gguf TYPE" "$q" "$f32" "$o"
expect 1 "unknown file type 'Q9_K'" "$q" "$f32" "$o" Q9_K
expect 1 "cannot write" "$q" "$f32" "$o" IQ3_S
expect 1 "unknown option" "$q" --frobnicate "$f32" "$o" Q4_0
expect 1 "unexpected argument" "$q" "$f32" "$o" Q4_0 extra
expect 1 "-t needs an integer in \[1, 256\], got '0'" "$q" -t 0 "$f32" "$o" Q4_0
expect 1 "deepseek-quantize: --expert-type: missing value" "$q" "$f32" "$o" Q4_0 --expert-type
expect 1 "unknown tensor type 'q9'" "$q" --expert-type q9 "$f32" "$o" Q4_0
expect 1 "cannot be written" "$q" --attn-type q8_k "$f32" "$o" Q4_0
expect 1 "REGEX=TYPE" "$q" --tensor-type attn "$f32" "$o" Q4_0
expect 1 "bad regular expression" "$q" --tensor-type 'a(=q8_0' "$f32" "$o" Q4_0
expect 1 "cannot open" "$q" "$tmp/none.gguf" "$o" Q4_0
expect 1 "not a GGUF file" "$q" "$hf/config.json" "$o" Q4_0
expect 1 "not deepseek2" "$q" "$tmp/im.gguf" "$o" Q4_0
expect 1 "same file" "$q" "$f32" "$f32" Q4_0
expect 1 "cannot create" "$q" "$f32" "$tmp/no/such/dir.gguf" Q4_0
head -c 100000 "$f32" > "$tmp/trunc.gguf"
expect 1 "deepseek-quantize: " "$q" "$tmp/trunc.gguf" "$o" Q4_0
expect 0 "usage: deepseek-quantize" "$q" --help

# --- deepseek-convert --outtype TYPE is convert to f32, then quantize, byte for byte
for mla in split legacy; do
    expect 0 "wrote" "$conv" "$hf" -o "$tmp/f32.gguf" --mla "$mla" --tokenizer "$tok"
    for type in q4_k_m q8_0 Q2_K iq4_xs; do
        expect 0 "$(echo $type | tr a-z A-Z)" "$conv" "$hf" -o "$tmp/c.gguf" --outtype "$type" \
            --mla "$mla" --tokenizer "$tok" -t 2
        expect 0 "wrote" "$q" -t 1 "$tmp/f32.gguf" "$o" "$type"
        if cmp -s "$tmp/c.gguf" "$o"; then ok; else ko "convert --outtype $type --mla $mla differs"; fi
    done
done
# legacy attn_kv_b is attn_v-like: its mix counts those tensors (four with the MTP layer); rows of
# kv_lora_rank 64 take the fallbacks (types as llama-quantize chose them for this file)
expect 0 "wrote" "$q" "$tmp/f32.gguf" "$o" Q4_K_M
expect 0 "" "$check" types "$o" 'blk\.[01]\.attn_kv_b=Q5_0' 'blk\.[23]\.attn_kv_b=Q8_0'
expect 0 "wrote" "$q" "$tmp/f32.gguf" "$o" Q3_K_M
expect 0 "" "$check" types "$o" 'blk\.[01]\.attn_kv_b=Q5_1' 'blk\.[23]\.attn_kv_b=Q5_0'
# the F32 file made last has the MTP layer, which the importance matrix has no data for
expect 1 "blk.3.* no data for it" "$q" --imatrix "$tmp/im.gguf" "$tmp/f32.gguf" "$o" IQ2_XXS
expect 1 "importance matrix" "$conv" "$hf" -o "$o" --outtype iq2_xxs --tokenizer "$tok"
expect 1 "unknown file type" "$conv" "$hf" -o "$o" --outtype q9_k --tokenizer "$tok"
finish
