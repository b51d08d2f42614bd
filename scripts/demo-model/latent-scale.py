#!/usr/bin/env python3
"""How large are the latents next to the tokens, and how much do the layers change each?

A NumPy re-implementation of the demo model's latent-mode forward (method.md §2: Llama layers,
the projection, the init pass, T Jacobi iterations, greedy answer) that prints, for a kava model
directory: the norm of the token embeddings and of the continuous thoughts z, and per layer the
mean norm of the residual stream and of each sublayer's update at the question positions (init
pass) and at the latent positions (last Jacobi iteration); then its latent-mode accuracy on the
first N problems, as a check that this forward is the model's.

Usage: scripts/demo-model/latent-scale.py [MODEL_DIR] [DATA.jsonl] [N]
(defaults: kava/models/demo, demo-work/data/test.jsonl, 20). Needs `pip install numpy tokenizers`.
"""
import json
import struct
import sys
from math import erf

import numpy as np
from tokenizers import Tokenizer

D = (sys.argv[1] if len(sys.argv) > 1 else "kava/models/demo").rstrip("/") + "/"
DATA = sys.argv[2] if len(sys.argv) > 2 else "demo-work/data/test.jsonl"
N = int(sys.argv[3]) if len(sys.argv) > 3 else 20


def load(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    out = {}
    for k, v in header.items():
        if k == "__metadata__":
            continue
        s, e = v["data_offsets"]
        dt = {"F16": np.float16, "F32": np.float32}[v["dtype"]]
        out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=dt).reshape(v["shape"]).astype(np.float64)
    return out


W = load(D + "model.safetensors")
P = load(D + "kava.safetensors")
cfg = json.load(open(D + "config.json"))
kv = json.load(open(D + "kava.json"))
tok = Tokenizer.from_file(D + "tokenizer.json")
L, H, KV = cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
hd = cfg.get("head_dim") or cfg["hidden_size"] // H
eps = cfg["rms_norm_eps"]
E = W["model.embed_tokens.weight"]
inv = 1.0 / (cfg.get("rope_theta", 10000.0) ** (np.arange(0, hd, 2) / hd))


def rms(x, w):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def rope(x, pos):  # [n, heads, hd], HF half rotation
    f = np.outer(pos, inv)
    c, s = np.cos(f)[:, None, :], np.sin(f)[:, None, :]
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], -1)


def forward(emb, pos, cache=None, trace=None):
    """Input embeddings at positions pos on top of cache (per layer K, V); returns the post-norm
    hidden states and the cache extended by this block. trace collects (residual, update) norms."""
    x, new = emb.copy(), []
    for l in range(L):
        p = f"model.layers.{l}."
        h = rms(x, W[p + "input_layernorm.weight"])
        q = rope((h @ W[p + "self_attn.q_proj.weight"].T).reshape(-1, H, hd), pos)
        k = rope((h @ W[p + "self_attn.k_proj.weight"].T).reshape(-1, KV, hd), pos)
        v = (h @ W[p + "self_attn.v_proj.weight"].T).reshape(-1, KV, hd)
        off = 0 if cache is None else cache[l][0].shape[0]
        K = k if cache is None else np.concatenate([cache[l][0], k])
        V = v if cache is None else np.concatenate([cache[l][1], v])
        new.append((K, V))
        n = x.shape[0]
        a = np.einsum("qhd,khd->hqk", q, np.repeat(K, H // KV, 1)) / np.sqrt(hd)
        a[:, np.arange(K.shape[0])[None, :] > (off + np.arange(n))[:, None]] = -1e30
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        o = np.einsum("hqk,khd->qhd", a, np.repeat(V, H // KV, 1)).reshape(n, -1) @ W[p + "self_attn.o_proj.weight"].T
        if trace is not None:
            trace.append((f"layer {l} attention", np.linalg.norm(x, axis=1), np.linalg.norm(o, axis=1)))
        x = x + o
        h = rms(x, W[p + "post_attention_layernorm.weight"])
        g, u = h @ W[p + "mlp.gate_proj.weight"].T, h @ W[p + "mlp.up_proj.weight"].T
        m = (g / (1 + np.exp(-g)) * u) @ W[p + "mlp.down_proj.weight"].T
        if trace is not None:
            trace.append((f"layer {l} MLP", np.linalg.norm(x, axis=1), np.linalg.norm(m, axis=1)))
        x = x + m
    return rms(x, W["model.norm.weight"]), new


gelu = np.vectorize(lambda v: 0.5 * v * (1 + erf(v / np.sqrt(2))))


def proj(h):
    if not kv.get("use_projection", True):
        return h
    y = gelu(h @ P["projection.fc1.weight"].T + P["projection.fc1.bias"]) @ P["projection.fc2.weight"].T + P["projection.fc2.bias"]
    y = (y - y.mean(-1, keepdims=True)) / np.sqrt(y.var(-1, keepdims=True) + 1e-5)
    return y * P["projection.norm.weight"] + P["projection.norm.bias"]


M, T = kv["num_latents"], kv["num_iterations"]
prompt = tok.encode(kv["answer_prompt"], add_special_tokens=False).ids
stops = {cfg["eos_token_id"]} if isinstance(cfg["eos_token_id"], int) else set(cfg["eos_token_id"])
bos = [cfg["bos_token_id"]] if cfg.get("bos_token_id") is not None else []
problems = [json.loads(l) for l in open(DATA)][:N]
correct = 0
for i, pb in enumerate(problems):
    ids = bos + tok.encode(pb["question"], add_special_tokens=False).ids + [kv["bot_id"]]
    b = len(ids) - 1
    first = i == 0
    t0 = [] if first else None
    h, c = forward(np.concatenate([E[ids], np.repeat(E[[kv["lat_id"]]], M, 0)]), np.arange(len(ids) + M), trace=t0)
    prefix = [(K[: b + 1], V[: b + 1]) for K, V in c]
    z = proj(h[b:b + M])
    if first:
        print(f"token embedding norm {np.linalg.norm(E[ids], axis=1).mean():.2f} | latent z norm {np.linalg.norm(z, axis=1).mean():.2f}")
    cache = prefix
    for t in range(T):
        tt = [] if first and t == T - 1 else None
        h2, cache = forward(z, np.arange(b + 1, b + 1 + M), cache=prefix, trace=tt)
        z = np.concatenate([z[:1], proj(h2[:-1])])
    if first:
        print("| sublayer | question: residual | question: update | update/residual | latents (iteration T): residual | update | update/residual |")
        print("|---|---|---|---|---|---|---|")
        for (name, xq, oq), (_, xl, ol) in zip(t0, tt):
            rq, uq, rl, ul = xq[: b + 1].mean(), oq[: b + 1].mean(), xl.mean(), ol.mean()
            print(f"| {name} | {rq:.2f} | {uq:.2f} | {uq / rq:.0%} | {rl:.2f} | {ul:.2f} | {ul / rl:.0%} |")
    seq, p0, out = [kv["eot_id"]] + prompt, b + 1 + M, []
    for _ in range(kv.get("max_answer_tokens", 16)):
        hh, cache = forward(E[seq], np.arange(p0, p0 + len(seq)), cache=cache)
        logits = hh[-1] @ (W["lm_head.weight"] if "lm_head.weight" in W else E).T
        logits[[kv["bot_id"], kv["eot_id"], kv["lat_id"], kv["pad_id"]]] = -1e30
        nt = int(logits.argmax())
        p0, seq = p0 + len(seq), [nt]
        if nt in stops:
            break
        out.append(nt)
    got = tok.decode(out).replace(",", "").strip()
    gold = pb["answer"].split("####")[-1].strip().replace(",", "")
    try:
        correct += abs(float(got) - float(gold)) <= 1e-6 * max(1.0, abs(float(gold)))
    except ValueError:
        pass
print(f"latent-mode accuracy on the first {len(problems)} problems: {correct}/{len(problems)}")
