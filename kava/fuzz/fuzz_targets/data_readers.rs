//! Fuzzes the data readers: kava-train's GSM8k JSONL and GSM8k-Aug text readers (both trace
//! styles, then the teacher / student / no-CoT layouts of every example with a byte tokenizer)
//! and kava's evaluation records (GSM8k-Aug text, GSM8k / GSM-Hard JSONL, SVAMP JSON). Nothing may
//! panic; a record either becomes an example or a skipped line with a reason, and every example
//! has a question and a finite answer.
#![no_main]

#[allow(dead_code, unused_imports)]
#[path = "../../src/answer.rs"]
mod answer;
#[allow(dead_code, unused_imports)]
#[path = "../../src/config.rs"]
mod config;
#[allow(dead_code, unused_imports)]
#[path = "../../../kava-train/src/data/mod.rs"]
mod data;
#[allow(dead_code, unused_imports)]
#[path = "../../src/error.rs"]
mod error;
#[allow(dead_code, unused_imports)]
#[path = "../../src/eval/records.rs"]
mod eval_records;
#[allow(dead_code, unused_imports)]
#[path = "../../src/gguf/mod.rs"]
mod gguf;
#[allow(dead_code, unused_imports)]
#[path = "../../src/limits.rs"]
mod limits;

use std::path::Path;

use libfuzzer_sys::fuzz_target;

/// Bytes as ids (BOS 256, EOS 257): every text tokenizes, none to nothing but the empty one.
fn bytes(text: &str) -> Vec<u32> {
    text.bytes().map(u32::from).collect()
}

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    let lines = text.lines().count();
    let tok = data::FnTokenizer { encode: bytes, bos: Some(256), eos: 257 };
    let sp = data::SpecialIds { bot: 258, eot: 259, lat: 260, pad: 261 };
    for (examples, skipped) in [
        data::parse_aug_text("t.txt", &text),
        data::parse_gsm8k_jsonl("t.jsonl", &text, data::TraceStyle::Aug),
        data::parse_gsm8k_jsonl("t.jsonl", &text, data::TraceStyle::Nl),
    ] {
        assert_eq!(examples.len() + skipped.len(), lines, "every line is an example or skipped");
        for ex in &examples {
            assert!(!ex.question.trim().is_empty() && ex.answer.is_finite());
            let t = data::teacher_seq(&tok, ex, false);
            assert_eq!(t.answer.end, t.ids.len());
            let s = data::student_seq(&tok, sp.eot, ex);
            assert!(!s.ce_targets().is_empty());
            let n = data::nocot_seq(&tok, ex);
            assert!(n.distill_pos < n.ids.len());
        }
    }
    for ext in ["t.txt", "t.jsonl", "t.json"] {
        if let Ok((items, skipped)) = eval_records::parse_eval_set(&text, Path::new(ext)) {
            assert!(items.iter().all(|i| !i.question.is_empty() && i.gold.is_finite() && i.line >= 1));
            assert!(skipped.iter().all(|s| s.line >= 1 && !s.reason.is_empty()));
        }
    }
});
