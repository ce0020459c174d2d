#!/usr/bin/env python3
"""bench-server.py - deepseek-server's throughput with 1, 2, 4 ... slots, and the time to the
first token of a long prompt cold, from the memory cache and from the disk cache.

usage: scripts/bench-server.py SERVER MODEL [--slots 1,2,4] [-n 64] [-t 2] [--prompt-tokens 2048]
                               [--rounds 3]

For each slot count N it starts `SERVER -m MODEL -np N -t T`, sends N different completion
requests at once (temperature 0, -n tokens each, short prompts) --rounds times, and prints the
aggregate generated tokens per second (all tokens / wall time of the round; the median round)
and the median of the per-request generation speeds the server reports (timings). Then, with
one slot and --cache-dir in a temporary folder, a prompt of about --prompt-tokens tokens:
streamed, the time to its first chunk cold, again (the slot's cache), and after a restart (the
disk cache). The model needs a tokenizer (deepseek-synth --tokenizer gives a random model one).
Python 3's standard library only. Timings on a shared machine are noisy: run it on a quiet one."""
import argparse, json, os, re, shutil, statistics, subprocess, sys, tempfile, threading, time, urllib.request

def start(server, model, args):
    p = subprocess.Popen([server, '-m', model, '--port', '0'] + args, stderr=subprocess.PIPE, text=True)
    for line in p.stderr:
        m = re.search(r'listening on http://127\.0\.0\.1:(\d+)', line)
        if m:
            threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
            return p, 'http://127.0.0.1:%s' % m.group(1)
    sys.exit('the server did not start: ' + ' '.join([server, model] + args))

def stop(p):
    p.terminate()
    p.wait(30)

def post(base, path, body):
    req = urllib.request.Request(base + path, json.dumps(body).encode(), {'Content-Type': 'application/json'})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)

def first_chunk_ms(base, prompt, n):
    body = {'prompt': prompt, 'max_tokens': n, 'temperature': 0, 'stream': True}
    req = urllib.request.Request(base + '/v1/completions', json.dumps(body).encode(), {'Content-Type': 'application/json'})
    t0 = time.perf_counter()
    with urllib.request.urlopen(req, timeout=600) as r:
        first = None
        for line in r:
            if line.startswith(b'data: ') and first is None:
                first = (time.perf_counter() - t0) * 1e3
    return first

WORDS = ('the of and to a in that is was he for it with as his on be at by had not are but from or have an they which '
         'one you were all we her she there would their will when who him been has more if no out so said what up its '
         'about into than them can only other new some could time these two may then do first any my now such like our '
         'over man me even most made after also did many before must through back years where much your way well down '
         'should because each just those people how too little state good very make world still own see men work long').split()

def text(seed, words):
    return ' '.join(WORDS[(seed * 7919 + i * 104729 + (i * i) % 31) % len(WORDS)] for i in range(words))

def throughput(o, slots):
    p, base = start(o.server, o.model, ['-np', str(slots), '-t', str(o.threads), '-c', '1024'])
    try:
        post(base, '/v1/completions', {'prompt': 'warm up', 'max_tokens': 4, 'temperature': 0})
        agg, per = [], []
        for r in range(o.rounds):
            out = [None] * slots
            def one(i):
                out[i] = post(base, '/v1/completions', {'prompt': text(r * 100 + i, 24), 'max_tokens': o.n,
                                                         'temperature': 0, 'ignore_eos': True})
            th = [threading.Thread(target=one, args=(i,)) for i in range(slots)]
            t0 = time.perf_counter()
            for t in th: t.start()
            for t in th: t.join()
            wall = time.perf_counter() - t0
            agg.append(sum(x['usage']['completion_tokens'] for x in out) / wall)
            per += [x['timings']['predicted_per_second'] for x in out]
        m = urllib.request.urlopen(base + '/metrics').read().decode()
        b = float(re.search(r'^deepseek_decode_batches_total (\S+)', m, re.M).group(1))
        rows = float(re.search(r'^deepseek_decode_batch_tokens_total (\S+)', m, re.M).group(1))
        return statistics.median(agg), statistics.median(per), rows / b if b else 1.0
    finally:
        stop(p)

def ttft(o):
    d = tempfile.mkdtemp(prefix='bench-server-')
    prompt = text(7, int(o.prompt_tokens * 0.95))
    args = ['-np', '1', '-t', str(o.threads), '-c', str(max(4096, o.prompt_tokens + 256)), '--cache-dir', d]
    try:
        p, base = start(o.server, o.model, args)
        n_prompt = post(base, '/v1/completions', {'prompt': 'x', 'max_tokens': 1})['usage']['prompt_tokens']
        cold = first_chunk_ms(base, prompt, 8)
        warm = first_chunk_ms(base, prompt, 8)
        n_prompt = post(base, '/v1/completions', {'prompt': prompt, 'max_tokens': 1})['usage']['prompt_tokens']
        stop(p)
        p, base = start(o.server, o.model, args)
        disk = first_chunk_ms(base, prompt, 8)
        stop(p)
        return n_prompt, cold, warm, disk
    finally:
        shutil.rmtree(d, ignore_errors=True)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('server'); ap.add_argument('model')
    ap.add_argument('--slots', default='1,2,4'); ap.add_argument('-n', type=int, default=64)
    ap.add_argument('-t', '--threads', type=int, default=2); ap.add_argument('--prompt-tokens', type=int, default=2048)
    ap.add_argument('--rounds', type=int, default=3)
    o = ap.parse_args()
    print('model %s (%.0f MiB), %d threads, %d tokens per request, median of %d rounds' %
          (os.path.basename(o.model), os.path.getsize(o.model) / 2**20, o.threads, o.n, o.rounds))
    print('| slots | aggregate t/s | per request t/s | slots per decode pass |\n|---|---|---|---|')
    for n in [int(x) for x in o.slots.split(',')]:
        a, r, b = throughput(o, n)
        print('| %d | %.2f | %.2f | %.2f |' % (n, a, r, b))
        sys.stdout.flush()
    n, cold, warm, disk = ttft(o)
    print('\nfirst token of a %d-token prompt: cold %.0f ms, from the slot\'s cache %.0f ms, '
          'after a restart from --cache-dir %.0f ms' % (n, cold, warm, disk))

if __name__ == '__main__':
    main()
