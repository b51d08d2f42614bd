//! Readers for the two data formats of method.md §1.1 (GSM8k-Aug text and GSM8k JSONL) and the
//! gold-answer rules. Bad lines never fail a read: they come back as [`Skipped`] with a reason,
//! and only IO errors are errors.

use std::path::Path;

use serde::Deserialize;

use super::{DataError, Example, Skipped, TraceStyle};

/// Parses a gold answer: thousands separators stripped (`1,000` → 1000), negative and decimal
/// answers kept. Returns the value and, when the text needed a repair, why:
/// a trailing dot (`36.` → 36) or a missing leading zero (`.45` → 0.45) are repaired; anything
/// else that is not `-?digits(.digits)?` (e.g. the fraction `2/5`) is an error, because the
/// evaluation scorer (method.md §5) only compares plain numbers.
pub fn parse_gold_answer(text: &str) -> Result<(f64, Option<String>), String> {
    let raw = text.trim();
    let s: String = raw.chars().filter(|&c| c != ',').collect();
    let (neg, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.as_str()),
    };
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let (int, frac) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let (canonical, repair) = match frac {
        None if all_digits(int) => (int.to_string(), None),
        Some(f) if all_digits(int) && all_digits(f) => (format!("{int}.{f}"), None),
        Some("") if all_digits(int) => (int.to_string(), Some(format!("trailing '.' dropped from `{raw}`"))),
        Some(f) if int.is_empty() && all_digits(f) => {
            (format!("0.{f}"), Some(format!("leading 0 added to `{raw}`")))
        }
        _ => return Err(format!("gold answer `{raw}` is not a number")),
    };
    let v: f64 = canonical.parse().map_err(|e| format!("gold answer `{raw}`: {e}"))?;
    // A run of digits too long for f64 parses as infinity: no answer a scorer could compare.
    if !v.is_finite() {
        return Err(format!("gold answer `{}` is too large", truncate(raw)));
    }
    Ok((if neg { -v } else { v }, repair))
}

/// The calculator annotations of `text` in order, each written with its brackets
/// (`<<48/2=24>>`), and the text with them removed. Errors on an unclosed `<<`.
fn split_annotations(text: &str) -> Result<(Vec<String>, String), String> {
    let mut annotations = Vec::new();
    let mut rest_text = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("<<") {
        let Some(len) = rest[start..].find(">>") else {
            return Err(format!("unclosed `<<` in `{}`", truncate(&rest[start..])));
        };
        rest_text.push_str(&rest[..start]);
        annotations.push(rest[start..start + len + 2].to_string());
        rest = &rest[start + len + 2..];
    }
    rest_text.push_str(rest);
    Ok((annotations, rest_text))
}

/// Shortens quoted text in reasons so a report stays one readable line per problem.
fn truncate(s: &str) -> String {
    match s.char_indices().nth(60) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The `aug` steps of a GSM8k solution (without its `####` line): the annotations in order.
pub fn aug_steps(solution: &str) -> Result<Vec<String>, String> {
    Ok(split_annotations(solution)?.0)
}

/// The `nl` steps of a GSM8k solution (without its `####` line): each line with its annotations
/// removed, trimmed; lines left empty are dropped.
pub fn nl_steps(solution: &str) -> Result<Vec<String>, String> {
    let mut steps = Vec::new();
    for line in solution.lines() {
        let text = split_annotations(line)?.1;
        let text = text.trim();
        if !text.is_empty() {
            steps.push(text.to_string());
        }
    }
    Ok(steps)
}

/// Parses one GSM8k-Aug text line `question||<<e=v>> <<e=v>> ... #### answer`.
/// `line` is the 1-based line number stored in the example.
pub fn parse_aug_line(text: &str, line: usize) -> Result<Example, String> {
    let (question, rest) = text.split_once("||").ok_or("no `||` between question and steps")?;
    let question = question.trim();
    if question.is_empty() {
        return Err("empty question".into());
    }
    let (steps_text, gold) = rest.rsplit_once("####").ok_or("no `####` before the answer")?;
    let (steps, outside) = split_annotations(steps_text)?;
    // Steps are only `<<...>>` items here; stray text means the line is not in this format.
    if !outside.trim().is_empty() {
        return Err(format!("text outside `<<...>>` in the steps: `{}`", truncate(outside.trim())));
    }
    let (answer, repaired) = parse_gold_answer(gold)?;
    Ok(Example { question: question.to_string(), steps, answer, line, repaired })
}

#[derive(Deserialize)]
struct Gsm8kRecord {
    question: String,
    answer: String,
}

/// Parses one GSM8k JSONL record `{"question", "answer"}` into an example with `style` steps.
pub fn parse_gsm8k_record(text: &str, line: usize, style: TraceStyle) -> Result<Example, String> {
    let rec: Gsm8kRecord = serde_json::from_str(text).map_err(|e| format!("bad JSON: {e}"))?;
    let question = rec.question.trim();
    if question.is_empty() {
        return Err("empty question".into());
    }
    // The solution ends with a line `#### answer`; everything before it is the reasoning.
    let (solution, gold) = match rec.answer.trim_end().rsplit_once('\n') {
        Some((sol, last)) => (sol, last),
        None => ("", rec.answer.trim_end()),
    };
    let gold = gold.trim_start().strip_prefix("####").ok_or("the last answer line is not `#### answer`")?;
    let steps = match style {
        TraceStyle::Aug => aug_steps(solution)?,
        TraceStyle::Nl => nl_steps(solution)?,
    };
    let (answer, repaired) = parse_gold_answer(gold)?;
    Ok(Example { question: question.to_string(), steps, answer, line, repaired })
}

/// Applies `parse` to every line of `text`, collecting examples and skipped lines (with the
/// 1-based line number and reason) for the file named `file`. Blank lines are skipped and
/// reported too: they are not examples, and a count that silently shrank would hide them.
fn parse_lines(
    file: &str,
    text: &str,
    parse: impl Fn(&str, usize) -> Result<Example, String>,
) -> (Vec<Example>, Vec<Skipped>) {
    let mut examples = Vec::new();
    let mut skipped = Vec::new();
    for (i, l) in text.lines().enumerate() {
        let result = if l.trim().is_empty() { Err("blank line".to_string()) } else { parse(l, i + 1) };
        match result {
            Ok(e) => examples.push(e),
            Err(reason) => skipped.push(Skipped { file: file.to_string(), line: i + 1, reason }),
        }
    }
    (examples, skipped)
}

fn read(path: &Path) -> Result<String, DataError> {
    std::fs::read_to_string(path).map_err(|source| DataError::Io { file: path.to_path_buf(), source })
}

/// Parses GSM8k-Aug text (see [`parse_aug_line`]) held in memory; `file` names it in reports.
pub fn parse_aug_text(file: &str, text: &str) -> (Vec<Example>, Vec<Skipped>) {
    parse_lines(file, text, parse_aug_line)
}

/// Parses GSM8k JSONL (see [`parse_gsm8k_record`]) held in memory; `file` names it in reports.
pub fn parse_gsm8k_jsonl(file: &str, text: &str, style: TraceStyle) -> (Vec<Example>, Vec<Skipped>) {
    parse_lines(file, text, |l, n| parse_gsm8k_record(l, n, style))
}

/// Reads a GSM8k-Aug text file. Fails only on IO errors.
pub fn read_aug_text(path: &Path) -> Result<(Vec<Example>, Vec<Skipped>), DataError> {
    Ok(parse_aug_text(&path.display().to_string(), &read(path)?))
}

/// Reads a GSM8k JSONL file with the given trace style. Fails only on IO errors.
pub fn read_gsm8k_jsonl(path: &Path, style: TraceStyle) -> Result<(Vec<Example>, Vec<Skipped>), DataError> {
    Ok(parse_gsm8k_jsonl(&path.display().to_string(), &read(path)?, style))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real lines: gsm8k-aug/test.txt lines 1–3 and a blank/broken line of our own.
    const AUG: &str = "Janet’s ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes muffins for her friends every day with four. She sells the remainder at the farmers' market daily for $2 per fresh duck egg. How much in dollars does she make every day at the farmers' market?||<<16-3-4=9>> <<9*2=18>> #### 18
A robe takes 2 bolts of blue fiber and half that much white fiber.  How many bolts in total does it take?||<<2/2=1>> <<2+1=3>> #### 3
Josh decides to try flipping a house.  He buys a house for $80,000 and then puts in $50,000 in repairs.  This increased the value of the house by 150%.  How much profit did he make?||<<80000+50000=130000>> <<80000*1.5=120000>> <<120000+80000=200000>> <<200000-130000=70000>> #### 70000

no separator here #### 4
";

    // Real lines: gsm8k/train.jsonl lines 1–2, and a 3-step record (train.jsonl line 3) below.
    const JSONL: &str = r#"{"question": "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?", "answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.\n#### 72"}
{"question": "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?", "answer": "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\nWorking 50 minutes, she earned 0.2 x 50 = $<<0.2*50=10>>10.\n#### 10"}
{"question": "broken", "answer": 
"#;

    const THREE_STEPS: &str = r#"{"question": "Betty is saving money for a new wallet which costs $100. Betty has only half of the money she needs. Her parents decided to give her $15 for that purpose, and her grandparents twice as much as her parents. How much more money does Betty need to buy the wallet?", "answer": "In the beginning, Betty has only 100 / 2 = $<<100/2=50>>50.\nBetty's grandparents gave her 15 * 2 = $<<15*2=30>>30.\nThis means, Betty needs 100 - 50 - 30 - 15 = $<<100-50-30-15=5>>5 more.\n#### 5"}"#;

    #[test]
    fn aug_text_lines_parse_into_questions_steps_and_answers() {
        let (ex, skipped) = parse_aug_text("t.txt", AUG);
        assert_eq!(ex.len(), 3);
        assert_eq!(ex[0].steps, ["<<16-3-4=9>>", "<<9*2=18>>"]);
        assert_eq!(ex[0].answer, 18.0);
        assert!(ex[0].question.starts_with("Janet’s ducks") && ex[0].question.ends_with("market?"));
        // Interior double spaces are data, kept as is.
        assert!(ex[1].question.contains("fiber.  How"));
        assert_eq!(ex[2].steps.len(), 4);
        assert_eq!((ex[2].answer, ex[2].line), (70000.0, 3));
        let lines: Vec<usize> = skipped.iter().map(|s| s.line).collect();
        assert_eq!(lines, [4, 5]);
        assert!(skipped[0].reason.contains("blank") && skipped[1].reason.contains("||"));
    }

    #[test]
    fn gsm8k_jsonl_records_parse_and_bad_json_is_skipped_not_fatal() {
        let (ex, skipped) = parse_gsm8k_jsonl("t.jsonl", JSONL, TraceStyle::Aug);
        assert_eq!(ex.len(), 2);
        assert_eq!(ex[0].steps, ["<<48/2=24>>", "<<48+24=72>>"]);
        assert_eq!((ex[0].answer, ex[1].answer), (72.0, 10.0));
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].line, 3);
        assert!(skipped[0].reason.starts_with("bad JSON"), "{}", skipped[0].reason);
    }

    #[test]
    fn a_three_step_record_yields_annotations_for_aug_and_clean_lines_for_nl() {
        let aug = parse_gsm8k_record(THREE_STEPS, 3, TraceStyle::Aug).unwrap();
        assert_eq!(aug.steps, ["<<100/2=50>>", "<<15*2=30>>", "<<100-50-30-15=5>>"]);
        let nl = parse_gsm8k_record(THREE_STEPS, 3, TraceStyle::Nl).unwrap();
        assert_eq!(
            nl.steps,
            [
                "In the beginning, Betty has only 100 / 2 = $50.",
                "Betty's grandparents gave her 15 * 2 = $30.",
                "This means, Betty needs 100 - 50 - 30 - 15 = $5 more.",
            ]
        );
        assert_eq!((aug.answer, nl.answer), (5.0, 5.0));
        assert_eq!(
            nl.trace_text(false),
            "In the beginning, Betty has only 100 / 2 = $50. Betty's grandparents gave her 15 * 2 = $30."
        );
    }

    #[test]
    fn nl_steps_drop_lines_left_empty_and_unclosed_annotations_are_rejected() {
        assert_eq!(nl_steps("<<1+1=2>>\n  \nTwo is <<1+1=2>>2.").unwrap(), ["Two is 2."]);
        assert!(aug_steps("a <<1+1=2").unwrap_err().contains("unclosed"));
        assert!(parse_aug_line("q||<<1+1=2>> so #### 2", 1).unwrap_err().contains("outside"));
    }

    #[test]
    fn gold_answers_strip_commas_and_keep_negatives_and_decimals() {
        assert_eq!(parse_gold_answer("1,000").unwrap(), (1000.0, None));
        assert_eq!(parse_gold_answer(" 1,450,000").unwrap(), (1_450_000.0, None));
        assert_eq!(parse_gold_answer("-3").unwrap(), (-3.0, None));
        assert_eq!(parse_gold_answer("2.5").unwrap(), (2.5, None));
        assert_eq!(parse_gold_answer("-0.75").unwrap(), (-0.75, None));
    }

    #[test]
    fn noisy_gold_answers_are_repaired_or_rejected_with_a_reason() {
        let (v, why) = parse_gold_answer("36.").unwrap();
        assert_eq!(v, 36.0);
        assert!(why.unwrap().contains("trailing"));
        let (v, why) = parse_gold_answer(".45").unwrap();
        assert_eq!(v, 0.45);
        assert!(why.unwrap().contains("leading 0"));
        let huge = "9".repeat(400);
        for bad in ["2/5", "", "-", "1.2.3", "$5", "abc", "1e3", huge.as_str()] {
            assert!(parse_gold_answer(bad).is_err(), "{bad:?} should be rejected");
        }
        let e = parse_aug_line("q||<<1/5+2/5=3/5>> #### 2/5", 7).unwrap_err();
        assert!(e.contains("2/5"));
        assert!(parse_aug_line("q||<<3*6=18>> #### 36.", 1).unwrap().repaired.is_some());
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let err = read_aug_text(Path::new("/nonexistent/kava/valid.txt")).unwrap_err();
        assert!(matches!(err, DataError::Io { .. }));
    }
}
