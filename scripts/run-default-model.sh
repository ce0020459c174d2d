#!/bin/sh
# Build deepseek and run the default model. Installs missing Debian packages first: the
# compiler and build tools and cJSON.
#
# Until a trained model ships in models/, the default model is the tiny random-weight
# DeepSeek-V3 checkpoint of the test suite (tests/data/tiny-v3), converted here with our own
# deepseek-convert. Its weights are random, so its output is meaningless ids, not text: what
# this shows is the whole path (HF checkpoint -> GGUF -> load -> prefill -> greedy decoding).
set -eu
cd "$(dirname "$0")/.."
. scripts/deps.sh
# shellcheck disable=SC2086
need_pkgs $BUILD_PKGS
if [ -f build/build.ninja ]; then quiet meson setup --reconfigure build; else quiet meson setup build; fi
quiet meson compile -C build deepseek:executable deepseek-convert
model=build/tiny-v3.gguf
[ -f "$model" ] || build/deepseek-convert tests/data/tiny-v3 -o "$model" --tokenizer tests/data/tokenizer-tiny
echo "prompt ids: 0 285 365 734 229 484 862 777"
echo "generated ids (greedy):"
build/deepseek -m "$model" --ids "0 285 365 734 229 484 862 777" -n 24 --temp 0 --print-ids --ignore-eos "$@"
