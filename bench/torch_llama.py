#!/usr/bin/env python3
"""torch_llama.py: a plain PyTorch (CPU) Llama forward pass over a Hugging Face model folder, the
peer bench/run-vs-torch.sh times kgen against. It reads model.safetensors itself (the JSON
header, then torch.frombuffer over an mmap: no transformers or safetensors package), and runs
embedding, RMSNorm, q/k/v/o, RoPE (rotate_half), GQA causal attention over a KV cache, the SiLU
MLP, the final norm and the LM head, as transformers' LlamaForCausalLM does.

  torch_llama.py costs MODEL --prefill P --context C
      the model's sizes: weight bytes as stored, KV-cache bytes a decode step reads at context
      C (bf16), and the flops of a P-token prefill (logits of the last token only)
  torch_llama.py time MODEL --dtype bf16|fp32 --threads N --prefill P --context C --steps S
      tokens/s of a P-token prefill, and of S decode steps after a KV cache filled to C - S/2
      positions (random values: attention costs the same), so the steps centre on context C
  torch_llama.py check MODEL --ids IDS.npy --prefill P --decode N --dump DIR
      the fp32 forward on IDS (prefill P, then N teacher-forced steps) against kgen run's
      --dump DIR: prints the largest |logit difference| of each
Results go to stdout as `key value` lines.
"""
import argparse
import json
import math
import mmap
import os
import sys
import time

import numpy as np
import torch

DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


# ---- the model folder ------------------------------------------------------------------------

def read_config(folder):
    with open(os.path.join(folder, "config.json")) as f:
        c = json.load(f)
    arch = (c.get("architectures") or [c.get("model_type")])[0]
    if arch not in ("LlamaForCausalLM", "llama"):
        sys.exit(f"torch_llama.py: {folder}: architecture {arch}: only Llama is run here")
    scaling = c.get("rope_scaling") or {}
    if scaling.get("rope_type", scaling.get("type", "default")) != "default":
        sys.exit(f"torch_llama.py: {folder}: rope_scaling {scaling}: only the default rope")
    c.setdefault("head_dim", c["hidden_size"] // c["num_attention_heads"])
    c.setdefault("rope_theta", 10000.0)
    return c


def read_weights(folder, dtype):
    """Every tensor of model.safetensors, converted to dtype (a copy: the run reads its own
    memory, as kgen reads its packed weights, not the page cache)."""
    path = os.path.join(folder, "model.safetensors")
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    n = int.from_bytes(mm[:8], "little")
    header = json.loads(mm[8:8 + n])
    base = 8 + n
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        begin, end = t["data_offsets"]
        src = DTYPES[t["dtype"]]
        count = (end - begin) // torch.tensor([], dtype=src).element_size()
        x = torch.frombuffer(mm, dtype=src, count=count, offset=base + begin)
        out[name] = x.reshape(t["shape"]).to(dtype, copy=True)
    return out


# ---- the forward pass ------------------------------------------------------------------------

class Llama:
    def __init__(self, folder, dtype, max_context):
        self.c = c = read_config(folder)
        self.w = read_weights(folder, dtype)
        self.dtype = dtype
        self.L, self.nh, self.nkv = (c["num_hidden_layers"], c["num_attention_heads"],
                                     c["num_key_value_heads"])
        self.hd, self.eps = c["head_dim"], c["rms_norm_eps"]
        if "lm_head.weight" not in self.w:  # tied embeddings
            self.w["lm_head.weight"] = self.w["model.embed_tokens.weight"]
        self.k = torch.zeros(self.L, self.nkv, max_context, self.hd, dtype=dtype)
        self.v = torch.zeros_like(self.k)
        self.pos = 0
        half = torch.arange(0, self.hd, 2, dtype=torch.int64).float() / self.hd
        self.inv_freq = 1.0 / (c["rope_theta"] ** half)

    def norm(self, x, weight):
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return weight * xf.to(x.dtype)

    def rope(self, x, cos, sin):
        half = x.shape[-1] // 2
        rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
        return x * cos + rotated * sin

    def attention(self, i, x, cos, sin):
        P, W = x.shape[0], self.w
        pre = f"model.layers.{i}.self_attn."
        q = torch.nn.functional.linear(x, W[pre + "q_proj.weight"], W.get(pre + "q_proj.bias"))
        k = torch.nn.functional.linear(x, W[pre + "k_proj.weight"], W.get(pre + "k_proj.bias"))
        v = torch.nn.functional.linear(x, W[pre + "v_proj.weight"], W.get(pre + "v_proj.bias"))
        q = self.rope(q.view(P, self.nh, self.hd).transpose(0, 1), cos, sin)
        k = self.rope(k.view(P, self.nkv, self.hd).transpose(0, 1), cos, sin)
        end = self.pos + P
        self.k[i, :, self.pos:end] = k
        self.v[i, :, self.pos:end] = v.view(P, self.nkv, self.hd).transpose(0, 1)
        rep = self.nh // self.nkv
        keys = self.k[i, :, :end].repeat_interleave(rep, dim=0)
        vals = self.v[i, :, :end].repeat_interleave(rep, dim=0)
        scores = torch.matmul(q, keys.transpose(1, 2)) / math.sqrt(self.hd)
        if P > 1:  # causal: query p (at position pos + p) sees keys up to pos + p
            qpos = torch.arange(self.pos, end).unsqueeze(1)
            mask = torch.arange(end).unsqueeze(0) > qpos
            scores = scores.masked_fill(mask, float("-inf"))
        probs = torch.softmax(scores.float(), dim=-1).to(self.dtype)
        o = torch.matmul(probs, vals).transpose(0, 1).reshape(P, self.nh * self.hd)
        return torch.nn.functional.linear(o, W[pre + "o_proj.weight"], W.get(pre + "o_proj.bias"))

    def mlp(self, i, x):
        pre, F = f"model.layers.{i}.mlp.", torch.nn.functional
        gate = F.linear(x, self.w[pre + "gate_proj.weight"])
        up = F.linear(x, self.w[pre + "up_proj.weight"])
        return F.linear(F.silu(gate) * up, self.w[pre + "down_proj.weight"])

    @torch.no_grad()
    def forward(self, ids, all_logits=False):
        """The tokens ids (1-D) at the next positions; logits [P, V] (or of the last token)."""
        P = ids.shape[0]
        x = self.w["model.embed_tokens.weight"][ids]
        pos = torch.arange(self.pos, self.pos + P).float()
        freqs = torch.outer(pos, self.inv_freq)
        emb = torch.cat((freqs, freqs), dim=-1)
        cos, sin = emb.cos().to(self.dtype), emb.sin().to(self.dtype)
        for i in range(self.L):
            pre = f"model.layers.{i}."
            h = self.norm(x, self.w[pre + "input_layernorm.weight"])
            x = x + self.attention(i, h, cos, sin)
            h = self.norm(x, self.w[pre + "post_attention_layernorm.weight"])
            x = x + self.mlp(i, h)
        self.pos += P
        if not all_logits:
            x = x[-1:]
        x = self.norm(x, self.w["model.norm.weight"])
        return torch.nn.functional.linear(x, self.w["lm_head.weight"]).float()


# ---- the subcommands -------------------------------------------------------------------------

def costs(a):
    c = read_config(a.model)
    path = os.path.join(a.model, "model.safetensors")
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    # a decode step reads every weight but the embedding table (one row of it)
    weights = sum(t["data_offsets"][1] - t["data_offsets"][0] for k, t in header.items()
                  if k not in ("__metadata__", "model.embed_tokens.weight"))
    if "lm_head.weight" not in header:  # tied: the LM head reads the embedding table
        t = header["model.embed_tokens.weight"]
        weights += t["data_offsets"][1] - t["data_offsets"][0]
    H, I, L, V = c["hidden_size"], c["intermediate_size"], c["num_hidden_layers"], c["vocab_size"]
    nh, nkv, hd, P = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"], a.prefill
    kv = L * 2 * nkv * hd * a.context * 2
    proj = H * (nh + 2 * nkv) * hd + nh * hd * H + 3 * H * I
    attn = 4 * hd * nh * P * (P + 1) // 2  # QK^T and PV over the causal half
    flops = L * (2 * P * proj + attn) + 2 * H * V
    print(f"weight_bytes {weights}\nkv_bytes {kv}\nprefill_flops {flops}")


def timed(a):
    torch.set_num_threads(a.threads)
    dtype = {"bf16": torch.bfloat16, "fp32": torch.float32}[a.dtype]
    t0 = time.perf_counter()
    m = Llama(a.model, dtype, a.context + a.steps)
    print(f"load_s {time.perf_counter() - t0:.3f}")
    V = m.c["vocab_size"]
    ids = torch.arange(a.prefill, dtype=torch.int64) * 7919 % V
    m.forward(ids[:16])  # warm-up: threads, allocator
    m.pos = 0
    t0 = time.perf_counter()
    m.forward(ids)
    s = time.perf_counter() - t0
    print(f"prefill_tokens {a.prefill}\nprefill_s {s:.4f}\nprefill_tps {a.prefill / s:.3f}")
    # decode: the cache filled with random keys and values up to the first step's position
    start = a.context - a.steps // 2
    g = torch.Generator().manual_seed(0)
    m.k[:, :, :start] = torch.randn(m.k[:, :, :start].shape, generator=g).to(dtype)
    m.v[:, :, :start] = torch.randn(m.v[:, :, :start].shape, generator=g).to(dtype)
    m.pos = start - 1
    token = torch.tensor([1])
    m.forward(token)  # warm-up step at start - 1
    t0 = time.perf_counter()
    for _ in range(a.steps):
        token = m.forward(token).argmax(-1)
    s = time.perf_counter() - t0
    print(f"decode_steps {a.steps}\ndecode_from {start}\ndecode_s {s:.4f}\n"
          f"decode_tps {a.steps / s:.3f}")


def check(a):
    torch.set_num_threads(a.threads)
    ids = torch.from_numpy(np.load(a.ids)).to(torch.int64)
    m = Llama(a.model, torch.float32, a.prefill + a.decode)
    worst = {}
    for b in range(ids.shape[0]):
        m.pos = 0
        got = m.forward(ids[b, :a.prefill], all_logits=True)
        want = torch.from_numpy(np.load(os.path.join(a.dump, "prefill_logits.npy"))[b])
        worst["prefill"] = max(worst.get("prefill", 0), (got - want).abs().max().item())
        for s in range(a.decode):
            got = m.forward(ids[b, a.prefill + s:a.prefill + s + 1])
            want = np.load(os.path.join(a.dump, f"decode{s}_logits.npy"))[b]
            d = (got - torch.from_numpy(want)).abs().max().item()
            worst["decode"] = max(worst.get("decode", 0), d)
    scale = torch.from_numpy(np.load(os.path.join(a.dump, "prefill_logits.npy"))).abs().max()
    print(f"check_prefill_maxdiff {worst['prefill']:.3g}\n"
          f"check_decode_maxdiff {worst.get('decode', 0):.3g}\nlogit_scale {scale.item():.3g}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("costs", "time", "check"):
        s = sub.add_parser(name)
        s.add_argument("model")
        s.add_argument("--threads", type=int, default=1)
        s.add_argument("--prefill", type=int, default=512)
        s.add_argument("--context", type=int, default=1024)
        s.add_argument("--steps", type=int, default=16)
        s.add_argument("--dtype", choices=("bf16", "fp32"), default="bf16")
        s.add_argument("--ids")
        s.add_argument("--decode", type=int, default=0)
        s.add_argument("--dump")
    a = p.parse_args()
    {"costs": costs, "time": timed, "check": check}[a.cmd](a)


if __name__ == "__main__":
    main()
