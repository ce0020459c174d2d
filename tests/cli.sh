#!/bin/sh
# CLI behaviour: help, bad arguments and bad files end in one clear line and exit 1 (never a
# crash), and a good run prints the reference's greedy tokens.
# usage: cli.sh DEEPSEEK DEEPSEEK_CONVERT MODEL.gguf FIXTURE_DIR
set -u
ds=$1 conv=$2 model=$3 fixture=$4
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
expect 1 "tokenizer" "$ds" -m "$model" -p "hello"
expect 1 "only --temp 0" "$ds" -m "$model" --ids "0" --temp 0.7
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
