//! `evict-bench`: conformance and timing of the KV eviction (method.md §4) on one device.
//!
//! ```text
//! evict-bench check [--backend wgpu|cuda]         # kernel + tensor-ops sweep vs the reference
//! evict-bench bench [--backend wgpu|cuda] [--b 128] [--layers 30] [--kv-heads 3] [--group 3]
//!                   [--d 64] [--a 16] [--m 24] [--n 48,128,256] [--iters 20] [--warmup 3]
//!                   [--json FILE]                # kernel vs tensor-ops, median ms per call
//! evict-bench case FILE                           # a small case + reference result as JSON,
//!                                                 # for scripts/evict_torch.py to verify against
//! ```
//! Defaults are SmolLM2-135M's shape (30 layers, 3 KV heads of 3 query heads, head dim 64) at a
//! training batch of 128. Times are wall-clock around one call followed by a device sync,
//! median over `--iters` calls after `--warmup` calls, inputs alternating between two sets.

use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use shaders::evict::check::{self, Lcg};
use shaders::evict::{kernel, reference, tensor_ops, BatchShape, EvictConfig, EvictedTensors, Method, Order, Pool};

fn device(name: &str) -> Result<Device, String> {
    match name {
        #[cfg(feature = "wgpu")]
        "wgpu" => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
        #[cfg(feature = "cuda")]
        "cuda" => Ok(Device::cuda(0)),
        other => Err(format!("backend `{other}` is not compiled into this evict-bench (features: wgpu, cuda)")),
    }
}

fn default_backend() -> &'static str {
    if cfg!(feature = "cuda") {
        "cuda"
    } else {
        "wgpu"
    }
}

struct Args(Vec<String>);
impl Args {
    fn get(&self, flag: &str) -> Option<&str> {
        self.0.iter().position(|a| a == flag).and_then(|i| self.0.get(i + 1)).map(String::as_str)
    }
    fn usize(&self, flag: &str, default: usize) -> Result<usize, String> {
        self.get(flag).map_or(Ok(default), |v| v.parse().map_err(|_| format!("{flag}: `{v}` is not a whole number")))
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let result = match argv.first().map(String::as_str) {
        Some("check") => run_check(&Args(argv[1..].to_vec())),
        Some("bench") => run_bench(&Args(argv[1..].to_vec())),
        Some("case") => argv.get(1).ok_or_else(|| "case needs an output FILE".to_string()).and_then(|f| write_case(f)),
        _ => Err("usage: evict-bench check|bench|case … (see the file's docs)".to_string()),
    };
    if let Err(e) = result {
        eprintln!("evict-bench: {e}");
        std::process::exit(1);
    }
}

fn run_check(args: &Args) -> Result<(), String> {
    let name = args.get("--backend").unwrap_or(default_backend());
    let dev = device(name)?;
    let t = Instant::now();
    let n_ops = check::sweep(&dev, &format!("tensor-ops {name}"), tensor_ops::evict)?;
    println!("tensor-ops on {name}: {n_ops} cases equal the reference");
    let n_kernel = check::sweep(&dev, &format!("kernel {name}"), |k, v, q, c, a, cfg| {
        kernel::evict(k, v, q, c, a, cfg).expect("kernel path on a cubecl device")
    })?;
    println!("kernel on {name}: {n_kernel} cases equal the reference ({:.1} s)", t.elapsed().as_secs_f64());
    Ok(())
}

fn sync(dev: &Device, out: EvictedTensors) -> Result<(), String> {
    drop(out);
    dev.sync().map_err(|e| format!("device sync: {e:?}"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn run_bench(args: &Args) -> Result<(), String> {
    let name = args.get("--backend").unwrap_or(default_backend());
    let dev = device(name)?;
    let b = args.usize("--b", 128)?;
    let layers = args.usize("--layers", 30)?;
    let kv = args.usize("--kv-heads", 3)?;
    let group = args.usize("--group", 3)?;
    let d = args.usize("--d", 64)?;
    let a = args.usize("--a", 16)?;
    let m = args.usize("--m", 24)?;
    let iters = args.usize("--iters", 20)?.max(1);
    let warmup = args.usize("--warmup", 3)?;
    let ns: Vec<usize> = args
        .get("--n")
        .unwrap_or("48,128,256")
        .split(',')
        .map(|s| s.trim().parse().map_err(|_| format!("--n: `{s}` is not a whole number")))
        .collect::<Result<_, _>>()?;
    let x = layers * kv;
    let cfg = EvictConfig { m, method: Method::Mix { lambda: 0.1 }, pool: Pool::Max, order: Order::Position };
    let mut rows = Vec::new();
    println!("device {name}: B={b} L·G={layers}·{kv} group={group} d={d} answer={a} M={m} λ=0.1 max-pool position-order; median of {iters}");
    println!("{:>5} {:>12} {:>14} {:>8}", "N", "kernel ms", "tensor-ops ms", "ratio");
    for &n in &ns {
        let mut rng = Lcg(7 + n as u64);
        // Two input sets, alternated, so repeated calls do not just re-read a warm cache.
        let sets: Vec<[Tensor<4>; 3]> = (0..2)
            .map(|_| {
                let mut t = |len: usize, shape: [usize; 4]| Tensor::<4>::from_data(TensorData::new(rng.vec(len), shape), &dev);
                [t(b * x * n * d, [b, x, n, d]), t(b * x * n * d, [b, x, n, d]), t(b * x * group * a * d, [b, x * group, a, d])]
            })
            .collect();
        // Ragged lengths, as a real batch has: 60–100 % of N, answers 50–100 % of a.
        let cot: Vec<usize> = (0..b).map(|i| n - (i * 7) % (n * 2 / 5).max(1)).collect();
        let ans: Vec<usize> = (0..b).map(|i| a - (i * 3) % (a / 2).max(1)).collect();
        let time = |path: &str| -> Result<f64, String> {
            let mut v = Vec::with_capacity(iters);
            for it in 0..warmup + iters {
                let [k, vv, q] = sets[it % 2].clone();
                let t = Instant::now();
                let out = match path {
                    "kernel" => kernel::evict(k, vv, q, &cot, &ans, &cfg).ok_or("the kernels do not run on this device")?,
                    _ => tensor_ops::evict(k, vv, q, &cot, &ans, &cfg),
                };
                sync(&dev, out)?;
                if it >= warmup {
                    v.push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
            Ok(median(v))
        };
        let tk = time("kernel")?;
        let to = time("tensor-ops")?;
        println!("{n:>5} {tk:>12.3} {to:>14.3} {:>7.1}×", to / tk);
        rows.push(format!(
            "{{\"device\":\"{name}\",\"b\":{b},\"x\":{x},\"group\":{group},\"d\":{d},\"a\":{a},\"m\":{m},\"n\":{n},\"kernel_ms\":{tk:.4},\"tensor_ops_ms\":{to:.4}}}"
        ));
    }
    if let Some(path) = args.get("--json") {
        std::fs::write(path, rows.join("\n") + "\n").map_err(|e| format!("{path}: {e}"))?;
    }
    Ok(())
}

/// A small case with the reference's result, for cross-checking other implementations.
fn write_case(path: &str) -> Result<(), String> {
    let (b, x, group, n, a, d) = (3usize, 4usize, 3usize, 40usize, 5usize, 16usize);
    let cot = [40usize, 23, 9];
    let ans = [5usize, 2, 4];
    let mut rng = Lcg(99);
    let (k, v, q) = (rng.vec(b * x * n * d), rng.vec(b * x * n * d), rng.vec(b * x * group * a * d));
    let shape = BatchShape { b, lg: x, group, n_max: n, a_max: a, d };
    let list = |v: &[f32]| v.iter().map(|f| format!("{f:e}")).collect::<Vec<_>>().join(",");
    let mut results = Vec::new();
    for (lambda, pool, order) in [(0.1f32, "max", "position"), (0.0, "max", "position"), (1.0, "mean", "score")] {
        let cfg = EvictConfig {
            m: 24,
            method: Method::Mix { lambda },
            pool: if pool == "max" { Pool::Max } else { Pool::Mean },
            order: if order == "position" { Order::Position } else { Order::Score },
        };
        let out = reference::evict_batch(&k, &v, &q, &cot, &ans, shape, &cfg);
        let idx = out.indices.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",");
        results.push(format!("{{\"lambda\":{lambda},\"pool\":\"{pool}\",\"order\":\"{order}\",\"m\":24,\"indices\":[{idx}]}}"));
    }
    let json = format!(
        "{{\"b\":{b},\"x\":{x},\"group\":{group},\"n\":{n},\"a\":{a},\"d\":{d},\"cot\":{cot:?},\"ans\":{ans:?},\"k\":[{}],\"v\":[{}],\"q\":[{}],\"results\":[{}]}}\n",
        list(&k),
        list(&v),
        list(&q),
        results.join(",")
    );
    std::fs::write(path, json).map_err(|e| format!("{path}: {e}"))
}
