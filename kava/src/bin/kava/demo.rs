//! `kava demo`: the embedded KaVa model answers math word problems in latent mode next to a full
//! chain of thought and prints what each cost (the run itself is `kava::demo::run`).

use std::io::Write;
use std::path::Path;

use kava::demo::{self, Demo, Problem, Row};
use kava::solve::SolveOptions;
use kava::{Backend, Model};

use crate::report;

/// What `kava demo` was asked for.
pub struct DemoArgs<'a> {
    pub model: Option<&'a Path>,
    pub backend: Option<Backend>,
    pub question: Option<&'a str>,
    pub show_latents: usize,
    pub count: usize,
    pub max_cot_tokens: usize,
}

/// Characters of a question shown in the table.
const QUESTION_WIDTH: usize = 40;

pub fn demo(args: DemoArgs<'_>) -> kava::Result<()> {
    if args.count == 0 {
        return Err(kava::Error::Input { what: "--count 0".into(), problem: "must be at least 1".into() });
    }
    if let Some(q) = args.question {
        if q.trim().is_empty() {
            return Err(kava::Error::Input { what: "--question".into(), problem: "empty".into() });
        }
    }
    let (backend, device, why) = match args.backend {
        Some(b) => {
            let device = b.probe()?;
            let note = if b == Backend::Wgpu && !Backend::is_hardware(&device) { "; a software adapter, slower than --backend cpu" } else { "" };
            (b, device, format!("--backend {b}{note}"))
        }
        None => Backend::best_explained()?,
    };
    let (model, source) = match args.model {
        Some(dir) => (Model::load(dir, &device)?, dir.display().to_string()),
        None => (demo::embedded::load(&device)?, demo::embedded::SOURCE.to_string()),
    };
    let Some(latent) = &model.latent else {
        return Err(kava::Error::Input {
            what: format!("--model {source}"),
            problem: "it has no kava.json (no latent tokens): the demo needs a KaVa model, e.g. kava-train's `final/` directory".into(),
        });
    };
    let problems = match (args.question, args.model) {
        (Some(q), _) => vec![Problem { question: q.trim().to_string(), gold: None }],
        (None, dir) => {
            let mut problems = match dir.map(|d| d.join("questions.txt")) {
                Some(file) if file.exists() => {
                    let text = std::fs::read_to_string(&file).map_err(|e| kava::Error::Io { path: file.clone(), source: e })?;
                    demo::parse_problems(&text, &file)?
                }
                Some(file) => {
                    eprintln!("note: {} is missing; solving the embedded demo problems", file.display());
                    demo::embedded::problems()?
                }
                None => demo::embedded::problems()?,
            };
            problems.truncate(args.count);
            problems
        }
    };
    let opts = SolveOptions {
        max_answer_tokens: latent.config.max_answer_tokens,
        max_cot_tokens: args.max_cot_tokens,
        show_latents: args.show_latents,
        separate_answer_pass: false,
    };

    println!("kava demo: latent reasoning vs chain of thought, the same model, greedy decoding");
    println!("model    {source} ({})", demo::describe(&model));
    println!("backend  {backend} ({why})");
    println!("warm-up  the first problem is solved once in each mode first, untimed (kernel compilation and allocation are not per-problem costs)");
    let _ = std::io::stdout().flush();

    if args.question.is_some() {
        let Demo { rows, totals, .. } = demo::run(&model, &problems, &opts, &mut |_| {})?;
        let row = &rows[0];
        println!("\nquestion: {}\n", row.problem.question);
        print!("{}", report::solutions_table(&[row.latent.clone(), row.cot.clone()], backend));
        println!("\nspeed-up (CoT / latent): {:.2}x forward passes, {:.2}x wall time", totals.pass_speedup(), totals.time_speedup());
        return Ok(());
    }

    println!("\n{}", header());
    let mut index = 0;
    let demo = demo::run(&model, &problems, &opts, &mut |row| {
        index += 1;
        println!("{}", row_line(index, row));
        if args.show_latents > 0 {
            print!("{}", report::latent_slots(&row.latent, "      "));
        }
        let _ = std::io::stdout().flush();
    })?;
    print!("{}", summary(&demo));
    if let Some(note) = time_note(&demo.totals, latent.config.num_latents, backend) {
        println!("{note}");
    }
    Ok(())
}

fn header() -> String {
    let mode = |name: &str| format!("{name:<9}{:>8}{:>8}{:>10}", "passes", "tokens", "ms");
    format!("{:>3}  {:<w$}{:>8} | {} | {}", "#", "problem", "gold", mode("latent"), mode("CoT"), w = QUESTION_WIDTH)
}

fn row_line(index: usize, row: &Row) -> String {
    let answer = |s: &kava::Solution, correct: Option<bool>| {
        let mark = match correct {
            Some(true) => " ✓",
            Some(false) => " ✗",
            None => "",
        };
        format!("{}{mark}", s.answer.map_or("-".into(), |a| a.to_string()))
    };
    let mode = |s: &kava::Solution, correct: Option<bool>, ms: f64| {
        format!("{:<9}{:>8}{:>8}{:>10.1}", answer(s, correct), s.stats.forward_passes, s.stats.generated_tokens, ms)
    };
    format!(
        "{index:>3}  {:<w$}{:>8} | {} | {}",
        short(&row.problem.question, QUESTION_WIDTH - 2),
        row.problem.gold.map_or("-".into(), |g| g.to_string()),
        mode(&row.latent, row.latent_correct(), row.latent_ms),
        mode(&row.cot, row.cot_correct(), row.cot_ms),
        w = QUESTION_WIDTH
    )
}

/// The first `n` characters of `text` (an ellipsis marks a cut).
fn short(text: &str, n: usize) -> String {
    if text.chars().count() <= n {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(n - 1).collect::<String>())
    }
}

fn summary(demo: &Demo) -> String {
    let t = &demo.totals;
    let total = |passes: usize, tokens: usize, ms: f64| format!("{:<9}{passes:>8}{tokens:>8}{ms:>10.1}", "");
    let accuracy = |correct: usize| format!("{correct}/{} correct ({:.1}%)", t.graded, 100.0 * correct as f64 / t.graded.max(1) as f64);
    format!(
        "{:>3}  {:<w$}{:>8} | {} | {}\n\naccuracy   latent {}, CoT {}\nspeed-up   CoT / latent: {:.2}x forward passes ({} vs {}), {:.2}x wall time ({:.1} ms vs {:.1} ms; warm-up {:.1} ms)\n",
        "",
        format!("total ({} problem{})", t.problems, if t.problems == 1 { "" } else { "s" }),
        "",
        total(t.latent_passes, t.latent_tokens, t.latent_ms),
        total(t.cot_passes, t.cot_tokens, t.cot_ms),
        accuracy(t.latent_correct),
        accuracy(t.cot_correct),
        t.pass_speedup(),
        t.cot_passes,
        t.latent_passes,
        t.time_speedup(),
        t.cot_ms,
        t.latent_ms,
        demo.warm_up_ms,
        w = QUESTION_WIDTH
    )
}

/// Why the wall-time speed-up falls far short of the pass speed-up, when it does (below half of
/// it): each latent pass computes all M latent positions, a CoT pass one token — on a CPU that is
/// compute the clock sees; on a GPU a pass costs about the same either way.
fn time_note(t: &kava::demo::Totals, num_latents: usize, backend: impl std::fmt::Display) -> Option<String> {
    (t.time_speedup() < 0.5 * t.pass_speedup()).then(|| {
        format!(
            "note       on {backend} the time does not follow the passes: each latent pass computes all {num_latents} latents at once, \
             a CoT pass one token; latent mode saves passes (latency on a GPU, where a pass costs about the same either way), not arithmetic"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_note_appears_only_when_time_lags_far_behind_the_passes() {
        let t = |cot_ms: f64| kava::demo::Totals { latent_passes: 40, cot_passes: 200, latent_ms: 100.0, cot_ms, ..Default::default() };
        // 5x fewer passes; 0.9x the time (a 2-core CPU) needs the note, 3.5x (an H200) does not.
        let note = time_note(&t(90.0), 24, "cpu").expect("0.9x time for 5x passes");
        assert!(note.starts_with("note       on cpu ") && note.contains("all 24 latents"), "{note}");
        assert_eq!(time_note(&t(350.0), 24, "cuda"), None);
    }
}
