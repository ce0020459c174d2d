#!/usr/bin/python3
"""distill_refs.py - regenerates tests/data/distill (its README says what and why).

usage: tools/distill_refs.py BUILD_DIR OUT_DIR

BUILD_DIR is a meson build of this project with -Dtests=enabled, built: it holds the
checkpoints tests/hfgen.c wrote (tests/hf-<model>/), our converter's F32 GGUFs of them
(tests/<model>-f32.gguf) and deepseek-quantize's Q8_0 / Q4_K_M copies (tests/<model>-<type>.gguf).
llama.cpp is the peer of ../shared/peer (PEER_DIR, default ~/.cache/deepseek-peer): its
bin/peer_llama quantizes, tokenizes and computes every logit stored here. An independent
float64 forward pass with Hugging Face's semantics (below, numpy) checks that llama.cpp, on the
files our converter wrote, computes the checkpoints' models; what it finds goes to summary.json.

Needs Debian's python3 with python3-numpy; nothing here runs at test time.
"""
import hashlib
import json
import math
import os
import subprocess
import sys
import tempfile

import numpy as np

MODELS = ["qwen2", "llama", "qwen3", "deepseek"]
TYPES = ["Q8_0", "Q4_K_M"]
N_TOKENS = 64
N_GREEDY = 32
TEXT = ("The old lighthouse keeper climbed the spiral stairs every evening, counting each of the "
        "one hundred and twelve steps. At the top he lit the lamp, wiped the salt from the glass, "
        "and watched the ships pass far out on the grey water, wondering where they were going.")
PEER = os.environ.get("PEER_DIR", os.path.expanduser("~/.cache/deepseek-peer"))
PEER_LLAMA = os.path.join(PEER, "bin", "peer_llama")
# llama.cpp's most exact settings (../shared/peer/README.md): no flash attention, F32 cache, and
# plain CPU buffers (AMX gives wrong results for some row lengths there)
EXACT = ["--fa", "0", "--kv", "f32", "--extra-bufts", "0", "--threads", "2"]


# ---------------------------------------------------------------- files

def read_safetensors(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        raw = np.frombuffer(data[a:b], dtype=np.uint16 if t["dtype"] == "BF16" else np.float32)
        if t["dtype"] == "BF16":
            raw = (raw.astype(np.uint32) << 16).view(np.float32)
        out[name] = raw.astype(np.float64).reshape(t["shape"])
    return out


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for name in sorted(tensors):
        a = tensors[name]
        dtype = {np.dtype(np.float32): "F32", np.dtype(np.int32): "I32"}[a.dtype]
        b = np.ascontiguousarray(a).tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


# ---------------------------------------------------------------- llama.cpp

def peer(*args):
    r = subprocess.run([PEER_LLAMA, *args], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"peer_llama {' '.join(args)} failed:\n{r.stderr[-2000:]}")
    return r.stdout


def tokenize(gguf):
    ids = [int(x) for x in peer("tokenize", gguf, TEXT).split(",")]
    if len(ids) < N_TOKENS:
        sys.exit(f"{gguf}: the text gives only {len(ids)} tokens")
    return ids[:N_TOKENS]


def logits(gguf, tokens, mode, tmp, greedy=0):
    """llama.cpp's logits of every prompt position ([n, vocab]), and with greedy its greedy
    tokens and the logits each was chosen from."""
    lp, gp = os.path.join(tmp, "l.f32"), os.path.join(tmp, "g.f32")
    args = ["logits", gguf, "--tokens", ",".join(map(str, tokens)), "--mode", mode, "--top", "1", "--out", lp, *EXACT]
    if greedy:
        args += ["--greedy", str(greedy), "--greedy-out", gp]
    out = peer(*args)
    L = np.fromfile(lp, np.float32).reshape(len(tokens), -1)
    if not greedy:
        return L
    ids = [int(x) for x in next(l for l in out.splitlines() if l.startswith("greedy:")).split(":")[1].split(",")]
    return L, np.array(ids, np.int32), np.fromfile(gp, np.float32).reshape(greedy, -1)


def distance(a, b):
    d = np.abs(a.astype(np.float64) - b.astype(np.float64))
    agree = int((a.argmax(-1) == b.argmax(-1)).sum())
    return {"max_abs": float(d.max()), "mean_abs": float(d.mean()), "argmax_agree": agree}


# ---------------------------------------------------------------- Hugging Face semantics, float64

def rms(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def silu(x):
    return x / (1 + np.exp(-x))


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def inv_freq(cfg, hd, attn_factor_key):
    """transformers' rope_utils: the frequencies and the factor cos / sin are scaled by."""
    base = cfg.get("rope_theta", 10000.0)
    inv = 1.0 / base ** (np.arange(0, hd, 2, dtype=np.float64) / hd)
    rs = cfg.get("rope_scaling") or {}
    kind = rs.get("rope_type", rs.get("type"))
    if kind == "llama3":
        factor, lo, hi = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"]
        old = rs["original_max_position_embeddings"]
        wave = 2 * math.pi / inv
        scaled = np.where(wave > old / lo, inv / factor, inv)
        smooth = (old / wave - lo) / (hi - lo)
        medium = ~(wave < old / hi) & ~(wave > old / lo)
        return np.where(medium, (1 - smooth) * scaled / factor + smooth * scaled, scaled), 1.0
    if kind == "yarn":
        old = rs["original_max_position_embeddings"]
        factor = cfg["max_position_embeddings"] / old
        mscale = 0.1 * math.log(factor) + 1.0
        # transformers reads attention_factor only; llama.cpp also attn_factor, and multiplies
        # it with that mscale (ggml's rope_yarn)
        att = rs.get("attention_factor")
        if att is None:
            att = mscale * rs["attn_factor"] if attn_factor_key and "attn_factor" in rs else mscale
        fast, slow = rs.get("beta_fast", 32), rs.get("beta_slow", 1)

        def corr(rot):
            return hd * math.log(old / (rot * 2 * math.pi)) / (2 * math.log(base))
        low, high = max(math.floor(corr(fast)), 0), min(math.ceil(corr(slow)), hd - 1)
        ramp = np.clip((np.arange(hd // 2) - low) / max(high - low, 0.001), 0, 1)
        extra = 1 - ramp
        return inv / factor * (1 - extra) + inv * extra, att
    return inv, 1.0


def rope(x, inv, att):
    """x [T, heads, hd], Hugging Face's rotate_half"""
    f = np.arange(x.shape[0], dtype=np.float64)[:, None] * inv[None, :]
    cos, sin = np.cos(np.concatenate([f, f], -1)) * att, np.sin(np.concatenate([f, f], -1)) * att
    half = x.shape[-1] // 2
    rot = np.concatenate([-x[..., half:], x[..., :half]], -1)
    return x * cos[:, None, :] + rot * sin[:, None, :]


def attention(W, cfg, i, x, inv, att):
    p = f"model.layers.{i}.self_attn."
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim", cfg["hidden_size"] // nh)
    T = x.shape[0]

    def proj(n, heads):
        y = x @ W[p + n + "_proj.weight"].T
        if p + n + "_proj.bias" in W:
            y = y + W[p + n + "_proj.bias"]
        return y.reshape(T, heads, hd)
    q, k, v = proj("q", nh), proj("k", nkv), proj("v", nkv)
    if p + "q_norm.weight" in W:  # Qwen3: per head, before rope
        q, k = rms(q, W[p + "q_norm.weight"], cfg["rms_norm_eps"]), rms(k, W[p + "k_norm.weight"], cfg["rms_norm_eps"])
    q, k = rope(q, inv, att), rope(k, inv, att)
    rep = nh // nkv
    k, v = np.repeat(k, rep, axis=1), np.repeat(v, rep, axis=1)
    s = np.einsum("thd,shd->hts", q, k) / math.sqrt(hd)
    s = s + np.triu(np.full((T, T), -np.inf), 1)[None]
    o = np.einsum("hts,shd->thd", softmax(s), v).reshape(T, nh * hd)
    return o @ W[p + "o_proj.weight"].T


def mlp(W, p, x):
    return (silu(x @ W[p + "gate_proj.weight"].T) * (x @ W[p + "up_proj.weight"].T)) @ W[p + "down_proj.weight"].T


def moe(W, cfg, i, x):
    """DeepseekMoE: softmax over the router's logits, top-k weights as they are, plus the shared experts"""
    p = f"model.layers.{i}.mlp."
    probs = softmax(x @ W[p + "gate.weight"].T)
    k = cfg["num_experts_per_tok"]
    y = mlp(W, p + "shared_experts.", x)
    for t in range(x.shape[0]):
        for e in np.argsort(-probs[t], kind="stable")[:k]:
            y[t] += probs[t, e] * mlp(W, f"{p}experts.{e}.", x[t:t + 1])[0]
    return y


def forward(hf, tokens, attn_factor_key=False):
    cfg = json.load(open(os.path.join(hf, "config.json")))
    W = read_safetensors(os.path.join(hf, "model.safetensors"))
    hd = cfg.get("head_dim", cfg["hidden_size"] // cfg["num_attention_heads"])
    inv, att = inv_freq(cfg, hd, attn_factor_key)
    eps = cfg["rms_norm_eps"]
    h = W["model.embed_tokens.weight"][tokens]
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = h + attention(W, cfg, i, rms(h, W[p + "input_layernorm.weight"], eps), inv, att)
        x = rms(h, W[p + "post_attention_layernorm.weight"], eps)
        dense = cfg.get("n_routed_experts") is None or i < cfg["first_k_dense_replace"]
        h = h + (mlp(W, p + "mlp.", x) if dense else moe(W, cfg, i, x))
    head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
    return rms(h, W["model.norm.weight"], eps) @ head.T


# ---------------------------------------------------------------- per model

def tolerance(float_path, spread):
    """as tests/data/llama-quantized's rule: 1.5x the larger drift (at least 0.05), 0.9x the
    smaller argmax agreement"""
    mean = max(0.05, 1.5 * max(float_path["mean_abs"], spread["mean_abs"]))
    return {"mean_abs_max": float(f"{math.ceil(mean * 100) / 100:.2f}"),
            "argmax_agree_min": int(0.9 * min(float_path["argmax_agree"], spread["argmax_agree"]))}


def quantized(m, t, build, out, tokens, f32_batch, tmp):
    ours = os.path.join(build, "tests", f"{m}-{t}.gguf")
    theirs, widened = os.path.join(tmp, f"{m}-{t}.gguf"), os.path.join(tmp, f"{m}-{t}-f32.gguf")
    f32 = os.path.join(build, "tests", f"{m}-f32.gguf")
    peer("quantize", f32, theirs, t, "--threads", "2")
    peer("quantize", theirs, widened, "F32", "--requant", "--threads", "2")
    L, g, G = logits(theirs, tokens, "batch", tmp, N_GREEDY)
    seq = logits(theirs, tokens, "seq", tmp)
    float_path = distance(logits(widened, tokens, "batch", tmp), L)
    write_safetensors(os.path.join(out, f"{m}-{t}.logits.safetensors"),
                      {"tokens": np.array(tokens, np.int32), "logits": L, "greedy": g, "greedy_logits": G})
    spread = distance(seq, L)
    return {"bytes": os.path.getsize(theirs), "sha256": sha256(theirs),
            "deepseek_quantize_identical": sha256(ours) == sha256(theirs),
            "seq_vs_batch": spread, "dequantized_f32_vs_quantized": float_path,
            "f32_weights_vs_quantized": distance(f32_batch, L), "greedy": g.tolist(),
            "suggested_tolerance": tolerance(float_path, spread)}


def model(m, build, out, tmp):
    f32 = os.path.join(build, "tests", f"{m}-f32.gguf")
    hf = os.path.join(build, "tests", f"hf-{m}")
    tokens = tokenize(f32)
    L, g, G = logits(f32, tokens, "batch", tmp, N_GREEDY)
    write_safetensors(os.path.join(out, f"{m}-F32.logits.safetensors"),
                      {"tokens": np.array(tokens, np.int32), "logits": L, "greedy": g, "greedy_logits": G})
    s = {"vocab": int(L.shape[1]), "tokens": tokens,
         "f32": {"bytes": os.path.getsize(f32), "sha256": sha256(f32),
                 "seq_vs_batch": distance(logits(f32, tokens, "seq", tmp), L),
                 "f64_reference_vs_llama_cpp": distance(forward(hf, tokens).astype(np.float32), L),
                 "greedy": g.tolist()}}
    if m == "qwen3":  # R1-0528-Qwen3-8B's attn_factor, which transformers does not read
        s["f32"]["f64_reference_reading_attn_factor_vs_llama_cpp"] = distance(
            forward(hf, tokens, attn_factor_key=True).astype(np.float32), L)
    s["quantized"] = {t: quantized(m, t, build, out, tokens, L, tmp) for t in TYPES}
    return s


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    build, out = sys.argv[1:]
    os.makedirs(out, exist_ok=True)
    info = [l for l in peer("info").splitlines() if l.startswith(("llama_version", "LLAMA_COMMIT"))]
    summary = {"llama_cpp": info, "text": TEXT, "fixtures": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for m in MODELS:
            summary["fixtures"][m] = model(m, build, out, tmp)
            print(m, json.dumps(summary["fixtures"][m]["f32"], indent=None)[:400], file=sys.stderr)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    # the files the logits are of, as the build names them: our F32 conversions and
    # llama-quantize's copies (which deepseek-quantize must reproduce)
    with open(os.path.join(out, "SHA256SUMS"), "w") as f:
        for m in MODELS:
            fx = summary["fixtures"][m]
            f.write(f"{fx['f32']['sha256']}  {m}-f32.gguf\n")
            for t in TYPES:
                f.write(f"{fx['quantized'][t]['sha256']}  {m}-{t}.gguf\n")


if __name__ == "__main__":
    main()
