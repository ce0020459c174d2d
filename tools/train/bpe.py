"""Byte-level BPE with DeepSeek-V3's pre-tokenizer, trained on a corpus and written as the
tokenizer.json / tokenizer_config.json pair that Hugging Face (and deepseek-convert) read.

The layout follows DeepSeek-V3's own files: ids 0-2 are the special begin / end / pad tokens,
then the 256 byte symbols (GPT-2's byte-to-unicode alphabet), then the merges in rank order,
then the chat and tool markers as added, non-special tokens.
"""
import heapq
import json
import regex

# DeepSeek-V3's pre-tokenizer, character for character as its tokenizer.json spells it (CR and
# LF literal, U+3040 as a character): three Split rules (Isolated), then ByteLevel without
# its regex.
PRE_RULES = [
    "\\p{N}{1,3}",
    "[\u4e00-\u9fa5\u3040-\u309f\u30a0-\u30ff]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+"
    "| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
]
_PRE = [regex.compile(p) for p in PRE_RULES]

SPECIAL = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜▁pad▁｜>"]
ADDED = ["<｜User｜>", "<｜Assistant｜>", "<think>", "</think>",
         "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>", "<｜tool▁call▁begin｜>",
         "<｜tool▁call▁end｜>", "<｜tool▁outputs▁begin｜>", "<｜tool▁outputs▁end｜>",
         "<｜tool▁output▁begin｜>", "<｜tool▁output▁end｜>", "<｜tool▁sep｜>"]


def byte_alphabet():
    """GPT-2's reversible map from bytes to printable characters, in its order."""
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}, [chr(c) for c in cs]


BYTE_CHAR, ALPHABET = byte_alphabet()


def pretokenize(text):
    pieces = [text]
    for rx in _PRE:
        out = []
        for p in pieces:
            pos = 0
            for m in rx.finditer(p):
                if m.start() > pos:
                    out.append(p[pos:m.start()])
                if m.end() > m.start():
                    out.append(m.group())
                pos = m.end()
            if pos < len(p):
                out.append(p[pos:])
        pieces = out
    return ["".join(BYTE_CHAR[b] for b in p.encode("utf-8")) for p in pieces]


def _merge(w, a, b):
    """The symbols of w with every adjacent (a, b), left to right, made one."""
    out, j = [], 0
    while j < len(w):
        if j + 1 < len(w) and w[j] == a and w[j + 1] == b:
            out.append(a + b)
            j += 2
        else:
            out.append(w[j])
            j += 1
    return out


def train(texts, vocab_size):
    """Merges (list of symbol pairs) learned greedily by pair frequency over the pieces."""
    n_merges = vocab_size - len(SPECIAL) - 256 - len(ADDED)
    counts = {}
    for t in texts:
        for p in pretokenize(t):
            counts[p] = counts.get(p, 0) + 1
    words = [list(w) for w in counts]
    freq = list(counts.values())
    pairs, where = {}, {}
    for i, w in enumerate(words):
        for a, b in zip(w, w[1:]):
            pairs[(a, b)] = pairs.get((a, b), 0) + freq[i]
            where.setdefault((a, b), set()).add(i)
    # max-heap of (count, pair); ties go to the lexicographically smallest pair
    heap = [(-c, p) for p, c in pairs.items()]
    heapq.heapify(heap)
    merges = []
    while len(merges) < n_merges and heap:
        c, p = heapq.heappop(heap)
        if pairs.get(p, 0) != -c:
            continue  # stale entry
        if -c < 2:
            break
        merges.append(p)
        touched = {}
        for i in where.pop(p, ()):
            w, f = words[i], freq[i]
            for x, y in zip(w, w[1:]):
                pairs[(x, y)] -= f
                touched[(x, y)] = True
            out = words[i] = _merge(w, *p)
            for x, y in zip(out, out[1:]):
                pairs[(x, y)] = pairs.get((x, y), 0) + f
                where.setdefault((x, y), set()).add(i)
                touched[(x, y)] = True
        pairs.pop(p, None)
        for q in touched:
            if q != p and pairs.get(q, 0) > 0:
                heapq.heappush(heap, (-pairs[q], q))
    return merges


class Encoder:
    """Encodes text as Hugging Face's BPE does: added tokens first, then the pre-tokenizer,
    then merges applied by rank inside each piece."""

    def __init__(self, vocab, merges):
        self.vocab = vocab
        self.rank = {m: r for r, m in enumerate(merges)}
        self.cache = {}
        names = sorted(SPECIAL + ADDED, key=len, reverse=True)
        self.added = regex.compile("|".join(regex.escape(n) for n in names))

    def _piece(self, p):
        ids = self.cache.get(p)
        if ids is not None:
            return ids
        w = list(p)
        while len(w) > 1:
            best = min(range(len(w) - 1), key=lambda k: self.rank.get((w[k], w[k + 1]), 1 << 30))
            if (w[best], w[best + 1]) not in self.rank:
                break
            w = _merge(w, w[best], w[best + 1])
        ids = [self.vocab[s] for s in w]
        self.cache[p] = ids
        return ids

    def encode(self, text, bos=True):
        ids = [0] if bos else []
        pos = 0
        for m in list(self.added.finditer(text)) + [None]:
            end = m.start() if m else len(text)
            for p in pretokenize(text[pos:end]):
                ids += self._piece(p)
            if m:
                ids.append(self.vocab[m.group()])
                pos = m.end()
        return ids


def build_vocab(merges):
    vocab = {s: i for i, s in enumerate(SPECIAL)}
    for ch in ALPHABET:
        vocab[ch] = len(vocab)
    for a, b in merges:
        if a + b not in vocab:
            vocab[a + b] = len(vocab)
    for s in ADDED:
        vocab[s] = len(vocab)
    return vocab


def _added_entry(i, s, special):
    return {"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
            "normalized": not special, "special": special}


def tokenizer_json(vocab, merges):
    added = [_added_entry(vocab[s], s, True) for s in SPECIAL] + \
            [_added_entry(vocab[s], s, False) for s in ADDED]
    model_vocab = {s: i for s, i in vocab.items() if s not in SPECIAL and s not in ADDED}
    split = [{"type": "Split", "pattern": {"Regex": p}, "behavior": "Isolated", "invert": False}
             for p in PRE_RULES]
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": []},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": split + [
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
             "use_regex": False}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
                           "use_regex": True},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                    "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None,
                  "continuing_subword_prefix": None, "end_of_word_suffix": None,
                  "fuse_unk": False, "byte_fallback": False, "vocab": model_vocab,
                  "merges": [f"{a} {b}" for a, b in merges]},
    }


def write(folder, vocab, merges, chat_template):
    with open(f"{folder}/tokenizer.json", "w", encoding="utf-8") as f:
        json.dump(tokenizer_json(vocab, merges), f, ensure_ascii=False, indent=1)
    tok = lambda s: {"__type": "AddedToken", "content": s, "lstrip": False, "normalized": True,
                     "rstrip": False, "single_word": False}
    config = {"add_bos_token": True, "add_eos_token": False, "bos_token": tok(SPECIAL[0]),
              "clean_up_tokenization_spaces": False, "eos_token": tok(SPECIAL[1]),
              "legacy": True, "model_max_length": 131072, "pad_token": tok(SPECIAL[1]),
              "sp_model_kwargs": {}, "unk_token": None, "tokenizer_class": "LlamaTokenizerFast",
              "chat_template": chat_template}
    with open(f"{folder}/tokenizer_config.json", "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=1)
