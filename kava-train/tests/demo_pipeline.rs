//! `scripts/demo-model/train.sh` — the script that reproduces the embedded demo model — end to end
//! with this build's `kava-train` on a tiny model (a 32-wide layer, a few steps per stage, on the
//! CPU): every phase runs, the later training stages start from the stage before, and each stage's
//! evaluation logs, tables and packaged model land where the next phase looks for them.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs train.sh PHASES with the tiny settings, SUFFIX / FROM_SUFFIX as given; returns its stdout.
fn train_sh(work: &Path, package: &Path, stage: &[(&str, &str)], phases: &[&str]) -> String {
    let mut cmd = Command::new("bash");
    cmd.arg(root().join("scripts/demo-model/train.sh")).args(phases);
    let tiny = [
        ("KAVA_TRAIN", env!("CARGO_BIN_EXE_kava-train")),
        ("BACKEND", "cpu"),
        ("TRAIN_N", "300"),
        ("HIDDEN", "32"),
        ("LAYERS", "1"),
        ("HEADS", "2"),
        ("KV_HEADS", "1"),
        ("INTERMEDIATE", "64"),
        ("WARMUP_STEPS", "2"),
        ("WARMUP_MB", "4"),
        ("STEPS", "2"),
        ("EXTEND_STEPS", "2"),
        ("MB", "4"),
        ("EVAL_N", "6"),
        ("METHODS", "nocot kava"),
        ("VARIANTS", "kava-t3"),
        ("JOBS", "2"),
    ];
    cmd.envs(tiny).env("WORK", work).env("PACKAGE_DIR", package).env_remove("SUFFIX").env_remove("FROM_SUFFIX");
    cmd.env("KAVA", "/nonexistent/kava").env_remove("DEADLINE").env_remove("PACKAGE_RUN").envs(stage.iter().copied());
    let out = cmd.output().expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "train.sh {phases:?} {stage:?}:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn read(path: PathBuf) -> String {
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_demo_model_script_runs_every_phase_and_each_stage_starts_from_the_one_before() {
    let dir = std::env::temp_dir().join(format!("kava-demo-pipeline-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (work, package) = (dir.join("work"), dir.join("model"));
    // `all`: the committed recipe, four stages, the fourth one packaged.
    let all = train_sh(&work, &package, &[], &["all"]);
    assert!(all.contains("### package (SUFFIX=+++)"), "`all` did not package the fourth stage:\n{all}");
    assert_packaged(&work, &package, "+++");
    // One more stage named by hand (SUFFIX / FROM_SUFFIX, as a command line sets them).
    train_sh(&work, &package, &[("SUFFIX", "++++"), ("FROM_SUFFIX", "+++")], &["extend", "select", "eval", "package"]);

    let stages = [("", "runs/warmup/final"), ("+", "runs/kava/final"), ("++", "runs/kava+/final"), ("+++", "runs/kava++/final"), ("++++", "runs/kava+++/final")];
    for (suffix, from) in stages {
        // Each stage's run was trained from the model named (its config records where it started).
        let config = read(work.join(format!("runs/kava{suffix}/config.toml")));
        assert!(config.contains(&format!("{}\"", work.join(from).display())), "kava{suffix} did not start from {from}:\n{config}");
        // Each stage keeps its own evaluation logs and table: a later stage does not overwrite them.
        let log = read(work.join(format!("logs/eval-kava{suffix}-latent.log")));
        assert!(log.contains(&format!("runs/kava{suffix}/final |")), "eval-kava{suffix}-latent.log: {log}");
        let results = read(work.join(format!("results{suffix}.md")));
        for row in ["| kava | latent |", "| kava | cot |", "| nocot | nocot |", "| kava-t3 | latent |"] {
            assert!(results.contains(row), "results{suffix}.md lacks {row}:\n{results}");
        }
        assert!(work.join(format!("preds/eval-kava{suffix}-latent.jsonl")).is_file());
    }
    // The validation set picks among the kava runs of the first stage and of each packaged one.
    for suffix in ["", "+++", "++++"] {
        let log = read(work.join(format!("logs/eval-valid-kava{suffix}-latent.log")));
        assert!(log.contains(&format!("runs/kava{suffix}/final |")), "eval-valid-kava{suffix}-latent.log: {log}");
        let select = read(work.join(format!("select{suffix}.md")));
        assert!(select.contains("| kava |") && select.contains("| kava-t3 |"), "select{suffix}.md:\n{select}");
    }
    assert_packaged(&work, &package, "++++");
    std::fs::remove_dir_all(&dir).ok();
}

/// `package` took the run `select` picked in the stage SUFFIX names, to PACKAGE_DIR (as f32: KAVA
/// names no binary here, so there is no `kava convert`).
fn assert_packaged(work: &Path, package: &Path, suffix: &str) {
    let selected = read(work.join(format!("selected{suffix}")));
    let selected = selected.trim();
    assert!(["kava", "kava-t3"].contains(&selected), "selected{suffix}: {selected}");
    for file in ["config.json", "tokenizer.json", "kava.json"] {
        assert!(package.join(file).is_file(), "{file} not packaged");
    }
    assert_eq!(read(package.join("questions.txt")).lines().count(), 16);
    let packaged = std::fs::read(package.join("model.safetensors")).unwrap();
    let run = std::fs::read(work.join(format!("runs/{selected}{suffix}/final/model.safetensors"))).unwrap();
    assert!(packaged == run, "the packaged model is not runs/{selected}{suffix}/final's");
}

#[test]
fn stages_run_in_one_go_and_a_run_carried_in_at_a_later_stage_skips_the_ones_before() {
    let dir = std::env::temp_dir().join(format!("kava-demo-stages-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (work, package) = (dir.join("work"), dir.join("model"));
    // STAGES=3: the three stages in turn, every stage evaluated, the third packaged.
    let stages = [("STAGES", "3"), ("PACKAGE_RUN", "kava"), ("VARIANTS", "")];
    train_sh(&work, &package, &stages, &["prepare", "warmup", "methods", "extend", "evalall", "package"]);
    for (suffix, from) in [("+", "runs/kava/final"), ("++", "runs/kava+/final")] {
        let config = read(work.join(format!("runs/kava{suffix}/config.toml")));
        assert!(config.contains(&format!("{}\"", work.join(from).display())), "kava{suffix} did not start from {from}:\n{config}");
    }
    for suffix in ["", "+", "++"] {
        let results = read(work.join(format!("results{suffix}.md")));
        for row in ["| kava | latent |", "| kava | cot |", "| nocot | nocot |"] {
            assert!(results.contains(row), "results{suffix}.md lacks {row}:\n{results}");
        }
    }
    assert!(!work.join("runs/kava+++").exists() && !work.join("results+++.md").exists(), "a fourth stage");
    let weights = |p: PathBuf| std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    assert!(weights(package.join("model.safetensors")) == weights(work.join("runs/kava++/final/model.safetensors")));

    // Another work directory holding only kava's second stage (a run copied in from elsewhere):
    // STAGES=3 trains the third from it and nothing before it.
    let seeded = dir.join("seeded");
    std::fs::create_dir_all(seeded.join("runs/kava+/final")).unwrap();
    for f in std::fs::read_dir(work.join("runs/kava+/final")).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), seeded.join("runs/kava+/final").join(f.file_name())).unwrap();
    }
    let only_kava = [("STAGES", "3"), ("METHODS", "kava"), ("VARIANTS", "")];
    train_sh(&seeded, &package, &only_kava, &["prepare", "methods", "extend", "evalall"]);
    assert!(!seeded.join("runs/kava").exists() && !seeded.join("runs/warmup").exists(), "a stage before the carried one was trained");
    let config = read(seeded.join("runs/kava++/config.toml"));
    assert!(config.contains(&format!("{}\"", seeded.join("runs/kava+/final").display())), "kava++ did not start from the carried run:\n{config}");
    assert!(!seeded.join("results.md").exists(), "stage 1 evaluated with no stage-1 run");
    for suffix in ["+", "++"] {
        let results = read(seeded.join(format!("results{suffix}.md")));
        assert!(results.contains("| kava | latent |"), "results{suffix}.md:\n{results}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_stage_count_out_of_range_is_refused_before_anything_runs() {
    for stages in ["0", "9", "two"] {
        let out = Command::new("bash")
            .arg(root().join("scripts/demo-model/train.sh"))
            .arg("prepare")
            .env("STAGES", stages)
            .env("WORK", "/nonexistent/kava-work")
            .output()
            .expect("run bash");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "STAGES={stages}: {stderr}");
        assert!(stderr.contains(&format!("STAGES={stages}: expected 1 to 8")), "STAGES={stages}: {stderr}");
    }
}
