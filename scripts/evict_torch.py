#!/usr/bin/env python3
"""The KV eviction of method.md §4 in PyTorch, written for the comparison with kava's CubeCL kernels.

Same function as shaders/src/evict (importance from answer queries with GQA max/mean pooling,
redundancy from key cosine similarity, score λ·I + (1−λ)·R, top-M, position or score order,
gather of K and V, slot mask), batched over examples and layers·KV heads like the kernels.

    python3 scripts/evict_torch.py verify CASE.json     # equal to the Rust reference's indices
    python3 scripts/evict_torch.py bench [--b 128 --layers 30 --kv-heads 3 --group 3 --d 64
                                          --a 16 --m 24 --n 48,128,256 --iters 20 --warmup 3
                                          --compile --json FILE]

CASE.json comes from `evict-bench case CASE.json`. Timing: CUDA events around each call, median
over --iters calls after --warmup calls, inputs alternating between two sets, the same ragged
lengths as evict-bench.
"""
import argparse
import json
import math
import sys

import torch


def evict(k, v, q, cot, ans, m=24, lam=0.1, pool="max", order="position"):
    """k, v: [b, x, n, d]; q: [b, x*r, a, d]; cot, ans: int64 [b] -> (k_out, v_out, idx, mask)."""
    b, x, n, d = k.shape
    r = q.shape[1] // x
    a = q.shape[2]
    dev = k.device
    kvalid = torch.arange(n, device=dev)[None, :] < cot[:, None]  # [b, n]
    s = torch.zeros(b, x, n, device=dev, dtype=torch.float32)
    if lam > 0:
        logits = (q.view(b, x, r * a, d) @ k.transpose(2, 3)).view(b, x, r, a, n)
        pooled = logits.amax(2) if pool == "max" else logits.mean(2)
        pooled = (pooled / math.sqrt(d)).masked_fill(~kvalid[:, None, None, :], float("-inf"))
        p = torch.softmax(pooled, -1).nan_to_num(0.0)  # [b, x, a, n]
        avalid = (torch.arange(a, device=dev)[None, :] < ans[:, None]).float()
        imp = (p * avalid[:, None, :, None]).sum(2) / ans.clamp(min=1)[:, None, None].float()
        uniform = kvalid.float() / cot.clamp(min=1)[:, None].float()
        imp = torch.where((ans == 0)[:, None, None], uniform[:, None, :], imp)
        s = s + lam * imp
    if lam < 1:
        unit = k / (k.norm(dim=-1, keepdim=True) + 1e-8)
        sim = unit @ unit.transpose(2, 3)
        sim = sim * (1 - torch.eye(n, device=dev))[None, None] * kvalid[:, None, None, :].float()
        red = -sim.sum(-1) / cot.clamp(min=1)[:, None, None].float()
        red = red.masked_fill(~kvalid[:, None, :], float("-inf"))
        s = s + (1 - lam) * torch.softmax(red, -1).nan_to_num(0.0)
    s = s.masked_fill(~kvalid[:, None, :], float("-inf"))
    if n < m:
        s = torch.cat([s, torch.full((b, x, m - n), float("-inf"), device=dev)], -1)
    idx = s.topk(m, dim=-1).indices  # [b, x, m], best first
    mask = (torch.arange(m, device=dev)[None, :] < cot.clamp(max=m)[:, None])[:, None, :].expand(b, x, m)
    if order == "position":
        idx = torch.where(mask, idx, n + m).sort(-1).values
    idx = torch.where(mask, idx, 0)
    g = idx.clamp(max=n - 1)[..., None].expand(b, x, m, d)
    keep = mask[..., None].to(k.dtype)
    k_out = k.gather(2, g) * keep
    v_out = v.gather(2, g) * keep
    return k_out, v_out, torch.where(mask, idx, -1), mask


def verify(path):
    c = json.load(open(path))
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    b, x, g, n, a, d = (c[key] for key in ("b", "x", "group", "n", "a", "d"))
    k = torch.tensor(c["k"], device=dev).view(b, x, n, d)
    v = torch.tensor(c["v"], device=dev).view(b, x, n, d)
    q = torch.tensor(c["q"], device=dev).view(b, x * g, a, d)
    cot = torch.tensor(c["cot"], device=dev)
    ans = torch.tensor(c["ans"], device=dev)
    for res in c["results"]:
        ko, vo, idx, mask = evict(k, v, q, cot, ans, res["m"], res["lambda"], res["pool"], res["order"])
        want = torch.tensor(res["indices"], device=dev).view(b, x, res["m"])
        if not torch.equal(idx, want):
            bad = (idx != want).nonzero()[:5].tolist()
            sys.exit(f"evict_torch: indices differ from the Rust reference for {res} at {bad}")
        gathered = k.gather(2, want.clamp(min=0)[..., None].expand(-1, -1, -1, d)) * (want >= 0)[..., None]
        if not torch.allclose(ko, gathered, atol=1e-6):
            sys.exit(f"evict_torch: K differs for {res}")
    print(f"evict_torch: {len(c['results'])} configurations equal the Rust reference on {dev}")


def bench(args):
    dev = "cuda"
    b, x, g, d, a, m = args.b, args.layers * args.kv_heads, args.group, args.d, args.a, args.m
    fn = torch.compile(evict, dynamic=False) if args.compile else evict
    label = "torch.compile" if args.compile else "eager"
    rows = []
    print(f"PyTorch {torch.__version__} {label} on {torch.cuda.get_device_name()}: B={b} x={x} group={g} d={d} a={a} M={m}")
    for n in [int(s) for s in args.n.split(",")]:
        gen = torch.Generator(device=dev).manual_seed(n)
        sets = [
            [torch.rand(shape, device=dev, generator=gen) * 2 - 1 for shape in ((b, x, n, d), (b, x, n, d), (b, x * g, a, d))]
            for _ in range(2)
        ]
        cot = torch.tensor([n - (i * 7) % max(n * 2 // 5, 1) for i in range(b)], device=dev)
        ans = torch.tensor([a - (i * 3) % max(a // 2, 1) for i in range(b)], device=dev)
        times = []
        for it in range(args.warmup + args.iters):
            k, v, q = sets[it % 2]
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            out = fn(k, v, q, cot, ans, m, 0.1, "max", "position")
            end.record()
            torch.cuda.synchronize()
            del out
            if it >= args.warmup:
                times.append(start.elapsed_time(end))
        times.sort()
        ms = times[len(times) // 2]
        print(f"{n:>5} {ms:>10.3f} ms")
        rows.append({"impl": f"torch-{label}", "n": n, "b": b, "x": x, "group": g, "d": d, "a": a, "m": m, "ms": ms})
    if args.json:
        with open(args.json, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    sv = sub.add_parser("verify")
    sv.add_argument("case")
    sb = sub.add_parser("bench")
    for flag, default in (("b", 128), ("layers", 30), ("kv-heads", 3), ("group", 3), ("d", 64), ("a", 16), ("m", 24), ("iters", 20), ("warmup", 3)):
        sb.add_argument(f"--{flag}", type=int, default=default)
    sb.add_argument("--n", default="48,128,256")
    sb.add_argument("--compile", action="store_true")
    sb.add_argument("--json")
    args = p.parse_args()
    verify(args.case) if args.cmd == "verify" else bench(args)


if __name__ == "__main__":
    main()
