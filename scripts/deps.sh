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

# arm64_sysroot DIR PACKAGE...: Debian's (or Ubuntu's) arm64 builds of the packages named, unpacked
# into DIR, for the aarch64 cross build. apt fetches them with a configuration of its own under
# DIR, so the machine's apt setup stays as it was (no foreign architecture added: that would make
# every later apt-get update fetch arm64 lists, and on Ubuntu needs ports.ubuntu.com in the
# sources). Done once; DIR/.packages says what DIR holds.
arm64_sysroot() (
    dir=$1
    shift
    pkgs="$*"
    [ "$(cat "$dir/.packages" 2>/dev/null)" = "$pkgs" ] && exit 0
    # shellcheck disable=SC1091
    . /etc/os-release
    case "$ID" in
    debian) src="http://deb.debian.org/debian ${VERSION_CODENAME:-sid} main"
            keyring=/usr/share/keyrings/debian-archive-keyring.gpg ;;
    ubuntu) src="http://ports.ubuntu.com/ubuntu-ports $VERSION_CODENAME main universe"
            keyring=/usr/share/keyrings/ubuntu-archive-keyring.gpg ;;
    *) echo "arm64 libraries: no arm64 archive known for '$ID' (Debian's and Ubuntu's are)" >&2; exit 1 ;;
    esac
    rm -rf "$dir"
    mkdir -p "$dir/apt/lists/partial" "$dir/apt/archives/partial" "$dir/debs"
    dir=$(cd "$dir" && pwd)
    echo "deb [arch=arm64 signed-by=$keyring] $src" > "$dir/apt/sources.list"
    set -- -qq -o Dir::Etc::SourceList="$dir/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null \
        -o Dir::State::Lists="$dir/apt/lists" -o Dir::Cache="$dir/apt" -o Dir::State::status=/dev/null \
        -o APT::Architecture=arm64 -o Debug::NoLocking=1 -o APT::Sandbox::User=root
    echo "fetching arm64 packages for the cross build: $pkgs" >&2
    apt-get "$@" update >&2 || exit 1
    # shellcheck disable=SC2086
    (cd "$dir/debs" && apt-get "$@" download $pkgs) >&2 || exit 1
    for deb in "$dir"/debs/*.deb; do dpkg-deb -x "$deb" "$dir" || exit 1; done
    echo "$pkgs" > "$dir/.packages"
)
