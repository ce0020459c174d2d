# convert_v4_check.py - checks a deepseek4 GGUF written by deepseek-convert against llama.cpp's
# own DeepSeek-V4 conversion (conversion/deepseek.py DeepseekV4Model), re-implemented here in
# numpy line by line: mtp.* dropped, FP8 weights times 2^(E8M0 - 127) per 128 x 128 block,
# hash layers' gate.bias dropped, tid2eid to I32, routed experts repacked to MXFP4 and stacked
# (base.py repack_mxfp4_blocks), the tensor map. Tensor names, ggml types, shapes and bytes must
# all be equal. Not part of the meson suite: it needs numpy and llama.cpp's gguf-py.
#
#   usage: python3 convert_v4_check.py HF_DIR FILE.gguf f32|q8_0 [list]
#     f32:  FILE from --outtype f32 (every dense tensor compared as float32, exactly)
#     q8_0: FILE from --outtype q8_0, which is llama.cpp's own type choice (FP8 -> Q8_0,
#           BF16 -> BF16, F32 -> F32), Q8_0 compared with gguf-py's quantizer bytes
#     list: also print every key and tensor
#   GGUF_PY (environment) names gguf-py's folder; default the peer's llama.cpp source.
import sys, json, struct, re
import numpy as np
import os
sys.path.insert(0, os.environ.get('GGUF_PY', '/root/.cache/deepseek-peer/llama.cpp-src/gguf-py'))
import gguf
from gguf import GGUFReader, GGMLQuantizationType as T
from gguf import quants

hf, path, mode = sys.argv[1], sys.argv[2], sys.argv[3]   # mode: f32 | q8_0 (llama.cpp's own types)
cfg = json.load(open(hf + '/config.json'))
raw = open(hf + '/model.safetensors', 'rb').read()
hl = struct.unpack('<Q', raw[:8])[0]; hdr = json.loads(raw[8:8 + hl]); base = 8 + hl
DT = {'BF16': None, 'F32': np.float32, 'F8_E4M3': np.uint8, 'F8_E8M0': np.uint8, 'I8': np.int8, 'I64': np.int64, 'U8': np.uint8}
def e4m3(b):
    b = b.astype(np.int32); s = np.where(b & 0x80, -1.0, 1.0); e = (b >> 3) & 15; m = b & 7
    v = np.where(e == 0, m / 8.0 * 2.0 ** -6, (1 + m / 8.0) * 2.0 ** (e - 7)); return (s * v).astype(np.float32)
src = {}
for k, v in hdr.items():
    if k == '__metadata__': continue
    a, b = v['data_offsets']; buf = raw[base + a: base + b]
    if v['dtype'] == 'BF16':
        x = (np.frombuffer(buf, np.uint16).astype(np.uint32) << 16).view(np.float32)
    else:
        x = np.frombuffer(buf, DT[v['dtype']])
    src[k] = (v['dtype'], x.reshape(v['shape']))
# filter_tensors: mtp.* dropped
src = {k: v for k, v in src.items() if not k.startswith(('mtp.', 'aligner.', 'image_'))}
# dequant_model
fp8 = set(); out = {}
for k in list(src):
    if k.endswith('.scale') and (k[:-6] + '.weight') in src and src[k[:-6] + '.weight'][0] == 'F8_E4M3':
        w = e4m3(src[k[:-6] + '.weight'][1]); s = np.exp2(src[k][1].astype(np.float32) - 127.0)
        s = np.repeat(np.repeat(s, 128, 0)[:w.shape[0]], 128, 1)[:, :w.shape[1]]
        src[k[:-6] + '.weight'] = ('FP8DQ', (w * s).astype(np.float32)); fp8.add(k[:-6] + '.weight'); del src[k]
nl, nh = cfg['num_hidden_layers'], cfg['num_hash_layers']
expect = {}
def repack(p, s):
    p = p.view(np.uint8); s = s.view(np.uint8); rows, pc = p.shape; nb = pc * 2 // 32
    src_ = p.reshape(rows, nb, 16); lo = src_ & 15; hi = src_ >> 4
    vals = np.stack((lo, hi), -1).reshape(rows, nb, 32); qs = vals[:, :, :16] | (vals[:, :, 16:] << 4)
    return np.concatenate((s[..., None], qs.astype(np.uint8)), -1).reshape(rows, nb * 17)
for bid in range(nh):
    expect[f'blk.{bid}.ffn_gate_tid2eid.weight'] = (T.I32, src.pop(f'layers.{bid}.ffn.gate.tid2eid')[1].astype(np.int32))
for bid in range(nl):
    for proj, g in (('w1', 'ffn_gate_exps'), ('w2', 'ffn_down_exps'), ('w3', 'ffn_up_exps')):
        parts = []
        for e in range(cfg['n_routed_experts']):
            parts.append(repack(src.pop(f'layers.{bid}.ffn.experts.{e}.{proj}.weight')[1], src.pop(f'layers.{bid}.ffn.experts.{e}.{proj}.scale')[1]))
        expect[f'blk.{bid}.{g}.weight'] = (T.MXFP4, np.stack(parts))
root = {'embed.weight': 'token_embd.weight', 'norm.weight': 'output_norm.weight', 'head.weight': 'output.weight',
        'hc_head_fn': 'output_hc_fn.weight', 'hc_head_base': 'output_hc_base.weight', 'hc_head_scale': 'output_hc_scale.weight'}
lm = {'hc_attn_fn': 'hc_attn_fn.weight', 'hc_attn_base': 'hc_attn_base.weight', 'hc_attn_scale': 'hc_attn_scale.weight',
      'hc_ffn_fn': 'hc_ffn_fn.weight', 'hc_ffn_base': 'hc_ffn_base.weight', 'hc_ffn_scale': 'hc_ffn_scale.weight',
      'attn.attn_sink': 'attn_sinks.weight', 'attn.wq_a.weight': 'attn_q_a.weight', 'attn.wq_b.weight': 'attn_q_b.weight',
      'attn.q_norm.weight': 'attn_q_a_norm.weight', 'attn.wkv.weight': 'attn_kv.weight', 'attn.kv_norm.weight': 'attn_kv_a_norm.weight',
      'attn.wo_a.weight': 'attn_output_a.weight', 'attn.wo_b.weight': 'attn_output_b.weight',
      'attn.compressor.ape': 'attn_compressor_ape.weight', 'attn.compressor.wkv.weight': 'attn_compressor_kv.weight',
      'attn.compressor.wgate.weight': 'attn_compressor_gate.weight', 'attn.compressor.norm.weight': 'attn_compressor_norm.weight',
      'attn.indexer.wq_b.weight': 'indexer.attn_q_b.weight', 'attn.indexer.weights_proj.weight': 'indexer.proj.weight',
      'attn.indexer.compressor.ape': 'indexer_compressor_ape.weight', 'attn.indexer.compressor.wkv.weight': 'indexer_compressor_kv.weight',
      'attn.indexer.compressor.wgate.weight': 'indexer_compressor_gate.weight', 'attn.indexer.compressor.norm.weight': 'indexer_compressor_norm.weight',
      'attn_norm.weight': 'attn_norm.weight', 'ffn_norm.weight': 'ffn_norm.weight', 'ffn.gate.weight': 'ffn_gate_inp.weight',
      'ffn.gate.bias': 'exp_probs_b.bias', 'ffn.gate.bias_vl': 'exp_probs_b_vl.bias',
      'ffn.shared_experts.w1.weight': 'ffn_gate_shexp.weight', 'ffn.shared_experts.w2.weight': 'ffn_down_shexp.weight',
      'ffn.shared_experts.w3.weight': 'ffn_up_shexp.weight'}
for k, (dt, x) in src.items():
    if k in root: name = root[k]
    else:
        m = re.match(r'layers\.(\d+)\.(.+)$', k); bid = int(m.group(1))
        if m.group(2) == 'ffn.gate.bias' and bid < nh: continue
        name = f'blk.{bid}.' + lm[m.group(2)]
    nd = x.ndim
    if mode == 'q8_0':   # llama.cpp: tensor_force_quant, then 1-D -> F32, else the outtype (q8_0)
        t = T.Q8_0 if (k in fp8 and nd >= 2) else T.F32 if dt == 'F32' else T.BF16 if (dt == 'BF16' and nd >= 2) else T.F32 if nd <= 1 \
            else T.F32 if name.endswith(('.ffn_gate_inp.weight', '.indexer.proj.weight')) else T.Q8_0
    else:
        t = T.F32
    expect[name] = (t, x.astype(np.float32))
r = GGUFReader(path)
got = {t.name: t for t in r.tensors}
ok = True
if set(got) != set(expect):
    ok = False; print('names differ: only ours', sorted(set(got) - set(expect)), 'only llama.cpp', sorted(set(expect) - set(got)))
for n, (t, x) in expect.items():
    if n not in got: continue
    g = got[n]
    if g.tensor_type != t: ok = False; print(n, 'type', g.tensor_type.name, 'llama.cpp', t.name); continue
    if t == T.MXFP4:
        want = x.reshape(-1); have = np.asarray(g.data).reshape(-1).view(np.uint8)
        shape = list(reversed(gguf.quant_shape_from_byte_shape(x.shape, T.MXFP4)))
    elif t == T.I32:
        want = x.reshape(-1); have = np.asarray(g.data).reshape(-1); shape = list(reversed(x.shape))
    elif t == T.Q8_0:
        want = quants.quantize(x, T.Q8_0).reshape(-1).view(np.uint8); have = np.asarray(g.data).reshape(-1).view(np.uint8); shape = list(reversed(x.shape))
    elif t == T.BF16:
        want = (x.view(np.uint32) >> 16).astype(np.uint16).reshape(-1); have = np.asarray(g.data).reshape(-1).view(np.uint16); shape = list(reversed(x.shape))
    else:
        want = x.reshape(-1); have = np.asarray(g.data).reshape(-1).astype(np.float32); shape = list(reversed(x.shape))
    if [int(v) for v in g.shape] != [int(v) for v in shape]: ok = False; print(n, 'shape', list(g.shape), 'llama.cpp', shape)
    if want.shape != have.shape or not np.array_equal(want, have):
        ok = False; print(n, 'data differs', t.name, want.shape, have.shape)
print('tensors:', len(got), 'checked against llama.cpp\'s converter logic:', 'ALL EQUAL' if ok else 'DIFFERENCES')
if len(sys.argv) > 4:
    for f in r.fields.values():
        if f.name.startswith('tokenizer.ggml.') and f.name in ('tokenizer.ggml.tokens', 'tokenizer.ggml.merges', 'tokenizer.ggml.token_type'): continue
        print('KV', f.name, f.types[0].name if f.types else '', f.contents() if f.name != 'tokenizer.chat_template' else '(template)')
    for t in r.tensors: print('T', t.name, t.tensor_type.name, list(int(v) for v in t.shape))
