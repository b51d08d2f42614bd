#!/usr/bin/env python3
"""Writes the tiny random HF models under tests/fixtures/ and what HF transformers computes on them.

Each case directory gets:
  config.json, model.safetensors (f32), tokenizer.json, tokenizer_config.json  -- a loadable HF model
  expected.safetensors -- for prompt i: `logits.{i}` [S, V], `hidden.{i}.{l}` [S, C] for l = 0..L
                          (HF `hidden_states`: 0 = embeddings, l = output of layer l, L = after the
                          final norm), `k.{i}.{l}` / `v.{i}.{l}` [G, S, D] post-RoPE keys / values
                          from the cache
  expected.json        -- prompts, their ids (special tokens added as the tokenizer does), greedy
                          continuation ids, the seed and the versions that produced all of it

Run with the pinned versions recorded in expected.json (torch 2.11, transformers 5.x, tokenizers):
  python3 tests/scripts/make_fixtures.py --out tests/fixtures
Deterministic: CPU, float32, eager attention, a fixed seed.
"""
import argparse
import json
import os
import platform
import sys

import torch
import transformers
import tokenizers
from safetensors.torch import save_file
from tokenizers import Tokenizer, models, pre_tokenizers, decoders, trainers, processors

SEED = 20261123
PROMPTS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many in May.",
    "The answer is: 72",
]
GREEDY_NEW_TOKENS = 12
CORPUS = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May.",
    "How many clips did Natalia sell altogether in April and May? The answer is: 72",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting.",
    "Betty is saving money for a new wallet which costs $100. <<100/2=50>> <<50+15+30=95>>",
    "James writes a 3-page letter to 2 different friends twice a week. #### 624",
    "Hello world! The quick brown fox jumps over the lazy dog. 0123456789 + - * / = ( )",
] * 4


def make_tokenizer(bos: bool) -> Tokenizer:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer=trainer)
    if bos:
        # Llama-style: the tokenizer itself prepends BOS.
        bos_id = tok.token_to_id("<|endoftext|>")
        tok.post_processor = processors.TemplateProcessing(
            single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", bos_id)]
        )
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def perturb(model, scale_gen):
    """HF's init (std 0.02, norms 1, biases 0) makes near-zero logits; a parity test needs O(1)."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=scale_gen))
            elif name.endswith(".bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=scale_gen))
            else:
                p.copy_(0.15 * torch.randn(p.shape, generator=scale_gen))


def cache_kv(pkv, layer):
    if hasattr(pkv, "layers"):
        return pkv.layers[layer].keys, pkv.layers[layer].values
    return pkv[layer][0], pkv[layer][1]


def write_case(out_dir, name, config, bos):
    path = os.path.join(out_dir, name)
    os.makedirs(path, exist_ok=True)
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    tok = make_tokenizer(bos)
    assert tok.get_vocab_size() <= config.vocab_size
    eos = tok.token_to_id("<|endoftext|>")
    config.bos_token_id = eos
    config.eos_token_id = eos
    model_cls = {"llama": transformers.LlamaForCausalLM, "qwen2": transformers.Qwen2ForCausalLM}[
        config.model_type
    ]
    model = model_cls(config).eval()
    perturb(model, gen)
    model.save_pretrained(path, safe_serialization=True)
    tok.save(os.path.join(path, "tokenizer.json"))
    with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
        json.dump(
            {
                "tokenizer_class": "PreTrainedTokenizerFast",
                "bos_token": "<|endoftext|>" if bos else None,
                "eos_token": "<|endoftext|>",
                "add_bos_token": bos,
                "model_max_length": config.max_position_embeddings,
            },
            f,
            indent=2,
        )

    tensors = {}
    meta = {"prompts": []}
    for i, text in enumerate(PROMPTS):
        ids = tok.encode(text).ids
        x = torch.tensor([ids])
        with torch.no_grad():
            out = model(x, output_hidden_states=True, use_cache=True)
        tensors[f"logits.{i}"] = out.logits[0].contiguous()
        for l, h in enumerate(out.hidden_states):
            tensors[f"hidden.{i}.{l}"] = h[0].contiguous()
        for l in range(config.num_hidden_layers):
            k, v = cache_kv(out.past_key_values, l)
            tensors[f"k.{i}.{l}"] = k[0].contiguous()
            tensors[f"v.{i}.{l}"] = v[0].contiguous()
        # Plain greedy decoding by full re-forward: no cache, no generate() heuristics.
        seq = list(ids)
        with torch.no_grad():
            for _ in range(GREEDY_NEW_TOKENS):
                logits = model(torch.tensor([seq])).logits[0, -1]
                seq.append(int(torch.argmax(logits)))
        meta["prompts"].append({"text": text, "ids": ids, "greedy": seq[len(ids):]})
    save_file(tensors, os.path.join(path, "expected.safetensors"))
    meta.update(
        {
            "case": name,
            "seed": SEED,
            "generator": "tests/scripts/make_fixtures.py",
            "versions": {
                "python": platform.python_version(),
                "torch": torch.__version__,
                "transformers": transformers.__version__,
                "tokenizers": tokenizers.__version__,
            },
            "attn_implementation": "eager",
            "dtype": "float32",
        }
    )
    with open(os.path.join(path, "expected.json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"{name}: {sum(p.numel() for p in model.parameters())} params, prompts {[len(p['ids']) for p in meta['prompts']]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "fixtures"))
    args = ap.parse_args()
    torch.use_deterministic_algorithms(True)

    # Untied head, GQA (4 query heads on 2 KV heads), head_dim (16) != hidden / heads (12),
    # llama3 rope scaling with a small original context so that all three frequency bands occur.
    llama = transformers.LlamaConfig(
        vocab_size=320,
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=512,
        rms_norm_eps=1e-5,
        rope_theta=500000.0,
        rope_scaling={
            "rope_type": "llama3",
            "factor": 8.0,
            "low_freq_factor": 1.0,
            "high_freq_factor": 4.0,
            "original_max_position_embeddings": 16,
        },
        tie_word_embeddings=False,
        attention_bias=False,
        attn_implementation="eager",
    )
    # Qwen2: q/k/v bias, tied embeddings, 4 heads on 1 KV head.
    qwen2 = transformers.Qwen2Config(
        vocab_size=320,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        max_position_embeddings=512,
        rms_norm_eps=1e-6,
        rope_theta=1000000.0,
        tie_word_embeddings=True,
        attn_implementation="eager",
    )
    write_case(args.out, "tiny-llama", llama, bos=True)
    write_case(args.out, "tiny-qwen2", qwen2, bos=False)


if __name__ == "__main__":
    sys.exit(main())
