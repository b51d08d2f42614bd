//! `kava demo`'s run (`kava::demo`) on the demo model compiled into kava: one row per problem,
//! each solved in latent mode and with CoT, answers parsed and graded, totals that are the sums
//! of the rows and a speed-up that is their ratio; a typed question (no gold); clean errors.

use std::path::PathBuf;

use kava::answer::{answers_match, parse_answer};
use kava::demo::{self, Problem};
use kava::solve::SolveOptions;
use kava::{Backend, Mode, Model};

/// The demo model's directory, the one `kava::demo::embedded` compiles in.
fn demo_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../kava/models/demo")
}

fn opts() -> SolveOptions {
    SolveOptions { max_answer_tokens: 16, max_cot_tokens: 64, show_latents: 0, separate_answer_pass: false }
}

#[test]
fn demo_solves_each_problem_both_ways_and_totals_are_the_sums_of_the_rows() {
    let model = demo::embedded::load(&Backend::Cpu.device().unwrap()).unwrap();
    let t = model.latent.as_ref().expect("the demo model has kava.json").config.num_iterations;
    let problems = demo::embedded::problems().unwrap();
    assert!(problems.len() >= 8 && problems.iter().all(|p| p.gold.is_some()), "{problems:?}");
    let problems = &problems[..3];
    let mut streamed = Vec::new();
    let run = demo::run(&model, problems, &opts(), &mut |row| streamed.push(row.problem.clone())).unwrap();
    assert_eq!(streamed, problems, "on_row sees every row, in order");
    assert_eq!(run.rows.len(), problems.len());
    assert!(run.warm_up_ms > 0.0);
    for (row, p) in run.rows.iter().zip(problems) {
        let gold = p.gold.unwrap();
        assert_eq!(&row.problem, p);
        assert_eq!((row.latent.mode, row.cot.mode), (Mode::Latent, Mode::Cot));
        for s in [&row.latent, &row.cot] {
            assert_eq!(s.answer, parse_answer(&s.text), "{}: the answer is the one in the text", s.mode);
        }
        assert_eq!(row.latent_correct(), Some(row.latent.answer.is_some_and(|a| answers_match(a, gold))));
        assert_eq!(row.cot_correct(), Some(row.cot.answer.is_some_and(|a| answers_match(a, gold))));
        // Latent: the placeholder pass, T − 1 iterations, iteration T with `<eot> P` (it emits
        // the first answer token), then one pass per further answer token; CoT: one per
        // generated token.
        assert_eq!(row.latent.stats.forward_passes, t + row.latent.stats.generated_tokens);
        assert_eq!(row.cot.stats.forward_passes, row.cot.stats.generated_tokens);
        assert!(
            row.cot.stats.forward_passes > row.latent.stats.forward_passes,
            "CoT {} passes vs latent {} on `{}`",
            row.cot.stats.forward_passes,
            row.latent.stats.forward_passes,
            p.question
        );
        assert!(row.latent_ms > 0.0 && row.cot_ms > 0.0);
    }
    let t = &run.totals;
    let sum = |f: fn(&demo::Row) -> usize| run.rows.iter().map(f).sum::<usize>();
    assert_eq!((t.problems, t.graded), (3, 3));
    assert_eq!(t.latent_correct, sum(|r| (r.latent_correct() == Some(true)) as usize));
    assert_eq!(t.cot_correct, sum(|r| (r.cot_correct() == Some(true)) as usize));
    assert_eq!(t.latent_passes, sum(|r| r.latent.stats.forward_passes));
    assert_eq!(t.cot_passes, sum(|r| r.cot.stats.forward_passes));
    assert_eq!(t.latent_tokens, sum(|r| r.latent.stats.generated_tokens));
    assert_eq!(t.cot_tokens, sum(|r| r.cot.stats.generated_tokens));
    let ms = |f: fn(&demo::Row) -> f64| run.rows.iter().map(f).sum::<f64>();
    assert!((t.latent_ms - ms(|r| r.latent_ms)).abs() < 1e-9 && (t.cot_ms - ms(|r| r.cot_ms)).abs() < 1e-9);
    assert_eq!(t.pass_speedup(), t.cot_passes as f64 / t.latent_passes as f64);
    assert_eq!(t.time_speedup(), t.cot_ms / t.latent_ms);
    assert!(t.pass_speedup() > 1.0, "{t:?}");
}

#[test]
fn embedded_demo_model_equals_its_directory_loaded_from_disk() {
    let device = Backend::Cpu.device().unwrap();
    let embedded = demo::embedded::load(&device).unwrap();
    let disk = Model::load(demo_dir(), &device).unwrap();
    let q = &demo::embedded::problems().unwrap()[0].question;
    let on_disk = std::fs::read_to_string(demo_dir().join("questions.txt")).unwrap();
    assert_eq!(on_disk, demo::embedded::QUESTIONS);
    let opts = SolveOptions { show_latents: 2, ..opts() };
    for mode in [Mode::Latent, Mode::Cot] {
        let (a, b) = (embedded.solve(q, mode, &opts).unwrap(), disk.solve(q, mode, &opts).unwrap());
        assert_eq!((&a.text, a.stats.forward_passes, &a.latent_tokens), (&b.text, b.stats.forward_passes, &b.latent_tokens), "{mode}");
    }
}

/// The committed model directory stays within 20 MB (10^6 bytes each), what the CLI compiles in
/// and the browser demo downloads — the bound a larger candidate (e.g. a 7 × 320 model: 18.8 MB
/// in f16) must keep.
#[test]
fn demo_model_directory_is_at_most_20_mb() {
    let mut total = 0u64;
    for entry in std::fs::read_dir(demo_dir()).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        assert!(meta.is_file(), "{}: only files belong in the demo model's directory", entry.path().display());
        total += meta.len();
    }
    assert!(total <= 20_000_000, "kava/models/demo holds {total} bytes, over the 20 MB the issue allows");
}

#[test]
fn demo_question_without_gold_is_solved_once_and_not_graded() {
    let model = demo::embedded::load(&Backend::Cpu.device().unwrap()).unwrap();
    let q = Problem { question: "Tom has 3 apples and buys 4 more. How many apples does he have?".into(), gold: None };
    let run = demo::run(&model, std::slice::from_ref(&q), &SolveOptions { show_latents: 3, ..opts() }, &mut |_| {}).unwrap();
    assert_eq!(run.rows.len(), 1);
    let row = &run.rows[0];
    assert_eq!(row.problem, q);
    assert_eq!((row.latent_correct(), row.cot_correct()), (None, None));
    let slots = model.latent.as_ref().unwrap().config.num_latents;
    assert_eq!(row.latent.latent_tokens.len(), slots, "--show-latents: one entry per latent slot");
    assert!(row.latent.latent_tokens.iter().all(|s| s.len() == 3));
    assert_eq!((run.totals.problems, run.totals.graded, run.totals.latent_correct, run.totals.cot_correct), (1, 0, 0, 0));
    assert_eq!(run.totals.cot_passes, row.cot.stats.forward_passes);
}

#[test]
fn demo_errors_name_the_line_or_the_missing_piece() {
    let path = std::path::Path::new("questions.txt");
    let e = demo::parse_problems("Q one?||<<1+1=2>> #### 2\nno separator here\n", path).unwrap_err().to_string();
    assert!(e.contains("questions.txt line 2") && e.contains("||"), "{e}");
    let e = demo::parse_problems("\n\n", path).unwrap_err().to_string();
    assert!(e.contains("no problems"), "{e}");

    let device = Backend::Cpu.device().unwrap();
    let plain = Model::load(kava_tests::fixture("tiny-llama"), &device).unwrap();
    let q = [Problem { question: "How many?".into(), gold: Some(1.0) }];
    let e = demo::run(&plain, &q, &opts(), &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("kava.json"), "a model without latents: {e}");
    let model = demo::embedded::load(&device).unwrap();
    let e = demo::run(&model, &[], &opts(), &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("none to solve"), "{e}");
    let blank = [Problem { question: "   ".into(), gold: None }];
    let e = demo::run(&model, &blank, &opts(), &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("question") && e.contains("empty"), "{e}");
}
