#!/usr/bin/python3
"""Check a trained checkpoint against the runtime: the GGUF's token ids (deepseek-tokenize)
and logits (deepseek --dump-logits) must equal what the PyTorch model computes from the
Hugging Face folder. --reference writes PyTorch's logits and MTP logits for the test suite
(tests/data/default-model), which holds the runtime's MTP layer to them.

    tools/train/check.py HF_DIR MODEL.gguf [--build build] [--text FILE] [--reference OUT]
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe  # noqa: E402
from st import read_safetensors, save_safetensors  # noqa: E402
from model import MTP_COPIES, Config, Transformer, hf_name  # noqa: E402


def load(hf_dir):
    cfg_json = json.load(open(os.path.join(hf_dir, "config.json")))
    cfg = Config(**{k: v for k, v in cfg_json.items() if k in Config().__dict__})
    model = Transformer(cfg)
    t = read_safetensors(os.path.join(hf_dir, "model.safetensors"))
    L = cfg.num_hidden_layers
    key = {hf_name(k, L): k for k in model.state_dict()}
    copies = {f"model.layers.{L}.{name}" for name in MTP_COPIES}
    model.load_state_dict({key[k]: v for k, v in t.items() if k not in copies}, strict=True)
    model.eval()
    return model


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("hf_dir")
    ap.add_argument("gguf")
    ap.add_argument("--build", default="build")
    ap.add_argument("--text", help="text to run (default: the start of heldout.txt)")
    ap.add_argument("--reference", metavar="OUT",
                    help="also write the first 64 tokens' ids, logits and MTP logits (row i: the "
                         "token after next, given the true next token) to OUT.safetensors")
    a = ap.parse_args()
    text = open(a.text or os.path.join(a.hf_dir, "heldout.txt")).read()[:1500]
    tj = json.load(open(os.path.join(a.hf_dir, "tokenizer.json")))
    vocab = dict(tj["model"]["vocab"])
    vocab.update({t["content"]: t["id"] for t in tj["added_tokens"]})
    merges = [tuple(m.split(" ")) for m in tj["model"]["merges"]]
    ids = bpe.Encoder(vocab, merges).encode(text)[:200]
    text_ids = subprocess.run([f"{a.build}/deepseek-tokenize", "-m", a.gguf, "-f", "/dev/stdin"],
                              input=text.encode(), capture_output=True, check=True).stdout.split()
    ours = [int(x) for x in text_ids][:200]
    print(f"tokenizer: {'same ids' if ours == ids else 'DIFFERENT ids'} ({len(ids)} compared)")
    dump = "/tmp/check_logits.f32"
    subprocess.run([f"{a.build}/deepseek", "-m", a.gguf, "--ids", " ".join(map(str, ids)),
                    "-n", "0", "--dump-logits", dump], check=True, capture_output=True)
    got = np.fromfile(dump, dtype=np.float32).reshape(len(ids), -1)
    model = load(a.hf_dir)
    with torch.no_grad():
        want = model(torch.tensor([ids]))[0][0].numpy()
    if a.reference:
        with torch.no_grad():
            x = torch.tensor([ids[:64]])
            logits, h = model(x)
            mtp = model.mtp_logits(x, h)
        save_safetensors(a.reference, {"tokens": (np.array(ids[:64], dtype=np.int32), "I32"),
                                       "logits": (logits[0].numpy(), "F32"),
                                       "mtp_logits": (mtp[0].numpy(), "F32")})
    d = np.abs(got - want)
    same = (got.argmax(-1) == want.argmax(-1)).mean()
    print(f"logits: max abs diff {d.max():.3g}, mean {d.mean():.3g}, argmax agreement {same:.3f}")
    return 0 if ours == ids and d.max() < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
