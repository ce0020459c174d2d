#!/usr/bin/python3
"""v4_refs.py - regenerates tests/data/v4-synth: llama.cpp's logits on the tiny DeepSeek-V4-shaped
model the tests build (tests/hfgen.c deepseek-v4, converted by our deepseek-convert to
tests/deepseek-v4-f32.gguf), for the V4 forward pass to be held to once it exists.

usage: tools/v4_refs.py BUILD_DIR OUT_DIR

llama.cpp is ../shared/peer's peer_llama (PEER_DIR, default ~/.cache/deepseek-peer), with
distill_refs.py's most exact settings (no flash attention, F32 cache, plain CPU buffers).
The prompt (seeded ids, BOS first) is longer than the model's sliding window (16), than its
compressed sparse layers' ratio (4) times the indexer's top-k and than its heavily compressed
layer's ratio (128), so that every attention kind acts. Needs Debian's python3-numpy; nothing
here runs at test time."""
import json, os, random, sys, tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from distill_refs import distance, logits, sha256, write_safetensors  # noqa: E402

N_TOKENS, N_GREEDY = 300, 32


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    build, out = sys.argv[1], sys.argv[2]
    gguf = os.path.join(build, "tests", "deepseek-v4-f32.gguf")
    cfg = json.load(open(os.path.join(build, "tests", "hf-deepseek-v4", "config.json")))
    rng = random.Random(4)
    tokens = [0] + [rng.randrange(2, cfg["vocab_size"]) for _ in range(N_TOKENS - 1)]
    os.makedirs(out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        batch, greedy, greedy_logits = logits(gguf, tokens, "batch", tmp, N_GREEDY)
        seq = logits(gguf, tokens, "seq", tmp)
    write_safetensors(os.path.join(out, "deepseek-v4-F32.logits.safetensors"),
                      {"tokens": __import__("numpy").array(tokens, "int32"), "logits": batch,
                       "greedy": greedy, "greedy_logits": greedy_logits})
    summary = {"file": "deepseek-v4-f32.gguf", "bytes": os.path.getsize(gguf), "sha256": sha256(gguf),
               "tokens": len(tokens), "seq_vs_batch": distance(seq, batch), "greedy": greedy.tolist(),
               "config": {k: cfg[k] for k in ("num_hidden_layers", "hidden_size", "num_attention_heads", "head_dim",
                                              "compress_ratios", "sliding_window", "index_topk", "num_hash_layers",
                                              "hc_mult", "n_routed_experts", "num_experts_per_tok", "vocab_size")
                          if k in cfg}}
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    with open(os.path.join(out, "SHA256SUMS"), "w") as f:
        f.write(f"{summary['sha256']}  deepseek-v4-f32.gguf\n")
    print(json.dumps(summary["seq_vs_batch"]))


if __name__ == "__main__":
    main()
