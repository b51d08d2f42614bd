//! Synthetic GSM8k-style word problems (2–5 integer steps) for training the small demo model,
//! written in the same GSM8k-Aug text and GSM8k JSONL formats the data readers accept.
//!
//! Every problem comes from a frame (`templates.rs`, `counting.rs`, `sharing.rs`) that draws its
//! numbers so each step is a non-negative integer: divisions are built from their quotient,
//! subtractions from a smaller part. Problem `i` of a stream is generated from its own seed, mixed
//! from (seed, stream, i), so a set is reproducible and the test set's stream never replays the
//! training set's draws.

mod counting;
mod sharing;
mod templates;
mod words;

#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One word problem: its question, its steps in order and the integer answer (the last step's
/// value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub question: String,
    pub steps: Vec<Step>,
    pub answer: i64,
    /// The frame it came from (`"shopping"`, `"reading"`…), for coverage checks and reports.
    pub frame: &'static str,
}

/// One step: the calculator expression (`3*5`), its value and the sentence that states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The expression in GSM8k calculator form, operators `+ - * /` and no spaces.
    pub lhs: String,
    pub value: i64,
    /// The natural-language sentence, with the computation spelt `3 * 5 = 15` (`= $15` for money).
    pub sentence: String,
    /// Where the computation sits in `sentence`, so the JSONL form can annotate it in place.
    calc: Range<usize>,
    dollars: bool,
}

impl Step {
    /// The calculator annotation `<<3*5=15>>`.
    pub fn annotation(&self) -> String {
        format!("<<{}={}>>", self.lhs, self.value)
    }

    /// The sentence as real GSM8k writes it: `She has 3*5=<<3*5=15>>15 muffins.`
    pub fn annotated(&self) -> String {
        let dollar = if self.dollars { "$" } else { "" };
        format!(
            "{}{}={dollar}{}{}{}",
            &self.sentence[..self.calc.start],
            self.lhs,
            self.annotation(),
            self.value,
            &self.sentence[self.calc.end..]
        )
    }
}

impl Problem {
    /// GSM8k-Aug text line: `question||<<e=v>> <<e=v>> #### answer`.
    pub fn aug_line(&self) -> String {
        let steps: Vec<String> = self.steps.iter().map(Step::annotation).collect();
        format!("{}||{} #### {}", self.question, steps.join(" "), self.answer)
    }

    /// GSM8k JSONL record: one annotated sentence per line of `answer`, then `#### N`.
    pub fn jsonl_line(&self) -> String {
        let mut answer: Vec<String> = self.steps.iter().map(Step::annotated).collect();
        answer.push(format!("#### {}", self.answer));
        format!("{{\"question\": {}, \"answer\": {}}}", json_string(&self.question), json_string(&answer.join("\n")))
    }

    /// The natural-language trace, one sentence per step.
    pub fn nl_trace(&self) -> Vec<String> {
        self.steps.iter().map(|s| s.sentence.clone()).collect()
    }
}

/// `n` distinct problems (by question text) from `seed`'s training stream.
pub fn generate(seed: u64, n: usize) -> Vec<Problem> {
    let mut seen = HashSet::new();
    take_unique(seed, STREAM_TRAIN, n, &mut seen)
}

/// A training set and a test set from disjoint seed streams; no question appears in both (nor
/// twice in either).
pub fn train_test(seed: u64, n_train: usize, n_test: usize) -> (Vec<Problem>, Vec<Problem>) {
    let mut seen = HashSet::new();
    let train = take_unique(seed, STREAM_TRAIN, n_train, &mut seen);
    let test = take_unique(seed, STREAM_TEST, n_test, &mut seen);
    (train, test)
}

/// Writes problems as GSM8k-Aug text lines, atomically.
pub fn write_aug(path: &Path, problems: &[Problem]) -> std::io::Result<()> {
    write_atomic(path, problems.iter().map(Problem::aug_line))
}

/// Writes problems as GSM8k JSONL records, atomically.
pub fn write_jsonl(path: &Path, problems: &[Problem]) -> std::io::Result<()> {
    write_atomic(path, problems.iter().map(Problem::jsonl_line))
}

const STREAM_TRAIN: u64 = 0x7472_6169_6e00_0001;
const STREAM_TEST: u64 = 0x7465_7374_0000_0002;

fn take_unique(seed: u64, stream: u64, n: usize, seen: &mut HashSet<String>) -> Vec<Problem> {
    let mut out = Vec::with_capacity(n);
    // The frames can write far more than 10^9 distinct questions, so a long run of repeats means
    // a broken frame, not bad luck: fail loudly rather than loop forever.
    let limit = 20 * n as u64 + 10_000;
    let mut i = 0u64;
    while out.len() < n {
        assert!(i < limit, "synth: only {} distinct problems after {i} draws", out.len());
        let p = problem_at(seed, stream, i);
        i += 1;
        if seen.insert(p.question.clone()) {
            out.push(p);
        }
    }
    out
}

fn problem_at(seed: u64, stream: u64, index: u64) -> Problem {
    let mut rng = Rng::new(mix(mix(seed ^ stream) ^ index));
    templates::build(&mut rng)
}

/// The SplitMix64 finalizer: spreads nearby seeds/indices over the whole state space.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64: tiny, seedable and good enough for picking words and small numbers.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next_u64(&mut self) -> u64 {
        // `mix` adds the golden-ratio increment itself, so this is exactly SplitMix64.
        let z = self.0;
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(z)
    }

    /// A uniform integer in `lo..=hi`.
    pub(crate) fn range(&mut self, lo: i64, hi: i64) -> i64 {
        assert!(lo <= hi, "empty range {lo}..={hi}");
        lo + (self.next_u64() % (hi - lo + 1) as u64) as i64
    }

    /// A uniform multiple of `step` in `lo..=hi` (`lo` a multiple of `step`).
    pub(crate) fn range_by(&mut self, lo: i64, hi: i64, step: i64) -> i64 {
        lo + step * self.range(0, (hi - lo) / step)
    }

    pub(crate) fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.range(0, xs.len() as i64 - 1) as usize]
    }

    /// Two different elements of `xs`.
    pub(crate) fn pick_two<'a, T>(&mut self, xs: &'a [T]) -> (&'a T, &'a T) {
        let i = self.range(0, xs.len() as i64 - 1) as usize;
        let j = (i + self.range(1, xs.len() as i64 - 1) as usize) % xs.len();
        (&xs[i], &xs[j])
    }

    /// True with probability `num / den`.
    pub(crate) fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next_u64() % den < num
    }
}

/// An expression with its value, built only through constructors that keep every partial result
/// a non-negative integer.
pub(crate) struct Ex {
    text: String,
    value: i64,
}

impl Ex {
    pub(crate) fn add(a: i64, b: i64) -> Ex {
        Ex::sum(&[a, b])
    }
    pub(crate) fn sum(xs: &[i64]) -> Ex {
        let text: Vec<String> = xs.iter().map(i64::to_string).collect();
        Ex { text: text.join("+"), value: xs.iter().sum() }
    }
    pub(crate) fn sub(a: i64, b: i64) -> Ex {
        Ex::minus(a, &[b])
    }
    /// `a-b-c…`, never below zero.
    pub(crate) fn minus(a: i64, xs: &[i64]) -> Ex {
        let value = a - xs.iter().sum::<i64>();
        assert!(value >= 0, "synth: {a} minus {xs:?} is negative");
        let text = xs.iter().fold(a.to_string(), |t, x| format!("{t}-{x}"));
        Ex { text, value }
    }
    pub(crate) fn mul(a: i64, b: i64) -> Ex {
        Ex { text: format!("{a}*{b}"), value: a * b }
    }
    /// `a*b+c`, for the precedence a calculator line really has to respect.
    pub(crate) fn mul_add(a: i64, b: i64, c: i64) -> Ex {
        Ex { text: format!("{a}*{b}+{c}"), value: a * b + c }
    }
    pub(crate) fn div(a: i64, b: i64) -> Ex {
        assert!(b > 0 && a % b == 0, "synth: {a}/{b} is not exact");
        Ex { text: format!("{a}/{b}"), value: a / b }
    }
}

/// The steps of a problem under construction.
pub(crate) struct Draft {
    steps: Vec<Step>,
}

impl Draft {
    pub(crate) fn new() -> Self {
        Draft { steps: Vec::new() }
    }

    /// Adds a step whose sentence is `template` with `@` replaced by `3 * 5 = 15`; returns 15.
    pub(crate) fn count(&mut self, template: &str, ex: Ex) -> i64 {
        self.push(template, ex, false)
    }

    /// Like `count`, for dollars: `@` becomes `3 * 5 = $15`.
    pub(crate) fn money(&mut self, template: &str, ex: Ex) -> i64 {
        self.push(template, ex, true)
    }

    fn push(&mut self, template: &str, ex: Ex, dollars: bool) -> i64 {
        let (pre, post) = template.split_once('@').expect("a step template marks its computation with `@`");
        let spaced: String =
            ex.text.chars().map(|c| if "+-*/".contains(c) { format!(" {c} ") } else { c.to_string() }).collect();
        let dollar = if dollars { "$" } else { "" };
        let calc = format!("{spaced} = {dollar}{}", ex.value);
        let sentence = format!("{pre}{calc}{post}");
        let calc = pre.len()..pre.len() + calc.len();
        self.steps.push(Step { lhs: ex.text, value: ex.value, sentence, calc, dollars });
        ex.value
    }

    pub(crate) fn finish(self, question: String) -> Problem {
        let answer = self.steps.last().expect("a problem has steps").value;
        Problem { question, steps: self.steps, answer, frame: "" }
    }
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes `lines` to a temporary file beside `path`, then renames it over `path`, so a reader never
/// sees half a data set.
fn write_atomic(path: &Path, lines: impl Iterator<Item = String>) -> std::io::Result<()> {
    let name = path.file_name().ok_or_else(|| std::io::Error::other("path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp-{}", std::process::id()));
    let tmp: PathBuf = path.with_file_name(tmp_name);
    let result = (|| {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        for line in lines {
            f.write_all(line.as_bytes())?;
            f.write_all(b"\n")?;
        }
        f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
