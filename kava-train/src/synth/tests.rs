//! Checks that generated problems are arithmetically sound, reproducible, varied, readable and
//! written in the formats the GSM8k readers accept.

use super::words::NAMES;
use super::*;

/// Evaluates `a op b op c…` with `*` and `/` before `+` and `-`, left to right within a level.
/// `None` when the text is not such an expression, a division is inexact, or any partial result
/// is negative, so a `Some` also proves every intermediate value is a non-negative integer.
fn eval(expr: &str) -> Option<i64> {
    let mut nums = Vec::new();
    let mut ops = Vec::new();
    let mut digits = String::new();
    for c in expr.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else if "+-*/".contains(c) {
            nums.push(digits.parse::<i64>().ok()?);
            digits.clear();
            ops.push(c);
        } else {
            return None;
        }
    }
    nums.push(digits.parse::<i64>().ok()?);
    // Fold products and quotients into terms, then add and subtract the terms.
    let mut terms = vec![nums[0]];
    let mut signs = vec!['+'];
    for (&op, &n) in ops.iter().zip(&nums[1..]) {
        match op {
            '*' => *terms.last_mut()? *= n,
            '/' => {
                let t = terms.last_mut()?;
                if n == 0 || *t % n != 0 {
                    return None;
                }
                *t /= n;
            }
            sign => {
                terms.push(n);
                signs.push(sign);
            }
        }
    }
    let mut acc = 0i64;
    for (t, s) in terms.into_iter().zip(signs) {
        acc = if s == '+' { acc + t } else { acc - t };
        if acc < 0 {
            return None;
        }
    }
    Some(acc)
}

/// A minimal JSON reader for one object of string values: enough to prove the JSONL line is
/// valid JSON without a dependency. Returns the key/value pairs in order.
fn parse_json_object(s: &str) -> Result<Vec<(String, String)>, String> {
    let mut chars = s.trim().chars().peekable();
    let skip_ws = |it: &mut std::iter::Peekable<std::str::Chars>| {
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
    };
    let string = |it: &mut std::iter::Peekable<std::str::Chars>| -> Result<String, String> {
        if it.next() != Some('"') {
            return Err("expected a string".into());
        }
        let mut out = String::new();
        loop {
            match it.next().ok_or("unterminated string")? {
                '"' => return Ok(out),
                '\\' => match it.next().ok_or("dangling escape")? {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    c @ ('"' | '\\' | '/') => out.push(c),
                    'u' => {
                        let hex: String = (0..4).filter_map(|_| it.next()).collect();
                        let code = u32::from_str_radix(&hex, 16).map_err(|e| e.to_string())?;
                        out.push(char::from_u32(code).ok_or("bad \\u escape")?);
                    }
                    c => return Err(format!("bad escape \\{c}")),
                },
                c if (c as u32) < 0x20 => return Err("raw control character in string".into()),
                c => out.push(c),
            }
        }
    };
    if chars.next() != Some('{') {
        return Err("expected `{`".into());
    }
    let mut pairs = Vec::new();
    loop {
        skip_ws(&mut chars);
        let key = string(&mut chars)?;
        skip_ws(&mut chars);
        if chars.next() != Some(':') {
            return Err("expected `:`".into());
        }
        skip_ws(&mut chars);
        pairs.push((key, string(&mut chars)?));
        skip_ws(&mut chars);
        match chars.next() {
            Some(',') => continue,
            Some('}') if chars.next().is_none() => return Ok(pairs),
            _ => return Err("expected `,` or a final `}`".into()),
        }
    }
}

fn sample() -> Vec<Problem> {
    generate(7, 2000)
}

#[test]
fn the_evaluator_respects_precedence_and_rejects_inexact_division() {
    assert_eq!(eval("3*4+2"), Some(14));
    assert_eq!(eval("2+3*4"), Some(14));
    assert_eq!(eval("100-50-30-15"), Some(5));
    assert_eq!(eval("48/2"), Some(24));
    assert_eq!(eval("7/2"), None);
    assert_eq!(eval("3-5"), None);
    assert_eq!(eval("3 * 5"), None);
}

#[test]
fn every_equation_evaluates_to_its_stated_value_with_non_negative_integer_steps() {
    for p in sample() {
        for s in &p.steps {
            assert_eq!(eval(&s.lhs), Some(s.value), "{} in: {}", s.lhs, p.question);
            assert!(s.value >= 0);
        }
    }
}

#[test]
fn the_last_step_is_the_answer_and_every_problem_has_two_to_five_steps() {
    for p in sample() {
        assert_eq!(p.steps.last().unwrap().value, p.answer, "{}", p.question);
        assert!((2..=5).contains(&p.steps.len()), "{} steps: {}", p.steps.len(), p.question);
    }
}

#[test]
fn every_step_count_from_two_to_five_occurs() {
    let counts: HashSet<usize> = sample().iter().map(|p| p.steps.len()).collect();
    assert_eq!(counts, (2..=5).collect());
}

#[test]
fn numbers_stay_small_enough_for_a_tiny_model() {
    for p in sample() {
        for s in &p.steps {
            assert!(s.value <= 3000, "{} = {} in: {}", s.lhs, s.value, p.question);
        }
    }
}

#[test]
fn the_same_seed_gives_the_same_problems_and_different_seeds_differ() {
    assert_eq!(generate(42, 300), generate(42, 300));
    let (a, b) = (generate(42, 300), generate(43, 300));
    let same = a.iter().zip(&b).filter(|(x, y)| x.question == y.question).count();
    assert!(same < 5, "{same} of 300 questions coincide across seeds");
}

#[test]
fn a_longer_set_starts_with_the_shorter_one() {
    assert_eq!(generate(5, 50)[..], generate(5, 200)[..50]);
}

#[test]
fn train_and_test_share_no_question_and_neither_repeats_one() {
    let (train, test) = train_test(11, 3000, 1000);
    assert_eq!((train.len(), test.len()), (3000, 1000));
    let train_q: HashSet<&str> = train.iter().map(|p| p.question.as_str()).collect();
    let test_q: HashSet<&str> = test.iter().map(|p| p.question.as_str()).collect();
    assert_eq!((train_q.len(), test_q.len()), (3000, 1000));
    assert!(train_q.is_disjoint(&test_q));
    // The test stream is its own, not the training stream continued.
    assert_ne!(test[..10], generate(11, 3010)[3000..]);
}

#[test]
fn at_least_twelve_frames_and_twenty_names_appear_in_two_thousand_problems() {
    let problems = sample();
    let frames: HashSet<&str> = problems.iter().map(|p| p.frame).collect();
    assert!(frames.len() >= 12, "{} frames: {frames:?}", frames.len());
    let names = NAMES
        .iter()
        .filter(|(name, _)| {
            problems.iter().any(|p| p.question.split(|c: char| !c.is_alphanumeric()).any(|w| w == *name))
        })
        .count();
    assert!(names >= 20, "only {names} names appear");
}

#[test]
fn the_aug_line_is_question_then_annotations_then_the_answer() {
    for p in sample() {
        let line = p.aug_line();
        assert!(!line.contains('\n'));
        let (q, rest) = line.split_once("||").expect("`||` separator");
        assert_eq!(q, p.question);
        let (steps, answer) = rest.rsplit_once(" #### ").expect("`####` before the answer");
        assert_eq!(answer.parse::<i64>().unwrap(), p.answer);
        let anns: Vec<&str> = steps.split(' ').collect();
        assert_eq!(anns.len(), p.steps.len());
        for (a, s) in anns.iter().zip(&p.steps) {
            let inner = a.strip_prefix("<<").and_then(|a| a.strip_suffix(">>")).expect("`<<e=v>>`");
            let (e, v) = inner.split_once('=').unwrap();
            assert_eq!(eval(e), Some(v.parse().unwrap()));
            assert_eq!(e, s.lhs);
        }
    }
}

#[test]
fn the_jsonl_line_parses_as_json_with_annotated_steps_and_the_answer_last() {
    for p in sample() {
        let pairs = parse_json_object(&p.jsonl_line()).unwrap_or_else(|e| panic!("{e}: {}", p.jsonl_line()));
        assert_eq!(pairs[0], ("question".to_string(), p.question.clone()));
        assert_eq!(pairs[1].0, "answer");
        let lines: Vec<&str> = pairs[1].1.lines().collect();
        assert_eq!(lines.len(), p.steps.len() + 1);
        assert_eq!(*lines.last().unwrap(), format!("#### {}", p.answer));
        for (line, s) in lines.iter().zip(&p.steps) {
            // Real GSM8k style: `3*5=<<3*5=15>>15` (or `=$<<…>>15`), exactly one annotation a line.
            assert_eq!(line.matches("<<").count(), 1, "{line}");
            let ann = s.annotation();
            let plain = format!("{}={ann}{}", s.lhs, s.value);
            let money = format!("{}=${ann}{}", s.lhs, s.value);
            assert!(line.contains(&plain) || line.contains(&money), "{line}");
        }
    }
}

#[test]
fn the_nl_trace_states_each_computation_in_numbers_within_a_sentence() {
    for p in sample() {
        let trace = p.nl_trace();
        assert_eq!(trace.len(), p.steps.len());
        for (t, s) in trace.iter().zip(&p.steps) {
            let spaced: String =
                s.lhs.chars().map(|c| if "+-*/".contains(c) { format!(" {c} ") } else { c.to_string() }).collect();
            assert!(
                t.contains(&format!("{spaced} = {}", s.value)) || t.contains(&format!("{spaced} = ${}", s.value)),
                "{t}"
            );
            assert!(t.starts_with(|c: char| c.is_ascii_uppercase() || c.is_ascii_digit()) && t.ends_with('.'), "{t}");
        }
    }
}

/// Mechanical grammar checks over every question and sentence: a/an, no "1 apples", no doubled
/// spaces or words, questions end with "?", sentences start with a capital.
fn grammar_problems(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let words: Vec<&str> = text.split_whitespace().collect();
    if text.contains("  ") || text.contains(" .") || text.contains(" ,") || text.contains("..") {
        found.push("spacing or punctuation".into());
    }
    for w in words.windows(2) {
        let next = w[1].trim_matches(|c: char| !c.is_alphanumeric());
        let lower = w[0].to_ascii_lowercase();
        if (lower == "a" || lower == "an") && !next.is_empty() {
            let want = words::a(next);
            if !want.eq_ignore_ascii_case(&format!("{} {next}", w[0])) {
                found.push(format!("`{} {}`", w[0], w[1]));
            }
        }
        if w[0] == "1" && next.ends_with('s') {
            found.push(format!("`1 {}`", w[1]));
        }
        if w[0].eq_ignore_ascii_case(w[1]) && w[0].chars().all(char::is_alphabetic) {
            found.push(format!("doubled `{}`", w[0]));
        }
    }
    found
}

#[test]
fn questions_and_sentences_pass_the_mechanical_grammar_checks() {
    for p in sample() {
        assert!(p.question.ends_with('?') && !p.question.contains("||") && !p.question.contains('\n'));
        assert!(p.question.starts_with(|c: char| c.is_ascii_uppercase()), "{}", p.question);
        for text in std::iter::once(&p.question).chain(p.nl_trace().iter()) {
            let issues = grammar_problems(text);
            assert!(issues.is_empty(), "{issues:?} in: {text}");
        }
    }
}

#[test]
fn a_sample_of_problems_is_printed_for_reading_by_eye() {
    // Run with `--nocapture` to read them; one per frame at the front keeps the sample varied.
    let mut seen = HashSet::new();
    for p in generate(3, 400).into_iter().filter(|p| seen.insert(p.frame)).take(5) {
        eprintln!("[{}] {}", p.frame, p.aug_line());
        eprintln!("{}\n", p.jsonl_line());
        for s in p.nl_trace() {
            eprintln!("  {s}");
        }
        eprintln!();
    }
}

#[test]
fn writers_replace_the_file_atomically_with_one_line_per_problem() {
    let dir = std::env::temp_dir().join(format!("kava-synth-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let problems = generate(1, 25);
    let (aug, jsonl) = (dir.join("train.txt"), dir.join("train.jsonl"));
    std::fs::write(&aug, "stale").unwrap();
    write_aug(&aug, &problems).unwrap();
    write_jsonl(&jsonl, &problems).unwrap();
    let aug_text = std::fs::read_to_string(&aug).unwrap();
    let lines: Vec<String> = problems.iter().map(Problem::aug_line).collect();
    assert_eq!(aug_text, lines.join("\n") + "\n");
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap().lines().count(), 25);
    // Only the two data files remain: no temporary file is left behind.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}
