//! Evaluation: the data sets (`records`: GSM8k JSONL, GSM8k-Aug text, GSM-Hard JSONL and SVAMP
//! JSON read into (question, gold number) pairs; malformed records counted and reported with
//! their line, a file with no usable record an error), the check that every question fits the
//! model before anything is solved, and the accuracy/efficiency summary of a run.

pub mod records;

pub use records::{load_eval_set, parse_eval_set, EvalItem, EvalSet, Skipped};

use crate::answer::answers_match;
use crate::api::Model;
use crate::error::{Error, Result};
use crate::solve::{Mode, Solution, SolveOptions};

/// Refuses an evaluation whose questions do not all fit the model: for each mode, every
/// question's prompt plus decoding budget must be within `max_position_embeddings`. Checked
/// before solving anything, so that a long record cannot end a run midway; the error names the
/// file, the first record too long (its line), the lengths and how many records are too long.
pub fn check_fits(model: &Model, set: &EvalSet, items: &[EvalItem], modes: &[Mode], opts: &SolveOptions) -> Result<()> {
    let limit = model.transformer.config.max_position_embeddings;
    for &mode in modes {
        let mut first: Option<(&EvalItem, usize, String)> = None;
        let mut too_long = 0;
        for item in items {
            let (n, detail) = model.question_positions(&item.question, mode, opts)?;
            if n > limit {
                too_long += 1;
                first.get_or_insert((item, n, detail));
            }
        }
        if let Some((item, needed, detail)) = first {
            return Err(Error::Context {
                what: format!(
                    "{} line {} ({mode} mode; {too_long} of {} records are too long)",
                    set.path.display(),
                    item.line,
                    items.len()
                ),
                needed,
                limit,
                detail,
            });
        }
    }
    Ok(())
}

/// Accuracy and mean efficiency of a run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub correct: usize,
    pub forward_passes: f64,
    pub generated_tokens: f64,
    pub kv_entries: f64,
    pub kv_bytes: f64,
    /// Seconds of wall time per question.
    pub seconds: f64,
    /// Accuracy by the gold solution's number of reasoning steps, ascending (empty when the
    /// set has no step counts): how far the model's reasoning reaches.
    pub by_steps: Vec<StepsBucket>,
}

/// The questions of one step count in a [`Summary`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepsBucket {
    pub steps: usize,
    pub n: usize,
    pub correct: usize,
}

impl Summary {
    pub fn accuracy(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.correct as f64 / self.n as f64
        }
    }

    /// Summarises solutions against gold answers; `wall_seconds` is the run's total time.
    pub fn of(solutions: &[Solution], golds: &[f64], wall_seconds: f64) -> Self {
        let n = solutions.len();
        let mean = |f: &dyn Fn(&Solution) -> f64| if n == 0 { 0.0 } else { solutions.iter().map(f).sum::<f64>() / n as f64 };
        Summary {
            n,
            correct: solutions.iter().zip(golds).filter(|(s, g)| s.answer.is_some_and(|a| answers_match(a, **g))).count(),
            forward_passes: mean(&|s| s.stats.forward_passes as f64),
            generated_tokens: mean(&|s| s.stats.generated_tokens as f64),
            kv_entries: mean(&|s| s.stats.kv_entries as f64),
            kv_bytes: mean(&|s| s.stats.kv_bytes as f64),
            seconds: if n == 0 { 0.0 } else { wall_seconds / n as f64 },
            by_steps: Vec::new(),
        }
    }

    /// [`Summary::of`] for evaluation items, with the accuracy by step count.
    pub fn of_items(solutions: &[Solution], items: &[EvalItem], wall_seconds: f64) -> Self {
        let golds: Vec<f64> = items.iter().map(|i| i.gold).collect();
        let mut s = Self::of(solutions, &golds, wall_seconds);
        let mut buckets = std::collections::BTreeMap::<usize, StepsBucket>::new();
        for (sol, item) in solutions.iter().zip(items) {
            let Some(steps) = item.steps else { continue };
            let b = buckets.entry(steps).or_insert(StepsBucket { steps, ..Default::default() });
            b.n += 1;
            b.correct += usize::from(sol.answer.is_some_and(|a| answers_match(a, item.gold)));
        }
        s.by_steps = buckets.into_values().collect();
        s
    }

    /// `2 steps 91.0% (n 120) · 3 steps 64.2% (n 150) · …`, or `None` without step counts.
    pub fn by_steps_line(&self) -> Option<String> {
        (!self.by_steps.is_empty()).then(|| {
            self.by_steps
                .iter()
                .map(|b| format!("{} steps {:.1}% (n {})", b.steps, 100.0 * b.correct as f64 / b.n.max(1) as f64, b.n))
                .collect::<Vec<_>>()
                .join(" · ")
        })
    }
}

/// One JSON object per item, one line each: what `kava-train eval --predictions` writes, so that
/// two runs on the same items can be compared problem by problem (a paired test instead of two
/// independent accuracies). `index` is the item's position in `items`.
pub fn prediction_lines(solutions: &[Solution], items: &[EvalItem]) -> String {
    let mut out = String::new();
    for (index, (sol, item)) in solutions.iter().zip(items).enumerate() {
        let line = serde_json::json!({
            "index": index,
            "mode": sol.mode.to_string(),
            "gold": item.gold,
            "answer": sol.answer,
            "correct": sol.answer.is_some_and(|a| answers_match(a, item.gold)),
            "steps": item.steps,
            "forward_passes": sol.stats.forward_passes,
            "generated_tokens": sol.stats.generated_tokens,
        });
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn prediction_lines_record_each_problem_in_order_and_agree_with_the_summary() {
        use crate::solve::{Mode, Solution, Stats};
        let aug = "A?||<<1+1=2>> <<2*2=4>> #### 4\nB?||<<3-1=2>> #### 2\nC?||<<1+2=3>> #### 3\n";
        let (items, _) = parse_eval_set(aug, Path::new("x.txt")).unwrap();
        let sol = |a: Option<f64>, passes| Solution {
            mode: Mode::Latent,
            text: String::new(),
            answer: a,
            stats: Stats { forward_passes: passes, generated_tokens: passes - 2, ..Stats::default() },
            latent_tokens: vec![],
        };
        let sols = [sol(Some(4.0), 5), sol(Some(7.0), 6), sol(None, 4)];
        let text = prediction_lines(&sols, &items);
        let rows: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0], serde_json::json!({"index": 0, "mode": "latent", "gold": 4.0, "answer": 4.0, "correct": true, "steps": 2, "forward_passes": 5, "generated_tokens": 3}));
        assert_eq!((rows[1]["correct"].as_bool(), rows[1]["answer"].as_f64()), (Some(false), Some(7.0)));
        assert!(rows[2]["answer"].is_null() && rows[2]["correct"] == false && rows[2]["steps"] == 1);
        let correct = rows.iter().filter(|r| r["correct"] == true).count();
        assert_eq!(correct, Summary::of_items(&sols, &items, 1.0).correct);
    }

    #[test]
    fn accuracy_is_broken_down_by_the_gold_solutions_step_count() {
        use crate::solve::{Mode, Solution, Stats};
        let aug = "A?||<<1+1=2>> <<2*2=4>> #### 4\nB?||<<3-1=2>> #### 2\nC?||<<1+2=3>> <<3+3=6>> #### 6\nD?||<<1*5=5>> <<5+1=6>> <<6*2=12>> #### 12\n";
        let (items, _) = parse_eval_set(aug, Path::new("x.txt")).unwrap();
        assert_eq!(items.iter().map(|i| i.steps).collect::<Vec<_>>(), vec![Some(2), Some(1), Some(2), Some(3)]);
        let sol = |a: Option<f64>| Solution { mode: Mode::Latent, text: String::new(), answer: a, stats: Stats::default(), latent_tokens: vec![] };
        let sols = [sol(Some(4.0)), sol(Some(2.0)), sol(Some(5.0)), sol(None)];
        let s = Summary::of_items(&sols, &items, 1.0);
        assert_eq!((s.n, s.correct), (4, 2));
        assert_eq!(
            s.by_steps,
            vec![StepsBucket { steps: 1, n: 1, correct: 1 }, StepsBucket { steps: 2, n: 2, correct: 1 }, StepsBucket { steps: 3, n: 1, correct: 0 }]
        );
        assert_eq!(s.by_steps_line().unwrap(), "1 steps 100.0% (n 1) · 2 steps 50.0% (n 2) · 3 steps 0.0% (n 1)");
        // Formats without step counts give no breakdown.
        let (svamp, _) = parse_eval_set(r#"[{"Body": "A.", "Question": "B?", "Answer": 1}]"#, Path::new("s.json")).unwrap();
        assert_eq!(Summary::of_items(&[sol(Some(1.0))], &svamp, 1.0).by_steps_line(), None);
        // GSM8k JSONL: the solution lines before `####`.
        let (gsm, _) = parse_eval_set("{\"question\": \"Q?\", \"answer\": \"a<<1+1=2>>2\\nb\\n\\nc\\n#### 2\"}", Path::new("g.jsonl")).unwrap();
        assert_eq!(gsm[0].steps, Some(3));
    }
}
