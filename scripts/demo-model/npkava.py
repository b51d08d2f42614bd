"""A NumPy re-implementation of a kava model directory (Llama-style layers, the latent projection
and latent mode of method.md §2) for diagnostics that need the model's internals. Used by
`latent-scale.py`, `kv-offsets.py`, `digit-cost.py`, `latent-numbers.py` and `latent-readout.py`;
needs `pip install numpy tokenizers`."""
import json
import re
import struct
from math import erf

import numpy as np
from tokenizers import Tokenizer


def load_safetensors(path):
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


_gelu = np.vectorize(lambda v: 0.5 * v * (1 + erf(v / np.sqrt(2))))


def trace_steps(answer, trace="nl"):
    """The solution's steps in the trace style kava-train trains on: `aug` the `<<…>>` equations,
    `nl` the sentences with the equations' markup removed (the last step is the caller's to drop)."""
    body = [s for s in answer.split("\n") if not s.startswith("####")]
    if trace == "aug":
        return re.findall(r"<<[^>]*>>", "\n".join(body))
    return [t for t in (re.sub(r"<<[^>]*>>", "", s).strip() for s in body) if t]


def smooth_l1(d):
    """ρ of L_KV and L_CODI (β = 1), elementwise."""
    a = np.abs(d)
    return np.where(a < 1, 0.5 * d * d, a - 0.5)


# token_kinds' values
COPIED, COMPUTED, OTHER = 0, 1, 2


class Model:
    def __init__(self, directory):
        d = directory.rstrip("/") + "/"
        self.W = load_safetensors(d + "model.safetensors")
        self.P = load_safetensors(d + "kava.safetensors")
        self.cfg = json.load(open(d + "config.json"))
        self.kv = json.load(open(d + "kava.json"))
        self.tok = Tokenizer.from_file(d + "tokenizer.json")
        c = self.cfg
        self.L, self.H, self.KV = c["num_hidden_layers"], c["num_attention_heads"], c["num_key_value_heads"]
        self.hd = c.get("head_dim") or c["hidden_size"] // self.H
        self.eps = c["rms_norm_eps"]
        self.E = self.W["model.embed_tokens.weight"]
        self.inv = 1.0 / (c.get("rope_theta", 10000.0) ** (np.arange(0, self.hd, 2) / self.hd))
        eos = c["eos_token_id"]
        self.stops = {eos} if isinstance(eos, int) else set(eos)
        self.bos = [c["bos_token_id"]] if c.get("bos_token_id") is not None else []
        self.M, self.T = self.kv["num_latents"], self.kv["num_iterations"]

    def encode(self, text):
        return self.tok.encode(text, add_special_tokens=False).ids

    def token_kinds(self, ids, question, probe=False):
        """Per trace token: COPIED (a digit of a number the question states), COMPUTED (a digit of
        a number it does not: a step's result, where it is written and where a later step reuses
        it) or OTHER. Digits are one per token in these vocabularies, so a number is a run of digit
        tokens. probe: scripts/latent-depth/gen.py traces, where every digit is in the question's
        link list: COMPUTED is the digit a link leads to (after `>` or `to`, spaces skipped)."""
        texts = [self.tok.decode([t]).strip() for t in ids]
        if probe:
            prev = lambda i: next((texts[j] for j in range(i - 1, -1, -1) if texts[j]), "")
            return [OTHER if not x.isdigit() else COMPUTED if prev(i) in (">", "o") else COPIED
                    for i, x in enumerate(texts)]
        known = set(re.findall(r"\d+", question.replace(",", "")))
        out, i = [], 0
        while i < len(ids):
            if texts[i].isdigit():
                j = i
                while j < len(ids) and texts[j].isdigit():
                    j += 1
                out += [COPIED if "".join(texts[i:j]) in known else COMPUTED] * (j - i)
                i = j
            else:
                out.append(OTHER)
                i += 1
        return out

    def slot_tokens(self, z=None):
        """The nearest vocabulary token of each latent fed in the last Jacobi iteration (top-1 of
        `z · Eᵀ`, special tokens excluded — what `kava demo --show-latents` lists first), as text;
        or of the latents `z` given (e.g. one of `self.iterates`)."""
        kv = self.kv
        logits = (self.last_inputs if z is None else z) @ self.E.T
        logits[:, [kv["bot_id"], kv["eot_id"], kv["lat_id"], kv["pad_id"]]] = -np.inf
        return [self.tok.decode([int(i)]) for i in logits.argmax(1)]

    def rms(self, x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + self.eps) * w

    def rope(self, x, pos, sign=1.0):
        """HF half rotation of x [n, heads, hd] to positions pos (sign -1 undoes it)."""
        f = np.outer(pos, self.inv) * sign
        c, s = np.cos(f)[:, None, :], np.sin(f)[:, None, :]
        h = self.hd // 2
        x1, x2 = x[..., :h], x[..., h:]
        return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s], -1)

    def forward(self, emb, pos, cache=None, trace=None, queries=None):
        """Input embeddings [n, d] at positions pos on top of cache (per layer post-RoPE K, V).
        Returns the post-norm hidden states and the cache extended by this block. `trace`
        collects (name, residual norms, update norms) per sublayer; `queries` the post-RoPE
        queries [n, H, hd] per layer."""
        W, H, KV, hd = self.W, self.H, self.KV, self.hd
        x, new = emb.copy(), []
        for l in range(self.L):
            p = f"model.layers.{l}."
            h = self.rms(x, W[p + "input_layernorm.weight"])
            q = self.rope((h @ W[p + "self_attn.q_proj.weight"].T).reshape(-1, H, hd), pos)
            k = self.rope((h @ W[p + "self_attn.k_proj.weight"].T).reshape(-1, KV, hd), pos)
            v = (h @ W[p + "self_attn.v_proj.weight"].T).reshape(-1, KV, hd)
            if queries is not None:
                queries.append(q)
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
            h = self.rms(x, W[p + "post_attention_layernorm.weight"])
            g, u = h @ W[p + "mlp.gate_proj.weight"].T, h @ W[p + "mlp.up_proj.weight"].T
            m = (g / (1 + np.exp(-g)) * u) @ W[p + "mlp.down_proj.weight"].T
            if trace is not None:
                trace.append((f"layer {l} MLP", np.linalg.norm(x, axis=1), np.linalg.norm(m, axis=1)))
            x = x + m
        return self.rms(x, W["model.norm.weight"]), new

    def proj(self, h):
        if not self.kv.get("use_projection", True):
            return h
        P = self.P
        y = _gelu(h @ P["projection.fc1.weight"].T + P["projection.fc1.bias"]) @ P["projection.fc2.weight"].T + P["projection.fc2.bias"]
        y = (y - y.mean(-1, keepdims=True)) / np.sqrt(y.var(-1, keepdims=True) + 1e-5)
        return y * P["projection.norm.weight"] + P["projection.norm.bias"]

    def latent_pass(self, question, trace_init=None, trace_last=None):
        """The init pass and T Jacobi iterations for `question`: returns (b, the cache after
        iteration T, the first latent's z norm). b is the position of <bot>; `self.last_inputs`
        keeps the M embeddings fed in iteration T (`zᵀ⁻¹`, what `kava --show-latents` shows);
        `self.iterates` every z: [z⁰ (from the init pass), z¹, …, zᵀ (never fed: what an iteration
        T + 1 would read)]."""
        kv, M = self.kv, self.M
        ids = self.bos + self.encode(question) + [kv["bot_id"]]
        b = len(ids) - 1
        h, c = self.forward(np.concatenate([self.E[ids], np.repeat(self.E[[kv["lat_id"]]], M, 0)]), np.arange(len(ids) + M), trace=trace_init)
        prefix = [(K[: b + 1], V[: b + 1]) for K, V in c]
        z = self.proj(h[b:b + M])
        z_norm = np.linalg.norm(z, axis=1).mean()
        cache = prefix
        self.last_inputs = np.repeat(self.E[[kv["lat_id"]]], M, 0)
        self.iterates = [z]
        for t in range(self.T):
            self.last_inputs = z  # zᵀ⁻¹ once the loop ends: the latents whose KV the answer reads
            h2, cache = self.forward(z, np.arange(b + 1, b + 1 + M), cache=prefix, trace=trace_last if t == self.T - 1 else None)
            z = np.concatenate([z[:1], self.proj(h2[:-1])])
            self.iterates.append(z)
        return b, cache, z_norm

    def answer(self, b, cache):
        """Greedy answer after `<eot> P` on the latent cache; returns the text."""
        kv = self.kv
        seq, p0, out = [kv["eot_id"]] + self.encode(kv["answer_prompt"]), b + 1 + self.M, []
        head = self.W["lm_head.weight"] if "lm_head.weight" in self.W else self.E
        for _ in range(kv.get("max_answer_tokens", 16)):
            hh, cache = self.forward(self.E[seq], np.arange(p0, p0 + len(seq)), cache=cache)
            logits = hh[-1] @ head.T
            logits[[kv["bot_id"], kv["eot_id"], kv["lat_id"], kv["pad_id"]]] = -1e30
            nt = int(logits.argmax())
            p0, seq = p0 + len(seq), [nt]
            if nt in self.stops:
                break
            out.append(nt)
        return self.tok.decode(out)


def correct(got, gold):
    """The eval protocol's comparison of the generated text with the gold answer."""
    import re
    nums = re.findall(r"-?\d+(?:\.\d+)?", got.replace(",", ""))
    try:
        return bool(nums) and abs(float(nums[-1]) - float(gold)) <= 1e-6 * max(1.0, abs(float(gold)))
    except ValueError:
        return False
