//! `scripts/demo-model/paired.py` — the paired test (McNemar exact) behind the demo model's "latent
//! beats No-CoT" — on prediction files of the shape `kava-train eval --predictions` writes: its
//! counts, difference and p-value, and a clear error (no Python traceback) on bad input.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn paired(a: &Path, b: &Path) -> Output {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/demo-model/paired.py");
    Command::new("python3").arg(script).arg(a).arg(b).output().expect("python3 (scripts/test.sh installs it)")
}

/// One record per problem, as `kava-train eval --predictions` writes them.
fn preds(path: &Path, mode: &str, correct: &[bool]) {
    let lines: Vec<String> = correct
        .iter()
        .enumerate()
        .map(|(i, c)| format!(r#"{{"answer":1.0,"correct":{c},"forward_passes":5,"generated_tokens":3,"gold":1.0,"index":{i},"mode":"{mode}","steps":2}}"#))
        .collect();
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn paired_counts_the_discordant_problems_and_tests_them_exactly() {
    let dir = std::env::temp_dir().join(format!("kava-paired-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("a.jsonl"), dir.join("b.jsonl"));
    // 10 problems: both right on 4, only A on 3, only B on 1, neither on 2.
    let t = true;
    let f = false;
    preds(&a, "latent", &[t, t, t, t, t, t, t, f, f, f]);
    preds(&b, "nocot", &[t, t, t, t, f, f, f, t, f, f]);
    let out = paired(&a, &b);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains(": 7/10 = 70.0 %") && stdout.contains(": 5/10 = 50.0 %"), "{stdout}");
    assert!(stdout.contains("only A right: 3 · only B right: 1 · both: 4 · neither: 2"), "{stdout}");
    assert!(stdout.contains("A - B = +20.0 points"), "{stdout}");
    // Two-sided exact binomial on 4 discordant pairs, 1 against: 2 · (1 + 4) / 16.
    assert!(stdout.contains("McNemar exact two-sided p = 0.625"), "{stdout}");

    // Bad input: the file and the line named, exit status 1, no traceback.
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, "{\"index\":0,\"mode\":\"latent\",\"correct\":true}\nnot json\n").unwrap();
    let binary = dir.join("model.bin");
    std::fs::write(&binary, [0xfdu8, 0x37, 0x7a, 0x58, 0x5a, 0x00]).unwrap();
    for (file, says) in [(&bad, "line 2: not a prediction record"), (&binary, "not UTF-8 text")] {
        let out = paired(&a, file);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains(&format!("{}: {says}", file.display())) && !stderr.contains("Traceback"), "{stderr}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn predictions_of_different_test_sets_are_refused_not_paired() {
    let dir = std::env::temp_dir().join(format!("kava-paired-sets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (a, b) = (dir.join("a.jsonl"), dir.join("b.jsonl"));
    preds(&a, "latent", &[true, false, true]);
    // The same three positions, but the second problem is another one (gold 7, 4 steps).
    let other = std::fs::read_to_string(&a).unwrap().replacen(r#""gold":1.0,"index":1,"mode":"latent","steps":2"#, r#""gold":7.0,"index":1,"mode":"latent","steps":4"#, 1);
    assert_ne!(other, std::fs::read_to_string(&a).unwrap());
    std::fs::write(&b, other).unwrap();
    let out = paired(&a, &b);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("are not the same problems: 1 of 3 differ") && stderr.contains("problem 1, gold 1.0 / 2 steps against 7.0 / 4 steps"), "{stderr}");
    assert!(!stderr.contains("Traceback"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

/// `scripts/demo-model/near-misses.py`: per step count, the wrong answers and those within K of the gold.
#[test]
fn near_misses_counts_wrong_answers_close_to_the_gold_by_step_count() {
    let dir = std::env::temp_dir().join(format!("kava-near-misses-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("p.jsonl");
    // (steps, answer, gold): at 2 steps one right and one 10 off; at 5 steps one 3 off, one 4 off, one without a number.
    let rows = [(2, "20.0", 20.0), (2, "30.0", 20.0), (5, "15.0", 12.0), (5, "8.0", 12.0), (5, "null", 12.0)];
    let lines: Vec<String> = rows
        .iter()
        .enumerate()
        .map(|(i, (s, a, g))| {
            let correct = *a != "null" && a.parse::<f64>().unwrap() == *g;
            format!(r#"{{"answer":{a},"correct":{correct},"forward_passes":5,"generated_tokens":3,"gold":{g:.1},"index":{i},"mode":"latent","steps":{s}}}"#)
        })
        .collect();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/demo-model/near-misses.py");
    let out = Command::new("python3").arg(&script).arg(&file).output().expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let f = file.display();
    assert!(stdout.contains(&format!("{f} | 2 | 2 | 1 | 0 | 0")), "{stdout}");
    assert!(stdout.contains(&format!("{f} | 5 | 3 | 3 | 1 | 1")), "{stdout}");
    // A line that is not a --predictions record: a clear error naming the file and line, no traceback.
    std::fs::write(&file, "{\"steps\": 2}\n").unwrap();
    let out = Command::new("python3").arg(&script).arg(&file).output().expect("python3");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains(&format!("{f}: line 1: not a --predictions record")), "{stderr}");
    assert!(!stderr.contains("Traceback"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
