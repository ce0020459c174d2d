#!/usr/bin/python3
"""Make reference.safetensors for tiny-v2-groups (run by hand; not part of the build).

The weights are tiny-v2-lite's; config.json adds DeepSeek-V2 (236B)'s group-limited greedy
routing: n_group 4, topk_group 2, topk_method group_limited_greedy (a group scores its best
expert; no correction bias), routed_scaling_factor 2. The reference forward is the project
peer's independent float64 implementation (shared/peer/ref_deepseek2.py), run on the GGUF
our converter writes (F32, lossless for these BF16 weights):

    build/deepseek-convert tests/data/tiny-v2-groups -o /tmp/g.gguf --tokenizer tests/data/tokenizer-tiny
    tests/data/tiny-v2-groups/make_reference.py /tmp/g.gguf ../shared/peer/ref_deepseek2.py
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

TOKENS = [0, 285, 365, 734, 229, 484, 862, 777, 936, 87, 390, 384, 5, 258, 966, 488, 233, 6, 728, 694, 159, 394,
          699, 254, 489, 992, 46, 55, 934, 32, 500, 290, 285, 505, 693, 283, 748, 813, 107, 313, 387, 86, 237, 289,
          412, 529, 882, 419]
N_GREEDY = 32


def forward(gguf, ref, tokens):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "l.f32")
        subprocess.run([sys.executable, ref, "--gguf", gguf, "--tokens", ",".join(map(str, tokens)), "--out", out],
                       check=True, stdout=subprocess.DEVNULL)
        return np.fromfile(out, np.float32).reshape(len(tokens), -1)


def write_safetensors(path, tensors):
    header, blobs, at = {}, [], 0
    for name, arr in tensors.items():
        b = arr.tobytes()
        header[name] = {"dtype": {"int32": "I32", "float32": "F32"}[arr.dtype.name], "shape": list(arr.shape),
                        "data_offsets": [at, at + len(b)]}
        blobs.append(b)
        at += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little") + h + b"".join(blobs))


def main():
    gguf, ref = sys.argv[1], sys.argv[2]
    logits = forward(gguf, ref, TOKENS)
    seq, greedy, greedy_logits, margins = list(TOKENS), [], [], []
    row = logits[-1]
    for _ in range(N_GREEDY):
        top = np.sort(row)[-2:]
        margins.append(float(top[1] - top[0]))
        tok = int(np.argmax(row))
        greedy.append(tok)
        greedy_logits.append(row)
        seq.append(tok)
        row = forward(gguf, ref, seq)[-1]
    write_safetensors(os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference.safetensors"), {
        "tokens": np.array(TOKENS, np.int32), "logits": logits.astype(np.float32),
        "greedy": np.array(greedy, np.int32), "greedy_logits": np.array(greedy_logits, np.float32)})
    print("greedy:", greedy)
    print("smallest greedy top-1 minus top-2 margin: %.4g" % min(margins))


if __name__ == "__main__":
    main()
