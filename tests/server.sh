#!/bin/sh
# tests/server.sh SERVER MODEL SRCDIR OUT: deepseek-server driven by the official openai npm client
# (tests/server/api.mjs) and its chat page in headless Chromium (tests/server/page.mjs, with
# puppeteer-core). The npm packages are installed once into OUT/npm (npm's registry is needed
# the first time); without node / npm, or when the install fails, the test is skipped (77), and
# the page test is skipped alone when Chromium is missing (scripts/test.sh installs it).
set -u
server=$1 model=$2 src=$3 out=$4 version=${5:-} reason_model=${6:-}
mkdir -p "$out"

# ---- the command line, without a client: the tools' common words, and refusals before serving
. "$(dirname "$0")/expect.sh"
name=deepseek-server
[ -n "$version" ] && expect 0 "^$name $version\$" "$server" --version
"$server" --help > "$tmp/help" 2> "$tmp/help.err"
check "--help: exit $?, usage on stdout, nothing on stderr" \
    sh -c '[ "$0" -eq 0 ] && grep -q "^usage: deepseek-server " "$1" && [ ! -s "$2" ]' $? "$tmp/help" "$tmp/help.err"
expect 1 "^$name: unknown option '--frobnicate' (see $name --help)\$" "$server" --frobnicate
expect 1 "^$name: no model given (-m FILE; see $name --help)\$" "$server" --port 0
expect 1 "^$name: --port needs an integer in \[0, 65535\], got '99999'\$" "$server" -m "$model" --port 99999
expect 1 "^$name: -np needs an integer in \[1, 256\], got '0'\$" "$server" -m "$model" -np 0
expect 1 "^$name: --host nothost: not an IPv4 or IPv6 address\$" "$server" -m "$model" --host nothost
expect 1 "^$name: --chat-template: unknown format 'bogus'" "$server" -m "$model" --chat-template bogus
expect 1 "^$name: $tmp/none.gguf: cannot open" "$server" -m "$tmp/none.gguf"
# listening_port LOG: the port a server started with --port 0 says it listens on (10 s at most;
# empty when it did not start)
listening_port() {
    for _ in $(seq 1 100); do
        p=$(sed -n 's/.*listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$1")
        [ -n "$p" ] && break
        sleep 0.1
    done
    echo "$p"
}

# a port that is taken: one line, exit 1 (the first server holds it)
"$server" -m "$model" --port 0 -t 1 > "$tmp/first.log" 2>&1 &
first=$!
port=$(listening_port "$tmp/first.log")
if [ -n "$port" ]; then
    expect 1 "^$name: cannot listen on 127.0.0.1 port $port: " "$server" -m "$model" --port "$port" -t 1
else
    fail=$((fail + 1))
    echo "FAIL: the first server did not start"
fi
kill "$first" 2>/dev/null
wait "$first"
check "SIGTERM: the server stops with status 0" [ $? -eq 0 ]
echo "# command line: $pass passed, $fail failed"
[ "$fail" -eq 0 ] || exit 1
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "SKIP: node and npm are needed"
    exit 77
fi
npmdir=$out/npm
if [ ! -d "$npmdir/node_modules/openai" ] || [ ! -d "$npmdir/node_modules/puppeteer-core" ]; then
    mkdir -p "$npmdir"
    if ! (cd "$npmdir" && { [ -f package.json ] || npm init -y > /dev/null; } &&
          npm install --ignore-scripts --no-audit --no-fund --loglevel=error openai@6 puppeteer-core@24 > npm.log 2>&1); then
        cat "$npmdir/npm.log"
        echo "SKIP: npm install openai puppeteer-core failed (no registry?)"
        exit 77
    fi
fi
export NODE_PATH="$npmdir/node_modules"
rm -rf "$out/api"
rc=0
node "$src/api.mjs" "$server" "$model" "$out/api" $reason_model || rc=1

chromium=${CHROMIUM:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
    echo "# page test skipped: no Chromium at $chromium"
    exit $rc
fi
log=$out/page-server.log
"$server" -m "$model" --port 0 -t 1 > "$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$tmp"' EXIT
port=$(listening_port "$log")
if [ -z "$port" ]; then
    cat "$log"
    echo "not ok - the server for the page test did not start"
    exit 1
fi
CHROMIUM=$chromium node "$src/page.mjs" "http://127.0.0.1:$port" "$out" || rc=1
kill $pid
wait $pid || { echo "not ok - the page test's server did not stop cleanly"; rc=1; }
trap - EXIT
rm -rf "$tmp"
exit $rc
