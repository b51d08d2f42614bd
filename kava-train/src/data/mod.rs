//! Grade-school math data for KaVa training (method.md §1): the examples, gold answers, the
//! validation split, and (in the submodules) the file readers and the token sequence layouts.
//!
//! This module depends on nothing of kava or burn: tokenization comes in through the
//! [`layout::Tokenize`] trait, so the data path can be tested on its own.

pub mod layout;
pub mod readers;

use std::collections::HashSet;
use std::fmt;
use std::path::PathBuf;

pub use layout::*;
pub use readers::*;

/// Which reasoning trace a GSM8k JSONL record yields (method.md §1.1). GSM8k-Aug text files only
/// have `Aug`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceStyle {
    /// Equation-only: each calculator annotation `<<48/2=24>>` is a step, written as in the data.
    Aug,
    /// Natural language: each solution line with its annotations removed is a step.
    Nl,
}

/// One question with its reasoning steps and gold answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Example {
    /// The question, trimmed at both ends; interior whitespace is kept as the data has it.
    pub question: String,
    /// All steps, the last one included; [`Example::teacher_steps`] applies method.md §1.2.
    pub steps: Vec<String>,
    /// Gold answer, thousands separators stripped.
    pub answer: f64,
    /// 1-based line of the source file, for reports.
    pub line: usize,
    /// Why the gold answer had to be repaired (`36.` → 36), if it had to be.
    pub repaired: Option<String>,
}

impl Example {
    /// The teacher's steps: without the last one unless `keep_last_step` (method.md §1.2), because
    /// the last step computes the answer and would leak it into the distillation targets.
    pub fn teacher_steps(&self, keep_last_step: bool) -> &[String] {
        if keep_last_step {
            &self.steps
        } else {
            &self.steps[..self.steps.len().saturating_sub(1)]
        }
    }

    /// The trace text `C`: the teacher steps joined by a single space (method.md §1.3).
    pub fn trace_text(&self, keep_last_step: bool) -> String {
        self.teacher_steps(keep_last_step).join(" ")
    }

    /// The answer text `A` (see [`format_answer`]).
    pub fn answer_text(&self) -> String {
        format_answer(self.answer)
    }
}

/// Formats a gold answer for the sequence layout: integers without `.0`, decimals in their
/// shortest round-tripping form (Rust's `Display` for `f64` does both and never uses exponents).
pub fn format_answer(v: f64) -> String {
    // `-0` would print as "-0"; there is no negative zero in the data, but keep the text canonical.
    if v == 0.0 {
        return "0".to_string();
    }
    format!("{v}")
}

/// A line that a reader left out, with where and why. Readers collect these instead of failing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.reason)
    }
}

/// Data errors. Readers only return `Io`; `MalformedLine` exists for callers that want to turn a
/// [`Skipped`] line into a hard error (e.g. when the test set must load completely).
#[derive(Debug)]
pub enum DataError {
    Io { file: PathBuf, source: std::io::Error },
    MalformedLine { file: String, line: usize, reason: String },
}

impl fmt::Display for DataError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DataError::Io { file, source } => write!(f, "reading {}: {source}", file.display()),
            DataError::MalformedLine { file, line, reason } => {
                write!(f, "{file}:{line}: malformed line: {reason}")
            }
        }
    }
}

impl std::error::Error for DataError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DataError::Io { source, .. } => Some(source),
            DataError::MalformedLine { .. } => None,
        }
    }
}

impl From<Skipped> for DataError {
    fn from(s: Skipped) -> Self {
        DataError::MalformedLine { file: s.file, line: s.line, reason: s.reason }
    }
}

/// A human-readable account of one load: kept / repaired / rejected counts, then every repaired
/// and rejected line with its reason, so noisy data is visible in the training log.
pub fn load_report(file: &str, examples: &[Example], skipped: &[Skipped]) -> String {
    let repaired: Vec<&Example> = examples.iter().filter(|e| e.repaired.is_some()).collect();
    let mut out = format!(
        "{file}: {} examples ({} repaired), {} lines rejected",
        examples.len(),
        repaired.len(),
        skipped.len()
    );
    for e in repaired {
        out.push_str(&format!("\n  line {}: repaired: {}", e.line, e.repaired.as_deref().unwrap()));
    }
    for s in skipped {
        out.push_str(&format!("\n  line {}: rejected: {}", s.line, s.reason));
    }
    out
}

/// The key under which questions are compared across files: trimmed, whitespace runs collapsed
/// to one space (the GSM8k-Aug copies differ from GSM8k only in spacing, if at all).
pub fn normalize_question(q: &str) -> String {
    q.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The normalized questions of `examples`, to pass to [`remove_questions`].
pub fn question_set(examples: &[Example]) -> HashSet<String> {
    examples.iter().map(|e| normalize_question(&e.question)).collect()
}

/// Removes the examples whose normalized question is in `exclude` (a set built by
/// [`question_set`]), returning the rest and how many were removed. Used to keep the 500
/// `gsm8k-aug/valid.txt` questions, which are GSM8k *train* questions, out of training.
pub fn remove_questions(examples: Vec<Example>, exclude: &HashSet<String>) -> (Vec<Example>, usize) {
    let before = examples.len();
    let kept: Vec<Example> =
        examples.into_iter().filter(|e| !exclude.contains(&normalize_question(&e.question))).collect();
    let removed = before - kept.len();
    (kept, removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn ex(steps: &[&str]) -> Example {
        Example {
            question: "q".into(),
            steps: steps.iter().map(|s| s.to_string()).collect(),
            answer: 1.0,
            line: 1,
            repaired: None,
        }
    }

    #[test]
    fn dropping_the_last_step_leaves_one_step_fewer_and_none_from_one() {
        assert!(ex(&["a"]).teacher_steps(false).is_empty());
        assert_eq!(ex(&["a", "b"]).teacher_steps(false), ["a"]);
        assert_eq!(ex(&["a", "b", "c"]).teacher_steps(false), ["a", "b"]);
        assert!(ex(&[]).teacher_steps(false).is_empty());
        assert_eq!(ex(&["a", "b", "c"]).teacher_steps(true), ["a", "b", "c"]);
        assert_eq!(ex(&["a", "b", "c"]).trace_text(false), "a b");
        assert_eq!(ex(&["a"]).trace_text(false), "");
    }

    #[test]
    fn answers_format_without_trailing_zero_and_in_shortest_decimal_form() {
        assert_eq!(format_answer(1000.0), "1000");
        assert_eq!(format_answer(-3.0), "-3");
        assert_eq!(format_answer(0.45), "0.45");
        assert_eq!(format_answer(2.5), "2.5");
        assert_eq!(format_answer(-0.0), "0");
        assert_eq!(format_answer(1_450_000.0), "1450000");
    }

    #[test]
    fn questions_match_after_trimming_and_collapsing_whitespace() {
        let mut a = ex(&[]);
        a.question = "  How many  bolts\tin total? ".into();
        let mut b = ex(&[]);
        b.question = "How many apples?".into();
        let set: HashSet<String> = ["How many bolts in total?".to_string()].into();
        let (kept, removed) = remove_questions(vec![a, b.clone()], &set);
        assert_eq!(removed, 1);
        assert_eq!(kept, vec![b]);
    }

    /// The shared data folder, or `None` (the real-file tests then skip with a message).
    fn data_dir() -> Option<PathBuf> {
        let candidates = [
            std::env::var_os("KAVA_DATA_DIR").map(PathBuf::from),
            Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")),
            Some(PathBuf::from("/work/shared/data")),
        ];
        let found = candidates.into_iter().flatten().find(|p| p.join("gsm8k/train.jsonl").is_file());
        if found.is_none() {
            eprintln!("skipping: shared data not found (set KAVA_DATA_DIR or provide /work/shared/data)");
        }
        found
    }

    #[test]
    fn the_real_gsm8k_files_load_completely_in_both_styles() {
        let Some(d) = data_dir() else { return };
        for style in [TraceStyle::Aug, TraceStyle::Nl] {
            let (train, skipped) = read_gsm8k_jsonl(&d.join("gsm8k/train.jsonl"), style).unwrap();
            assert_eq!((train.len(), skipped.len()), (7473, 0), "{skipped:?}");
            let (test, skipped) = read_gsm8k_jsonl(&d.join("gsm8k/test.jsonl"), style).unwrap();
            assert_eq!((test.len(), skipped.len()), (1319, 0), "{skipped:?}");
            assert!(train.iter().chain(&test).all(|e| e.repaired.is_none()));
        }
    }

    #[test]
    fn the_real_aug_test_set_loads_completely_and_matches_gsm8k_test() {
        let Some(d) = data_dir() else { return };
        let (aug, skipped) = read_aug_text(&d.join("gsm8k-aug/test.txt")).unwrap();
        assert_eq!((aug.len(), skipped.len()), (1319, 0), "{skipped:?}");
        let (orig, _) = read_gsm8k_jsonl(&d.join("gsm8k/test.jsonl"), TraceStyle::Aug).unwrap();
        // Same answers in the same order: a check on the comma stripping of both readers.
        assert!(aug.iter().zip(&orig).all(|(a, o)| a.answer == o.answer));
    }

    #[test]
    fn the_real_middletrain_subset_reports_its_repaired_and_rejected_lines() {
        let Some(d) = data_dir() else { return };
        let (examples, skipped) = read_aug_text(&d.join("gsm8k-aug-train-subset/middletrain.txt")).unwrap();
        let repaired = examples.iter().filter(|e| e.repaired.is_some()).count();
        eprintln!("{}", load_report("middletrain.txt", &examples, &skipped));
        assert_eq!(examples.len() + skipped.len(), 3000);
        // `36.`, `18.`, `50.`, `44.`, `105.`, `200.` (trailing dot) and `.45` (no leading zero).
        assert_eq!(repaired, 7);
        // `2/5` is a fraction, not a number the scorer could compare.
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].line, 2489);
    }

    #[test]
    fn gsm8k_train_minus_the_aug_validation_questions_leaves_6973() {
        let Some(d) = data_dir() else { return };
        let (valid, skipped) = read_aug_text(&d.join("gsm8k-aug/valid.txt")).unwrap();
        assert_eq!((valid.len(), skipped.len()), (500, 0));
        let (train, _) = read_gsm8k_jsonl(&d.join("gsm8k/train.jsonl"), TraceStyle::Nl).unwrap();
        let (kept, removed) = remove_questions(train, &question_set(&valid));
        assert_eq!((kept.len(), removed), (6973, 500));
    }
}
