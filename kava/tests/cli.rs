//! The `kava` binary end to end: it runs on a fixture and fails cleanly on bad input.

use std::process::Command;

fn kava(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_kava")).args(args).output().expect("run kava");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn fixture(case: &str) -> String {
    format!("{}/../tests/fixtures/{case}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn generate_prints_text_and_tokens_per_second() {
    let model = fixture("tiny-llama");
    let (ok, stdout, stderr) =
        kava(&["generate", "--model", &model, "--prompt", "Natalia sold", "--max-new-tokens", "6", "--backend", "cpu"]);
    assert!(ok, "stderr: {stderr}");
    assert!(!stdout.trim().is_empty(), "no text generated");
    assert!(stderr.contains("tokens/s") && stderr.contains("generated 6 tokens"), "{stderr}");
}

#[test]
fn throughput_prints_one_summary_line() {
    let model = fixture("tiny-qwen2");
    let (ok, stdout, stderr) = kava(&[
        "throughput", "--model", &model, "--backend", "cpu", "--prompt-len", "16", "--decode", "4", "--reps", "1",
    ]);
    assert!(ok, "stderr: {stderr}");
    assert!(stdout.starts_with("kava throughput | backend cpu") && stdout.contains("tok/s"), "{stdout}");
}

#[test]
fn missing_model_and_unknown_backend_fail_with_a_message() {
    let (ok, _, stderr) = kava(&["generate", "--model", "/nonexistent/model", "--prompt", "x", "--backend", "cpu"]);
    assert!(!ok && stderr.contains("/nonexistent/model"), "{stderr}");
    let (ok, _, stderr) = kava(&["generate", "--model", &fixture("tiny-llama"), "--prompt", "x", "--backend", "tpu"]);
    assert!(!ok && stderr.contains("tpu"), "{stderr}");
}

#[test]
fn convert_writes_a_directory_that_loads_to_the_same_perplexity() {
    let out = std::env::temp_dir().join(format!("kava-cli-convert-{}", std::process::id()));
    let text = std::env::temp_dir().join(format!("kava-cli-text-{}.txt", std::process::id()));
    std::fs::write(&text, "Natalia sold clips to 48 of her friends in April.").unwrap();
    let src = fixture("tiny-qwen2");
    let (ok, _, stderr) = kava(&["convert", &src, out.to_str().unwrap(), "--dtype", "f32"]);
    assert!(ok, "{stderr}");
    let ppl = |model: &str| {
        let (ok, stdout, stderr) = kava(&["perplexity", "--model", model, "--text", text.to_str().unwrap(), "--backend", "cpu"]);
        assert!(ok, "{stderr}");
        stdout.split("perplexity ").nth(2).and_then(|s| s.split_whitespace().next()).map(str::to_string).expect(&stdout)
    };
    assert_eq!(ppl(&src), ppl(out.to_str().unwrap()));
    let (ok, _, stderr) = kava(&["convert", &src, out.to_str().unwrap(), "--dtype", "f8"]);
    assert!(!ok && stderr.contains("f8"), "{stderr}");
}

#[test]
fn solve_both_prints_a_side_by_side_table_and_json() {
    let model = fixture("tiny-llama");
    let args = ["solve", "--model", &model, "--backend", "cpu", "--question", "Tom has 3 apples and buys 4. How many?", "--latents", "4", "--iterations", "2", "--max-cot-tokens", "6", "--max-answer-tokens", "3"];
    let (ok, stdout, stderr) = kava(&args);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("untrained latent tokens"), "a plain model must be flagged: {stderr}");
    for row in ["forward passes", "KV entries", "cot/latent", "latent ms"] {
        assert!(stdout.contains(row), "missing `{row}` in\n{stdout}");
    }
    let mut json_args = args.to_vec();
    json_args.extend(["--json", "--show-latents", "2"]);
    let (ok, stdout, stderr) = kava(&json_args);
    assert!(ok, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON output");
    assert_eq!(v[0]["mode"], "latent");
    // T = 2: the placeholder pass, iteration 1, then iteration 2 with `<eot> P` (which emits the
    // first answer token) — T passes besides the answer's; the paper's count has one more.
    let passes = |v: &serde_json::Value| v[0]["forward_passes"].as_u64().unwrap() - v[0]["generated_tokens"].as_u64().unwrap();
    assert_eq!(passes(&v), 2);
    assert_eq!(v[0]["latent_tokens"].as_array().unwrap().len(), 4);
    assert_eq!(v[1]["mode"], "cot");
    json_args.push("--separate-answer-pass");
    let (ok, stdout, stderr) = kava(&json_args);
    assert!(ok, "{stderr}");
    let sep: serde_json::Value = serde_json::from_str(&stdout).expect("JSON output");
    assert_eq!(passes(&sep), 1 + 2);
    assert_eq!(sep[0]["text"], v[0]["text"], "the same answer either way");
}

#[test]
fn eval_reports_accuracy_and_counts_malformed_lines() {
    let data = std::env::temp_dir().join(format!("kava-cli-eval-{}.txt", std::process::id()));
    std::fs::write(&data, "Tom has 3 apples and buys 4. How many?||<<3+4=7>> #### 7\nnot a record\nA? ||#### 5\n").unwrap();
    let model = fixture("tiny-qwen2");
    let (ok, stdout, stderr) = kava(&["eval", "--model", &model, "--backend", "cpu", "--data", data.to_str().unwrap(), "--mode", "nocot", "--max-answer-tokens", "2"]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("skipped 1 malformed"), "{stderr}");
    assert!(stdout.contains("mode nocot | n 2 | accuracy"), "{stdout}");
}

#[test]
fn demo_prints_a_row_per_problem_the_totals_and_the_speed_up() {
    let (ok, stdout, stderr) = kava(&["demo", "--count", "2", "--backend", "cpu", "--max-cot-tokens", "32"]);
    assert!(ok, "stderr: {stderr}");
    assert!(stdout.contains("backend  cpu (--backend cpu)") && stdout.contains("warm-up"), "{stdout}");
    let rows: Vec<&str> = stdout.lines().filter(|l| l.starts_with("  1  ") || l.starts_with("  2  ") || l.starts_with("  3  ")).collect();
    assert_eq!(rows.len(), 2, "one row per problem:\n{stdout}");
    assert!(rows.iter().all(|r| r.contains('✓') || r.contains('✗')), "graded against the gold answer:\n{stdout}");
    for line in ["total (2 problems)", "accuracy   latent ", "speed-up   CoT / latent: "] {
        assert!(stdout.contains(line), "missing `{line}` in\n{stdout}");
    }

    let (ok, stdout, stderr) = kava(&["demo", "--backend", "cpu", "--max-cot-tokens", "8", "--question", "Tom has 3 apples and buys 4. How many?", "--show-latents", "2"]);
    assert!(ok, "stderr: {stderr}");
    for part in ["question: Tom has 3 apples", "[latent]", "[cot]", "latent  0: ", "cot/latent", "speed-up (CoT / latent)"] {
        assert!(stdout.contains(part), "missing `{part}` in\n{stdout}");
    }
}

#[test]
fn demo_fails_cleanly_on_a_bad_model_count_or_question() {
    for (args, want) in [
        (vec!["demo", "--model", "/nonexistent/demo", "--backend", "cpu"], "/nonexistent/demo"),
        (vec!["demo", "--model", &fixture("tiny-llama"), "--backend", "cpu"], "kava.json"),
        (vec!["demo", "--count", "0", "--backend", "cpu"], "--count"),
        (vec!["demo", "--question", "  ", "--backend", "cpu"], "--question"),
    ] {
        let (ok, _, stderr) = kava(&args);
        assert!(!ok && stderr.starts_with("error: ") && stderr.contains(want) && !stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
