#!/bin/sh
# Build the library, tools and tests, then run the test suite twice: a release build (with
# OpenBLAS for prompt processing), and a build with AddressSanitizer + UndefinedBehaviorSanitizer
# (leaks included) without OpenBLAS, so both matmul paths meet the reference logits. Installs missing
# Debian packages first: the compiler and build tools, cJSON, cmocka, OpenBLAS, the word list
# (wamerican) the default model's test reads, libmicrohttpd (deepseek-server), and for the server's
# tests Node.js with npm and Chromium (its chat page, headless).
#
# Then the aarch64 kernels: the library and the kernel tests cross-built with Debian's cross gcc
# and run under qemu-user, once per SIMD level (see cross_tests below). Needs the packages
# gcc-aarch64-linux-gnu and qemu-user, and fetches arm64 builds of libpcre2, cJSON and cmocka into
# build-aarch64-sysroot/ (scripts/deps.sh: arm64_sysroot). Where that cannot be had the script says
# so and fails; DS_NO_CROSS=1 skips that part on purpose.
set -eu
cd "$(dirname "$0")/.."
. scripts/deps.sh
# shellcheck disable=SC2086
need_pkgs $BUILD_PKGS libcmocka-dev libopenblas-dev wamerican libmicrohttpd-dev chromium
# the server's tests drive it with the openai npm client (tests/server.sh installs it with npm)
command -v node > /dev/null && command -v npm > /dev/null || need_pkgs nodejs npm

build() { # dir, extra meson options...
    dir=$1
    shift
    if [ -f "$dir/build.ninja" ]; then quiet meson setup --reconfigure "$dir" -Dtests=enabled "$@"
    else quiet meson setup "$dir" -Dtests=enabled "$@"; fi
    meson compile -C "$dir"
}

# run_tests DIR [RUN [MESON-TEST-OPTION...]]: meson test, counting what passed and failed into the
# totals; RUN names one of several runs in the same build directory
passed=0 failed=0
run_tests() {
    rc=0
    dir=$1
    log="$1/test-summary${2:+-$2}.txt"
    shift
    [ $# -gt 0 ] && shift
    meson test -C "$dir" --print-errorlogs "$@" > "$log" 2>&1 || rc=$?
    cat "$log"
    ok=$(sed -n 's/^Ok: *\([0-9]*\).*/\1/p' "$log")
    bad=$(sed -n 's/^Fail: *\([0-9]*\).*/\1/p' "$log")
    timeout=$(sed -n 's/^Timeout: *\([0-9]*\).*/\1/p' "$log")
    passed=$((passed + ${ok:-0}))
    failed=$((failed + ${bad:-0} + ${timeout:-0}))
    [ -n "$ok" ] || rc=1 # no summary: meson itself failed
    return $rc
}

# The cross toolchain, qemu-user and the arm64 libraries, and a machine file naming the latter.
cross_setup() {
    need_pkgs gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user || return 1
    arm64_sysroot build-aarch64-sysroot libpcre2-8-0 libpcre2-dev libcjson1 libcjson-dev \
        libcmocka0 libcmocka-dev || return 1
    root=$(cd build-aarch64-sysroot && pwd)
    cat > build-aarch64-sysroot/sysroot.ini <<EOF
# written by scripts/test.sh: the arm64 libraries it unpacked here
[constants]
sysroot = '$root'
[binaries]
exe_wrapper = ['qemu-aarch64', '-L', '/usr/aarch64-linux-gnu',
               '-E', 'LD_LIBRARY_PATH=' + sysroot + '/usr/lib/aarch64-linux-gnu']
[properties]
sys_root = sysroot
pkg_config_libdir = [sysroot + '/usr/lib/aarch64-linux-gnu/pkgconfig']
EOF
}

# The kernel tests at each level on qemu's default CPU (it has SDOT), DS_SIMD forcing it and
# DS_SIMD_EXPECT checking that it took; then on a Cortex-A72 (a Raspberry Pi 4, no SDOT), where the
# CPU detection must choose neon by itself. Last, once more with ASan + UBSan, which the x86 builds
# cannot give the NEON code (leak checking needs ptrace, which qemu-user lacks; the scalar IQ1_S
# quantizer needs more than the default 30 s there).
cross_tests() {
    xfiles="--cross-file scripts/cross-aarch64.ini --cross-file build-aarch64-sysroot/sysroot.ini"
    # shellcheck disable=SC2086
    build build-aarch64 $xfiles -Dopenblas=disabled -Dtest_suite=kernels
    rc=0
    for level in scalar neon dotprod; do
        DS_SIMD=$level DS_SIMD_EXPECT=$level run_tests build-aarch64 "$level" || rc=1
    done
    QEMU_CPU=cortex-a72 DS_SIMD_EXPECT=neon run_tests build-aarch64 cortex-a72 || rc=1
    # shellcheck disable=SC2086
    build build-aarch64-asan $xfiles -Dopenblas=disabled -Dtest_suite=kernels \
        -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized
    ASAN_OPTIONS=detect_leaks=0 run_tests build-aarch64-asan "" --timeout-multiplier 4 || rc=1
    return $rc
}

status=0
build build
run_tests build || status=1
build build-asan -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized -Dopenblas=disabled
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1
run_tests build-asan || status=1
before=$passed
cross="aarch64 kernel tests under qemu:"
if [ "${DS_NO_CROSS:-0}" = 1 ]; then
    cross="$cross skipped (DS_NO_CROSS=1)"
elif cross_setup; then
    cross_tests || status=1
    cross="$cross $((passed - before)) of the passes"
else
    echo "test.sh: could not install the aarch64 cross toolchain, qemu-user or the arm64 libraries;" \
         "the aarch64 kernel tests did NOT run (DS_NO_CROSS=1 skips them on purpose)" >&2
    cross="$cross NOT RUN (no cross toolchain)"
    status=1
fi
echo "tests: $passed passed, $failed failed; $cross"
exit $status
