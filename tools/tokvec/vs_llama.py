#!/usr/bin/env python3
"""vs_llama.py - our token ids against llama.cpp's on a few MB of mixed text per tokenizer family.

usage: tools/tokvec/vs_llama.py [--build DIR] [--peer PEER_LLAMA] [--data DIR] [--mb 3]
                                [--show 3] [--hf NPM_DIR] [--save DIR] [FAMILY ...]

  --build DIR   the meson build folder: DIR/deepseek-tokenize and the tests' vocabulary GGUFs
                DIR/tests/tokenizer-*.gguf (deepseek-convert --vocab-only of DATA/tokenizer-*)
  --peer FILE   ../shared/peer's peer_llama (llama.cpp), run as `peer_llama tokenize GGUF
                --records F`
  --data DIR    the tokenizer fixtures (default: tests/data next to this script)
  --mb N        megabytes of text per family (default 3)
  --show N      differing records printed per family, each cut down to a short text that
                still differs (default 3)
  --hf NPM_DIR  also encode every record with Hugging Face's semantics: @huggingface/tokenizers
                0.2.0 from NPM_DIR (as tools/tokvec/README.md installs it), and, where it and
                ours differ, tools/tokvec/ref.mjs; says who is right on each difference
  --save DIR    keep each family's records (DIR/FAMILY.rec, peer_llama's --records format)
  FAMILY        tokenizer-deepseek-v3, tokenizer-tiny, tokenizer-qwen2, tokenizer-llama3,
                tokenizer-deepseek-llm, tokenizer-deepseek-coder (default: all six)

The text is made here, seeded by the family's name, from the repository's committed files (git
HEAD: the same text for the same commit) and /usr/share/dict/words (Debian's wamerican), in
sections: English sentences with contractions and numbers, source code, Markdown, the encode
rows of every tokenizer fixture, the family's own token texts (added tokens included), generated
Unicode (CJK, kana, Hangul, other scripts, digits of several scripts, emoji, punctuation, the
families' special tokens), whitespace runs (spaces, tabs, CR/LF, U+3000, NBSP, U+2009, U+0085,
U+FEFF) around words, and decomposed (NFD) text. Each section is cut into records of 300-4000
characters. Each record is tokenized by both programs, BOS as the GGUF says, added / special
token texts matched (llama.cpp's parse_special). Printed per family and section: records, bytes,
records equal; then the first differing records, each cut down to a short text that still
differs, with both tokenizations (ids and pieces). For the qwen2 family it also counts the
differing records that llama.cpp gets right once the text is put in NFC first (llama.cpp has no
normalizer). Exit status 0 whether or not the ids differ (it reports, it does not judge)."""
import argparse, concurrent.futures, json, os, random, subprocess, sys, tempfile, unicodedata

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
FAMILIES = ['tokenizer-deepseek-v3', 'tokenizer-tiny', 'tokenizer-qwen2', 'tokenizer-llama3',
            'tokenizer-deepseek-llm', 'tokenizer-deepseek-coder']

# ---- the text ----------------------------------------------------------------------------------

def git_files(exts):
    """The committed text of the repository's files with these endings, sorted by path."""
    names = subprocess.run(['git', '-C', REPO, 'ls-files', '-z'], capture_output=True, check=True).stdout
    names = sorted(n for n in names.decode().split('\0') if n.endswith(exts) and not n.startswith('tests/data/'))
    p = subprocess.run(['git', '-C', REPO, 'cat-file', '--batch'], input=''.join('HEAD:%s\n' % n for n in names).encode(),
                       capture_output=True, check=True).stdout
    out, i = [], 0
    while i < len(p):
        nl = p.index(b'\n', i)
        head = p[i:nl].split()
        if head[-1] == b'missing': i = nl + 1; continue
        k = int(head[2])
        try: out.append(p[nl + 1:nl + 1 + k].decode('utf-8'))
        except UnicodeDecodeError: pass
        i = nl + 2 + k
    return out

def fixture_texts(data):
    out = []
    for d in sorted(os.listdir(data)):
        f = os.path.join(data, d, 'encode.jsonl')
        if d.startswith('tokenizer-') and os.path.exists(f):
            out += [json.loads(l)['text'] for l in open(f, encoding='utf-8')]
    return [t for t in out if t]

def byte_decoder():
    bs = list(range(0x21, 0x7f)) + list(range(0xa1, 0xad)) + list(range(0xae, 0x100))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs: bs.append(b); cs.append(256 + n); n += 1
    return {chr(c): b for b, c in zip(bs, cs)}

def vocab(tok_json):
    """id -> the bytes of its token (added tokens: their content), and the added tokens' texts."""
    j = json.load(open(tok_json, encoding='utf-8'))
    dec, pieces = byte_decoder(), {}
    for w, i in j['model']['vocab'].items():
        try: pieces[i] = bytes(dec[c] for c in w)
        except KeyError: pieces[i] = w.encode('utf-8')
    added = [a['content'] for a in j.get('added_tokens', [])]
    for a in j.get('added_tokens', []): pieces[a['id']] = a['content'].encode('utf-8')
    return pieces, added

SPECIALS = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|begin_of_text|>", "<|eot_id|>", "<|EOT|>",
            "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>", "<|User|>",
            "<think>", "</think>", "<｜fim▁hole｜>", "<｜tool▁sep｜>", "<|start_header_id|>", "<|end_header_id|>"]
WS = [" ", "  ", "   ", "    ", "\t", "\t\t", "\n", "\n\n", "\r\n", "\r", " \n", "\n ", "\u3000", "\u3000\u3000",
      "\u00a0", " \u00a0 ", "\u2009", "\u0085", "\ufeff", "\u200b", "\u2028", "\f", "\v"]

def sections(rng, size, texts, words, fixture, added, tokens):
    """name -> text, about size characters in all."""
    cp = lambda lo, hi: chr(rng.randint(lo, hi))
    out = {}
    s, n = [], 0                                   # English sentences
    while n < 0.20 * size:
        sent = []
        for _ in range(rng.randint(3, 17)):
            w = rng.choice(words)
            if rng.random() < 0.08: w += rng.choice(["'s", "'ll", "'VE", "n't", "'d", "'re", "'M", "\u2019s"])
            if rng.random() < 0.06: w = str(rng.randint(0, 10 ** rng.randint(1, 9)))
            sent.append(w)
        t = ' '.join(sent) + rng.choice([". ", "? ", "! ", ",\n", ".\n\n", "; ", ".  ", ":\n\t"])
        s.append(t); n += len(t)
    out['english'] = ''.join(s)
    code = [t for t in texts if t[1] == 'code']   # source code, from a seeded start
    k = rng.randrange(len(code))
    s, n = [], 0
    while n < 0.25 * size:
        s.append(code[k][0]); n += len(code[k][0]); k = (k + 1) % len(code)
    out['code'] = ''.join(s)
    docs = [t for t in texts if t[1] == 'docs']
    k = rng.randrange(len(docs))
    s, n = [], 0
    while n < 0.12 * size:
        s.append(docs[k][0]); n += len(docs[k][0]); k = (k + 1) % len(docs)
    out['docs'] = ''.join(s)
    s, n = [], 0                                   # the fixtures' encode rows
    while n < 0.10 * size:
        t = rng.choice(fixture) + rng.choice(["", " ", "\n", "\n\n", ". ", "\t"])
        s.append(t); n += len(t)
    out['fixtures'] = ''.join(s)
    s, n = [], 0                                   # the family's own tokens
    while n < 0.10 * size:
        t = rng.choice(added) if added and rng.random() < 0.05 else rng.choice(tokens)
        t += rng.choice(["", "", "", " ", "\n"])
        s.append(t); n += len(t)
    out['vocab'] = ''.join(s)
    gen = [
        lambda: ''.join(cp(0x4e00, 0x9fa5) for _ in range(rng.randint(1, 12))) + rng.choice(["，", "。", "、", "！", "？", " ", "\n", ""]),
        lambda: ''.join(rng.choice([cp(0x3041, 0x3096), cp(0x30a1, 0x30fa), "ー"]) for _ in range(rng.randint(1, 8))),
        lambda: ''.join(cp(0xac00, 0xd7a3) for _ in range(rng.randint(1, 6))) + " ",
        lambda: rng.choice(["Привет мир", "Ελληνικά κείμενα", "مرحبا بالعالم", "नमस्ते दुनिया", "สวัสดีชาวโลก", "ქართული",
                            "Tiếng Việt có dấu", "Größe über Fuß", "søren ærø", "naïve café résumé", "İstanbul ılık",
                            "שלום עולם", "Ærøskøbing", "ﬁnance ﬀ", "Ａｂｃ１２３"]) + rng.choice([" ", "", "\n", ", "]),
        lambda: rng.choice(["0", "12", "345", "6789", "1234567", "٣٤٥", "१२३", "١٢٣٤", "½", "²³", "①②", "Ⅻ", "１２３",
                            "3.14159", "1,000,000", "0x1F", "2024-01-31", "12345678901234567890", "৫৬", "๑๒๓"])
                + rng.choice([" ", "", "x", "%", "\n", "."]),
        lambda: rng.choice(["👍", "👍🏽", "👨‍👩‍👧‍👦", "🇺🇸", "🇯🇵", "❤️", "🦙", "😀😃", "✅", "🔥🔥", "🤖", "∑∫√", "♥"])
                + rng.choice([" ", "", "\n"]),
        lambda: rng.choice(WS),
        lambda: rng.choice(["(", ")", "[", "]", "{", "}", "<", ">", "...", "--", "—", "–", "«", "»", "“", "”", "‘",
                            "’", "¿", "¡", "§", "€", "$", "#", "@", "&&", "||", "=>", "::", "！", "（", "）", "：", "。"]),
        lambda: rng.choice(["it's", "IT'S", "we'll", "they'RE", "don’t", "'s", "o'clock", "I'M", "you'VE", "it\u017fs"]) + " ",
        lambda: rng.choice(SPECIALS + (added[:50] if added else [])),
        lambda: ''.join(rng.choice([cp(0x61, 0x7a), cp(0x41, 0x5a), cp(0xc0, 0x17f), cp(0x391, 0x3c9), cp(0x410, 0x44f)])
                        for _ in range(rng.randint(1, 5))),
    ]
    s, n = [], 0
    while n < 0.13 * size:
        t = rng.choice(gen)(); s.append(t); n += len(t)
    out['unicode'] = ''.join(s)
    s, n = [], 0                                   # whitespace runs around words, CJK, punctuation
    while n < 0.05 * size:
        t = ''.join(rng.choice(WS) for _ in range(rng.randint(1, 4))) + rng.choice(
            [rng.choice(words), "你好", "\u3001", "x", "!", "(", "12", "", "", "\u00e9"])
        s.append(t); n += len(t)
    out['whitespace'] = ''.join(s)
    t = out['docs'][:int(0.03 * size)] + out['unicode'][:int(0.02 * size)]   # decomposed text
    out['nfd'] = unicodedata.normalize('NFD', t + " Tiếng Việt có dấu. Größe über Fuß. naïve café résumé. 한국어. Ἀθῆναι.")
    return out

def records(family, mb, texts, words, fixture, added, tokens):
    rng = random.Random(family)
    out = []
    for name, s in sections(rng, int(mb * 1e6 * 0.93), texts, words, fixture, added, tokens).items():
        i = 0
        while i < len(s):
            n = rng.randint(300, 4000)
            t = s[i:i + n]
            if t.strip(): out.append((name, t))
            i += n
    return out

# ---- the two tokenizers ------------------------------------------------------------------------

def ours(build, gguf, text, bos=True):
    with tempfile.NamedTemporaryFile(suffix='.txt') as f:
        f.write(text.encode('utf-8')); f.flush()
        r = subprocess.run([os.path.join(build, 'deepseek-tokenize'), '-m', gguf, '-f', f.name] + ([] if bos else ['--no-bos']),
                           capture_output=True)
    if r.returncode: sys.exit('deepseek-tokenize failed: ' + r.stderr.decode(errors='replace'))
    return [int(x) for x in r.stdout.split()]

def ours_all(build, gguf, texts):
    with concurrent.futures.ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as ex:
        return list(ex.map(lambda t: ours(build, gguf, t), texts))

def write_records(path, texts):
    with open(path, 'wb') as f:
        for t in texts:
            b = t.encode('utf-8'); f.write(b'%d\n' % len(b) + b + b'\n')

def theirs(peer, gguf, texts):
    with tempfile.NamedTemporaryFile(suffix='.rec') as f:
        write_records(f.name, texts)
        r = subprocess.run([peer, 'tokenize', gguf, '--records', f.name], capture_output=True)
    if r.returncode: sys.exit('peer_llama failed: ' + r.stderr.decode(errors='replace'))
    lines = r.stdout.decode().split('\n')[:len(texts)]
    return [[int(x) for x in l.split(',')] if l else [] for l in lines]

HF_JS = r"""
import fs from "fs"; import path from "path"; import { createRequire } from "module"; import { pathToFileURL } from "url";
const [npm, dir, recs, refIdx, tokvec] = process.argv.slice(2);
const { Ref } = await import(pathToFileURL(path.join(tokvec, "ref.mjs")).href);
const HF = createRequire(path.join(path.resolve(npm), "package.json"))("@huggingface/tokenizers");
const tj = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8"));
const tc = JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8"));
const port = structuredClone(tj);  // the port's Digits is ASCII-only; Rust's is \p{N} (tools/tokvec/README.md)
for (const [i, s] of (port.pre_tokenizer.pretokenizers || []).entries())
  if (s.type === "Digits") port.pre_tokenizer.pretokenizers[i] = { type: "Split", pattern: { Regex: s.individual_digits ? "\\p{N}" : "\\p{N}+" }, behavior: "Isolated", invert: false };
const b = fs.readFileSync(recs), texts = [];
for (let p = 0; p < b.length; ) { const nl = b.indexOf(10, p), k = +b.subarray(p, nl).toString(); texts.push(b.subarray(nl + 1, nl + 1 + k).toString("utf8")); p = nl + 2 + k; }
const want = refIdx === "-" ? null : new Set(refIdx.split(",").filter(Boolean).map(Number));
const hf = new HF.Tokenizer(port, tc), ref = new Ref(tj);
for (const [i, t] of texts.entries()) {
  const row = want ? { ref: want.has(i) ? ref.encode(t) : null } : { hf: hf.encode(t, { add_special_tokens: false }).ids };
  process.stdout.write(JSON.stringify(row) + "\n");
}
"""

def hf(npm, fixture_dir, texts, ref_idx=None):
    """@huggingface/tokenizers' ids of each text (ref_idx None), or ref.mjs's of the texts listed."""
    with tempfile.TemporaryDirectory() as d:
        js, rec = os.path.join(d, 'hf.mjs'), os.path.join(d, 'r.rec')
        open(js, 'w').write(HF_JS)
        write_records(rec, texts)
        arg = '-' if ref_idx is None else ','.join(map(str, ref_idx)) + ','
        r = subprocess.run(['node', js, npm, fixture_dir, rec, arg, os.path.join(REPO, 'tools', 'tokvec')],
                           capture_output=True)
    if r.returncode: sys.exit('node failed: ' + r.stderr.decode(errors='replace'))
    rows = [json.loads(l) for l in r.stdout.decode().splitlines()]
    return [x['hf' if ref_idx is None else 'ref'] for x in rows]

# ---- reporting ---------------------------------------------------------------------------------

def cut_down(build, peer, gguf, text, bos):
    """A short stretch of text on which the two still differ: grown around the first difference,
    then trimmed from both ends."""
    differ = lambda t: ours(build, gguf, t) != theirs(peer, gguf, [t])[0]
    a, b = ours(build, gguf, text), theirs(peer, gguf, [text])[0]
    k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    pieces = PIECES[gguf]
    off = len(b''.join(pieces.get(i, b'') for i in a[bos:k]).decode('utf-8', 'replace'))
    w = 8
    while True:
        lo, hi = max(0, off - w), min(len(text), off + w)
        if differ(text[lo:hi]) or (lo == 0 and hi == len(text)): break
        w *= 2
    t = text[lo:hi]
    for side in (0, 1):                            # trim: drop the longest prefix (suffix) that keeps it differing
        step = len(t) // 2
        while step:
            c = t[step:] if side == 0 else t[:-step]
            if c and differ(c): t = c
            else: step //= 2
    return t

PIECES = {}

def show_ids(ids, pieces):
    return ' '.join('%d:%r' % (i, pieces.get(i, b'?').decode('utf-8', 'replace')) for i in ids)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', default=os.path.join(REPO, 'build'))
    ap.add_argument('--peer', default='/root/.cache/deepseek-peer/bin/peer_llama')
    ap.add_argument('--data', default=os.path.join(REPO, 'tests', 'data'))
    ap.add_argument('--mb', type=float, default=3)
    ap.add_argument('--show', type=int, default=3)
    ap.add_argument('--hf')
    ap.add_argument('--save')
    ap.add_argument('families', nargs='*', default=FAMILIES)
    o = ap.parse_args()
    head = subprocess.run(['git', '-C', REPO, 'rev-parse', '--short=12', 'HEAD'], capture_output=True, text=True).stdout.strip()
    texts = [(t, 'code') for t in git_files(('.c', '.h', '.py', '.mjs', '.sh', '.build'))]
    texts += [(t, 'docs') for t in git_files(('.md',))]
    words = open('/usr/share/dict/words', encoding='utf-8').read().split()
    fixture = fixture_texts(o.data)
    print('text from commit %s, /usr/share/dict/words (%d words), %d fixture rows' % (head, len(words), len(fixture)))
    for fam in o.families:
        gguf = os.path.join(o.build, 'tests', fam + '.gguf')
        pieces, added = vocab(os.path.join(o.data, fam, 'tokenizer.json'))
        PIECES[gguf] = pieces
        tokens = [p.decode('utf-8') for i, p in sorted(pieces.items()) if _utf8(p)]
        recs = records(fam, o.mb, texts, words, fixture, added, tokens)
        if o.save:
            os.makedirs(o.save, exist_ok=True); write_records(os.path.join(o.save, fam + '.rec'), [t for _, t in recs])
        a = ours_all(o.build, gguf, [t for _, t in recs])
        b = theirs(o.peer, gguf, [t for _, t in recs])
        bos = len(ours(o.build, gguf, 'x')) - len(ours(o.build, gguf, 'x', False))   # 1 where the GGUF adds BOS
        h = hf(o.hf, os.path.join(o.data, fam), [t for _, t in recs]) if o.hf else None
        per = {}
        for i, (sec, t) in enumerate(recs):
            s = per.setdefault(sec, [0, 0, 0, 0])
            s[0] += 1; s[1] += len(t.encode('utf-8')); s[2] += a[i] == b[i]
            if h: s[3] += h[i] == a[i][bos:]
        nb = sum(len(t.encode('utf-8')) for _, t in recs)
        eq = sum(s[2] for s in per.values())
        print('\n%s: %d records, %d bytes (%.2f MB), %d equal (%.2f%%)' % (fam, len(recs), nb, nb / 1e6, eq, 100.0 * eq / len(recs)))
        for sec, s in per.items():
            print('  %-10s %5d records %8d bytes %5d equal' % (sec, s[0], s[1], s[2]) +
                  (', %5d equal to @huggingface/tokenizers' % s[3] if h else ''))
        bad = [i for i in range(len(recs)) if a[i] != b[i]]
        if h:
            odd = [i for i in range(len(recs)) if h[i] != a[i][bos:]]
            r = dict(zip(odd, hf(o.hf, os.path.join(o.data, fam), [t for _, t in recs], odd))) if odd else {}
            print('  Hugging Face: %d records equal ours; of the rest (%d) ref.mjs agrees with ours on %d, with '
                  '@huggingface/tokenizers on %d' % (len(recs) - len(odd), len(odd), sum(r[i] == a[i][bos:] for i in odd),
                                                     sum(r[i] == h[i] for i in odd)))
            hf_right = sum(1 for i in bad if (r.get(i, h[i]) == a[i][bos:]))
            print('  of the %d records llama.cpp differs on, Hugging Face (@huggingface/tokenizers, ref.mjs where '
                  'they part) gives our ids on %d, llama.cpp\'s on %d' % (len(bad), hf_right,
                  sum(1 for i in bad if r.get(i, h[i]) == b[i][bos:])))
        if fam == 'tokenizer-qwen2' and bad:
            n = theirs(o.peer, gguf, [unicodedata.normalize('NFC', recs[i][1]) for i in bad])
            print('  llama.cpp on the NFC of the text gives our ids on %d of the %d' % (sum(n[j] == a[i] for j, i in enumerate(bad)), len(bad)))
        for i in bad[:o.show]:
            t = cut_down(o.build, o.peer, gguf, recs[i][1], bos)
            x, y = ours(o.build, gguf, t), theirs(o.peer, gguf, [t])[0]
            print('  record %d (%s), cut down to %r:' % (i, recs[i][0], t))
            print('    ours      %s' % show_ids(x, pieces))
            print('    llama.cpp %s' % show_ids(y, pieces))
            if o.hf:
                print('    ref.mjs   %s' % show_ids(hf(o.hf, os.path.join(o.data, fam), [t], [0])[0], pieces))
        sys.stdout.flush()

def _utf8(b):
    try: b.decode('utf-8'); return True
    except UnicodeDecodeError: return False

if __name__ == '__main__':
    main()
