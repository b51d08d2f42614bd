//! The `kava-train` binary end to end: `eval --predictions` on the embedded demo model.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn kava_train(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_kava-train")).args(args).output().expect("run kava-train")
}

#[test]
fn eval_writes_one_prediction_per_problem_and_mode_that_adds_up_to_the_printed_accuracy() {
    let dir = std::env::temp_dir().join(format!("kava-train-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let preds = dir.join("preds.jsonl");
    let model = root().join("kava/models/demo");
    let data = model.join("questions.txt"); // GSM8k-Aug lines: question||<<…>> #### answer
    let out = kava_train(&[
        "eval", "--model", model.to_str().unwrap(), "--data", data.to_str().unwrap(), "--mode", "latent,nocot",
        "--limit", "4", "--backend", "cpu", "--predictions", preds.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<serde_json::Value> =
        std::fs::read_to_string(&preds).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(rows.len(), 8, "4 problems × 2 modes");
    for mode in ["latent", "nocot"] {
        let mine: Vec<_> = rows.iter().filter(|r| r["mode"] == mode).collect();
        assert_eq!(mine.iter().map(|r| r["index"].as_u64().unwrap()).collect::<Vec<_>>(), [0, 1, 2, 3]);
        let correct = mine.iter().filter(|r| r["correct"] == true).count();
        let line = stdout.lines().find(|l| l.starts_with("kava-train eval |") && l.contains(&format!("mode {mode} |"))).unwrap();
        assert!(line.contains(&format!("({correct}/4)")), "{mode}: {correct} correct in the file, but: {line}");
        assert!(mine.iter().all(|r| r["forward_passes"].as_u64().unwrap() >= r["generated_tokens"].as_u64().unwrap()));
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn eval_refuses_a_predictions_file_in_a_missing_folder_before_evaluating() {
    let model = root().join("kava/models/demo");
    let out = kava_train(&[
        "eval", "--model", model.to_str().unwrap(), "--data", model.join("questions.txt").to_str().unwrap(),
        "--predictions", "/nonexistent-kava/p.jsonl",
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--predictions /nonexistent-kava/p.jsonl: the folder /nonexistent-kava does not exist"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("kava-train eval |"), "it evaluated first");
}
