//! Evaluation sets: GSM8k JSONL (`{"question", "answer": "... #### 72"}`), GSM8k-Aug text
//! (`question||<<e=v>> ... #### 72`), GSM-Hard JSONL (`{"input", "target"}`) and SVAMP JSON
//! (`[{"Body", "Question", "Answer"}]`), read into (question, gold number) pairs. Malformed
//! records are counted and reported with their line, never fatal. Plus the accuracy/efficiency
//! summary of a run.

use std::path::{Path, PathBuf};

use crate::answer::{answers_match, parse_gold};
use crate::error::{Error, Result};
use crate::solve::Solution;

/// A question and its gold answer.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalItem {
    pub question: String,
    pub gold: f64,
    /// Reasoning steps of the gold solution, where the format has them: `<<…>>` equations of a
    /// GSM8k-Aug line, solution lines before `####` of a GSM8k record (`None`: GSM-Hard, SVAMP).
    pub steps: Option<usize>,
}

/// A record that could not be used.
#[derive(Debug, Clone, PartialEq)]
pub struct Skipped {
    /// 1-based line (JSONL/text) or element index (JSON array).
    pub line: usize,
    pub reason: String,
}

/// A loaded evaluation set.
#[derive(Debug, Clone)]
pub struct EvalSet {
    pub path: PathBuf,
    pub items: Vec<EvalItem>,
    pub skipped: Vec<Skipped>,
}

/// Reads an evaluation file, detecting its format from the extension and the records.
pub fn load_eval_set(path: impl AsRef<Path>) -> Result<EvalSet> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let (items, skipped) = parse_eval_set(&text, path)?;
    Ok(EvalSet { path: path.into(), items, skipped })
}

/// Parses evaluation records from `text`; `path` picks the format and names errors.
pub fn parse_eval_set(text: &str, path: &Path) -> Result<(Vec<EvalItem>, Vec<Skipped>)> {
    let mut items = Vec::new();
    let mut skipped = Vec::new();
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    if ext == "json" {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|source| Error::Json { path: path.into(), source })?;
        let arr = v.as_array().ok_or_else(|| Error::config(path, "<root>", "expected a JSON array (SVAMP)"))?;
        for (i, rec) in arr.iter().enumerate() {
            match svamp(rec) {
                Ok(item) => items.push(item),
                Err(reason) => skipped.push(Skipped { line: i + 1, reason }),
            }
        }
        return Ok((items, skipped));
    }
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let parsed = if ext == "jsonl" { json_line(line) } else { aug_line(line) };
        match parsed {
            Ok(item) => items.push(item),
            Err(reason) => skipped.push(Skipped { line: i + 1, reason }),
        }
    }
    Ok((items, skipped))
}

fn gold(text: &str) -> std::result::Result<f64, String> {
    parse_gold(text).ok_or_else(|| format!("answer `{}` is not a number", text.trim()))
}

fn aug_line(line: &str) -> std::result::Result<EvalItem, String> {
    let (question, rest) = line.split_once("||").ok_or("no `||` between question and steps")?;
    let (equations, answer) = rest.rsplit_once("####").ok_or("no `####` before the answer")?;
    let steps = Some(equations.matches("<<").count());
    nonempty(question).map(|question| EvalItem { question, gold: f64::NAN, steps }).and_then(|mut it| {
        it.gold = gold(answer)?;
        Ok(it)
    })
}

fn json_line(line: &str) -> std::result::Result<EvalItem, String> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let field = |k: &str| v.get(k);
    if let (Some(q), Some(a)) = (field("question"), field("answer")) {
        let a = a.as_str().ok_or("`answer` is not a string")?;
        let (solution, answer) = a.rsplit_once("####").ok_or("`answer` has no `####`")?;
        let steps = Some(solution.lines().filter(|l| !l.trim().is_empty()).count());
        return Ok(EvalItem { question: nonempty(q.as_str().ok_or("`question` is not a string")?)?, gold: gold(answer)?, steps });
    }
    if let (Some(q), Some(t)) = (field("input"), field("target")) {
        let target = match t {
            serde_json::Value::Number(n) => n.as_f64().ok_or("`target` is not a finite number")?,
            serde_json::Value::String(s) => gold(s)?,
            _ => return Err("`target` is not a number".into()),
        };
        return Ok(EvalItem { question: nonempty(q.as_str().ok_or("`input` is not a string")?)?, gold: target, steps: None });
    }
    Err("expected {question, answer} (GSM8k) or {input, target} (GSM-Hard)".into())
}

fn svamp(rec: &serde_json::Value) -> std::result::Result<EvalItem, String> {
    let s = |k: &str| rec.get(k).and_then(|v| v.as_str()).ok_or(format!("`{k}` missing or not a string"));
    let question = format!("{} {}", s("Body")?.trim(), s("Question")?.trim());
    let gold = match rec.get("Answer") {
        Some(serde_json::Value::Number(n)) => n.as_f64().ok_or("`Answer` is not finite")?,
        Some(serde_json::Value::String(a)) => gold(a)?,
        _ => return Err("`Answer` missing or not a number".into()),
    };
    Ok(EvalItem { question: nonempty(&question)?, gold, steps: None })
}

fn nonempty(q: &str) -> std::result::Result<String, String> {
    let q = q.trim();
    if q.is_empty() {
        Err("empty question".into())
    } else {
        Ok(q.to_string())
    }
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

    #[test]
    fn all_four_formats_parse_and_bad_records_are_counted() {
        let aug = "Q one?||<<2*3=6>> #### 6\nbroken line\nQ two?||<<1+1=2>> #### 1,000\nQ three?||#### 2/5\n";
        let (items, skipped) = parse_eval_set(aug, Path::new("x.txt")).unwrap();
        assert_eq!(items, vec![EvalItem { question: "Q one?".into(), gold: 6.0, steps: Some(1) }, EvalItem { question: "Q two?".into(), gold: 1000.0, steps: Some(1) }]);
        assert_eq!(skipped.iter().map(|s| s.line).collect::<Vec<_>>(), vec![2, 4]);

        let gsm = "{\"question\": \"How many?\", \"answer\": \"It is 3.\\n#### -3\"}\n{\"question\": 1}\nnot json\n";
        let (items, skipped) = parse_eval_set(gsm, Path::new("t.jsonl")).unwrap();
        assert_eq!(items, vec![EvalItem { question: "How many?".into(), gold: -3.0, steps: Some(1) }]);
        assert_eq!(skipped.len(), 2);

        let hard = "{\"input\": \"Big?\", \"target\": 12345.5}\n{\"input\": \"s\", \"target\": \"7\"}\n";
        let (items, _) = parse_eval_set(hard, Path::new("h.jsonl")).unwrap();
        assert_eq!(items[0].gold, 12345.5);
        assert_eq!(items[1].gold, 7.0);

        let svamp = r#"[{"Body": "Ann has 3.", "Question": "How many?", "Answer": 3.0}, {"Body": "x"}]"#;
        let (items, skipped) = parse_eval_set(svamp, Path::new("s.json")).unwrap();
        assert_eq!(items, vec![EvalItem { question: "Ann has 3. How many?".into(), gold: 3.0, steps: None }]);
        assert_eq!(skipped[0].line, 2);
    }
}
