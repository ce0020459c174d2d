#!/bin/sh
# Build deepseek and run the default model on a prompt. Installs missing Debian packages first:
# the compiler and build tools, cJSON and PCRE2.
#
# The default model, models/brown-v3.gguf, is a 15.5 M-parameter DeepSeek-V3 (MLA, DeepSeekMoE
# with sigmoid group-limited routing, an MTP layer) trained on the Brown corpus by tools/train;
# see models/README.md. Arguments are passed on to deepseek (e.g. -p "It was" -n 200 --temp 0).
set -eu
cd "$(dirname "$0")/.."
. scripts/deps.sh
# shellcheck disable=SC2086
need_pkgs $BUILD_PKGS
if [ -f build/build.ninja ]; then quiet meson setup --reconfigure build; else quiet meson setup build; fi
quiet meson compile -C build deepseek:executable
build/deepseek -m models/brown-v3.gguf -p "The" -n 120 "$@"
