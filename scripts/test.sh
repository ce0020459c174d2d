#!/bin/sh
# Build the library, tools and tests, then run the test suite twice: a release build (with
# OpenBLAS for prompt processing), and a build with AddressSanitizer + UndefinedBehaviorSanitizer
# (leaks included) without OpenBLAS, so both matmul paths meet the reference logits. Installs missing
# Debian packages first: the compiler and build tools, cJSON, cmocka, OpenBLAS.
set -eu
cd "$(dirname "$0")/.."
. scripts/deps.sh
# shellcheck disable=SC2086
need_pkgs $BUILD_PKGS libcmocka-dev libopenblas-dev

build() { # dir, extra meson options...
    dir=$1
    shift
    if [ -f "$dir/build.ninja" ]; then quiet meson setup --reconfigure "$dir" -Dtests=enabled "$@"
    else quiet meson setup "$dir" -Dtests=enabled "$@"; fi
    meson compile -C "$dir"
}

build build
meson test -C build --print-errorlogs
build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized -Dopenblas=disabled
UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
    meson test -C build-asan --print-errorlogs
