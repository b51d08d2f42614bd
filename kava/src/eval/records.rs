//! Evaluation records: GSM8k JSONL (`{"question", "answer": "... #### 72"}`), GSM8k-Aug text
//! (`question||<<e=v>> ... #### 72`), GSM-Hard JSONL (`{"input", "target"}`) and SVAMP JSON
//! (`[{"Body", "Question", "Answer"}]`), read into (question, gold number) pairs. Malformed
//! records are counted and reported with their line, never fatal; a file with no usable record
//! at all is an error naming it. Burn-free (fuzzed on its own, `kava/fuzz`).

use std::path::{Path, PathBuf};

use crate::answer::parse_gold;
use crate::error::{Error, Result};

/// A question and its gold answer.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalItem {
    pub question: String,
    pub gold: f64,
    /// Reasoning steps of the gold solution, where the format has them: `<<…>>` equations of a
    /// GSM8k-Aug line, solution lines before `####` of a GSM8k record (`None`: GSM-Hard, SVAMP).
    pub steps: Option<usize>,
    /// 1-based line (JSONL/text) or element index (JSON array) in its file, for messages.
    pub line: usize,
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

/// Reads an evaluation file, detecting its format from the extension (`.json` SVAMP, `.jsonl`
/// GSM8k or GSM-Hard, anything else GSM8k-Aug text). A file without a single usable record (empty,
/// all malformed, or in another format than its extension says) is an error naming it: an
/// evaluation of nothing must not pass for a result.
pub fn load_eval_set(path: impl AsRef<Path>) -> Result<EvalSet> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let (items, skipped) = parse_eval_set(&text, path)?;
    if items.is_empty() {
        let format = match path.extension().and_then(|e| e.to_str()).unwrap_or("") {
            "json" => "SVAMP JSON (a .json file)",
            "jsonl" => "GSM8k or GSM-Hard JSONL (a .jsonl file)",
            _ => "GSM8k-Aug text `question||<<steps>> #### answer` (any extension but .json/.jsonl)",
        };
        let why = match skipped.first() {
            None => "it has no records".to_string(),
            Some(s) => format!("all {} records are malformed (first: line {}: {})", skipped.len(), s.line, s.reason),
        };
        return Err(Error::Input { what: path.display().to_string(), problem: format!("no usable evaluation record: {why}; expected {format}") });
    }
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
                Ok(item) => items.push(EvalItem { line: i + 1, ..item }),
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
            Ok(item) => items.push(EvalItem { line: i + 1, ..item }),
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
    nonempty(question).map(|question| EvalItem { question, gold: f64::NAN, steps, line: 0 }).and_then(|mut it| {
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
        return Ok(EvalItem { question: nonempty(q.as_str().ok_or("`question` is not a string")?)?, gold: gold(answer)?, steps, line: 0 });
    }
    if let (Some(q), Some(t)) = (field("input"), field("target")) {
        let target = match t {
            serde_json::Value::Number(n) => n.as_f64().ok_or("`target` is not a finite number")?,
            serde_json::Value::String(s) => gold(s)?,
            _ => return Err("`target` is not a number".into()),
        };
        return Ok(EvalItem { question: nonempty(q.as_str().ok_or("`input` is not a string")?)?, gold: target, steps: None, line: 0 });
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
    Ok(EvalItem { question: nonempty(&question)?, gold, steps: None, line: 0 })
}

fn nonempty(q: &str) -> std::result::Result<String, String> {
    let q = q.trim();
    if q.is_empty() {
        Err("empty question".into())
    } else {
        Ok(q.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_four_formats_parse_and_bad_records_are_counted() {
        let aug = "Q one?||<<2*3=6>> #### 6\nbroken line\nQ two?||<<1+1=2>> #### 1,000\nQ three?||#### 2/5\n";
        let (items, skipped) = parse_eval_set(aug, Path::new("x.txt")).unwrap();
        assert_eq!(items, vec![EvalItem { question: "Q one?".into(), gold: 6.0, steps: Some(1), line: 1 }, EvalItem { question: "Q two?".into(), gold: 1000.0, steps: Some(1), line: 3 }]);
        assert_eq!(skipped.iter().map(|s| s.line).collect::<Vec<_>>(), vec![2, 4]);

        let gsm = "{\"question\": \"How many?\", \"answer\": \"It is 3.\\n#### -3\"}\n{\"question\": 1}\nnot json\n";
        let (items, skipped) = parse_eval_set(gsm, Path::new("t.jsonl")).unwrap();
        assert_eq!(items, vec![EvalItem { question: "How many?".into(), gold: -3.0, steps: Some(1), line: 1 }]);
        assert_eq!(skipped.len(), 2);

        let hard = "{\"input\": \"Big?\", \"target\": 12345.5}\n{\"input\": \"s\", \"target\": \"7\"}\n";
        let (items, _) = parse_eval_set(hard, Path::new("h.jsonl")).unwrap();
        assert_eq!(items[0].gold, 12345.5);
        assert_eq!(items[1].gold, 7.0);

        let svamp = r#"[{"Body": "Ann has 3.", "Question": "How many?", "Answer": 3.0}, {"Body": "x"}]"#;
        let (items, skipped) = parse_eval_set(svamp, Path::new("s.json")).unwrap();
        assert_eq!(items, vec![EvalItem { question: "Ann has 3. How many?".into(), gold: 3.0, steps: None, line: 1 }]);
        assert_eq!(skipped[0].line, 2);
    }

    #[test]
    fn a_file_with_no_usable_record_is_an_error_naming_it() {
        let dir = std::env::temp_dir().join(format!("kava-eval-records-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, text, why) in [
            ("empty.txt", "", "no records"),
            ("garbage.txt", "not a record\nnor this\n", "all 2 records are malformed"),
            ("misnamed.txt", "{\"question\": \"Q?\", \"answer\": \"#### 3\"}\n", "GSM8k-Aug text"),
            ("empty.json", "[]", "no records"),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            let msg = load_eval_set(&path).unwrap_err().to_string();
            assert!(msg.contains(name) && msg.contains("no usable evaluation record") && msg.contains(why), "{name}: {msg}");
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
