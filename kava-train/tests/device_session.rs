//! `scripts/demo-model/session.sh` — one device session's three calls (begin, progress, finish) —
//! end to end on this machine with this build's `kava-train` on the CPU and a tiny model: two
//! pipelines start side by side, one ends on its own and is collected as it is; the other is still
//! training at the limit, so `finish` stops it (its training commands too), evaluates the stage it
//! finished, packages that stage's model and brings both back under $OUT. In a second session a
//! pipeline whose deadline cut its second stage short (so it evaluated nothing) is salvaged too,
//! and a plan without a second pipeline runs on a machine of one GPU.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// session.sh VERB [ARG] with the test's machine layout; asserts it succeeded and returns stdout.
fn session(dir: &Path, verb: &str, arg: Option<&Path>, extra: &[(&str, &str)]) -> String {
    let mut cmd = Command::new("bash");
    cmd.arg(root().join("scripts/demo-model/session.sh")).arg(verb).args(arg);
    cmd.env("ROOT", dir.join("root")).env("KT_BIN", dir.join("bin")).env("BACKEND", "cpu").env("OUT", dir.join("out"));
    cmd.env("SLEEP", "0").envs(extra.iter().copied());
    let out = cmd.output().expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "session.sh {verb}:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A file's bytes (model weights, compared whole).
fn bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The tar stream that `cat` prints (run in `out`) unpacked into `into`.
fn untar(cat: &str, out: &Path, into: &Path) {
    std::fs::create_dir_all(into).unwrap();
    let script = format!("{cat} | tar -xf - -C '{}'", into.display());
    let ok = Command::new("bash").arg("-c").arg(&script).current_dir(out).status().unwrap().success();
    assert!(ok, "{script} failed");
}

/// A fresh machine layout under the temporary directory NAME: the binary, and the plan PLAN.
fn machine(name: &str, plan: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("kava-device-session-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_kava-train"), dir.join("bin/kava-train")).unwrap();
    let common = "COMMON='TRAIN_N=300 HIDDEN=32 LAYERS=1 HEADS=2 KV_HEADS=1 INTERMEDIATE=64 WARMUP_STEPS=2 WARMUP_MB=4 STEPS=2 MB=4 EVAL_N=6 SUFFIX=+'";
    std::fs::write(dir.join("plan.sh"), format!("{common}\n{plan}")).unwrap();
    let plan = dir.join("plan.sh");
    (dir, plan)
}

/// Waits (at most 600 s) until `done` holds.
fn until(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(600), "{what}: not in 600 s");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn pipeline_running(dir: &Path, tag: &str) -> bool {
    let pid = read(&dir.join(format!("root/{tag}-pid")));
    Command::new("kill").arg("-0").arg(pid.trim()).stderr(std::process::Stdio::null()).status().unwrap().success()
}

#[test]
fn a_device_session_collects_a_finished_pipeline_and_salvages_a_stopped_one() {
    // Pipeline `a` ends on its own; `b`'s second stage is far too long to end before `finish`.
    let (dir, plan) = machine(
        "limit",
        r#"TAG0=a TAG1=b
ENV0='METHODS="nocot" VARIANTS="" JOBS=1 EXTEND_STEPS=2'
ENV1='METHODS="nocot" VARIANTS="kava-t2" PACKAGE_RUN=kava-t2 JOBS=2 EXTEND_STEPS=100000000'
PHASES0="prepare warmup methods extend eval"
PHASES1="prepare warmup methods extend eval package"
DEADLINE_S=3000
"#,
    );
    let begun = session(&dir, "begin", Some(&plan), &[]);
    assert!(begun.contains("== a") && begun.contains("== b"), "begin printed no progress:\n{begun}");

    // Until `a` has ended and `b` is in its second stage (both of its first-stage runs finished).
    let work_b = dir.join("root/b-work/runs");
    until("a ended, b in its second stage", || {
        !pipeline_running(&dir, "a") && work_b.join("nocot/final").is_dir() && work_b.join("kava-t2/final").is_dir()
    });
    assert!(pipeline_running(&dir, "b"), "b ended before its second stage could be stopped");
    let progress = session(&dir, "progress", None, &[]);
    assert!(progress.contains("kava-t2+.log: step"), "progress shows no second-stage step of b:\n{progress}");

    let finished = session(&dir, "finish", None, &[("UNTIL", "0")]);
    assert!(finished.contains("deadline): b\n"), "{finished}");
    assert!(!pipeline_running(&dir, "b"), "b still runs after finish");
    let left = Command::new("pgrep").arg("-f").arg(work_b.display().to_string()).output().unwrap();
    assert!(left.stdout.is_empty(), "training commands of b outlived finish: {}", String::from_utf8_lossy(&left.stdout));

    // `a` came back as it ended: its second stage evaluated.
    let out = dir.join("out");
    assert!(read(&out.join("a/gpu.log")).contains("(exit 0)"), "a's log: {}", read(&out.join("a/gpu.log")));
    untar("gzip -dc a/logs.tgz", &out, &dir.join("logs-a"));
    let results = read(&dir.join("logs-a/results+.md"));
    assert!(results.contains("| nocot | nocot |"), "a's results+.md:\n{results}");

    // `b` was salvaged: its first stage evaluated (the packaged run in both modes) and packaged.
    let log_b = read(&out.join("b/gpu.log"));
    assert!(log_b.contains("session.sh: b stopped") && log_b.contains("session.sh: packaging kava-t2\n"), "b's log:\n{log_b}");
    untar("gzip -dc b/logs.tgz", &out, &dir.join("logs-b"));
    let results = read(&dir.join("logs-b/results.md"));
    for row in ["| kava-t2 | latent |", "| kava-t2 | cot |", "| nocot | nocot |"] {
        assert!(results.contains(row), "b's results.md lacks {row}:\n{results}");
    }
    untar("cat b/demo-model.tar.xz.part-* | xz -dc", &out, &dir.join("model-b"));
    // The package is stage 1's kava-t2 (the second stage never finished), as trained (f32: no `kava` here).
    assert!(bytes(&dir.join("model-b/demo/model.safetensors")) == bytes(&work_b.join("kava-t2/final/model.safetensors")));
    assert_eq!(read(&dir.join("model-b/demo/questions.txt")).lines().count(), 16, "questions.txt of the package");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_pipeline_whose_deadline_cut_its_second_stage_short_is_salvaged() {
    // Both pipelines: stage 1 ends in seconds, stage 2 is cut by the deadline, 30 s after the start.
    let (dir, plan) = machine(
        "deadline",
        r#"TAG0=c TAG1=d
ENV0='METHODS="nocot" VARIANTS="" JOBS=1 EXTEND_STEPS=100000000'
ENV1='METHODS="nocot" VARIANTS="" JOBS=1 EXTEND_STEPS=2'
PHASES0="prepare warmup methods extend eval"
PHASES1="prepare warmup methods extend eval"
DEADLINE_S0=30
"#,
    );
    session(&dir, "begin", Some(&plan), &[]);
    until("c stopped by its deadline", || !pipeline_running(&dir, "c"));
    let log = read(&dir.join("root/c-out/gpu.log"));
    assert!(log.contains("(exit 1)") && !log.contains("kava-train eval |"), "c did not end by its deadline:\n{log}");
    let finished = session(&dir, "finish", None, &[("UNTIL", "600")]);
    // c was salvaged (its first stage evaluated), d ended on its own and was not.
    assert!(finished.contains("deadline): c\n"), "{finished}");
    let out = dir.join("out");
    untar("gzip -dc c/logs.tgz", &out, &dir.join("logs-c"));
    let results = read(&dir.join("logs-c/results.md"));
    assert!(results.contains("| nocot | nocot |"), "c's results.md:\n{results}");
    assert!(read(&out.join("d/gpu.log")).contains("(exit 0)"));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_run_kept_when_its_deadline_cut_it_short_seeds_the_next_session() {
    // Session 1: e's stages 2 and 3 cannot end before its deadline; KEEP_RUNS brings back the last
    // stage nocot finished (the first). f is there because a session has two pipelines.
    let (dir, plan) = machine(
        "keep",
        r#"COMMON=${COMMON% SUFFIX=+}
TAG0=e TAG1=f
ENV0='METHODS="nocot" VARIANTS="" JOBS=1 STAGES=3 EXTEND_STEPS=100000000 KEEP_RUNS=nocot'
ENV1='METHODS="nocot" VARIANTS="" JOBS=1 STAGES=1'
PHASES0="prepare warmup methods extend evalall"
PHASES1="prepare warmup methods evalall"
DEADLINE_S0=30
"#,
    );
    session(&dir, "begin", Some(&plan), &[]);
    until("e stopped by its deadline", || !pipeline_running(&dir, "e"));
    let finished = session(&dir, "finish", None, &[("UNTIL", "600")]);
    assert!(finished.contains("deadline): e\n"), "{finished}");
    let out = dir.join("out");
    let log_e = read(&out.join("e/gpu.log"));
    assert!(log_e.contains("gpu.sh: kept nocot as nocot-s1.tar.xz.part-*"), "e's log:\n{log_e}");
    untar("gzip -dc e/logs.tgz", &out, &dir.join("logs-e"));
    assert!(read(&dir.join("logs-e/results.md")).contains("| nocot | nocot |"));
    assert!(!dir.join("logs-e/results+.md").exists(), "a stage e never finished was evaluated");

    // Session 2, on another machine: the kept run carried in as stage 1; STAGES=3 trains 2 and 3
    // (and, as it ends on its own, keeps the third).
    let kept = out.join("e/nocot-s1.tar.xz.part-");
    let (dir2, plan2) = machine(
        "seed",
        &format!(
            r#"COMMON=${{COMMON% SUFFIX=+}}
TAG0=g TAG1=h
ENV0='METHODS="nocot" VARIANTS="" JOBS=1 STAGES=3 EXTEND_STEPS=2 SEED_RUNS="nocot={}" KEEP_RUNS=nocot'
ENV1='METHODS="nocot" VARIANTS="" JOBS=1 STAGES=1'
PHASES0="prepare extend evalall"
PHASES1="prepare warmup methods evalall"
DEADLINE_S=600
"#,
            kept.display()
        ),
    );
    let begun = session(&dir2, "begin", Some(&plan2), &[]);
    assert!(begun.contains("gpu.sh: seeded"), "begin did not seed g:\n{begun}");
    let finished = session(&dir2, "finish", None, &[("UNTIL", "600")]);
    assert!(finished.contains("deadline): none"), "{finished}");
    let out2 = dir2.join("out");
    let log_g = read(&out2.join("g/gpu.log"));
    assert!(log_g.contains("(exit 0)"), "g's log:\n{log_g}");
    let runs = dir2.join("root/g-work/runs");
    let first = dir.join("root/e-work/runs/nocot/final/model.safetensors");
    assert!(bytes(&runs.join("nocot/final/model.safetensors")) == bytes(&first), "the seeded run is not the kept one");
    assert!(runs.join("nocot++/final").is_dir() && !runs.join("warmup").exists(), "g trained other than stages 2-3");
    // A pipeline that ends on its own keeps its run's last stage too: the third.
    untar("cat g/nocot-s3.tar.xz.part-* | xz -dc", &out2, &dir2.join("kept-g"));
    assert!(bytes(&dir2.join("kept-g/final/model.safetensors")) == bytes(&runs.join("nocot++/final/model.safetensors")));
    untar("gzip -dc g/logs.tgz", &out2, &dir2.join("logs-g"));
    for suffix in ["", "+", "++"] {
        let results = read(&dir2.join(format!("logs-g/results{suffix}.md")));
        assert!(results.contains("| nocot | nocot |"), "g's results{suffix}.md:\n{results}");
    }
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&dir2).ok();
}

#[test]
fn a_plan_without_tag1_runs_one_pipeline_for_a_machine_of_one_gpu() {
    // An empty TAG1 (a machine of one GPU): begin, progress and finish run and report GPU 0's alone.
    // The plan's UNTIL (0: stop at once) gives way to the one finish is called with (600: k ends).
    let (dir, plan) = machine(
        "one",
        r#"TAG0=k TAG1=
ENV0='METHODS="nocot" VARIANTS="" JOBS=1'
PHASES0="prepare warmup methods eval"
DEADLINE_S=600
UNTIL=0
"#,
    );
    let begun = session(&dir, "begin", Some(&plan), &[]);
    assert!(begun.contains("== k") && begun.matches("== ").count() == 1, "begin's progress:\n{begun}");
    let finished = session(&dir, "finish", None, &[("UNTIL", "600")]);
    assert!(finished.contains("deadline): none") && finished.matches("== ").count() == 1, "{finished}");
    let out = dir.join("out");
    assert!(read(&out.join("k/gpu.log")).contains("(exit 0)"), "k's log: {}", read(&out.join("k/gpu.log")));
    let dirs: Vec<_> = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(dirs, ["k"], "what came back");
    assert!(!dir.join("root/-out").exists() && !dir.join("root/-pid").exists(), "a pipeline without a tag was started");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn progress_or_finish_without_begin_says_the_session_is_gone() {
    // What a call finds on a fresh machine after the last one was given back.
    let dir = std::env::temp_dir().join(format!("kava-device-session-gone-{}", std::process::id()));
    for verb in ["progress", "finish"] {
        let out = Command::new("bash")
            .arg(root().join("scripts/demo-model/session.sh"))
            .arg(verb)
            .env("ROOT", &dir)
            .env("SLEEP", "0")
            .output()
            .expect("run bash");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{verb}: {stderr}");
        assert!(stderr.contains("no session on this machine") && stderr.contains("given back"), "{verb}: {stderr}");
    }
}
