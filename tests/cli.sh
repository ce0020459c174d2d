#!/bin/sh
# CLI behaviour: help, bad arguments and bad files end in one clear line and exit 1 (never a
# crash), worded alike by every tool; --version everywhere; a good run prints the reference's
# greedy tokens, text and chat work end to end, llama.cpp's flags run as llama.cpp's do or are
# ignored with a note, and deepseek-tokenize survives 10 MB of random bytes.
# usage: cli.sh DEEPSEEK DEEPSEEK_CONVERT MODEL.gguf FIXTURE_DIR DEEPSEEK_TOKENIZE VOCAB.gguf DATA_DIR
#               DEEPSEEK_PERPLEXITY DEEPSEEK_BENCH DEEPSEEK_QUANTIZE VERSION
set -u
ds=$1 conv=$2 model=$3 fixture=$4 tok=$5 vocab=$6 data=$7 ppl=$8 bench=$9 quant=${10} version=${11}
. "$(dirname "$0")/expect.sh" # tmp, pass / fail, expect, check

prompt="0 285 365 734 229 484 862 777 936 87 390 384 5 258 966 488 233 6 728 694 159 394 699 254 489 992 46 55 934 32 500 290 285 505 693 283 748 813 107 313 387 86 237 289 412 529 882 419"
greedy="433 376 592 924 643 824 564 69 287 424 560 66 926 595 501 396 907 548 998 63 327 630 1012 551 375 696 158 249 845 569 393 812"

expect 0 "usage: deepseek" "$ds" -h
expect 1 "no model given" "$ds"
expect 1 "unknown option" "$ds" --frobnicate
expect 1 "needs an integer" "$ds" -m "$model" --ids "0" -t abc
expect 1 "needs an integer" "$ds" -m "$model" --ids "0" -n -3
expect 1 "missing value" "$ds" -m
expect 1 "cannot open" "$ds" -m "$tmp/none.gguf" --ids "0"
expect 1 "needs a number" "$ds" -m "$model" --ids "0" --temp -1
expect 1 "needs a number" "$ds" -m "$model" --ids "0" --top-p 0
expect 1 "show or hide" "$ds" -m "$model" -cnv --reasoning maybe
expect 1 "one prompt" "$ds" -m "$model" -p "a" --ids "0"
expect 1 "no prompt given" "$ds" -m "$model"
expect 1 "not a token id" "$ds" -m "$model" --ids "0 1024"
expect 1 "not a token id" "$ds" -m "$model" --ids "0 12x"
expect 1 "holds no token ids" "$ds" -m "$model" --ids " , "
expect 1 "48 tokens but the context holds 10" "$ds" -m "$model" --ids "$prompt" -c 10
expect 1 "not a GGUF file" "$ds" -m "$fixture/config.json" --ids "0"
head -c 5000 "$model" > "$tmp/trunc.gguf"
expect 1 "deepseek: " "$ds" -m "$tmp/trunc.gguf" --ids "0"

# a good run: the official greedy continuation, and a logits dump of the right size
expect 0 "generation 32 tokens" "$ds" -m "$model" --ids "$prompt" -n 32 --temp 0 --print-ids --ignore-eos -t 2
if grep -qx "$greedy" "$tmp/out"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: greedy ids differ"; cat "$tmp/out"; fi
expect 0 "timings" "$ds" -m "$model" --ids "$prompt" --dump-logits "$tmp/l.f32" -t 1
size=$(wc -c < "$tmp/l.f32")
if [ "$size" -eq $((48 * 1024 * 4)) ]; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: logits dump is $size bytes"; fi

# text in, text out
expect 0 "timings" "$ds" -m "$model" -p "Hello world" -n 8 -t 1
expect 0 "kernels: scalar" env DS_SIMD=scalar "$ds" -m "$model" -p "Hi" -n 1 -v
expect 0 "seed 7" "$ds" -m "$model" -p "Hello world" -n 8 --seed 7 --top-k 5 --min-p 0.01 --repeat-penalty 1.1
for run in first second third; do
    "$ds" -m "$model" -p "Hello world" -n 16 --seed $([ $run = third ] && echo 8 || echo 7) --ignore-eos 2>/dev/null > "$tmp/$run"
done
if cmp -s "$tmp/first" "$tmp/second"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: the same seed gave different text"; fi
if ! cmp -s "$tmp/first" "$tmp/third"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: seeds 7 and 8 gave the same 16 tokens"; fi
long=$(printf 'word %.0s' $(seq 1 50))
expect 1 "tokens but the context holds 16" "$ds" -m "$model" -p "$long" -c 16
printf 'abc\377def' > "$tmp/bad.txt"
expect 0 "not valid UTF-8" "$ds" -m "$model" -f "$tmp/bad.txt" -n 2
expect 0 "vocabulary" "$ds" -m "$vocab" -p "Hello"
expect 1 "only a vocabulary" "$ds" -m "$vocab" -cnv

# chat: two turns and /exit, read from a pipe; the R1 template (from its own file) too
printf 'Hello!\nHow are\\\nyou?\n/exit\nnot read\n' > "$tmp/turns"
expect 0 "generation 12 tokens" sh -c '"$0" -m "$1" -cnv -n 6 --temp 0 -sys "Be brief." < "$2"' "$ds" "$model" "$tmp/turns"
mkdir -p "$tmp/r1tok"
cp "$data/tokenizer-tiny/tokenizer.json" "$tmp/r1tok/"
"$conv" "$fixture" -o "$tmp/plain.gguf" --tokenizer "$tmp/r1tok" >/dev/null 2>&1
expect 1 "no chat template" sh -c 'echo Hi | "$0" -m "$1" -cnv' "$ds" "$tmp/plain.gguf"
expect 1 "--chat-template NAME" sh -c 'echo Hi | "$0" -m "$1" -cnv' "$ds" "$tmp/plain.gguf"
expect 0 "chatml template" sh -c 'echo Hi | "$0" -m "$1" -cnv -n 2 --chat-template chatml' "$ds" "$tmp/plain.gguf"
expect 0 "deepseek-r1-distill" "$ds" --chat-template list
expect 1 "no template named 'zephyr'; the known ones: deepseek3" "$ds" -m "$model" -cnv --chat-template zephyr
# a template this program does not know: said so, and one it knows picks up by name
printf '{%% for m in messages %%}<%%= m.content %%>{%% endfor %%}' > "$tmp/r1tok/chat_template.jinja"
"$conv" "$fixture" -o "$tmp/odd.gguf" --tokenizer "$tmp/r1tok" >/dev/null 2>&1
expect 1 "its chat template is not one this program knows" sh -c 'echo Hi | "$0" -m "$1" -cnv' "$ds" "$tmp/odd.gguf"
expect 0 "deepseek-r1 template" sh -c 'echo Hi | "$0" -m "$1" -cnv -n 2 --chat-template deepseek-r1' "$ds" "$tmp/odd.gguf"
cp "$data/chat-templates/deepseek-r1.jinja" "$tmp/r1tok/chat_template.jinja"
"$conv" "$fixture" -o "$tmp/r1.gguf" --tokenizer "$tmp/r1tok" >/dev/null 2>&1
expect 0 "deepseek-r1 template" sh -c 'echo Hi | "$0" -m "$1" -cnv -n 6 --temp 0 --reasoning hide --verbose-prompt' "$ds" "$tmp/r1.gguf"
expect 0 "deepseek-r1 template has no thinking switch" sh -c 'echo Hi | "$0" -m "$1" -cnv -n 2 --reasoning off' "$ds" "$tmp/r1.gguf"
# V3.1's hybrid template: --reasoning on / off picks the mode (the prompt ends in <think> or </think>)
cp "$data/chat-templates/deepseek-v3.1.jinja" "$tmp/r1tok/chat_template.jinja"
"$conv" "$fixture" -o "$tmp/v31.gguf" --tokenizer "$tmp/r1tok" >/dev/null 2>&1
expect 0 "deepseek3.1 template (thinking off)" sh -c 'echo Hi | "$0" -m "$1" -cnv -n 2 --reasoning hide' "$ds" "$tmp/v31.gguf"
expect 0 "deepseek3.1 template (thinking on)" sh -c 'echo Hi | "$0" -m "$1" -cnv -n 2 --reasoning on --reasoning hide' "$ds" "$tmp/v31.gguf"
expect 0 "> '</think>'" sh -c 'echo Hi | "$0" -m "$1" -cnv -n 2 --reasoning off --verbose-prompt' "$ds" "$tmp/v31.gguf"
expect 0 "> '<think>'" sh -c 'echo Hi | "$0" -m "$1" -cnv -n 2 --reasoning on --verbose-prompt' "$ds" "$tmp/v31.gguf"
cp "$data/chat-templates/llama.cpp-deepseek-v3.2.jinja" "$tmp/r1tok/chat_template.jinja"
"$conv" "$fixture" -o "$tmp/v32.gguf" --tokenizer "$tmp/r1tok" >/dev/null 2>&1
expect 0 "deepseek3.2 template (thinking on)" sh -c 'echo Hi | "$0" -m "$1" -cnv -n 2 --reasoning on' "$ds" "$tmp/v32.gguf"
expect 0 "timings" sh -c '"$0" -m "$1" -cnv -p "Hi" -n 4 < /dev/null' "$ds" "$model"

# deepseek-tokenize
expect 0 "^0 19923 2058$" "$tok" -m "$vocab" -p "Hello world"
expect 0 "19923 -> 'Hello'" "$tok" -m "$vocab" -p "Hello world" --no-bos --pieces
expect 1 "either -p TEXT or -f FILE" "$tok" -m "$vocab"
expect 1 "cannot open" "$tok" -m "$vocab" -f "$tmp/none.txt"
expect 1 "deepseek-tokenize: " "$tok" -m "$tmp/trunc.gguf" -p "x"
# 10 MB of random bytes (perl's seeded generator: the same bytes every run)
perl -e 'srand(20261128); print map { chr(int(rand(256))) } 1 .. 10485760' > "$tmp/random.bin"
expect 0 "round trip ok" "$tok" -m "$vocab" -f "$tmp/random.bin" --check --stats
expect 0 "round trip ok" "$tok" -m "$model" -f "$tmp/random.bin" --check
# Qwen's tokenizer normalizes (NFC): decoding gives the composed text back
"$conv" "$data/tokenizer-qwen2" -o "$tmp/qwen.gguf" --vocab-only >/dev/null 2>&1
expect 0 "round trip ok: 3 tokens decode to the 5 bytes of text (normalized)" "$tok" -m "$tmp/qwen.gguf" \
    -p "$(printf 'cafe\314\201')" --check
# a pre-tokenizer this runtime lacks: the file loads, tokenizing names the ones it has
"$conv" "$data/tokenizer-tiny" -o "$tmp/falcon.gguf" --vocab-only --tokenizer-pre falcon >/dev/null 2>&1
expect 1 "pre-tokenizer 'falcon' (tokenizer.ggml.pre) is not supported; supported: deepseek-v3, deepseek-llm, \
deepseek-coder, qwen2, deepseek-r1-qwen, llama-bpe, llama3, llama-v3\$" "$tok" -m "$tmp/falcon.gguf" -p "x"

# the converter
expect 1 "HF_DIR" "$conv"
expect 1 "config.json" "$conv" "$tmp" -o "$tmp/x.gguf"
mkdir -p "$tmp/bad" && echo "{ not json" > "$tmp/bad/config.json"
expect 1 "config.json" "$conv" "$tmp/bad" -o "$tmp/x.gguf"
printf '{"architectures": ["MistralForCausalLM"], "model_type": "mistral"}' > "$tmp/bad/config.json"
expect 1 "model_type 'mistral' is not supported" "$conv" "$tmp/bad" -o "$tmp/x.gguf"
# a supported architecture still needs its keys
printf '{"model_type": "llama"}' > "$tmp/bad/config.json"
expect 1 "'num_hidden_layers' is missing" "$conv" "$tmp/bad" -o "$tmp/x.gguf"
expect 1 "outtype" "$conv" "$fixture" -o "$tmp/x.gguf" --outtype q9_9
# tokenizer.ggml.pre from the tokenizer.json: Qwen's regex without its NFC normalizer is no tokenizer
# this runtime has, unless --tokenizer-pre names one
mkdir -p "$tmp/nonfc"
sed 's/"normalizer":{"type":"NFC"}/"normalizer":null/' "$data/tokenizer-qwen2/tokenizer.json" > "$tmp/nonfc/tokenizer.json"
expect 1 "tokenizer.json: its normalizer, pre_tokenizer and ignore_merges are none of the tokenizers this runtime \
implements; pass --tokenizer-pre NAME" "$conv" "$tmp/nonfc" -o "$tmp/x.gguf" --vocab-only
expect 0 "vocabulary only" "$conv" "$tmp/nonfc" -o "$tmp/x.gguf" --vocab-only --tokenizer-pre qwen2

# ---- every tool: the same words and exit status for the same mistake, help on stdout, --version
for t in "$ds" "$tok" "$ppl" "$bench" "$conv" "$quant"; do
    name=$(basename "$t")
    expect 1 "^$name: unknown option '--frobnicate' (see $name --help)\$" "$t" --frobnicate
    expect 0 "^$name $version\$" "$t" --version
    "$t" --help > "$tmp/help" 2> "$tmp/help.err"
    check "$name --help: exit $?, usage on stdout, nothing on stderr" \
        sh -c '[ "$0" -eq 0 ] && grep -q "^usage: $1 " "$2" && [ ! -s "$3" ]' $? "$name" "$tmp/help" "$tmp/help.err"
done
for t in "$ds" "$bench"; do
    expect 0 "^kernels: " "$t" --version
done
# a missing value, and a bad number, as args.h words them
for t in "$ds" "$tok" "$ppl" "$bench"; do
    expect 1 "^$(basename "$t"): -m: missing value\$" "$t" -m
done
expect 1 "^deepseek-convert: -o: missing value\$" "$conv" "$fixture" -o
expect 1 "^deepseek-quantize: -t: missing value\$" "$quant" -t
for t in "$ds" "$ppl" "$bench" "$conv" "$quant"; do
    expect 1 "^$(basename "$t"): -t needs an integer in \[1, [0-9]*\], got 'abc'\$" "$t" -t abc
done
expect 1 "^deepseek: unexpected argument 'stray' (see deepseek --help)\$" "$ds" -m "$model" stray
expect 1 "^deepseek-perplexity: no model given (-m FILE; see deepseek-perplexity --help)\$" "$ppl" -f x
expect 1 "^deepseek-bench: no model given" "$bench"

# ---- llama.cpp's flags: greedy ids unchanged, or refused with one clear line
# expect_ids NEEDLE ARGS...: a greedy run of the reference prompt with ARGS gives the reference ids
expect_ids() {
    needle=$1
    shift
    expect 0 "$needle" "$ds" -m "$model" --ids "$prompt" -n 32 --temp 0 --print-ids --ignore-eos "$@"
    if grep -qx "$greedy" "$tmp/out"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: greedy ids differ with $*"; fi
}
expect_ids "no GPU offload in this build: -ngl ignored" -ngl 99 -fa --no-warmup
expect_ids "no GPU offload in this build: --n-gpu-layers ignored" --n-gpu-layers 0 -fa on -t 1
expect_ids "-fa ignored" -fa auto --gpu-layers 99
expect_ids "generation 32 tokens" -b 5
expect_ids "generation 32 tokens" -ctk f32 --cache-type-v f32
expect_ids "generation 32 tokens" --no-mmap
expect 1 "^deepseek: -b needs an integer" "$ds" -m "$model" --ids "0" -b 0
expect 1 "^deepseek: -ngl: missing value\$" "$ds" -m "$model" --ids "0" -ngl
# an F16 latent cache keeps this fixture's greedy tokens (tests/meson.build: forward-*-cache-*)
expect_ids "generation 32 tokens" -ctk f16 -ctv f16
expect 0 "cache (MLA latents or K/V, indexer keys): BF16, 480 bytes per token" "$ds" -m "$model" --ids "0" -n 1 -ctk bf16 -c 16 -v
expect 0 "cache (MLA latents or K/V, indexer keys): Q8_0, 306 bytes per token" "$ds" -m "$model" --ids "0" -n 1 -ctv q8_0 -c 16 -v
expect 0 "cache (MLA latents or K/V, indexer keys): F32, 960 bytes per token" "$ds" -m "$model" --ids "0" -n 1 -c 16 -v
expect 1 "^deepseek: -ctv q8_0: MLA caches one latent for keys and values, and it was already given as f16" "$ds" \
    -m "$model" --ids "0" -ctk f16 -ctv q8_0
expect 1 "^deepseek: -ctk q4_0: the latent cache is f32, f16, bf16 or q8_0 in this build" "$ds" -m "$model" --ids "0" \
    -ctk q4_0
expect 1 "^deepseek: --cache-type-k: unknown cache type 'f8' (f32, f16, bf16 or q8_0)" "$ds" -m "$model" --ids "0" \
    --cache-type-k f8
# --mlock may meet a low 'ulimit -l': then one clear line and exit 1, never a crash
"$ds" -m "$model" --ids "$prompt" -n 32 --temp 0 --print-ids --ignore-eos --mlock > "$tmp/out" 2>&1
rc=$?
if { [ $rc -eq 0 ] && grep -qx "$greedy" "$tmp/out"; } ||
    { [ $rc -eq 1 ] && [ "$(wc -l < "$tmp/out")" -eq 1 ] && grep -q "^deepseek: .*cannot lock .*ulimit -l" "$tmp/out"; }; then
    pass=$((pass + 1))
else
    fail=$((fail + 1)); echo "FAIL: --mlock -> exit $rc:"; sed 's/^/    /' "$tmp/out"
fi
head -c 30000 "$data/default-model/heldout.txt" > "$tmp/text.txt"
expect 0 "Final estimate" "$ppl" -m "$model" -f "$tmp/text.txt" -c 32 --chunks 3 -t 1
grep "^Final" "$tmp/out" > "$tmp/ppl.plain"
# -b 32 is the window: the same batches, so the same sums with or without OpenBLAS (which takes
# batches of 32 tokens or more through sgemm, and smaller ones through the dot kernels)
expect 0 "no GPU offload in this build: -ngl ignored" "$ppl" -m "$model" -f "$tmp/text.txt" -c 32 --chunks 3 -t 1 \
    -ngl 99 -fa -b 32 --no-mmap -ctk f32 --no-warmup
grep "^Final" "$tmp/out" > "$tmp/ppl.flags"
check "deepseek-perplexity: the same PPL with -b 32 --no-mmap and ignored flags" cmp -s "$tmp/ppl.plain" "$tmp/ppl.flags"
expect 1 "^deepseek-perplexity: -ctk q5_0: the latent cache is" "$ppl" -m "$model" -f "$tmp/text.txt" -ctk q5_0
expect 0 "no GPU offload in this build: -ngl ignored" "$bench" -m "$model" --pp 8 --tg 2 -t 1 --reps 1 -ngl 99 -fa 1 \
    -b 4 --no-warmup
expect 0 "| pp8 " "$bench" -m "$model" -p 8 -n 2 -t 1 -r 1 -fa 0 -ctk f32
expect 0 "| pp8 " "$bench" -m "$model" -p 8 -n 2 -t 1 -r 1 -ctk q8_0
expect 0 "^tg, 1 threads: [0-9.]* MiB of weights per token, [0-9.]* GB/s = [0-9]*% of the [0-9.]* GB/s this machine reads" \
    "$bench" -m "$model" -p 0 -n 4 -t 1 -r 1 --membw
expect 1 "^deepseek-bench: -ctv q4_1: the latent cache is" "$bench" -m "$model" -ctv q4_1
# the table: llama-bench's model columns (name, size, parameters, file type), each row closed by '|'
expect 0 "^| tiny-v3 | *[0-9.]* MiB | *[0-9.]* M | F32  | *1 | pp8  *| " "$bench" -m "$model" -p 8 -n 2 -t 1 -r 1
check "deepseek-bench: every table row ends in '|'" sh -c 'grep "^|" "$0" | grep -qv " |\$" && exit 1; grep -q "^| " "$0"' \
    "$tmp/out"
# --ctx (llama-bench's -d): the tests after N tokens of context; filled once per thread count, in
# ascending order, each depth's tests on a context rewound to it
expect 0 "| tg4 @ d32 " "$bench" -m "$model" -p 8 -n 4 -r 2 -t 1,2 --ctx 32,16
check "--ctx 32,16: pp and tg at depths 16 then 32 for each of 1 and 2 threads" \
    sh -c '[ "$(grep "^| " "$0" | sed -n "s/^|[^|]*|[^|]*|[^|]*|[^|]*| *\([0-9]*\) | \([^|]*[^ ]\) *|.*/\1 \2/p" | tr "\n" ,)" = \
            "1 pp8 @ d16,1 tg4 @ d16,1 pp8 @ d32,1 tg4 @ d32,2 pp8 @ d16,2 tg4 @ d16,2 pp8 @ d32,2 tg4 @ d32," ]' "$tmp/out"
check "--ctx: a note on stderr for each fill, 0 to 16 and 16 to 32, per thread count" \
    sh -c '[ "$(grep -c "filling the context from 0 to 16 tokens" "$0")" -eq 2 ] &&
           [ "$(grep -c "filling the context from 16 to 32 tokens" "$0")" -eq 2 ]' "$tmp/out"
expect 0 "^tg @ d16, 1 threads: [0-9.]* MiB of weights per token" "$bench" -m "$model" -p 0 -n 2 -r 1 -t 1 -d 0,16
expect 1 "^deepseek-bench: --ctx needs an integer in \[0, 1048576\], got 'x'\$" "$bench" -m "$model" --ctx 16,x
expect 1 "^deepseek-bench: -d: no value in ','\$" "$bench" -m "$model" -d ,
# -o json: one object per test (stdout alone is the JSON; notes go to stderr); -o csv: a header, then a row each
"$bench" -m "$model" -p 8 -n 4 -r 2 -t 1 --ctx 0,16 -o json > "$tmp/b.json" 2> "$tmp/b.err"
check "-o json: exit 0, an array of 4 objects" \
    sh -c '[ "$0" -eq 0 ] && [ "$(head -1 "$1")" = "[" ] && [ "$(tail -1 "$1")" = "]" ] &&
           [ "$(grep -c "^  {\"build\": " "$1")" -eq 4 ]' $? "$tmp/b.json"
if command -v python3 > /dev/null 2>&1; then
    check "-o json: valid JSON with the tests, depths and samples" python3 -c '
import json, sys
rows = json.load(open(sys.argv[1]))
assert [r["test"] for r in rows] == ["pp8", "tg4", "pp8 @ d16", "tg4 @ d16"], rows
assert [r["n_depth"] for r in rows] == [0, 0, 16, 16]
assert all(len(r["samples_ts"]) == 2 and r["median_ts"] > 0 and r["model_n_params"] > 0 for r in rows)
assert rows[0]["file_type"] == "F32" and rows[0]["model_arch"] == "deepseek2" and rows[0]["decode_bytes"] is None
assert rows[1]["decode_bytes"] > 0 and rows[1]["n_gen"] == 4 and rows[1]["n_prompt"] == 0
' "$tmp/b.json"
fi
"$bench" -m "$model" -p 8 -n 4 -r 1 -t 1,2 --ctx 16 -o csv > "$tmp/b.csv" 2> "$tmp/b.err"
check "-o csv: exit 0, a header and 4 rows of as many fields" \
    sh -c '[ "$0" -eq 0 ] && head -1 "$1" | grep -q "^build,kernels,model_filename,model_name,model_arch,file_type," &&
           [ "$(wc -l < "$1")" -eq 5 ] && [ "$(awk -F, "{ print NF }" "$1" | sort -u | wc -l)" -eq 1 ] &&
           [ "$(grep -c ",\"tg4 @ d16\"," "$1")" -eq 2 ]' $? "$tmp/b.csv"
expect 1 "^deepseek-bench: -o: unknown output format 'xml' (md, json or csv)\$" "$bench" -m "$model" -o xml

# ---- -r: generation stops where the text reaches the reverse prompt, which is printed; "sop"
# ends inside a token of this greedy continuation (" soper"), "not" is a token's end
"$ds" -m "$model" -p "Hello world" -n 32 --temp 0 --ignore-eos > "$tmp/full" 2>/dev/null
for r in sop not; do
    expect 0 "timings" "$ds" -m "$model" -p "Hello world" -n 32 --temp 0 --ignore-eos -r "$r" -r "never in it"
    "$ds" -m "$model" -p "Hello world" -n 32 --temp 0 --ignore-eos -r "$r" 2>/dev/null > "$tmp/rev"
    # what is printed: the full run's text up to the first "$r" (and the newline a run ends with)
    want=$(awk -v r="$r" '{ s = s $0 "\n" } END { i = index(s, r); if (i) print substr(s, 1, i + length(r) - 1) }' "$tmp/full")
    check "-r $r: the text up to and including '$r', then nothing (got '$(cat "$tmp/rev")')" \
        sh -c '[ -n "$0" ] && [ "$(cat "$1")" = "$0" ] && [ "$(wc -c < "$1")" -lt "$(wc -c < "$2")" ]' "$want" "$tmp/rev" \
        "$tmp/full"
done
expect 1 "^deepseek: -r: missing value\$" "$ds" -m "$model" -p "Hello" -r
expect 1 "^deepseek: -r: the reverse prompt is empty\$" "$ds" -m "$model" -p "Hello" -r ""
# in a chat -r ends the answer, not the chat: two turns still get their answers
printf 'Hello!\nHow are you?\n' > "$tmp/two"
expect 0 "generation" sh -c '"$0" -m "$1" -cnv -n 20 --temp 0 -r "o" < "$2"' "$ds" "$model" "$tmp/two"
"$ds" -m "$model" -cnv -n 20 --temp 0 -r o < "$tmp/two" > "$tmp/chat" 2>/dev/null
"$ds" -m "$model" -cnv -n 20 --temp 0 < "$tmp/two" > "$tmp/chat.full" 2>/dev/null
check "chat with -r o: two answers, each ending at its first 'o' (got '$(cat "$tmp/chat")')" \
    sh -c 'awk "/^[^o]*o\$/ { n++ } END { exit !(n == 2 && NR == 2) }" "$0" &&
           [ "$(wc -c < "$0")" -lt "$(wc -c < "$1")" ]' "$tmp/chat" "$tmp/chat.full"

# ---- no timings line after an error: the error is the last word
expect 1 "48 tokens but the context holds 10" "$ds" -m "$model" --ids "$prompt" -c 10
check "no timings after 'prompt too long'" sh -c '! grep -q timings "$0"' "$tmp/out"
expect 1 "cannot create" "$ds" -m "$model" --ids "$prompt" --dump-logits "$tmp/no/such/dir/l.f32"
check "no timings after a failed --dump-logits" sh -c '! grep -q timings "$0"' "$tmp/out"
expect 1 "tokens but the context holds 16" "$ds" -m "$model" -p "$long" -c 16
check "no timings after a text prompt too long" sh -c '! grep -q timings "$0"' "$tmp/out"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
