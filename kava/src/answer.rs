//! The numeric answer parser shared by `solve` and evaluation (method.md §5, the CODI protocol):
//! remove commas, take the **last** number matching `-?\d+(\.\d+)?`, compare as a float with a
//! relative tolerance of 1e-6.

/// The last number in `text`, commas removed first (`1,000` → 1000).
pub fn parse_answer(text: &str) -> Option<f64> {
    let s: Vec<char> = text.chars().filter(|&c| c != ',').collect();
    let mut last = None;
    let mut i = 0;
    while i < s.len() {
        if s[i].is_ascii_digit() {
            let start = if i > 0 && s[i - 1] == '-' { i - 1 } else { i };
            let mut j = i;
            while j < s.len() && s[j].is_ascii_digit() {
                j += 1;
            }
            // A fraction needs digits after the point: "18." is 18 followed by a full stop.
            if j + 1 < s.len() && s[j] == '.' && s[j + 1].is_ascii_digit() {
                j += 1;
                while j < s.len() && s[j].is_ascii_digit() {
                    j += 1;
                }
            }
            let number: String = s[start..j].iter().collect();
            last = number.parse::<f64>().ok().or(last);
            i = j;
        } else {
            i += 1;
        }
    }
    last
}

/// Whether a predicted number equals the gold one (relative tolerance 1e-6).
pub fn answers_match(predicted: f64, gold: f64) -> bool {
    let scale = gold.abs().max(predicted.abs()).max(1e-12);
    (predicted - gold).abs() <= 1e-6 * scale
}

/// Parses a gold answer as the data sets write it (`1,000`, `-3`, `2.5`, a trailing `.`).
pub fn parse_gold(text: &str) -> Option<f64> {
    let t = text.trim().trim_end_matches('.').replace(',', "");
    t.parse::<f64>().ok().filter(|x| x.is_finite())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators_are_removed() {
        assert_eq!(parse_answer("She pays $1,000 in total."), Some(1000.0));
        assert_eq!(parse_answer("1,234,567"), Some(1234567.0));
    }

    #[test]
    fn the_last_number_wins() {
        assert_eq!(parse_answer("<<16-3-4=9>> <<9*2=18>> The answer is: 18"), Some(18.0));
    }

    #[test]
    fn negatives_and_decimals_parse() {
        assert_eq!(parse_answer("The answer is:-7"), Some(-7.0));
        assert_eq!(parse_answer("The answer is: 2.75"), Some(2.75));
        assert_eq!(parse_answer("x = -0.5"), Some(-0.5));
    }

    #[test]
    fn a_trailing_full_stop_is_not_a_decimal_point() {
        assert_eq!(parse_answer("The answer is 18."), Some(18.0));
        assert_eq!(parse_answer("18.\n"), Some(18.0));
    }

    #[test]
    fn text_without_a_number_has_no_answer() {
        assert_eq!(parse_answer("I do not know"), None);
        assert_eq!(parse_answer(""), None);
        assert_eq!(parse_answer("-"), None);
    }

    #[test]
    fn a_hyphen_between_words_is_not_a_sign() {
        assert_eq!(parse_answer("a 3-page letter"), Some(3.0));
        assert_eq!(parse_answer("pages 3-4"), Some(-4.0)); // the CODI regex reads "-4" too
    }

    #[test]
    fn matching_uses_relative_tolerance() {
        assert!(answers_match(18.0, 18.0));
        assert!(answers_match(1e9 + 0.5, 1e9));
        assert!(!answers_match(18.01, 18.0));
        assert!(answers_match(0.0, 0.0));
    }

    #[test]
    fn gold_answers_parse_with_separators_and_full_stops() {
        assert_eq!(parse_gold("1,000"), Some(1000.0));
        assert_eq!(parse_gold("36."), Some(36.0));
        assert_eq!(parse_gold("-12"), Some(-12.0));
        assert_eq!(parse_gold("2/5"), None);
    }
}
