#!/bin/sh
# installed-pkgconfig: `meson install` into a temporary tree, then tests/consumer.c built against
# that tree with nothing but `pkg-config deepseek`, as a user would build it: once linked to
# libdeepseek.so.0, once to libdeepseek.a (pkg-config --static). Both must run and agree.
#   pkgconfig.sh MESON BUILD_DIR PKG_CONFIG CONSUMER_C MODEL VERSION SANITIZE CC [CC ARG...]
# SANITIZE is meson's b_sanitize ('none' or e.g. 'address,undefined'): a sanitized library
# needs the consumer built with the same runtime.
set -eu
readelf=${READELF:-readelf}
meson=$1 build=$2 pkgconfig=$3 src=$4 model=$5 version=$6 sanitize=$7
shift 7
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "installed-pkgconfig: $*" >&2; exit 1; }

"$meson" install -C "$build" --destdir "$tmp/root" --no-rebuild --quiet > "$tmp/install.log" 2>&1 ||
    { cat "$tmp/install.log" >&2; fail "meson install --destdir failed"; }
pc=$(find "$tmp/root" -name deepseek.pc -path '*/pkgconfig/*')
[ -n "$pc" ] || fail "meson install put no deepseek.pc under $tmp/root"
for f in deepseek.h libdeepseek.a libdeepseek.so libdeepseek.so.0; do
    [ -n "$(find "$tmp/root" -name "$f")" ] || fail "meson install did not install $f"
done

# The .pc as installed names the final prefix; this copy points its absolute paths into the
# temporary tree (PKG_CONFIG_SYSROOT_DIR would move pcre2's and openblas's paths there too).
mkdir "$tmp/pc"
sed "s|^\([A-Za-z_][A-Za-z0-9_]*\)=/|\1=$tmp/root/|" "$pc" > "$tmp/pc/deepseek.pc"
export PKG_CONFIG_PATH="$tmp/pc${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
unset PKG_CONFIG_SYSROOT_DIR
pcv=$("$pkgconfig" --modversion deepseek) || fail "pkg-config cannot read the installed deepseek.pc"
[ "$pcv" = "$version" ] || fail "deepseek.pc says version $pcv, the project is $version"
libdir=$("$pkgconfig" --variable=libdir deepseek)
cflags=$("$pkgconfig" --cflags deepseek)
libs=$("$pkgconfig" --libs deepseek)
static_libs=$("$pkgconfig" --static --libs deepseek)
echo "cflags: $cflags"
echo "libs: $libs"
echo "static libs: $static_libs"

san=
if [ "$sanitize" != none ]; then
    san="-fsanitize=$sanitize"
    echo "the library is built with $san: so is the consumer"
fi
warn="-std=c11 -Wall -Wextra -Wpedantic -Werror"

# shared: libdeepseek.so.0 from the temporary tree
# shellcheck disable=SC2086
"$@" $warn $san $cflags "$src" -o "$tmp/consumer-shared" $libs || fail "the shared link failed"
needed=$("$readelf" -d "$tmp/consumer-shared" | sed -n 's/.*(NEEDED).*\[\(libdeepseek[^]]*\)\].*/\1/p')
[ "$needed" = libdeepseek.so.0 ] || fail "consumer-shared needs '${needed:-no libdeepseek}', not libdeepseek.so.0"
resolved=$(LD_LIBRARY_PATH="$libdir" ldd "$tmp/consumer-shared" | sed -n 's/^[[:space:]]*libdeepseek\.so\.0 => \([^ ]*\).*/\1/p')
[ "$resolved" = "$libdir/libdeepseek.so.0" ] ||
    fail "consumer-shared loads libdeepseek.so.0 from '${resolved:-nowhere}', not $libdir"
shared_out=$(LD_LIBRARY_PATH="$libdir" "$tmp/consumer-shared" "$model" "The cat sat on the") ||
    fail "consumer-shared failed"
echo "shared: $shared_out"

# static: libdeepseek.a, the rest (libc, libm, pcre2, openblas) as the system has them
static_libs=$(echo " $static_libs " | sed 's/ -ldeepseek / -Wl,-Bstatic -ldeepseek -Wl,-Bdynamic /')
# shellcheck disable=SC2086
"$@" $warn $san $cflags "$src" -o "$tmp/consumer-static" $static_libs || fail "the static link failed"
if "$readelf" -d "$tmp/consumer-static" | grep -q 'NEEDED.*libdeepseek'; then
    fail "consumer-static still needs libdeepseek.so: $("$readelf" -d "$tmp/consumer-static" | grep NEEDED)"
fi
static_out=$(env -u LD_LIBRARY_PATH "$tmp/consumer-static" "$model" "The cat sat on the") ||
    fail "consumer-static failed"
echo "static: $static_out"

case $shared_out in
"version $version "*) ;;
*) fail "the consumer printed '$shared_out': expected ds_version() $version" ;;
esac
[ "$shared_out" = "$static_out" ] || fail "the shared and the static consumer disagree"
echo "installed-pkgconfig: shared and static consumers agree"
