# expect.sh - sourced by the shell tests (cli.sh, synth.sh): a scratch folder removed on exit,
# the pass / fail counts and the two checks they count with; the caller prints the totals.
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

check() { # what, then a command that succeeds when it holds
    what=$1
    shift
    if "$@"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $what"; fi
}
