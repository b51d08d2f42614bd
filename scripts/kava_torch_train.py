#!/usr/bin/env python3
"""One KaVa training step loop in PyTorch + transformers + PEFT: the reference that
`kava-train` is timed against (docs/method.md §1.3, §2, §3, §4).

It mirrors kava-train/src/train/step.rs and mod.rs for method `kava`, per optimizer step:

  for each micro-batch:
    teacher  [BOS] Q "\\n" C "\\n" P A EOS   -> CE_teacher, hidden states at the last P token,
                                              post-RoPE K/V (the cache) and answer queries
    eviction (scripts/evict_torch.py) of the CoT K/V to M slots (λ=0.1, max pooling, position order)
    student  [BOS] Q (pad..) <bot> <lat>×M   init pass, z⁰_j = proj(h_{q+j})
             T Jacobi passes of the M latents on the prefix cache (zᵗ_0 fixed, zᵗ_j = proj(hᵗ_{j-1}))
             tail  <eot> P A EOS on prefix + KV of pass T -> CE_student, hidden states at the last P
    loss = CE_s + CE_t + α₁·L_CODI + α₂·L_KV, divided by the number of micro-batches, backward
  mask the frozen embedding rows' gradient, clip to global norm 2.0, AdamW (warm-up + cosine)

Examples per step follow kava-train's own order (the seeded SplitMix64 Fisher-Yates of
`epoch_order`, seed 42), so the batches, sequence lengths and token counts are the ones our Rust
run sees on the same file. The projection is initialised with kava's own SplitMix64 draw, new
token rows with the mean of the old rows (as kava's resize_vocab) and LoRA as PEFT does (B = 0),
so the step-1 losses equal kava-train's up to float rounding.

    python3 scripts/kava_torch_train.py --model HF_DIR --data GSM8K_TRAIN.jsonl --steps N \\
        --micro-batch B --effective-batch E [--m 24 --t 3 --lr 8e-4 --dtype f32|bf16 \\
        --device cuda --json OUT.json --warmup-steps 3]

Timing: wall time of each optimizer step (tokenisation, all micro-batches, clipping and the
AdamW update included, as in kava-train's StepMetrics), torch.cuda.synchronize() on both sides;
median and mean over the steps after --warmup-steps. Tokens per step are counted as kava-train
counts them: per example, real teacher tokens + student question tokens + 1 + M + real tail tokens.

LoRA comes from PEFT when it is importable; otherwise (or with --lora-impl fallback) a minimal
LoRA of the same math (x·W + (α/r)·B(A(dropout(x))), A Kaiming-uniform, B zero) is used, and the
JSON says which ran.
"""
import argparse
import json
import math
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.dont_write_bytecode = True  # no __pycache__ next to evict_torch.py
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from evict_torch import evict  # noqa: E402

ANSWER_PROMPT = "The answer is:"
SPECIAL_TOKENS = ["<|kava_bot|>", "<|kava_eot|>", "<|kava_lat|>", "<|kava_pad|>"]
LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
PROJECTION_SEED = 0x6B617661  # kava/src/api.rs: Projection::init(d, 0x6B61_7661, ..)
M64 = (1 << 64) - 1


# ----------------------------------------------------------------------------------------------
# Data (kava-train/src/data/readers.rs, mod.rs)


def parse_gold_answer(text):
    """`-?digits(.digits)?` after removing commas, with the two repairs of readers.rs; else None."""
    s = text.strip().replace(",", "")
    neg = s.startswith("-")
    body = s[1:] if neg else s
    digits = lambda t: t != "" and t.isascii() and t.isdigit()  # noqa: E731
    if "." in body:
        i, f = body.split(".", 1)
        if digits(i) and digits(f):
            canon = f"{i}.{f}"
        elif f == "" and digits(i):
            canon = i
        elif i == "" and digits(f):
            canon = "0." + f
        else:
            return None
    elif digits(body):
        canon = body
    else:
        return None
    v = float(canon)
    return -v if neg else v


def split_annotations(text):
    """The `<<...>>` annotations in order; None on an unclosed `<<`."""
    out, rest = [], text
    while True:
        start = rest.find("<<")
        if start < 0:
            return out
        end = rest.find(">>", start)
        if end < 0:
            return None
        out.append(rest[start:end + 2])
        rest = rest[end + 2:]


def format_answer(v):
    """Integers without `.0`, decimals in their shortest positional form (Rust's `{}` of f64)."""
    if v == 0:
        return "0"
    if float(v).is_integer():
        return str(int(v))
    return np.format_float_positional(v, trim="-")


def read_gsm8k(path):
    """GSM8k JSONL -> [(question, aug steps, answer)]; lines kava-train skips are skipped too."""
    examples = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            question = rec["question"].strip()
            if not question:
                continue
            answer = rec["answer"].rstrip()
            sol, _, gold = answer.rpartition("\n")
            gold = gold.lstrip()
            if not gold.startswith("####"):
                continue
            steps = split_annotations(sol)
            value = parse_gold_answer(gold[4:])
            if steps is None or value is None:
                continue
            examples.append((question, steps, value))
    return examples


def mix(z):
    """SplitMix64 finaliser (kava-train/src/train/mod.rs::mix)."""
    z = (z + 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def epoch_order(n, seed, epoch):
    """kava-train's seeded Fisher-Yates order of epoch `epoch`."""
    order = list(range(n))
    s = mix(seed ^ mix(epoch + 1))
    for i in range(n - 1, 0, -1):
        s = mix(s)
        j = s % (i + 1)
        order[i], order[j] = order[j], order[i]
    return order


class Orders:
    def __init__(self, n, seed):
        self.n, self.seed, self.cache = n, seed, {}

    def step_examples(self, step, eb):
        out = []
        for s in range(step * eb, (step + 1) * eb):
            epoch = s // self.n
            if epoch not in self.cache:
                self.cache = {epoch: epoch_order(self.n, self.seed, epoch)}
            out.append(self.cache[epoch][s % self.n])
        return out


# ----------------------------------------------------------------------------------------------
# Layouts (kava-train/src/data/layout.rs)


class Tok:
    """Plain encoding through the tokenizer's `tokenizers` backend (the library kava uses), BOS as
    kava decides it: the one token the post-processor gives an empty string, if any."""

    def __init__(self, tokenizer, eos):
        self.t = getattr(tokenizer, "backend_tokenizer", None)
        self.slow = tokenizer
        self.eos = eos
        empty = self._enc("", True)
        self.bos = empty[0] if len(empty) == 1 else None

    def _enc(self, text, special):
        if self.t is not None:
            return self.t.encode(text, add_special_tokens=special).ids
        return self.slow.encode(text, add_special_tokens=special)

    def encode(self, text):
        return self._enc(text, False)


def question_ids(tok, q):
    ids = [] if tok.bos is None else [tok.bos]
    ids += tok.encode(q)
    return ids


def answer_part(tok, value):
    prompt = tok.encode(ANSWER_PROMPT)
    assert prompt, "the tokenizer encodes the answer prompt to nothing"
    return prompt, tok.encode(format_answer(value)) + [tok.eos]


def teacher_seq(tok, ex):
    """ids, q_end, trace (start, len), answer-prompt start, distill pos."""
    question, steps, value = ex
    ids = question_ids(tok, question)
    q_end = len(ids)
    ids += tok.encode("\n")
    t0 = len(ids)
    ids += tok.encode(" ".join(steps[: max(len(steps) - 1, 0)]))  # method.md §1.2: drop the last step
    t1 = len(ids)
    ids += tok.encode("\n")
    prompt, answer = answer_part(tok, value)
    p0 = len(ids)
    ids += prompt
    distill = len(ids) - 1
    ids += answer
    return dict(ids=ids, q_end=q_end, cot_start=t0, cot_len=t1 - t0, ans_start=p0, distill=distill)


def student_seq(tok, eot, ex):
    question, _, value = ex
    prompt, answer = answer_part(tok, value)
    tail = [eot] + prompt + answer
    return dict(question=question_ids(tok, question), tail=tail, distill=len(prompt))


def pad_right(rows, pad):
    width = max(len(r) for r in rows)
    ids = [r + [pad] * (width - len(r)) for r in rows]
    valid = [[True] * len(r) + [False] * (width - len(r)) for r in rows]
    return ids, valid


def positions_from(valid, start):
    """Positions counting real tokens only (kava/src/model/mod.rs): padding repeats the next one."""
    v = valid.long()
    return start[:, None] + torch.cumsum(v, 1) - v


# ----------------------------------------------------------------------------------------------
# Model pieces


class Projection(nn.Module):
    """LayerNorm(Linear(GELU(Linear(h)))) (kava/src/latent/projection.rs), kava's own init."""

    def __init__(self, d):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, d), nn.Linear(d, d)
        self.norm = nn.LayerNorm(d, eps=1e-5)
        # SplitMix64 stream of Projection::init: state_k = seed + k·γ, uniform in ±1/√d, drawn in
        # the order fc1.weight ([in, out]), fc1.bias, fc2.weight, fc2.bias.
        n = 2 * (d * d + d)
        with np.errstate(over="ignore"):
            k = np.arange(1, n + 1, dtype=np.uint64)
            z = np.uint64(PROJECTION_SEED) + k * np.uint64(0x9E3779B97F4A7C15)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
        unit = (z >> np.uint64(11)).astype(np.float64) / float(1 << 53)
        vals = ((2.0 * unit - 1.0) / math.sqrt(d)).astype(np.float32)
        o = 0
        with torch.no_grad():
            for lin in (self.fc1, self.fc2):
                lin.weight.copy_(torch.from_numpy(vals[o:o + d * d].reshape(d, d).T.copy()))
                o += d * d
                lin.bias.copy_(torch.from_numpy(vals[o:o + d].copy()))
                o += d

    def forward(self, h):
        return self.norm(self.fc2(F.gelu(self.fc1(h))))


class FallbackLoraLinear(nn.Module):
    """Minimal LoRA (only when PEFT is not importable): base(x) + (α/r)·B(A(dropout(x)))."""

    def __init__(self, base, r, alpha, dropout):
        super().__init__()
        self.base = base
        self.lora_A = nn.Linear(base.in_features, r, bias=False, device=base.weight.device)
        self.lora_B = nn.Linear(r, base.out_features, bias=False, device=base.weight.device)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.drop = nn.Dropout(dropout)
        self.scaling = alpha / r

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(self.drop(x))) * self.scaling


def attach_lora(model, args):
    """-> (causal LM with adapters, description)."""
    want = args.lora_impl
    if want in ("auto", "peft"):
        try:
            import peft
            from peft import LoraConfig, get_peft_model

            cfg = LoraConfig(r=args.lora_rank, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
                             target_modules=LORA_TARGETS, bias="none")
            pm = get_peft_model(model, cfg)
            return pm.base_model.model, f"peft {peft.__version__}"
        except ImportError:
            if want == "peft":
                raise
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in model.model.layers:
        for parent, names in ((layer.self_attn, LORA_TARGETS[:4]), (layer.mlp, LORA_TARGETS[4:])):
            for name in names:
                setattr(parent, name, FallbackLoraLinear(getattr(parent, name), args.lora_rank,
                                                         args.lora_alpha, args.lora_dropout))
    return model, "fallback (minimal LoRA in this script)"


def cache_kv(cache, layer):
    if hasattr(cache, "layers"):
        return cache.layers[layer].keys, cache.layers[layer].values
    return cache.key_cache[layer], cache.value_cache[layer]


def crop_cache(cache, n):
    """Keep the first n cached positions (version-independent: crop's meaning changed in v5)."""
    if hasattr(cache, "layers"):
        for lay in cache.layers:
            lay.keys = lay.keys[..., :n, :]
            lay.values = lay.values[..., :n, :]
    else:
        for i in range(len(cache.key_cache)):
            cache.key_cache[i] = cache.key_cache[i][..., :n, :]
            cache.value_cache[i] = cache.value_cache[i][..., :n, :]
        if hasattr(cache, "_seen_tokens"):
            cache._seen_tokens = n


def new_cache():
    from transformers import DynamicCache

    return DynamicCache()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat((-x[..., h:], x[..., :h]), -1)


class QueryCapture:
    """Post-RoPE queries of the answer positions of every layer, from hooks on self_attn (for the
    position embeddings) and on q_proj (its output, LoRA and dropout included: the queries the
    teacher pass actually used)."""

    def __init__(self, lm):
        self.active = False
        self.idx = None  # [b, a] positions
        self.rope = None
        self.out = []
        cfg = lm.config
        self.n_heads = cfg.num_attention_heads
        self.head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        for layer in lm.model.layers:
            layer.self_attn.register_forward_pre_hook(self._pre, with_kwargs=True)
            layer.self_attn.q_proj.register_forward_hook(self._q)

    def _pre(self, module, args, kwargs):
        if self.active:
            pe = kwargs.get("position_embeddings")
            if pe is None:
                pe = args[1]
            self.rope = pe

    def _q(self, module, args, out):
        if not self.active:
            return
        with torch.no_grad():
            b, a = self.idx.shape
            q = out.detach().float().gather(1, self.idx[..., None].expand(b, a, out.shape[-1]))
            q = q.view(b, a, self.n_heads, self.head_dim).transpose(1, 2)  # [b, H, a, d]
            cos, sin = (t.detach().float() for t in self.rope)
            if cos.shape[0] != b:
                cos, sin = cos.expand(b, -1, -1), sin.expand(b, -1, -1)
            gi = self.idx[..., None].expand(b, a, cos.shape[-1])
            cos, sin = cos.gather(1, gi)[:, None], sin.gather(1, gi)[:, None]
            self.out.append(q * cos + rotate_half(q) * sin)

    def start(self, idx):
        self.active, self.idx, self.out = True, idx, []

    def stop(self):
        self.active, self.rope = False, None
        return torch.cat(self.out, 1)  # [b, L·H, a, d], layer-major


# ----------------------------------------------------------------------------------------------
# Losses (kava-train/src/objective/loss.rs)


def smooth_l1(x):
    a = x.abs()
    return torch.where(a < 1.0, 0.5 * x * x, a - 0.5)


def cross_entropy(logits, targets, mask):
    """Token mean of the NLL over `mask`."""
    logp = torch.log_softmax(logits.float(), -1)
    nll = -logp.gather(2, targets.masked_fill(~mask, 0)[..., None])[..., 0]
    w = mask.float()
    return (nll * w).sum() / w.sum().clamp(min=1.0)


def codi_loss(student, teacher):
    """(1/L) Σ_ℓ mean SmoothL1(h_s − sg h_t) / σ_ℓ, σ_ℓ the unbiased std of the teacher's layer ℓ."""
    total = 0.0
    for s, t in zip(student, teacher):
        t = t.detach().float()
        sigma = t.std().clamp(min=1e-6)  # unbiased over all b·c values
        total = total + smooth_l1(s.float() - t).mean() / sigma
    return total / len(student)


def kv_loss(k_s, v_s, k_t, v_t, valid, layers):
    """½ [mean ρ((K_s − sg K̃_t)/σᴷ_ℓ) + mean ρ((V_s − sg Ṽ_t)/σⱽ_ℓ)] over valid elements."""
    b, x, m, d = k_s.shape
    g = x // layers
    w = valid.float().reshape(b, layers, g * m, 1).expand(b, layers, g * m, d)
    count = w.sum().clamp(min=1.0)
    n = w.sum((0, 2, 3))  # per layer

    def term(s, t):
        s = s.float().reshape(b, layers, g * m, d)
        t = t.detach().float().reshape(b, layers, g * m, d)
        mean = (t * w).sum((0, 2, 3)) / n.clamp(min=1.0)
        var = ((t - mean.view(1, -1, 1, 1)) ** 2 * w).sum((0, 2, 3)) / (n - 1).clamp(min=1.0)
        sigma = var.sqrt().clamp(min=1e-6).view(1, -1, 1, 1)
        return (smooth_l1((s - t) / sigma) * w).sum() / count

    return 0.5 * (term(k_s, k_t) + term(v_s, v_t))


# ----------------------------------------------------------------------------------------------
# The step


class Trainer:
    def __init__(self, args):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.args = args
        self.dev = torch.device(args.device)
        torch.manual_seed(args.seed)
        tokenizer = AutoTokenizer.from_pretrained(args.model)
        kw = dict(attn_implementation=args.attn_impl)
        try:
            model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32, **kw)
        except TypeError:
            model = AutoModelForCausalLM.from_pretrained(args.model, torch_dtype=torch.float32, **kw)
        eos = model.config.eos_token_id
        eos = eos[0] if isinstance(eos, (list, tuple)) else eos
        if eos is None:
            eos = tokenizer.eos_token_id
        self.tok = Tok(tokenizer, eos)
        # New vocabulary (kava/src/api.rs attach_latents + resize_vocab): rows past the old
        # vocabulary get the mean of the old rows.
        tokenizer.add_tokens(SPECIAL_TOKENS, special_tokens=True)
        ids = tokenizer.convert_tokens_to_ids(SPECIAL_TOKENS)
        self.bot, self.eot, self.lat, self.pad = ids
        old = model.get_input_embeddings().weight.shape[0]
        new = max(old, max(ids) + 1)
        if new > old:
            try:
                model.resize_token_embeddings(new, mean_resizing=False)
            except TypeError:
                model.resize_token_embeddings(new)
            with torch.no_grad():
                emb = model.get_input_embeddings().weight
                emb[old:] = emb[:old].mean(0)
                head = model.get_output_embeddings()
                if head is not None and head.weight.data_ptr() != emb.data_ptr():
                    head.weight[old:] = head.weight[:old].mean(0)
        self.new_rows_from = min(ids)
        model.to(self.dev)
        self.lm, self.lora_impl = attach_lora(model, args)
        self.lm.train()
        self.qcap = QueryCapture(self.lm)
        self.layers = self.lm.config.num_hidden_layers
        d = self.lm.config.hidden_size
        self.proj = Projection(d).to(self.dev)
        self.proj.train()
        # Trainable set (kava-train/src/train/params.rs): adapters, projection, new token rows.
        emb = self.lm.get_input_embeddings().weight
        head = self.lm.get_output_embeddings()
        self.row_params = [emb]
        if head is not None and head.weight is not emb:
            self.row_params.append(head.weight)
        for p in self.row_params:
            p.requires_grad_(True)
        decay, no_decay = [], []
        for p in list(self.lm.parameters()) + list(self.proj.parameters()):
            if not p.requires_grad or any(p is r for r in self.row_params):
                continue
            (decay if p.dim() > 1 else no_decay).append(p)
        self.params = decay + no_decay + self.row_params
        self.opt = torch.optim.AdamW(
            [dict(params=decay, weight_decay=args.weight_decay), dict(params=no_decay, weight_decay=0.0),
             # Row-restricted: decay applied by hand to the new rows only (Rust masks the whole update).
             dict(params=self.row_params, weight_decay=0.0)],
            lr=args.lr, betas=(0.9, 0.999), eps=1e-8, foreach=None)
        self.n_trainable = sum(p.numel() for p in decay + no_decay) + sum(
            p.shape[1] * (p.shape[0] - self.new_rows_from) for p in self.row_params)
        self.step_no = 0

    def lr_at(self, step):
        total = self.args.steps
        warm = math.ceil(self.args.warmup_frac * total)
        s = step - 1
        if s < warm:
            return self.args.lr * s / max(warm, 1)
        progress = (s - warm) / max(total - warm, 1)
        return self.args.lr * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    def base(self, **kw):
        return self.lm.model(**kw)

    def micro_loss(self, examples):
        a, dev, M, T = self.args, self.dev, self.args.m, self.args.t
        L = self.layers
        b = len(examples)
        tokens = 0
        embed = self.lm.get_input_embeddings()

        # Teacher: [BOS] Q "\n" C "\n" P A EOS.
        rows = [teacher_seq(self.tok, e) for e in examples]
        ids, valid = pad_right([r["ids"] for r in rows], self.pad)
        tokens += sum(len(r["ids"]) for r in rows)
        ids = torch.tensor(ids, device=dev)
        valid = torch.tensor(valid, device=dev)
        tlen = ids.shape[1]
        targets = torch.zeros_like(ids)
        tmask = torch.zeros_like(valid)
        for i, r in enumerate(rows):
            n = len(r["ids"])
            targets[i, r["q_end"] - 1:n - 1] = torch.tensor(r["ids"][r["q_end"]:n], device=dev)
            tmask[i, r["q_end"] - 1:n - 1] = True
        ans_len = [len(r["ids"]) - r["ans_start"] for r in rows]
        a_max = max(ans_len)
        aidx = torch.tensor([[r["ans_start"] + min(j, l - 1) for j in range(a_max)]
                             for r, l in zip(rows, ans_len)], device=dev)
        cache = new_cache()
        kava = a.method == "kava"
        if kava:
            self.qcap.start(aidx)
        out = self.base(input_ids=ids, attention_mask=valid.long(), position_ids=positions_from(valid, torch.zeros(b, dtype=torch.long, device=dev)),
                        past_key_values=cache, use_cache=True, output_hidden_states=a.method != "cot")
        q_ans = self.qcap.stop() if kava else None
        ce_t = cross_entropy(self.lm.lm_head(out.last_hidden_state), targets, tmask)
        if a.method == "cot":  # full-CoT SFT: the teacher's CE alone
            zero = torch.zeros((), device=dev)
            return ce_t, torch.stack([zero, ce_t.detach(), zero, zero]).float(), tokens
        dpos = torch.tensor([r["distill"] for r in rows], device=dev)
        t_states = [h[torch.arange(b, device=dev), dpos].detach() for h in out.hidden_states[1:]]
        # The CoT cache, evicted to M slots (method.md §4), detached.
        cot_len = [r["cot_len"] for r in rows]
        n_max = max(max(cot_len), 1)
        cidx = torch.tensor([[r["cot_start"] + min(j, max(l - 1, 0)) for j in range(n_max)]
                             for r, l in zip(rows, cot_len)], device=dev)
        with torch.no_grad():
          if kava:  # codi has no KV loss: no eviction
            ks, vs = [], []
            for layer in range(L):
                k, v = cache_kv(cache, layer)
                gi = cidx[:, None, :, None].expand(b, k.shape[1], n_max, k.shape[3])
                ks.append(k.detach().float().gather(2, gi))
                vs.append(v.detach().float().gather(2, gi))
            k_t, v_t, _, slot_mask = evict(torch.cat(ks, 1), torch.cat(vs, 1), q_ans,
                                           torch.tensor(cot_len, device=dev), torch.tensor(ans_len, device=dev),
                                           M, a.lam, "max", "position")
            del ks, vs
        del out, cache

        # Student: [BOS] Q (pad..) <bot> <lat>×M, then T Jacobi passes (kava/src/latent/jacobi.rs).
        srows = [student_seq(self.tok, self.eot, e) for e in examples]
        qlens = torch.tensor([len(r["question"]) for r in srows], device=dev)
        q = int(qlens.max())
        tokens += sum(len(r["question"]) + 1 + M for r in srows)
        init = [r["question"] + [self.pad] * (q - len(r["question"])) + [self.bot] + [self.lat] * M for r in srows]
        ivalid = torch.tensor([[j < len(r["question"]) or j >= q for j in range(q + 1 + M)] for r in srows], device=dev)
        zero = torch.zeros(b, dtype=torch.long, device=dev)
        cache = new_cache()
        out = self.base(inputs_embeds=embed(torch.tensor(init, device=dev)), attention_mask=ivalid.long(),
                        position_ids=positions_from(ivalid, zero), past_key_values=cache, use_cache=True)
        z = self.proj(out.last_hidden_state[:, q:q + M])
        prefix = ivalid[:, :q + 1]
        lat_mask = torch.cat([prefix, torch.ones(b, M, dtype=torch.bool, device=dev)], 1).long()
        lat_pos = (qlens + 1)[:, None] + torch.arange(M, device=dev)[None]
        for _ in range(T):
            crop_cache(cache, q + 1)
            out = self.base(inputs_embeds=z, attention_mask=lat_mask, position_ids=lat_pos,
                            past_key_values=cache, use_cache=True)
            z = torch.cat([z[:, :1], self.proj(out.last_hidden_state[:, :M - 1])], 1)
        # K/V of the last pass at the M latent slots (with gradient: the student side of L_KV).
        if kava:
            k_s = torch.cat([cache_kv(cache, layer)[0][:, :, q + 1:q + 1 + M] for layer in range(L)], 1)
            v_s = torch.cat([cache_kv(cache, layer)[1][:, :, q + 1:q + 1 + M] for layer in range(L)], 1)

        # Tail <eot> P A EOS on prefix + the KV of pass T.
        tails, tvalid = pad_right([r["tail"] for r in srows], self.pad)
        tokens += sum(len(r["tail"]) for r in srows)
        tails = torch.tensor(tails, device=dev)
        tvalid = torch.tensor(tvalid, device=dev)
        stargets = torch.zeros_like(tails)
        smask = torch.zeros_like(tvalid)
        for i, r in enumerate(srows):
            n = len(r["tail"])
            stargets[i, :n - 1] = torch.tensor(r["tail"][1:], device=dev)
            smask[i, :n - 1] = True
        out = self.base(inputs_embeds=embed(tails), attention_mask=torch.cat([lat_mask.bool(), tvalid], 1).long(),
                        position_ids=positions_from(tvalid, qlens + 1 + M), past_key_values=cache,
                        use_cache=True, output_hidden_states=True)
        ce_s = cross_entropy(self.lm.lm_head(out.last_hidden_state), stargets, smask)
        spos = torch.tensor([r["distill"] for r in srows], device=dev)
        s_states = [h[torch.arange(b, device=dev), spos] for h in out.hidden_states[1:]]
        codi = codi_loss(s_states, t_states)
        kv = kv_loss(k_s, v_s, k_t, v_t, slot_mask, L) if kava else torch.zeros((), device=dev)
        total = ce_s + ce_t + a.alpha_codi * codi + a.alpha_kv * kv
        terms = torch.stack([ce_s.detach(), ce_t.detach(), codi.detach(), kv.detach()]).float()
        return total, terms, tokens

    def train_step(self, examples):
        a = self.args
        sync = torch.cuda.synchronize if self.dev.type == "cuda" else (lambda: None)
        sync()
        t0 = time.perf_counter()
        self.step_no += 1
        chunks = [examples[i:i + a.micro_batch] for i in range(0, len(examples), a.micro_batch)]
        terms_sum = torch.zeros(4, device=self.dev)
        loss_sum = torch.zeros((), device=self.dev)
        tokens = 0
        for chunk in chunks:
            with torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=a.dtype == "bf16"):
                total, terms, n = self.micro_loss(chunk)
            (total / len(chunks)).backward()
            terms_sum += terms
            loss_sum += total.detach().float()
            tokens += n
        with torch.no_grad():
            for p in self.row_params:  # only the new token rows train
                if p.grad is not None:
                    p.grad[:self.new_rows_from].zero_()
        grad_norm = torch.nn.utils.clip_grad_norm_([p for p in self.params if p.grad is not None], a.grad_clip)
        lr = self.lr_at(self.step_no)
        for g in self.opt.param_groups:
            g["lr"] = lr
        with torch.no_grad():
            for p in self.row_params:  # AdamW's decoupled decay, new rows only
                p[self.new_rows_from:].mul_(1.0 - lr * a.weight_decay)
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        terms = (terms_sum / len(chunks)).tolist()
        loss = float(loss_sum) / len(chunks)
        grad_norm = float(grad_norm)
        sync()
        seconds = time.perf_counter() - t0
        return dict(step=self.step_no, lr=lr, loss=loss, ce_student=terms[0], ce_teacher=terms[1], codi=terms[2],
                    kv=terms[3], grad_norm=grad_norm, clip_scale=min(1.0, a.grad_clip / (grad_norm + 1e-6)),
                    tokens=tokens, seconds=seconds, tokens_per_s=tokens / max(seconds, 1e-9))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="HF model directory")
    p.add_argument("--data", required=True, help="GSM8k JSONL (train)")
    p.add_argument("--steps", type=int, required=True, help="optimizer steps (also the schedule's total)")
    p.add_argument("--micro-batch", type=int, required=True)
    p.add_argument("--effective-batch", type=int, required=True)
    p.add_argument("--method", choices=["kava", "codi", "cot"], default="kava",
                   help="kava (as above); codi: no KV loss and no eviction (pass --m 6 --t 6 for its preset); cot: teacher CE only")
    p.add_argument("--m", type=int, default=24, help="latents M")
    p.add_argument("--t", type=int, default=3, help="Jacobi iterations T")
    p.add_argument("--lr", type=float, default=8e-4)
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--warmup-frac", type=float, default=0.03, help="LR warm-up fraction of --steps")
    p.add_argument("--grad-clip", type=float, default=2.0)
    p.add_argument("--alpha-codi", type=float, default=10.0)
    p.add_argument("--alpha-kv", type=float, default=1.0)
    p.add_argument("--lam", type=float, default=0.1, help="eviction λ")
    p.add_argument("--lora-rank", type=int, default=128)
    p.add_argument("--lora-alpha", type=float, default=32.0)
    p.add_argument("--lora-dropout", type=float, default=0.1)
    p.add_argument("--lora-impl", choices=["auto", "peft", "fallback"], default="auto")
    p.add_argument("--seed", type=int, default=42, help="data order (kava-train's optim.seed) and torch RNG")
    p.add_argument("--dtype", choices=["f32", "bf16"], default="f32",
                   help="bf16: autocast(bfloat16) around the forward passes, weights f32")
    p.add_argument("--attn-impl", default="sdpa", help="transformers attn_implementation")
    p.add_argument("--tf32", action="store_true", help="allow TF32 matmuls (off: full f32, PyTorch's default)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--warmup-steps", type=int, default=3, help="steps left out of the timing summary")
    p.add_argument("--json", help="write config, per-step figures and the summary here")
    args = p.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    torch.backends.cudnn.allow_tf32 = args.tf32

    data = read_gsm8k(args.data)
    if not data:
        sys.exit(f"{args.data}: no usable examples")
    tr = Trainer(args)
    orders = Orders(len(data), args.seed)
    cuda = tr.dev.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    import transformers

    gpu = torch.cuda.get_device_name(tr.dev) if cuda else platform.processor() or platform.machine()
    print(f"kava_torch_train | torch {torch.__version__} transformers {transformers.__version__} | LoRA {tr.lora_impl} | "
          f"{gpu} | {len(data)} examples | {args.steps} steps of {args.effective_batch} ({args.micro_batch} per micro-batch) "
          f"| M={args.m} T={args.t} | {args.dtype} | {tr.n_trainable} trainable parameters", flush=True)
    steps = []
    for s in range(args.steps):
        idx = orders.step_examples(s, args.effective_batch)
        m = tr.train_step([data[i] for i in idx])
        if cuda:
            m["peak_mem_bytes"] = torch.cuda.max_memory_allocated(tr.dev)
        steps.append(m)
        for key in ("loss", "ce_student", "ce_teacher", "codi", "kv"):
            if not math.isfinite(m[key]):
                sys.exit(f"step {m['step']}: {key} is {m[key]}")
        print(f"step {m['step']:>4} | loss {m['loss']:.4f} (ce_s {m['ce_student']:.4f} ce_t {m['ce_teacher']:.4f} "
              f"codi {m['codi']:.4f} kv {m['kv']:.4f}) | gnorm {m['grad_norm']:.3f} | lr {m['lr']:.2e} | "
              f"{m['tokens']} tok | {m['seconds']:.3f} s | {m['tokens_per_s']:.0f} tok/s", flush=True)
    timed = steps[args.warmup_steps:] or steps
    secs = [m["seconds"] for m in timed]
    summary = dict(
        timed_steps=len(timed),
        median_step_s=statistics.median(secs),
        mean_step_s=statistics.fmean(secs),
        median_tokens_per_s=statistics.median(m["tokens_per_s"] for m in timed),
        tokens_per_s=sum(m["tokens"] for m in timed) / sum(secs),
        mean_tokens_per_step=statistics.fmean(m["tokens"] for m in timed),
        peak_mem_bytes=torch.cuda.max_memory_allocated(tr.dev) if cuda else None,
        peak_reserved_bytes=torch.cuda.max_memory_reserved(tr.dev) if cuda else None,
    )
    print(f"summary | {len(timed)} timed steps | median {summary['median_step_s']:.3f} s mean {summary['mean_step_s']:.3f} s "
          f"| {summary['tokens_per_s']:.0f} tok/s"
          + (f" | peak {summary['peak_mem_bytes'] / 2**30:.2f} GiB" if cuda else ""), flush=True)
    if args.json:
        try:
            import peft

            peft_version = peft.__version__
        except ImportError:
            peft_version = None
        doc = dict(
            impl="pytorch", method=args.method, config=vars(args), lora_impl=tr.lora_impl, n_examples=len(data),
            n_trainable=tr.n_trainable, torch=torch.__version__, transformers=transformers.__version__,
            peft=peft_version, python=platform.python_version(), device=gpu,
            cuda=torch.version.cuda if cuda else None, steps=steps, summary=summary)
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1)


if __name__ == "__main__":
    main()
