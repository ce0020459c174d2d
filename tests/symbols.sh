#!/bin/sh
# exported-symbols: libdeepseek.so exports exactly what deepseek.h declares with DS_API, and its
# SONAME is libdeepseek.so.0.
#   symbols.sh LIBRARY HEADER NM READELF
set -eu
lib=$1 header=$2 nm=$3 readelf=$4
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The declared names: each declaration starting with DS_API, joined up to its first '(' (a
# function) or ';' (an object), gives the identifier before that.
awk '
    /^[ \t]*DS_API[ \t]/ { decl = ""; open = 1 }
    open { decl = decl " " $0
           if (decl ~ /[(;]/) {
               sub(/[(;=[].*/, "", decl); sub(/[ \t]+$/, "", decl)
               n = split(decl, w, /[^A-Za-z0-9_]+/); print w[n]; open = 0 } }
' "$header" | sort -u > "$tmp/declared"
if [ ! -s "$tmp/declared" ]; then
    echo "exported-symbols: no DS_API declarations found in $header" >&2
    exit 1
fi

# The defined dynamic symbols (symbol versions, if any, cut off)
"$nm" -D --defined-only "$lib" | awk 'NF >= 3 { sub(/@.*/, "", $3); print $3 }' | sort -u > "$tmp/exported"

status=0
leaked=$(comm -13 "$tmp/declared" "$tmp/exported")
if [ -n "$leaked" ]; then
    echo "exported-symbols: $lib exports $(echo "$leaked" | wc -l) symbol(s) that $header does not declare with DS_API:" >&2
    echo "$leaked" | sed 's/^/    /' >&2
    status=1
fi
missing=$(comm -23 "$tmp/declared" "$tmp/exported")
if [ -n "$missing" ]; then
    echo "exported-symbols: $header declares $(echo "$missing" | wc -l) DS_API name(s) that $lib does not export:" >&2
    echo "$missing" | sed 's/^/    /' >&2
    status=1
fi

soname=$("$readelf" -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
if [ "$soname" != libdeepseek.so.0 ]; then
    echo "exported-symbols: $lib has SONAME '${soname:-none}', not libdeepseek.so.0" >&2
    status=1
fi

[ $status = 0 ] && echo "exported-symbols: $(wc -l < "$tmp/exported") symbols, exactly deepseek.h's DS_API declarations; SONAME $soname"
exit $status
