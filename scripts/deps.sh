# Sourced by the set-up scripts: install the Debian packages named, if any is missing.
need_pkgs() {
    missing=""
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    echo "installing Debian packages:$missing" >&2
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq >&2
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends $missing >&2
}

# Run a build step, showing its output only when it fails.
quiet() {
    "$@" > build.log 2>&1 || { cat build.log; rm -f build.log; exit 1; }
    rm -f build.log
}

BUILD_PKGS="gcc libc6-dev meson ninja-build pkg-config libcjson-dev libpcre2-dev"
