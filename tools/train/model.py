"""A DeepSeek-V3 model for training, in PyTorch, with the conventions of DeepSeek's official
inference code (inference/model.py), so that the exported weights mean the same thing there,
in Hugging Face's layout, and in deepseek-convert's GGUF:

- MLA: low-rank query (q_a_proj, q_a_layernorm, q_b_proj), compressed KV (kv_a_proj_with_mqa,
  kv_a_layernorm, kv_b_proj) and a decoupled rotary key shared by all heads; rotary on
  interleaved pairs (x[2i], x[2i+1]), as the official code's complex view does.
- DeepSeekMoE: sigmoid router scores; experts are chosen by score + e_score_correction_bias,
  limited to the topk_group groups whose two best biased scores sum highest; their weights are
  the unbiased scores renormalised, times routed_scaling_factor; one shared expert added as is.
- Auxiliary-loss-free balancing (V3 paper 2.1.2): after each step the bias of an overloaded
  expert goes down by gamma and an underloaded one's up. A tiny sequence-wise balance loss
  (alpha 1e-4, the paper's complementary loss) is kept too.
- One MTP module (V3 paper 2.2): h' = eh_proj([enorm(emb(t[i+1])); hnorm(h[i])]) through one
  MoE block, then shared_head.norm and the shared output head predict t[i+2]. h[i] is the main
  model's final-normed hidden state (the lm_head input), as vLLM and SGLang feed it. The MTP
  module shares the embedding and output head with the main model (exported as copies).
"""
import math
import torch
import torch.nn as nn
import torch.nn.functional as F


class Config:
    def __init__(self, **kw):
        self.vocab_size = 4096
        self.hidden_size = 320
        self.num_hidden_layers = 5
        self.first_k_dense_replace = 1
        self.intermediate_size = 960
        self.num_attention_heads = 5
        self.q_lora_rank = 160
        self.kv_lora_rank = 96
        self.qk_nope_head_dim = 32
        self.qk_rope_head_dim = 16
        self.v_head_dim = 32
        self.n_routed_experts = 16
        self.num_experts_per_tok = 4
        self.n_group = 4
        self.topk_group = 2
        self.n_shared_experts = 1
        self.moe_intermediate_size = 128
        self.routed_scaling_factor = 2.5
        self.rope_theta = 10000.0
        self.rms_norm_eps = 1e-6
        self.max_position_embeddings = 512
        self.num_nextn_predict_layers = 1
        self.__dict__.update(kw)

    def hf(self):
        """config.json with the keys of DeepSeek-V3's release."""
        d = {k: v for k, v in self.__dict__.items()}
        d.update({
            "architectures": ["DeepseekV3ForCausalLM"], "model_type": "deepseek_v3",
            "attention_bias": False, "attention_dropout": 0.0, "aux_loss_alpha": 0.0001,
            "bos_token_id": 0, "eos_token_id": 1, "ep_size": 1, "hidden_act": "silu",
            "initializer_range": 0.02, "moe_layer_freq": 1, "norm_topk_prob": True,
            "num_key_value_heads": self.num_attention_heads, "pretraining_tp": 1,
            "rope_scaling": None, "scoring_func": "sigmoid", "seq_aux": True,
            "tie_word_embeddings": False, "topk_method": "noaux_tc", "torch_dtype": "bfloat16",
            "transformers_version": "4.33.1", "use_cache": True})
        return dict(sorted(d.items()))


# The MTP module's embedding and output head are the main model's, stored again under its
# layer as V3's release stores them: HF name under model.layers.{L}. -> the state_dict key.
MTP_COPIES = {"embed_tokens.weight": "embed_tokens.weight", "shared_head.head.weight": "lm_head.weight"}


def hf_name(key, n_layers):
    """The Hugging Face (V3 release) name of a state_dict key; the MTP module is layer n_layers."""
    if key.startswith("lm_head"):
        return key
    if not key.startswith("mtp."):
        return "model." + key
    k = key[4:]
    if k.startswith("block."):
        k = k[6:]
    elif k.startswith("head_norm."):
        k = "shared_head.norm." + k[10:]
    return f"model.layers.{n_layers}.{k}"


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rotary_table(cfg, n):
    d = cfg.qk_rope_head_dim
    inv = 1.0 / (cfg.rope_theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
    ang = torch.outer(torch.arange(n, dtype=torch.float32), inv)
    return torch.cos(ang), torch.sin(ang)


def rotate(x, cos, sin):
    """Rotary on interleaved pairs; x [..., T, d], cos/sin [T, d/2]."""
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)


class MLA(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        c = cfg
        self.c = c
        self.q_a_proj = nn.Linear(c.hidden_size, c.q_lora_rank, bias=False)
        self.q_a_layernorm = RMSNorm(c.q_lora_rank, c.rms_norm_eps)
        self.q_b_proj = nn.Linear(c.q_lora_rank,
                                  c.num_attention_heads * (c.qk_nope_head_dim + c.qk_rope_head_dim), bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(c.hidden_size, c.kv_lora_rank + c.qk_rope_head_dim, bias=False)
        self.kv_a_layernorm = RMSNorm(c.kv_lora_rank, c.rms_norm_eps)
        self.kv_b_proj = nn.Linear(c.kv_lora_rank,
                                   c.num_attention_heads * (c.qk_nope_head_dim + c.v_head_dim), bias=False)
        self.o_proj = nn.Linear(c.num_attention_heads * c.v_head_dim, c.hidden_size, bias=False)
        self.scale = (c.qk_nope_head_dim + c.qk_rope_head_dim) ** -0.5

    def forward(self, x, cos, sin, mask):
        c = self.c
        B, T, _ = x.shape
        H, dn, dr, dv = c.num_attention_heads, c.qk_nope_head_dim, c.qk_rope_head_dim, c.v_head_dim
        q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x))).view(B, T, H, dn + dr).transpose(1, 2)
        kv = self.kv_a_proj_with_mqa(x)
        latent, k_pe = kv[..., :c.kv_lora_rank], kv[..., c.kv_lora_rank:]
        kvb = self.kv_b_proj(self.kv_a_layernorm(latent)).view(B, T, H, dn + dv).transpose(1, 2)
        k_nope, v = kvb[..., :dn], kvb[..., dn:]
        q_pe = rotate(q[..., dn:], cos, sin)
        k_pe = rotate(k_pe.unsqueeze(1), cos, sin)  # [B, 1, T, dr], shared by the heads
        s = (q[..., :dn] @ k_nope.transpose(-1, -2) + q_pe @ k_pe.transpose(-1, -2)) * self.scale
        p = torch.softmax(s + mask, dim=-1)
        return self.o_proj((p @ v).transpose(1, 2).reshape(B, T, H * dv))


class MLP(nn.Module):
    def __init__(self, d, inter):
        super().__init__()
        self.gate_proj = nn.Linear(d, inter, bias=False)
        self.up_proj = nn.Linear(d, inter, bias=False)
        self.down_proj = nn.Linear(inter, d, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Gate(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.c = cfg
        self.weight = nn.Parameter(torch.empty(cfg.n_routed_experts, cfg.hidden_size))
        self.register_buffer("e_score_correction_bias", torch.zeros(cfg.n_routed_experts))

    def forward(self, x):
        """x [N, D] -> (expert ids [N, k], weights [N, k], scores [N, E])"""
        c = self.c
        s = torch.sigmoid(x @ self.weight.t())
        with torch.no_grad():
            b = s + self.e_score_correction_bias
            g = b.view(-1, c.n_group, c.n_routed_experts // c.n_group).topk(2, dim=-1)[0].sum(-1)
            keep = g.topk(c.topk_group, dim=-1)[1]
            gmask = torch.full_like(g, float("-inf")).scatter_(1, keep, 0.0)
            b = b + gmask.repeat_interleave(c.n_routed_experts // c.n_group, dim=1)
            idx = b.topk(c.num_experts_per_tok, dim=-1)[1]
        w = s.gather(1, idx)
        w = w / w.sum(-1, keepdim=True) * c.routed_scaling_factor
        return idx, w, s


class MoE(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.c = cfg
        self.gate = Gate(cfg)
        self.experts = nn.ModuleList(MLP(cfg.hidden_size, cfg.moe_intermediate_size)
                                     for _ in range(cfg.n_routed_experts))
        self.shared_experts = MLP(cfg.hidden_size, cfg.n_shared_experts * cfg.moe_intermediate_size)
        self.load = None   # tokens per expert in the last forward (for the bias update)
        self.aux = None    # sequence-wise balance loss of the last forward

    def forward(self, x):
        c = self.c
        B, T, D = x.shape
        flat = x.reshape(-1, D)
        idx, w, s = self.gate(flat)
        out = self.shared_experts(flat)
        order = idx.flatten().argsort()
        counts = torch.bincount(idx.flatten(), minlength=c.n_routed_experts)
        tok = order // c.num_experts_per_tok
        wts = w.flatten()[order]
        start = 0
        routed = torch.zeros_like(flat)
        for e, n in enumerate(counts.tolist()):
            if n == 0:
                continue
            t = tok[start:start + n]
            routed.index_add_(0, t, self.experts[e](flat[t]) * wts[start:start + n, None])
            start += n
        self.load = counts
        if self.training:
            # complementary sequence-wise balance loss: sum_i f_i P_i per sequence
            E, K = c.n_routed_experts, c.num_experts_per_tok
            sel = torch.zeros(B * T, E).scatter_(1, idx, 1.0).view(B, T, E)
            f = sel.mean(1) * (E / K)
            p = (s / s.sum(-1, keepdim=True)).view(B, T, E).mean(1)
            self.aux = (f * p).sum(-1).mean()
        return (out + routed).view(B, T, D)


class Block(nn.Module):
    def __init__(self, cfg, moe):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = MLA(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MoE(cfg) if moe else MLP(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, h, cos, sin, mask):
        h = h + self.self_attn(self.input_layernorm(h), cos, sin, mask)
        return h + self.mlp(self.post_attention_layernorm(h))


class MTP(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.enorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.hnorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.eh_proj = nn.Linear(2 * cfg.hidden_size, cfg.hidden_size, bias=False)
        self.block = Block(cfg, moe=True)
        self.head_norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)

    def forward(self, emb_next, h, cos, sin, mask):
        x = self.eh_proj(torch.cat([self.enorm(emb_next), self.hnorm(h)], dim=-1))
        return self.head_norm(self.block(x, cos, sin, mask))


class Transformer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.c = cfg
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.layers = nn.ModuleList(Block(cfg, i >= cfg.first_k_dense_replace)
                                    for i in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        self.mtp = MTP(cfg) if cfg.num_nextn_predict_layers else None
        cos, sin = rotary_table(cfg, cfg.max_position_embeddings)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.init_weights()

    def init_weights(self):
        std = 0.02
        for name, p in self.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name or name.endswith("enorm.weight") \
                    or name.endswith("hnorm.weight"):
                continue
            s = std
            if name.endswith("o_proj.weight") or name.endswith("down_proj.weight"):
                s = std / math.sqrt(2 * (self.c.num_hidden_layers + 1))
            nn.init.normal_(p, 0.0, s)

    def moe_layers(self):
        ms = [l.mlp for l in self.layers if isinstance(l.mlp, MoE)]
        if self.mtp is not None:
            ms.append(self.mtp.block.mlp)
        return ms

    def forward(self, tokens):
        """tokens [B, T] -> (logits [B, T, V], final-normed hidden [B, T, D])"""
        T = tokens.shape[1]
        cos, sin = self.cos[:T], self.sin[:T]
        mask = torch.full((T, T), float("-inf")).triu_(1)
        h = self.embed_tokens(tokens)
        for layer in self.layers:
            h = layer(h, cos, sin, mask)
        h = self.norm(h)
        return self.lm_head(h), h

    def mtp_logits(self, tokens, h):
        """MTP predictions: row i (i < T-1) predicts tokens[i+2] from h[i] and tokens[i+1]."""
        T = tokens.shape[1] - 1
        cos, sin = self.cos[:T], self.sin[:T]
        mask = torch.full((T, T), float("-inf")).triu_(1)
        x = self.mtp(self.embed_tokens(tokens[:, 1:]), h[:, :-1], cos, sin, mask)
        return self.lm_head(x)
