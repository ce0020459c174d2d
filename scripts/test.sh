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

# run_tests DIR: meson test, counting what passed and failed into the totals
passed=0 failed=0
run_tests() {
    rc=0
    meson test -C "$1" --print-errorlogs > "$1/test-summary.txt" 2>&1 || rc=$?
    cat "$1/test-summary.txt"
    ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$1/test-summary.txt")
    bad=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$1/test-summary.txt")
    timeout=$(sed -n 's/^Timeout: *\([0-9]*\).*/\1/p' "$1/test-summary.txt")
    passed=$((passed + ${ok:-0}))
    failed=$((failed + ${bad:-0} + ${timeout:-0}))
    [ -n "$ok" ] || rc=1 # no summary: meson itself failed
    return $rc
}

status=0
build build
run_tests build || status=1
build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized -Dopenblas=disabled
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1
run_tests build-asan || status=1
echo "tests: $passed passed, $failed failed"
exit $status
