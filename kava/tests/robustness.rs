//! The `kava` binary on hostile input, generated from the fixtures: every numeric flag of every
//! command with values it must refuse, prompts and budgets past the model's context, evaluation
//! files with nothing usable, model directories whose tokenizer is another model's, output
//! directories that must not be written over. Each case must exit non-zero (clap's usage errors:
//! 2, kava's: 1) with a message naming the flag, file, field or value — never a panic (exit code
//! 101, "panicked at") or a signal — or do what the help text documents.

use std::path::{Path, PathBuf};
use std::process::Command;

/// One invocation and what it must print.
struct Case {
    name: String,
    args: Vec<String>,
    env: Vec<(&'static str, String)>,
    /// Every string must appear in stderr.
    want: Vec<String>,
    /// At least one of these must appear in stderr (none: no such condition).
    any: Vec<String>,
    /// The documented behaviour is success (then `want` is checked in stdout + stderr).
    ok: bool,
}

fn case(args: &[&str], want: &[&str]) -> Case {
    Case {
        name: args.join(" "),
        args: args.iter().map(|s| s.to_string()).collect(),
        env: vec![],
        want: want.iter().map(|s| s.to_string()).collect(),
        any: vec![],
        ok: false,
    }
}

/// Runs one case; `Err` says how it misbehaved.
fn check(c: &Case) -> Result<(), String> {
    let out = Command::new(env!("CARGO_BIN_EXE_kava"))
        .args(&c.args)
        .envs(c.env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("RUST_BACKTRACE", "0")
        .output()
        .map_err(|e| format!("could not run: {e}"))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
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
    let text = if c.ok { &all } else { &stderr.to_string() };
    if let Some(w) = c.want.iter().find(|w| !text.contains(w.as_str())) {
        return Err(format!("output lacks `{w}`: {text}"));
    }
    if !c.any.is_empty() && !c.any.iter().any(|w| text.contains(w.as_str())) {
        return Err(format!("output names none of {:?}: {text}", c.any));
    }
    Ok(())
}

/// Runs the cases on a few threads and fails listing every case that misbehaved.
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

fn fixture(case: &str) -> String {
    format!("{}/../tests/fixtures/{case}", env!("CARGO_MANIFEST_DIR"))
}

fn tmp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kava-cli-robust-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn copy_dir(from: &str, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

/// Values no count flag takes, and what clap says about each.
const NOT_COUNTS: [&str; 5] = ["-1", "abc", "1.5", "", "99999999999999999999999"];

#[test]
fn every_numeric_flag_refuses_zero_negative_and_garbage() {
    let m = fixture("tiny-llama");
    let data = format!("{}/../kava/models/demo/questions.txt", env!("CARGO_MANIFEST_DIR"));
    // (command prefix, flag, values refused beyond NOT_COUNTS)
    let flags: Vec<(Vec<&str>, &str, Vec<&str>)> = vec![
        (vec!["generate", "--model", &m, "--prompt", "x"], "--max-new-tokens", vec!["0", "2000000"]),
        (vec!["solve", "--model", &m, "--question", "x"], "--latents", vec!["0", "5000"]),
        (vec!["solve", "--model", &m, "--question", "x"], "--iterations", vec!["2000"]),
        (vec!["solve", "--model", &m, "--question", "x"], "--max-answer-tokens", vec!["0"]),
        (vec!["solve", "--model", &m, "--question", "x"], "--max-cot-tokens", vec!["0"]),
        (vec!["solve", "--model", &m, "--question", "x"], "--show-latents", vec!["0", "1001"]),
        (vec!["eval", "--model", &m, "--data", &data], "--limit", vec!["0"]),
        (vec!["eval", "--model", &m, "--data", &data], "--batch-size", vec!["0", "100000"]),
        (vec!["eval", "--model", &m, "--data", &data], "--max-cot-tokens", vec!["0"]),
        (vec!["bench", "--model", &m], "--questions", vec!["0", "9"]),
        (vec!["bench", "--model", &m], "--latents", vec!["0"]),
        (vec!["throughput", "--model", &m], "--prompt-len", vec!["0", "20000000"]),
        (vec!["throughput", "--model", &m], "--batch", vec!["0", "100000"]),
        (vec!["throughput", "--model", &m], "--decode", vec!["0"]),
        (vec!["throughput", "--model", &m], "--reps", vec!["0", "1001"]),
        (vec!["demo"], "--count", vec!["0"]),
        (vec!["demo"], "--max-cot-tokens", vec!["0"]),
        (vec!["demo"], "--show-latents", vec!["0"]),
    ];
    let mut cases = Vec::new();
    for (prefix, flag, extra) in &flags {
        for v in NOT_COUNTS.iter().chain(extra) {
            let mut args = prefix.clone();
            args.extend(["--backend", "cpu", flag, v]);
            // clap: "error: invalid value 'X' for '--flag <N>': …" (or, for a value that looks
            // like a flag, "unexpected argument '-1'").
            let mut c = case(&args, &["error: "]);
            c.any = vec![flag.to_string(), format!("'{v}'")];
            cases.push(c);
        }
    }
    for (args, want) in [
        (vec!["convert", &m, "/tmp/x", "--dtype", "f8"], "f8"),
        (vec!["solve", "--model", &m, "--question", "x", "--mode", "fast", "--backend", "cpu"], "fast"),
        (vec!["eval", "--model", &m, "--data", &data, "--mode", "all", "--backend", "cpu"], "all"),
        (vec!["generate", "--model", &m, "--prompt", "x", "--backend", "tpu"], "tpu"),
        (vec!["generate", "--model", &m, "--backend", "cpu"], "--prompt"),
    ] {
        cases.push(case(&args, &[want]));
    }
    assert!(run_all("numeric flags", cases) >= 120);
}

#[test]
fn budgets_and_prompts_past_the_context_are_refused_naming_the_lengths() {
    let m = fixture("tiny-llama"); // max_position_embeddings 512
    let dir = tmp("context");
    let long = "Natalia sold clips to her friends in April. ".repeat(80);
    let text = dir.join("long.txt");
    std::fs::write(&text, &long).unwrap();
    let text = text.to_str().unwrap().to_string();
    let evalset = dir.join("long-eval.txt");
    std::fs::write(&evalset, format!("Tom has 3 apples. How many?||<<3=3>> #### 3\n{long}||<<1+1=2>> #### 2\n")).unwrap();
    let evalset = evalset.to_str().unwrap().to_string();
    let short_eval = dir.join("short-eval.txt");
    std::fs::write(&short_eval, "Tom has 3 apples. How many?||<<3=3>> #### 3\n").unwrap();
    let short_eval = short_eval.to_str().unwrap().to_string();
    let cpu = ["--backend", "cpu"];
    let with = |args: &[&str]| -> Vec<String> { args.iter().chain(&cpu).map(|s| s.to_string()).collect() };
    let mut cases = vec![];
    let mut push = |args: Vec<String>, want: &[&str]| {
        cases.push(Case { name: args.join(" "), args, env: vec![], want: want.iter().map(|s| s.to_string()).collect(), any: vec![], ok: false });
    };
    push(with(&["generate", "--model", &m, "--prompt", &long]), &["prompt", "512", "max_position_embeddings"]);
    push(with(&["generate", "--model", &m, "--prompt", "x", "--max-new-tokens", "600"]), &["up to 600 new tokens", "512"]);
    push(with(&["perplexity", "--model", &m, "--text", &text]), &["perplexity", "512"]);
    push(with(&["solve", "--model", &m, "--question", &long, "--mode", "cot"]), &["question", "512"]);
    push(with(&["solve", "--model", &m, "--question", "x", "--mode", "cot", "--max-cot-tokens", "600"]), &["up to 600 chain-of-thought tokens", "512"]);
    push(with(&["solve", "--model", &m, "--question", "x", "--mode", "latent", "--latents", "4096"]), &["4096 latents", "512"]);
    push(with(&["solve", "--model", &m, "--question", "x", "--mode", "nocot", "--max-answer-tokens", "1000"]), &["up to 1000 answer tokens", "512"]);
    push(with(&["eval", "--model", &m, "--data", &evalset, "--mode", "nocot"]), &["long-eval.txt line 2", "1 of 2 records", "512"]);
    push(with(&["eval", "--model", &m, "--data", &short_eval, "--mode", "cot", "--max-cot-tokens", "600"]), &["short-eval.txt line 1", "512"]);
    push(with(&["throughput", "--model", &m, "--prompt-len", "500", "--decode", "32"]), &["throughput", "512"]);
    push(with(&["bench", "--model", &m, "--latents", "600"]), &["600 latents", "512"]);
    // Within the context but beyond the memory budget: refused before allocating.
    let mut big = case(&["throughput", "--model", &m, "--backend", "cpu", "--prompt-len", "500", "--decode", "1", "--batch", "60000"], &["throughput", "GiB", "KAVA_MEMORY_LIMIT_GIB"]);
    big.env.push(("KAVA_MEMORY_LIMIT_GIB", "1".into()));
    cases.push(big);
    let mut bad_env = case(&["throughput", "--model", &m, "--backend", "cpu", "--prompt-len", "8", "--decode", "1"], &["KAVA_MEMORY_LIMIT_GIB=-3"]);
    bad_env.env.push(("KAVA_MEMORY_LIMIT_GIB", "-3".into()));
    cases.push(bad_env);
    assert!(run_all("context", cases) >= 13);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn evaluation_files_with_nothing_usable_fail_naming_the_file() {
    let m = fixture("tiny-qwen2");
    let dir = tmp("evalfiles");
    let mut cases = Vec::new();
    for (name, content, want) in [
        ("empty.txt", "", "has no records"),
        ("blank.txt", "\n\n  \n", "has no records"),
        ("garbage.txt", "not a record\nnor this one\n", "all 2 records are malformed"),
        ("misnamed.txt", "{\"question\": \"Q?\", \"answer\": \"#### 3\"}\n", "GSM8k-Aug text"),
        ("jsonl-as-aug.jsonl", "Q?||<<1+1=2>> #### 2\n", "malformed"),
        ("empty.jsonl", "", "no records"),
        ("empty.json", "[]", "no records"),
        ("object.json", "{\"Body\": \"x\"}", "JSON array"),
        ("bad.json", "[{", "object.json"),
        ("binary.txt", "\u{0}\u{1}\u{2}", "malformed"),
        ("nan-answers.txt", "Q?||#### NaN\nR?||#### inf\n", "not a number"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        let p = path.to_str().unwrap();
        // `bad.json` names itself; the object-rooted one says what it expected.
        let want = if name == "bad.json" { "bad.json" } else { want };
        cases.push(case(&["eval", "--model", &m, "--backend", "cpu", "--data", p, "--mode", "nocot"], &[name, want]));
    }
    let invalid_utf8 = dir.join("latin1.txt");
    std::fs::write(&invalid_utf8, b"Caf\xe9?||#### 3\n").unwrap();
    cases.push(case(&["eval", "--model", &m, "--backend", "cpu", "--data", invalid_utf8.to_str().unwrap()], &["latin1.txt"]));
    let d = dir.to_str().unwrap();
    cases.push(case(&["eval", "--model", &m, "--backend", "cpu", "--data", d], &[d]));
    cases.push(case(&["eval", "--model", &m, "--backend", "cpu", "--data", "/nonexistent/kava.txt"], &["/nonexistent/kava.txt"]));
    // Perplexity texts.
    let one = dir.join("one-token.txt");
    std::fs::write(&one, "a").unwrap();
    cases.push(case(&["perplexity", "--model", &m, "--backend", "cpu", "--text", one.to_str().unwrap()], &["two tokens"]));
    cases.push(case(&["perplexity", "--model", &m, "--backend", "cpu", "--text", d], &[d]));
    cases.push(case(&["perplexity", "--model", &m, "--backend", "cpu", "--text", invalid_utf8.to_str().unwrap()], &["latin1.txt"]));
    let text = dir.join("text.txt");
    std::fs::write(&text, "Natalia sold clips to 48 of her friends.").unwrap();
    cases.push(case(&["perplexity", "--model", &m, "--backend", "cpu", "--text", text.to_str().unwrap(), "--save-logits", "/nonexistent/dir/l.safetensors"], &["/nonexistent/dir/l.safetensors"]));
    assert!(run_all("evaluation files", cases) >= 18);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn broken_and_mismatched_model_directories_fail_every_command_by_name() {
    let root = tmp("models");
    // tiny-llama with a tokenizer whose ids reach past the model's 320 embedding rows.
    let mismatched = root.join("mismatched");
    copy_dir(&fixture("tiny-llama"), &mismatched);
    let tok_path = mismatched.join("tokenizer.json");
    let mut tok: serde_json::Value = serde_json::from_slice(&std::fs::read(&tok_path).unwrap()).unwrap();
    tok["model"]["vocab"]["<|extra|>"] = serde_json::json!(504);
    std::fs::write(&tok_path, tok.to_string()).unwrap();
    // An HF directory holding a config and nothing else; an empty one; a text file.
    let config_only = root.join("config-only");
    std::fs::create_dir_all(&config_only).unwrap();
    std::fs::copy(format!("{}/config.json", fixture("tiny-llama")), config_only.join("config.json")).unwrap();
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let notes = root.join("notes.txt");
    std::fs::write(&notes, "x").unwrap();
    let data = root.join("q.txt");
    std::fs::write(&data, "Tom has 3 apples. How many?||<<3=3>> #### 3\n").unwrap();
    let text = root.join("t.txt");
    std::fs::write(&text, "Natalia sold clips to 48 of her friends.").unwrap();
    let (data, text) = (data.to_str().unwrap().to_string(), text.to_str().unwrap().to_string());
    let mut cases = Vec::new();
    for (model, want) in [
        (mismatched.to_str().unwrap().to_string(), vec!["mismatched/tokenizer.json", "504", "vocabulary of 320"]),
        (config_only.to_str().unwrap().to_string(), vec!["model.safetensors", "missing"]),
        (empty.to_str().unwrap().to_string(), vec!["config.json", "missing"]),
        (notes.to_str().unwrap().to_string(), vec!["notes.txt", "HF model directory"]),
        ("/nonexistent/kava-model".to_string(), vec!["/nonexistent/kava-model"]),
    ] {
        let out = root.join(format!("converted-{}", cases.len()));
        let out = out.to_str().unwrap();
        for args in [
            vec!["perplexity", "--model", &model, "--text", &text],
            vec!["generate", "--model", &model, "--prompt", "Natalia"],
            vec!["solve", "--model", &model, "--question", "Tom has 3 apples.", "--latents", "2", "--max-cot-tokens", "4"],
            vec!["eval", "--model", &model, "--data", &data, "--mode", "nocot"],
            vec!["bench", "--model", &model, "--questions", "1"],
            vec!["throughput", "--model", &model, "--prompt-len", "4", "--decode", "1", "--reps", "1"],
            vec!["demo", "--model", &model, "--count", "1"],
        ] {
            let mut a = args.clone();
            a.extend(["--backend", "cpu"]);
            cases.push(case(&a, &want));
        }
        cases.push(case(&["convert", &model, out], &want));
    }
    assert!(run_all("model directories", cases) >= 40);
    assert!(!root.join("converted-0").exists(), "convert wrote a directory for a mismatched model");
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn convert_refuses_to_write_over_a_directory_unless_told() {
    let root = tmp("convert-out");
    let src = fixture("tiny-qwen2");
    // An older KaVa export in the way: its kava.json must not survive an --overwrite.
    let old = root.join("old-export");
    copy_dir(&src, &old);
    std::fs::write(old.join("kava.json"), "{}").unwrap();
    let notes = root.join("notes");
    std::fs::create_dir_all(&notes).unwrap();
    std::fs::write(notes.join("todo.txt"), "keep").unwrap();
    let file = root.join("file");
    std::fs::write(&file, "x").unwrap();
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let mut refused = vec![
        case(&["convert", &src, &s(&old)], &["old-export", "already holds a model", "--overwrite"]),
        case(&["convert", &src, &s(&notes)], &["notes", "no config.json"]),
        case(&["convert", &src, &s(&notes), "--overwrite"], &["notes", "no config.json"]),
        case(&["convert", &src, &s(&file)], &["file", "not a directory"]),
        case(&["convert", &src, &s(&file), "--overwrite"], &["file", "not a directory"]),
    ];
    let mut fine = case(&["convert", &src, &s(&empty), "--dtype", "f32"], &["wrote"]);
    fine.ok = true;
    refused.push(fine);
    let mut over = case(&["convert", &src, &s(&old), "--overwrite", "--dtype", "f32"], &["wrote"]);
    over.ok = true;
    refused.push(over);
    run_all("convert output", refused);
    assert_eq!(std::fs::read_to_string(notes.join("todo.txt")).unwrap(), "keep");
    assert!(!old.join("kava.json").exists(), "the old export's kava.json survived --overwrite");
    assert!(old.join("model.safetensors").exists() && empty.join("config.json").exists());
    let leftovers: Vec<_> = std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name()).filter(|n| n.to_string_lossy().starts_with('.')).collect();
    assert!(leftovers.is_empty(), "temporary directories left: {leftovers:?}");
    std::fs::remove_dir_all(&root).ok();
}
