#!/bin/sh
# CLI behaviour: help, bad arguments and bad files end in one clear line and exit 1 (never a
# crash), a good run prints the reference's greedy tokens, text and chat work end to end, and
# deepseek-tokenize survives 10 MB of random bytes.
# usage: cli.sh DEEPSEEK DEEPSEEK_CONVERT MODEL.gguf FIXTURE_DIR DEEPSEEK_TOKENIZE VOCAB.gguf DATA_DIR
set -u
ds=$1 conv=$2 model=$3 fixture=$4 tok=$5 vocab=$6 data=$7
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

# expect STATUS NEEDLE CMD...: exit status STATUS and NEEDLE in stderr+stdout
expect() {
    want=$1 needle=$2
    shift 2
    "$@" >"$tmp/out" 2>&1
    got=$?
    if [ "$got" -eq "$want" ] && grep -q -- "$needle" "$tmp/out"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: $* -> exit $got (want $want), output:"
        sed 's/^/    /' "$tmp/out"
        echo "    (expected to contain: $needle)"
    fi
}

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
cp "$data/chat-templates/deepseek-r1.jinja" "$tmp/r1tok/chat_template.jinja"
"$conv" "$fixture" -o "$tmp/r1.gguf" --tokenizer "$tmp/r1tok" >/dev/null 2>&1
expect 0 "deepseek-r1 template" sh -c 'echo Hi | "$0" -m "$1" -cnv -n 6 --temp 0 --reasoning hide --verbose-prompt' "$ds" "$tmp/r1.gguf"
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

# the converter
expect 1 "HF_DIR" "$conv"
expect 1 "config.json" "$conv" "$tmp" -o "$tmp/x.gguf"
mkdir -p "$tmp/bad" && echo "{ not json" > "$tmp/bad/config.json"
expect 1 "config.json" "$conv" "$tmp/bad" -o "$tmp/x.gguf"
printf '{"model_type": "llama"}' > "$tmp/bad/config.json"
expect 1 "llama" "$conv" "$tmp/bad" -o "$tmp/x.gguf"
expect 1 "outtype" "$conv" "$fixture" -o "$tmp/x.gguf" --outtype q9_9

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
