//! The `kava-train` binary on hostile input, generated from the fixtures: every configuration
//! field set (`--set`, a TOML file) to values it must refuse, odd numbers for every flag,
//! damaged checkpoints restored by `export` and `train --resume`, run and output directories
//! that must not be written over, training and evaluation data with nothing usable or too long
//! for the model. Each case must exit non-zero with a message naming the field, flag, file or
//! tensor at fault — never a panic (exit code 101, "panicked at") or a signal — or do what the
//! help text documents (over-long training examples are left out and counted).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use kava::load::safetensors::{parse, serialize, StoreDtype};
use kava::load::HostTensor;

struct Case {
    name: String,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    /// Every string must appear in stderr (or, for `ok` cases, in stdout + stderr).
    want: Vec<String>,
    /// At least one must appear (empty: no such condition).
    any: Vec<String>,
    ok: bool,
}

fn case<S: AsRef<str>>(args: &[S], want: &[&str]) -> Case {
    let args: Vec<String> = args.iter().map(|s| s.as_ref().to_string()).collect();
    Case { name: args.join(" "), args, env: vec![], want: want.iter().map(|s| s.to_string()).collect(), any: vec![], ok: false }
}

fn check(c: &Case) -> Result<(), String> {
    let out = Command::new(env!("CARGO_BIN_EXE_kava-train"))
        .args(&c.args)
        .envs(c.env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_BACKTRACE", "0")
        .output()
        .map_err(|e| format!("could not run: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let all = format!("{}{stderr}", String::from_utf8_lossy(&out.stdout));
    match out.status.code() {
        None => return Err(format!("killed by a signal: {stderr}")),
        Some(101) => return Err(format!("panicked: {stderr}")),
        _ if stderr.contains("panicked at") => return Err(format!("panicked: {stderr}")),
        _ => {}
    }
    if c.ok != out.status.success() {
        return Err(format!("exit {:?}, expected {}: {all}", out.status.code(), if c.ok { "success" } else { "failure" }));
    }
    let text = if c.ok { &all } else { &stderr };
    if let Some(w) = c.want.iter().find(|w| !text.contains(w.as_str())) {
        return Err(format!("output lacks `{w}`: {text}"));
    }
    if !c.any.is_empty() && !c.any.iter().any(|w| text.contains(w.as_str())) {
        return Err(format!("output names none of {:?}: {text}", c.any));
    }
    Ok(())
}

fn run_all(label: &str, cases: Vec<Case>) -> usize {
    let n = cases.len();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 4);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(c) = cases.get(i) else { break };
                if let Err(e) = check(c) {
                    failures.lock().unwrap().push(format!("{}: {e}", c.name));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{label}: {} of {n} cases misbehaved:\n{}", failures.len(), failures.join("\n\n"));
    eprintln!("{label}: {n} cases behaved");
    n
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture(case: &str) -> String {
    root().join("tests/fixtures").join(case).display().to_string()
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kava-train-robust-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// `--set` values each field must refuse, and what the message must name besides the field.
fn hostile_settings() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        ("optim.lr", vec!["0", "-1", "inf", "nan", "2.0", "\"x\""]),
        ("optim.weight_decay", vec!["-1", "inf", "nan", "2"]),
        ("optim.warmup_frac", vec!["-0.1", "1", "nan", "inf"]),
        ("optim.grad_clip", vec!["-1", "inf", "nan"]),
        ("optim.epochs", vec!["0", "-1", "1000000"]),
        ("optim.max_steps", vec!["-1", "2e9", "4398046511104"]),
        ("optim.micro_batch", vec!["0", "-1", "100000"]),
        ("optim.effective_batch", vec!["0", "7", "-1"]),
        ("optim.dtype", vec!["f8", "3"]),
        ("optim.seed", vec!["-1", "x"]),
        ("lora.dropout", vec!["2.0", "-0.1", "1.0", "nan", "inf"]),
        ("lora.alpha", vec!["0", "-1", "inf", "nan"]),
        ("lora.rank", vec!["0", "-1", "100000"]),
        ("loss.alpha_codi", vec!["-1", "inf", "nan"]),
        ("loss.alpha_kv", vec!["-1", "inf", "nan"]),
        ("loss.kv_rho", vec!["l3", "1"]),
        ("evict.lambda", vec!["2", "-1", "nan"]),
        ("evict.pool", vec!["min"]),
        ("evict.order", vec!["random"]),
        ("evict.method", vec!["x"]),
        ("latent.num_latents", vec!["0", "-1", "5000"]),
        ("latent.num_iterations", vec!["-1", "2000"]),
        ("latent.projection_scale", vec!["big"]),
        ("data.pad_multiple", vec!["0", "-1", "5000"]),
        ("data.trace", vec!["xml"]),
        ("data.limit", vec!["-1"]),
        ("checkpoint.eval_max_cot_tokens", vec!["0", "2000000"]),
        ("checkpoint.every", vec!["-1"]),
        ("method", vec!["gpt"]),
        ("model", vec!["\"\""]),
    ]
}

#[test]
fn every_configuration_field_refuses_hostile_values_by_name() {
    let mut cases = Vec::new();
    for (field, values) in hostile_settings() {
        for v in values {
            let set = format!("{field}={v}");
            cases.push(case(&["train", "--dry-run", "--set", &set], &["kava-train: error:", field]));
        }
    }
    for (set, want) in [("optim.lrr=1", "not a configuration field"), ("optim.lr", "section.field=value"), ("=1", "empty key"), ("optimizer.lr=1", "optimizer")] {
        cases.push(case(&["train", "--dry-run", "--set", set], &[want]));
    }
    // The same checks on a TOML file, which the message names.
    let dir = tmp("toml");
    for (i, (text, field)) in [
        ("[optim]\nlr = nan\n", "optim.lr"),
        ("[optim]\nlr = inf\n", "optim.lr"),
        ("[lora]\ndropout = 2.0\n", "lora.dropout"),
        ("[optim]\nmicro_batch = 0\n", "optim.micro_batch"),
        ("[optim]\nlearning_rate = 1e-3\n", "learning_rate"),
        ("method = \"codi\"\n", "latent.num_iterations"),
        ("not toml at all = = =\n", "run-6.toml"),
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.join(format!("run-{i}.toml"));
        std::fs::write(&path, text).unwrap();
        cases.push(case(&["train", "--dry-run", "--config", &s(&path)], &[&format!("run-{i}.toml"), field]));
    }
    cases.push(case(&["train", "--dry-run", "--config", "/nonexistent/run.toml"], &["/nonexistent/run.toml"]));
    cases.push(case(&["train", "--dry-run", "--preset", "gpt-5"], &["gpt-5"]));
    cases.push(case(&["train", "--dry-run", "--method", "magic"], &["magic"]));
    assert!(run_all("configuration fields", cases) >= 85);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn every_numeric_flag_refuses_zero_negative_and_garbage() {
    let dir = tmp("flags");
    let data = dir.join("q.txt");
    std::fs::write(&data, "Tom has 3 apples. How many?||<<3=3>> #### 3\n").unwrap();
    let (data, m) = (s(&data), fixture("tiny-qwen2"));
    let out = s(&dir.join("out"));
    let flags: Vec<(Vec<&str>, &str, Vec<&str>)> = vec![
        (vec!["eval", "--model", &m, "--data", &data], "--limit", vec!["0", "-1", "x"]),
        (vec!["eval", "--model", &m, "--data", &data], "--batch-size", vec!["0", "-1", "100000"]),
        (vec!["eval", "--model", &m, "--data", &data], "--max-cot-tokens", vec!["0", "x", "2000000"]),
        (vec!["train", "--dry-run"], "--stop-after", vec!["0", "-1", "x"]),
        (vec!["synth", "--out", &out], "--train", vec!["-1", "x", "20000000"]),
        (vec!["synth", "--out", &out], "--test", vec!["-1", "2000000"]),
        (vec!["synth", "--out", &out], "--seed", vec!["-1", "x"]),
        (vec!["init-model", "--data", &data, "--out", &out], "--vocab-size", vec!["0", "299", "-1", "x", "2000000"]),
        (vec!["init-model", "--data", &data, "--out", &out], "--hidden", vec!["0", "1", "-1", "100000"]),
        (vec!["init-model", "--data", &data, "--out", &out], "--layers", vec!["0", "2000"]),
        (vec!["init-model", "--data", &data, "--out", &out], "--heads", vec!["0", "2000"]),
        (vec!["init-model", "--data", &data, "--out", &out], "--kv-heads", vec!["0", "x"]),
        (vec!["init-model", "--data", &data, "--out", &out], "--intermediate", vec!["0", "2000000"]),
        (vec!["init-model", "--data", &data, "--out", &out], "--max-positions", vec!["0", "20000000"]),
    ];
    let mut cases = Vec::new();
    for (prefix, flag, values) in &flags {
        for v in values {
            let mut args = prefix.clone();
            args.extend([*flag, *v]);
            if prefix[0] == "eval" {
                args.extend(["--backend", "cpu"]);
            }
            let mut c = case(&args, &["error"]);
            c.any = vec![flag.to_string(), format!("'{v}'")];
            cases.push(c);
        }
    }
    // Shapes that parse but cannot be built, and memory beyond the budget.
    let data_big = dir.join("big.txt");
    let lines: Vec<String> = (0..40).map(|i| format!("Tom has {i} apples and buys {}. How many?||<<{i}+4={}>> #### {}", 4, i + 4, i + 4)).collect();
    std::fs::write(&data_big, lines.join("\n")).unwrap();
    let data_big = s(&data_big);
    cases.push(case(&["init-model", "--data", &data_big, "--out", &out, "--vocab-size", "300", "--heads", "8", "--kv-heads", "3"], &["kv_heads 3"]));
    cases.push(case(&["init-model", "--data", &data_big, "--out", &out, "--vocab-size", "300", "--hidden", "30", "--heads", "4"], &["hidden 30"]));
    let mut huge = case(&["init-model", "--data", &data_big, "--out", &out, "--vocab-size", "300", "--hidden", "65536", "--layers", "1024", "--heads", "64", "--kv-heads", "8", "--intermediate", "1000000"], &["GiB", "KAVA_MEMORY_LIMIT_GIB"]);
    huge.env.push(("KAVA_MEMORY_LIMIT_GIB", "1".into()));
    cases.push(huge);
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let garbage = dir.join("garbage.txt");
    std::fs::write(&garbage, "nothing\nto see\n").unwrap();
    cases.push(case(&["init-model", "--data", &s(&empty), "--out", &out], &["empty.txt", "no usable problem"]));
    cases.push(case(&["init-model", "--data", &s(&garbage), "--out", &out], &["garbage.txt", "no usable problem"]));
    cases.push(case(&["init-model", "--data", "/nonexistent/train.txt", "--out", &out], &["/nonexistent/train.txt"]));
    let notes = dir.join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("todo.txt"), "keep").unwrap();
    cases.push(case(&["init-model", "--data", &data_big, "--out", &s(&notes), "--vocab-size", "300"], &["notes", "no config.json"]));
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    cases.push(case(&["synth", "--out", &s(&file), "--train", "2", "--test", "1"], &["a-file"]));
    // kava-train eval on files with nothing usable, and bad modes.
    for (name, text, want) in [("empty.txt", "", "no records"), ("garbage.txt", "nothing\nto see\n", "malformed"), ("misnamed.txt", "{\"question\": \"Q?\", \"answer\": \"#### 3\"}\n", "GSM8k-Aug")] {
        let path = dir.join(format!("eval-{name}"));
        std::fs::write(&path, text).unwrap();
        cases.push(case(&["eval", "--model", &m, "--data", &s(&path), "--mode", "nocot", "--backend", "cpu"], &[name, want]));
    }
    cases.push(case(&["eval", "--model", &m, "--data", &data, "--mode", "fast", "--backend", "cpu"], &["fast"]));
    cases.push(case(&["eval", "--model", &m, "--data", &data, "--mode", "nocot,foo", "--backend", "cpu"], &["foo"]));
    cases.push(case(&["eval", "--model", &m, "--data", &s(&dir), "--mode", "nocot", "--backend", "cpu"], &[&s(&dir)]));
    let long = dir.join("long.txt");
    std::fs::write(&long, format!("{}||<<1+1=2>> #### 2\n", "Natalia sold clips to her friends in April. ".repeat(80))).unwrap();
    cases.push(case(&["eval", "--model", &m, "--data", &s(&long), "--mode", "nocot", "--backend", "cpu"], &["long.txt line 1", "512"]));
    // Plotting nothing.
    let metrics = dir.join("metrics.jsonl");
    std::fs::write(&metrics, "").unwrap();
    cases.push(case(&["plot", "--metrics", &s(&metrics), "--out", &s(&dir.join("c.svg"))], &["metrics.jsonl", "no metrics records"]));
    let bad_metrics = dir.join("bad-metrics.jsonl");
    std::fs::write(&bad_metrics, "{\"step\": 1, \"loss\": 2}\nnot json\n").unwrap();
    cases.push(case(&["plot", "--metrics", &s(&bad_metrics), "--out", &s(&dir.join("c.svg"))], &["bad-metrics.jsonl", "line 2"]));
    cases.push(case(&["plot", "--metrics", "/nonexistent/m.jsonl", "--out", &s(&dir.join("c.svg"))], &["/nonexistent/m.jsonl"]));
    cases.push(case(&["plot", "--metrics", &s(&metrics.with_file_name("nowhere")), "--out", &s(&dir.join("c.svg"))], &["nowhere"]));
    assert!(run_all("flags", cases) >= 55);
    assert_eq!(std::fs::read_to_string(notes.join("todo.txt")).unwrap(), "keep");
    std::fs::remove_dir_all(&dir).ok();
}

/// A short kava run on the tiny fixture stopped at step 2 of 4 (`checkpoint-0000002`), made once.
struct Run {
    dir: PathBuf,
    train: PathBuf,
}

fn the_run() -> &'static Run {
    static RUN: OnceLock<Run> = OnceLock::new();
    RUN.get_or_init(|| {
        let dir = tmp("run");
        let train = dir.join("train.txt");
        let lines: Vec<String> =
            (0..16).map(|i| format!("Tom has {i} apples and buys 3, then doubles them. How many now?||<<{i}+3={}>> <<{}*2={}>> #### {}", i + 3, i + 3, 2 * (i + 3), 2 * (i + 3))).collect();
        std::fs::write(&train, lines.join("\n") + "\n").unwrap();
        let run = Run { dir: dir.clone(), train };
        let mut c = case(&train_args(&run, &dir.join("run")), &["kava-train: 2 steps"]);
        c.args.extend(["--stop-after".into(), "2".into()]);
        c.ok = true;
        check(&c).unwrap_or_else(|e| panic!("the base run failed: {e}"));
        assert!(dir.join("run/checkpoint-0000002/state.json").exists());
        run
    })
}

/// `train` on the tiny fixture into `run_dir` (4 steps of 4 examples, checkpoint every 2).
fn train_args(run: &Run, run_dir: &Path) -> Vec<String> {
    let mut a: Vec<String> = vec!["train".into(), "--method".into(), "kava".into(), "--backend".into(), "cpu".into()];
    for set in [
        format!("model=\"{}\"", fixture("tiny-llama")),
        format!("data.train=\"{}\"", s(&run.train)),
        "latent.num_latents=4".into(),
        "latent.num_iterations=2".into(),
        "lora.rank=4".into(),
        "optim.micro_batch=4".into(),
        "optim.effective_batch=4".into(),
        "optim.max_steps=4".into(),
        format!("checkpoint.dir=\"{}\"", s(run_dir)),
        "checkpoint.every=2".into(),
    ] {
        a.push("--set".into());
        a.push(set);
    }
    a
}

/// A copy of the base run's directory.
fn copy_run(tag: &str) -> PathBuf {
    let run = the_run();
    let to = run.dir.join(format!("copy-{tag}"));
    let _ = std::fs::remove_dir_all(&to);
    copy_tree(&run.dir.join("run"), &to);
    to
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn edit_tensors(file: &Path, edit: impl FnOnce(&mut Vec<(String, HostTensor)>)) {
    let mut list: Vec<(String, HostTensor)> = parse(&std::fs::read(file).unwrap(), file).unwrap().into_iter().collect();
    edit(&mut list);
    std::fs::write(file, serialize(&list, StoreDtype::F32).unwrap()).unwrap();
}

fn edit_state(ck: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = ck.join("state.json");
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut v);
    std::fs::write(&path, v.to_string()).unwrap();
}

#[test]
fn damaged_checkpoints_are_refused_by_export_and_resume_naming_file_and_tensor() {
    let run = the_run();
    let ck_name = "checkpoint-0000002";
    let state: serde_json::Value = serde_json::from_slice(&std::fs::read(run.dir.join("run").join(ck_name).join("state.json")).unwrap()).unwrap();
    let params: Vec<String> = state["params"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    let moments: Vec<String> = state["moments"].as_array().expect("state.json lists the moments").iter().map(|v| v.as_str().unwrap().to_string()).collect();
    let (p0, m0) = (params[0].clone(), moments[0].clone());
    type Damage = Box<dyn Fn(&Path)>;
    let set_first = |value: f32| -> Damage {
        let p0 = p0.clone();
        Box::new(move |ck: &Path| edit_tensors(&ck.join("params.safetensors"), |l| l.iter_mut().find(|(n, _)| *n == p0).unwrap().1.data[0] = value))
    };
    let set_moment = |suffix: &'static str, value: f32| -> Damage {
        let name = format!("{m0}.{suffix}");
        Box::new(move |ck: &Path| edit_tensors(&ck.join("optimizer.safetensors"), |l| l.iter_mut().find(|(n, _)| *n == name).unwrap().1.data[0] = value))
    };
    let remove = |file: &'static str, name: String| -> Damage { Box::new(move |ck: &Path| edit_tensors(&ck.join(file), |l| l.retain(|(n, _)| *n != name))) };
    let cut = |file: &'static str| -> Damage {
        Box::new(move |ck: &Path| {
            let b = std::fs::read(ck.join(file)).unwrap();
            std::fs::write(ck.join(file), &b[..b.len() / 2]).unwrap();
        })
    };
    // (what, damage, the message names these); a few only concern a resume (the export takes the
    // checkpoint's own configuration).
    let damages: Vec<(&str, Damage, Vec<String>)> = vec![
        ("a missing parameter", remove("params.safetensors", p0.clone()), vec!["params.safetensors".into(), format!("`{p0}` is missing")]),
        ("a misshaped parameter", {
            let p0 = p0.clone();
            Box::new(move |ck: &Path| edit_tensors(&ck.join("params.safetensors"), |l| l.iter_mut().find(|(n, _)| *n == p0).unwrap().1 = HostTensor::new(vec![1], vec![0.0])))
        }, vec!["params.safetensors".into(), p0.clone(), "[1]".into()]),
        ("a NaN parameter", set_first(f32::NAN), vec!["params.safetensors".into(), p0.clone(), "NaN".into()]),
        ("an infinite parameter", set_first(f32::INFINITY), vec!["params.safetensors".into(), p0.clone(), "inf".into()]),
        ("a NaN first moment", set_moment("exp_avg", f32::NAN), vec!["optimizer.safetensors".into(), format!("{m0}.exp_avg"), "NaN".into()]),
        ("a negative second moment", set_moment("exp_avg_sq", -1.0), vec!["optimizer.safetensors".into(), format!("{m0}.exp_avg_sq"), "-1".into()]),
        ("a missing first moment", remove("optimizer.safetensors", format!("{m0}.exp_avg")), vec!["optimizer.safetensors".into(), format!("{m0}.exp_avg` is missing")]),
        ("a missing second moment", remove("optimizer.safetensors", format!("{m0}.exp_avg_sq")), vec!["optimizer.safetensors".into(), format!("{m0}.exp_avg_sq` is missing")]),
        ("no optimizer file", Box::new(|ck: &Path| std::fs::remove_file(ck.join("optimizer.safetensors")).unwrap()), vec!["optimizer.safetensors".into()]),
        ("a cut parameter file", cut("params.safetensors"), vec!["params.safetensors".into()]),
        ("a cut optimizer file", cut("optimizer.safetensors"), vec!["optimizer.safetensors".into()]),
        ("a garbage state.json", Box::new(|ck: &Path| std::fs::write(ck.join("state.json"), "{ nope").unwrap()), vec!["state.json".into()]),
        ("a step that is no number", Box::new(|ck: &Path| edit_state(ck, |v| v["step"] = "two".into())), vec!["state.json".into(), "two".into()]),
        ("another parameter list", Box::new(|ck: &Path| edit_state(ck, |v| v["params"][0] = "model.layers.9.x".into())), vec!["state.json".into(), "model.layers.9.x".into()]),
        ("moments of an unknown parameter", Box::new(|ck: &Path| edit_state(ck, |v| v["moments"].as_array_mut().unwrap().push("ghost".into()))), vec!["state.json".into(), "ghost".into()]),
        ("another method in the saved config", Box::new(|ck: &Path| edit_state(ck, |v| v["config"] = v["config"].as_str().unwrap().replace("method = \"kava\"", "method = \"cot\"").into())), vec!["state.json".into(), "`method` differs".into()]),
        ("an invalid saved config", Box::new(|ck: &Path| edit_state(ck, |v| v["config"] = v["config"].as_str().unwrap().replace("dropout = 0.1", "dropout = 2.0").into())), vec!["state.json".into(), "lora.dropout".into()]),
        ("no state.json", Box::new(|ck: &Path| std::fs::remove_file(ck.join("state.json")).unwrap()), vec!["latest".into(), "no state.json".into()]),
    ];
    let mut cases = Vec::new();
    for (i, (what, damage, want)) in damages.iter().enumerate() {
        let dir = copy_run(&format!("damage-{i}"));
        damage(&dir.join(ck_name));
        let want: Vec<&str> = want.iter().map(String::as_str).collect();
        if !what.contains("method") {
            let mut export = case(&["export", "--checkpoint", &s(&dir), "--out", &s(&dir.join("export"))], &want);
            export.name = format!("export, {what}");
            cases.push(export);
        }
        let mut resume = case(&train_args(run, &dir), &want);
        resume.args.push("--resume".into());
        resume.name = format!("resume, {what}");
        cases.push(resume);
    }
    // Only a resume cares about the schedule; `latest` pointing nowhere stops both.
    let dir = copy_run("past-schedule");
    edit_state(&dir.join(ck_name), |v| v["step"] = 9.into());
    let mut c = case(&train_args(run, &dir), &["state.json", "step 9", "schedule"]);
    c.args.push("--resume".into());
    cases.push(c);
    let dir = copy_run("shorter-schedule");
    let mut c = case(&train_args(run, &dir), &["state.json", "4-step schedule", "3 steps"]);
    c.args.extend(["--resume".into(), "--set".into(), "optim.max_steps=3".into()]);
    cases.push(c);
    let dir = copy_run("other-rank");
    let mut c = case(&train_args(run, &dir), &["state.json", "`lora` differs"]);
    c.args.extend(["--resume".into(), "--set".into(), "lora.rank=8".into()]);
    cases.push(c);
    let dir = copy_run("dangling-latest");
    std::fs::write(dir.join("latest"), "checkpoint-0000099").unwrap();
    cases.push(case(&["export", "--checkpoint", &s(&dir), "--out", &s(&dir.join("x"))], &["latest", "checkpoint-0000099"]));
    let mut c = case(&train_args(run, &dir), &["latest", "checkpoint-0000099"]);
    c.args.push("--resume".into());
    cases.push(c);
    cases.push(case(&["export", "--checkpoint", "/nonexistent/run", "--out", &s(&run.dir.join("y"))], &["/nonexistent/run"]));
    assert!(run_all("damaged checkpoints", cases) >= 40);
}

#[test]
fn run_and_output_directories_are_not_written_over() {
    let run = the_run();
    let mut cases = Vec::new();
    // A fresh start in a directory that holds a run would cut its metrics.
    let dir = copy_run("fresh-start");
    let metrics_before = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap();
    cases.push(case(&train_args(run, &dir), &[&s(&dir), "holds a training run", "--resume"]));
    // Export: into a non-empty directory only with --overwrite, into a model directory.
    let out = run.dir.join("export-target");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("config.json"), "{}").unwrap();
    std::fs::write(out.join("kava.json"), "{}").unwrap();
    let ck = s(&copy_run("export-src"));
    cases.push(case(&["export", "--checkpoint", &ck, "--out", &s(&out)], &["export-target", "--overwrite"]));
    let notes = run.dir.join("export-notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("todo.txt"), "keep").unwrap();
    cases.push(case(&["export", "--checkpoint", &ck, "--out", &s(&notes), "--overwrite"], &["export-notes", "no config.json"]));
    // A checkpoint whose adapters overflow when merged: export refuses the non-finite model.
    let huge = copy_run("overflow");
    edit_tensors(&huge.join("checkpoint-0000002/params.safetensors"), |l| {
        for (n, t) in l.iter_mut().filter(|(n, _)| n.contains("layers.0.self_attn.q_proj")) {
            let _ = n;
            t.data.iter_mut().for_each(|x| *x = 1e30);
        }
    });
    cases.push(case(&["export", "--checkpoint", &s(&huge), "--out", &s(&huge.join("export"))], &["model.safetensors", "non-finite"]));
    run_all("run and output directories", cases);
    assert_eq!(std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap(), metrics_before, "the refused run touched the metrics");
    assert!(!huge.join("export").exists(), "a refused export left a directory");
    assert_eq!(std::fs::read_to_string(notes.join("todo.txt")).unwrap(), "keep");
    // With --overwrite the model directory is replaced whole: the stale kava.json is the export's.
    let mut over = case(&["export", "--checkpoint", &ck, "--out", &s(&out), "--overwrite"], &["exported"]);
    over.ok = true;
    run_all("export --overwrite", vec![over]);
    let kava_json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("kava.json")).unwrap()).unwrap();
    assert_eq!(kava_json["num_latents"], 4);
}

#[test]
fn training_examples_too_long_for_the_model_are_left_out_and_counted() {
    let run = the_run();
    let dir = tmp("long-examples");
    let long_q = "Natalia sold clips to her friends in April and then more in May. ".repeat(40);
    let mut lines = std::fs::read_to_string(&run.train).unwrap();
    lines.push_str(&format!("{long_q}||<<1+1=2>> #### 2\n"));
    let train = dir.join("train.txt");
    std::fs::write(&train, &lines).unwrap();
    let with_long = Run { dir: dir.clone(), train: train.clone() };
    let mut ok = case(&train_args(&with_long, &dir.join("run")), &["left out 1 training examples longer than the model's 512 positions", "line 17", "kava-train: 1 steps"]);
    ok.args.extend(["--stop-after".into(), "1".into()]);
    ok.ok = true;
    let only_long = dir.join("only-long.txt");
    std::fs::write(&only_long, format!("{long_q}||<<1+1=2>> #### 2\n")).unwrap();
    let bad = Run { dir: dir.clone(), train: only_long };
    let none = case(&train_args(&bad, &dir.join("run-none")), &["only-long.txt", "no usable training example", "512 positions"]);
    let valid = dir.join("valid.txt");
    std::fs::write(&valid, format!("{long_q}||<<1+1=2>> #### 2\n")).unwrap();
    let mut long_valid = case(&train_args(run, &dir.join("run-valid")), &["valid.txt line 1", "512"]);
    long_valid.args.extend(["--set".into(), format!("data.valid=\"{}\"", s(&valid))]);
    let empty_valid = dir.join("empty-valid.txt");
    std::fs::write(&empty_valid, "").unwrap();
    let mut no_valid = case(&train_args(run, &dir.join("run-novalid")), &["empty-valid.txt", "no usable evaluation record"]);
    no_valid.args.extend(["--set".into(), format!("data.valid=\"{}\"", s(&empty_valid))]);
    let empty_train = dir.join("empty-train.txt");
    std::fs::write(&empty_train, "").unwrap();
    let empty = case(&train_args(&Run { dir: dir.clone(), train: empty_train }, &dir.join("run-empty")), &["empty-train.txt", "no usable training examples"]);
    let missing = case(&train_args(&Run { dir: dir.clone(), train: dir.join("missing.txt") }, &dir.join("run-missing")), &["missing.txt"]);
    // LoRA adapters far wider than the model: refused against the memory budget before loading.
    let mut wide = case(&train_args(run, &dir.join("run-wide")), &["lora.rank 65536", "GiB", "KAVA_MEMORY_LIMIT_GIB"]);
    wide.args.extend(["--set".into(), "lora.rank=65536".into()]);
    wide.env.push(("KAVA_MEMORY_LIMIT_GIB", "1".into()));
    let mut no_model = case(&train_args(run, &dir.join("run-nomodel")), &["/nonexistent/model"]);
    no_model.args.extend(["--set".into(), "model=\"/nonexistent/model\"".into()]);
    // A micro-batch whose activations alone exceed the budget, and padding past the context.
    let mut huge_batch = case(&train_args(run, &dir.join("run-batch")), &["optim.micro_batch 65536", "GiB"]);
    huge_batch.args.extend(["--set".into(), "optim.micro_batch=65536".into(), "--set".into(), "optim.effective_batch=65536".into()]);
    huge_batch.env.push(("KAVA_MEMORY_LIMIT_GIB", "4".into()));
    let mut pad = case(&train_args(run, &dir.join("run-pad")), &["data.pad_multiple 1024", "512 positions"]);
    pad.args.extend(["--set".into(), "data.pad_multiple=1024".into()]);
    let cases = vec![ok, none, long_valid, no_valid, empty, missing, wide, no_model, huge_batch, pad];
    run_all("over-long and missing data, memory", cases);
    for d in ["run-none", "run-valid", "run-novalid", "run-empty", "run-missing", "run-wide", "run-nomodel", "run-batch", "run-pad"] {
        assert!(!dir.join(d).join("metrics.jsonl").exists(), "{d}: a refused run wrote metrics");
    }
    std::fs::remove_dir_all(&dir).ok();
}
