//! Token sequence layouts and batching (method.md §1.3): teacher `[BOS] Q "\n" C "\n" P A EOS`,
//! student `[BOS] Q <bot> <lat>×M <eot> P A EOS`, no-CoT `[BOS] Q "\n" P A EOS`, right padding,
//! and the (position, target) pairs of the cross-entropy losses (method.md §3).
//!
//! Every piece is tokenized on its own and the ids concatenated, so segment boundaries are exact
//! (a tokenizer run over the joined text could merge tokens across a boundary).

use std::ops::Range;

use super::Example;

/// The answer prompt `P`. The answer text follows it with no space, so the last token of `P`
/// (":") predicts the first digit (method.md §1.3) and is the distillation position.
pub const ANSWER_PROMPT: &str = "The answer is:";

/// The tokenizer as this module needs it: plain encoding without special tokens, plus the
/// BOS id (if the model uses one) and EOS id.
pub trait Tokenize {
    fn encode(&self, text: &str) -> Vec<u32>;
    fn bos(&self) -> Option<u32>;
    fn eos(&self) -> u32;
}

/// Adapts a closure to [`Tokenize`], so callers can wrap any tokenizer without a new type.
pub struct FnTokenizer<F> {
    pub encode: F,
    pub bos: Option<u32>,
    pub eos: u32,
}

impl<F: Fn(&str) -> Vec<u32>> Tokenize for FnTokenizer<F> {
    fn encode(&self, text: &str) -> Vec<u32> {
        (self.encode)(text)
    }
    fn bos(&self) -> Option<u32> {
        self.bos
    }
    fn eos(&self) -> u32 {
        self.eos
    }
}

/// Ids of the tokens added to the vocabulary for latent reasoning (method.md §1.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpecialIds {
    pub bot: u32,
    pub eot: u32,
    pub lat: u32,
    pub pad: u32,
}

/// Next-token CE pairs: for every target index `t` in `targets`, the pair `(t - 1, ids[t])`,
/// i.e. the logits at position `t - 1` are scored against the token at `t`.
pub fn next_token_targets(ids: &[u32], targets: Range<usize>) -> Vec<(usize, u32)> {
    assert!(targets.start >= 1 && targets.end <= ids.len(), "targets {targets:?} outside 1..={}", ids.len());
    targets.map(|t| (t - 1, ids[t])).collect()
}

/// Appends the ids of `text` and returns the range they occupy.
fn push(ids: &mut Vec<u32>, piece: Vec<u32>) -> Range<usize> {
    let start = ids.len();
    ids.extend(piece);
    start..ids.len()
}

/// Appends `P A EOS`; returns the ranges of `P` and of `A EOS`.
fn push_answer<T: Tokenize + ?Sized>(
    tok: &T,
    ids: &mut Vec<u32>,
    ex: &Example,
) -> (Range<usize>, Range<usize>) {
    let prompt = push(ids, tok.encode(ANSWER_PROMPT));
    // An empty `P` would leave no distillation position: a broken tokenizer, not bad data.
    assert!(!prompt.is_empty(), "the tokenizer encodes {ANSWER_PROMPT:?} to nothing");
    let mut answer = tok.encode(&ex.answer_text());
    answer.push(tok.eos());
    let answer = push(ids, answer);
    (prompt, answer)
}

/// `[BOS] Q` and the range of `Q`.
fn question_ids<T: Tokenize + ?Sized>(tok: &T, ex: &Example) -> (Vec<u32>, Range<usize>) {
    let mut ids: Vec<u32> = tok.bos().into_iter().collect();
    let q = push(&mut ids, tok.encode(&ex.question));
    (ids, q)
}

/// A teacher sequence `[BOS] Q "\n" C "\n" P A EOS` with its segments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TeacherSeq {
    pub ids: Vec<u32>,
    /// `Q` (BOS, if any, is at 0 and outside every range).
    pub question: Range<usize>,
    /// `C` only, without the two `"\n"` around it: the CoT positions that KV eviction scores
    /// (method.md §4). Empty (at the position `C` would start) when there is no teacher step.
    pub trace: Range<usize>,
    /// `P`.
    pub answer_prompt: Range<usize>,
    /// `A EOS`; ends at `ids.len()`.
    pub answer: Range<usize>,
    /// The last token of `P`: where `L_CODI` compares hidden states.
    pub distill_pos: usize,
}

/// Builds the teacher sequence of `ex`; `keep_last_step` as in method.md §1.2.
pub fn teacher_seq<T: Tokenize + ?Sized>(tok: &T, ex: &Example, keep_last_step: bool) -> TeacherSeq {
    let (mut ids, question) = question_ids(tok, ex);
    push(&mut ids, tok.encode("\n"));
    let trace = push(&mut ids, tok.encode(&ex.trace_text(keep_last_step)));
    push(&mut ids, tok.encode("\n"));
    let (answer_prompt, answer) = push_answer(tok, &mut ids, ex);
    TeacherSeq { distill_pos: answer_prompt.end - 1, ids, question, trace, answer_prompt, answer }
}

/// A student sequence in its two parts, around the `<bot> <lat>×M` block whose length `M` is a
/// training setting: `question_ids = [BOS] Q`, `tail_ids = <eot> P A EOS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StudentSeq {
    pub question_ids: Vec<u32>,
    pub tail_ids: Vec<u32>,
    /// `P` within `tail_ids` (starts at 1, after `<eot>`).
    pub answer_prompt_in_tail: Range<usize>,
    /// The last token of `P` within `tail_ids`.
    pub distill_pos_in_tail: usize,
    /// `A EOS` within `tail_ids`; ends at `tail_ids.len()`.
    pub answer_range_in_tail: Range<usize>,
}

/// Builds the student sequence of `ex`; only `<eot>` of the special ids is part of it.
pub fn student_seq<T: Tokenize + ?Sized>(tok: &T, eot: u32, ex: &Example) -> StudentSeq {
    let (question_ids, _) = question_ids(tok, ex);
    let mut tail_ids = vec![eot];
    let (prompt, answer) = push_answer(tok, &mut tail_ids, ex);
    StudentSeq {
        question_ids,
        tail_ids,
        distill_pos_in_tail: prompt.end - 1,
        answer_prompt_in_tail: prompt,
        answer_range_in_tail: answer,
    }
}

impl StudentSeq {
    /// Position of `<bot>` in the full sequence (`b` in method.md §2).
    pub fn bot_pos(&self) -> usize {
        self.question_ids.len()
    }

    /// Position of `<eot>` (tail index 0) in the full sequence: tail index `i` sits at
    /// `tail_offset(m) + i`.
    pub fn tail_offset(&self, m: usize) -> usize {
        self.bot_pos() + 1 + m
    }

    /// The init-pass input `[BOS] Q <bot> <lat>×M`.
    pub fn init_ids(&self, sp: &SpecialIds, m: usize) -> Vec<u32> {
        let mut ids = self.question_ids.clone();
        ids.push(sp.bot);
        ids.extend(std::iter::repeat_n(sp.lat, m));
        ids
    }

    /// The whole sequence `[BOS] Q <bot> <lat>×M <eot> P A EOS`, with placeholders.
    pub fn full_ids(&self, sp: &SpecialIds, m: usize) -> Vec<u32> {
        let mut ids = self.init_ids(sp, m);
        ids.extend_from_slice(&self.tail_ids);
        ids
    }

    /// Student CE pairs in tail coordinates (method.md §3, `CE_student`): targets are `P A EOS`;
    /// position `p` predicts `tail_ids[p + 1]` for `p` in `0..len - 1`, so `<eot>` (index 0)
    /// is an input only, never a target. Add `tail_offset(m)` for full-sequence positions.
    pub fn ce_targets(&self) -> Vec<(usize, u32)> {
        next_token_targets(&self.tail_ids, 1..self.tail_ids.len())
    }
}

/// A no-CoT sequence `[BOS] Q "\n" P A EOS` (the `nocot` lower bound, method.md §3.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoCotSeq {
    pub ids: Vec<u32>,
    pub question: Range<usize>,
    pub answer_prompt: Range<usize>,
    pub answer: Range<usize>,
    pub distill_pos: usize,
}

/// Builds the no-CoT sequence of `ex`.
pub fn nocot_seq<T: Tokenize + ?Sized>(tok: &T, ex: &Example) -> NoCotSeq {
    let (mut ids, question) = question_ids(tok, ex);
    push(&mut ids, tok.encode("\n"));
    let (answer_prompt, answer) = push_answer(tok, &mut ids, ex);
    NoCotSeq { distill_pos: answer_prompt.end - 1, ids, question, answer_prompt, answer }
}

/// Rows right-padded to the longest: `ids[b][t]`, `valid[b][t]` (true on real tokens) and each
/// row's real length. Right padding keeps every range of a row valid unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Padded {
    pub ids: Vec<Vec<u32>>,
    pub valid: Vec<Vec<bool>>,
    pub lens: Vec<usize>,
}

/// Right-pads `rows` with `pad`.
pub fn pad_right<R: AsRef<[u32]>>(rows: &[R], pad: u32) -> Padded {
    pad_right_to(rows, pad, 1)
}

/// Right-pads `rows` with `pad` to the longest, rounded up to a multiple of `multiple` (≥ 1;
/// fewer distinct shapes for a GPU backend to compile kernels for, `data.pad_multiple`).
pub fn pad_right_to<R: AsRef<[u32]>>(rows: &[R], pad: u32, multiple: usize) -> Padded {
    let width = rows.iter().map(|r| r.as_ref().len()).max().unwrap_or(0).next_multiple_of(multiple.max(1));
    let mut out = Padded { ids: Vec::new(), valid: Vec::new(), lens: Vec::new() };
    for r in rows {
        let r = r.as_ref();
        let mut ids = r.to_vec();
        ids.resize(width, pad);
        let mut valid = vec![true; r.len()];
        valid.resize(width, false);
        out.ids.push(ids);
        out.valid.push(valid);
        out.lens.push(r.len());
    }
    out
}

/// The sequences that batch the same way: one row of ids each, with their own CE pairs
/// `(position, target id)`.
pub trait Sequence {
    fn ids(&self) -> &[u32];
    fn ce_targets(&self) -> Vec<(usize, u32)>;
}

impl Sequence for TeacherSeq {
    fn ids(&self) -> &[u32] {
        &self.ids
    }
    /// Teacher CE pairs (method.md §3, `CE_teacher`), question masked: every token after `Q`
    /// is a target — `"\n" C "\n" P A EOS`. With the shift, position `p` predicts `ids[p + 1]`
    /// for `p` from `question.end - 1` (the last question token, predicting the `"\n"`) to
    /// `len - 2` (predicting EOS). Both `"\n"` are targets: the model has to emit them to open
    /// and close its trace when it decodes in CoT mode. `Q` tokens are never targets.
    fn ce_targets(&self) -> Vec<(usize, u32)> {
        next_token_targets(&self.ids, self.question.end..self.answer.end)
    }
}

impl Sequence for NoCotSeq {
    fn ids(&self) -> &[u32] {
        &self.ids
    }
    /// No-CoT CE pairs: targets `P A EOS`, position `p` predicting `ids[p + 1]`. The `"\n"` after
    /// `Q` plays the part of `<eot>` (the fixed cue before `P`) and is not a target.
    fn ce_targets(&self) -> Vec<(usize, u32)> {
        next_token_targets(&self.ids, self.answer_prompt.start..self.answer.end)
    }
}

/// A batch of one-row sequences: padded ids and masks, and the sequences (with their ranges,
/// which right padding leaves valid) per row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch<S> {
    pub padded: Padded,
    pub rows: Vec<S>,
}

pub type TeacherBatch = Batch<TeacherSeq>;
pub type NoCotBatch = Batch<NoCotSeq>;

impl<S: Sequence> Batch<S> {
    pub fn new(rows: Vec<S>, pad: u32) -> Self {
        Self::padded_to(rows, pad, 1)
    }

    /// [`new`](Self::new) with the width rounded up to a multiple of `multiple` ([`pad_right_to`]).
    pub fn padded_to(rows: Vec<S>, pad: u32, multiple: usize) -> Self {
        let padded = pad_right_to(&rows.iter().map(S::ids).collect::<Vec<_>>(), pad, multiple);
        Batch { padded, rows }
    }

    /// Per row, the CE pairs of its sequence; padding is never a target (every target range
    /// ends at the row's real length).
    pub fn ce_targets(&self) -> Vec<Vec<(usize, u32)>> {
        self.rows.iter().map(S::ce_targets).collect()
    }
}

/// A batch of student sequences: the init inputs `[BOS] Q <bot> <lat>×M` and the tails
/// `<eot> P A EOS`, each right-padded on its own (the tail goes in its own pass, method.md §2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StudentBatch {
    pub m: usize,
    pub init: Padded,
    pub tail: Padded,
    pub rows: Vec<StudentSeq>,
}

impl StudentBatch {
    pub fn new(rows: Vec<StudentSeq>, sp: &SpecialIds, m: usize) -> Self {
        let init = pad_right(&rows.iter().map(|s| s.init_ids(sp, m)).collect::<Vec<_>>(), sp.pad);
        let tail = pad_right(&rows.iter().map(|s| s.tail_ids.as_slice()).collect::<Vec<_>>(), sp.pad);
        StudentBatch { m, init, tail, rows }
    }

    /// Per row, the `<bot>` position in the init input.
    pub fn bot_pos(&self) -> Vec<usize> {
        self.rows.iter().map(StudentSeq::bot_pos).collect()
    }

    /// Per row, the student CE pairs in tail coordinates ([`StudentSeq::ce_targets`]).
    pub fn ce_targets(&self) -> Vec<Vec<(usize, u32)>> {
        self.rows.iter().map(StudentSeq::ce_targets).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOS: u32 = 1000;
    const EOS: u32 = 1001;
    const SP: SpecialIds = SpecialIds { bot: 1002, eot: 1003, lat: 1004, pad: 1005 };

    /// One id per char (its code point): ranges can be checked by counting characters.
    fn toy(bos: Option<u32>) -> FnTokenizer<impl Fn(&str) -> Vec<u32>> {
        FnTokenizer { encode: |s: &str| s.chars().map(|c| c as u32).collect(), bos, eos: EOS }
    }

    fn ex(question: &str, steps: &[&str], answer: f64) -> Example {
        Example {
            question: question.into(),
            steps: steps.iter().map(|s| s.to_string()).collect(),
            answer,
            line: 1,
            repaired: None,
        }
    }

    fn text(ids: &[u32]) -> String {
        ids.iter().map(|&i| char::from_u32(i).unwrap()).collect()
    }

    #[test]
    fn the_teacher_layout_has_exact_segment_ranges() {
        let e = ex("ab", &["<<1+1=2>>", "<<2*3=6>>"], 6.0);
        let s = teacher_seq(&toy(Some(BOS)), &e, false);
        // [BOS] a b \n <<1+1=2>> \n The answer is: 6 [EOS]
        assert_eq!(s.ids[0], BOS);
        assert_eq!(s.question, 1..3);
        assert_eq!(s.ids[3], '\n' as u32);
        assert_eq!(s.trace, 4..13);
        assert_eq!(text(&s.ids[s.trace.clone()]), "<<1+1=2>>");
        assert_eq!(s.ids[13], '\n' as u32);
        assert_eq!(s.answer_prompt, 14..28);
        assert_eq!(text(&s.ids[s.answer_prompt.clone()]), "The answer is:");
        assert_eq!(s.answer, 28..30);
        assert_eq!(s.ids[28..], ['6' as u32, EOS]);
        assert_eq!((s.distill_pos, s.ids[s.distill_pos]), (27, ':' as u32));
        // Keeping the last step joins the steps with one space.
        let k = teacher_seq(&toy(Some(BOS)), &e, true);
        assert_eq!(text(&k.ids[k.trace.clone()]), "<<1+1=2>> <<2*3=6>>");
    }

    #[test]
    fn a_one_step_teacher_without_bos_has_an_empty_trace() {
        let s = teacher_seq(&toy(None), &ex("q", &["<<2+2=4>>"], -2.5), false);
        assert_eq!(s.question, 0..1);
        assert_eq!(s.trace, 2..2);
        assert_eq!(s.answer_prompt, 3..17);
        assert_eq!(text(&s.ids[s.answer.start..s.answer.end - 1]), "-2.5");
        assert_eq!(s.ids.len(), s.answer.end);
    }

    #[test]
    fn the_student_layout_splits_around_the_latent_block() {
        let s = student_seq(&toy(Some(BOS)), SP.eot, &ex("ab", &["x", "y"], 1000.0));
        assert_eq!(s.question_ids, [BOS, 'a' as u32, 'b' as u32]);
        assert_eq!(s.tail_ids[0], SP.eot);
        assert_eq!(s.answer_prompt_in_tail, 1..15);
        assert_eq!((s.distill_pos_in_tail, s.tail_ids[14]), (14, ':' as u32));
        assert_eq!(s.answer_range_in_tail, 15..20);
        assert_eq!(text(&s.tail_ids[15..19]), "1000");
        assert_eq!(s.tail_ids[19], EOS);
        let full = s.full_ids(&SP, 3);
        assert_eq!(full[..8], [BOS, 'a' as u32, 'b' as u32, SP.bot, SP.lat, SP.lat, SP.lat, SP.eot]);
        assert_eq!((s.bot_pos(), s.tail_offset(3)), (3, 7));
        assert_eq!(full[s.tail_offset(3)..], s.tail_ids[..]);
    }

    #[test]
    fn the_nocot_layout_is_question_newline_prompt_answer() {
        let s = nocot_seq(&toy(Some(BOS)), &ex("ab", &["x"], 7.0));
        assert_eq!(text(&s.ids[1..s.ids.len() - 1]), "ab\nThe answer is:7");
        assert_eq!(s.ids[s.ids.len() - 1], EOS);
        assert_eq!(s.question, 1..3);
        assert_eq!(s.answer_prompt, 4..18);
        assert_eq!(s.answer, 18..20);
        assert_eq!(s.distill_pos, 17);
        let t = s.ce_targets();
        assert_eq!(t.first(), Some(&(3, 'T' as u32)));
        assert_eq!(t.last(), Some(&(18, EOS)));
    }

    #[test]
    fn padding_to_a_multiple_rounds_the_width_up_and_masks_the_extra_columns() {
        let rows: [&[u32]; 2] = [&[1, 2, 3], &[4, 5, 6, 7, 8]];
        let p = pad_right_to(&rows, 9, 4);
        assert_eq!(p.ids, vec![vec![1, 2, 3, 9, 9, 9, 9, 9], vec![4, 5, 6, 7, 8, 9, 9, 9]]);
        assert_eq!(p.valid[1], [true, true, true, true, true, false, false, false]);
        assert_eq!(p.lens, [3, 5]);
        assert_eq!(pad_right_to(&rows, 9, 5).ids[0].len(), 5, "already a multiple");
        assert_eq!(pad_right_to(&rows, 9, 1), pad_right(&rows, 9));
        assert_eq!(pad_right_to(&rows, 9, 0), pad_right(&rows, 9), "0 behaves as 1");
    }

    #[test]
    fn batching_right_pads_to_the_longest_and_masks_the_padding() {
        let tok = toy(Some(BOS));
        let rows = vec![
            teacher_seq(&tok, &ex("a", &["s"], 1.0), true),
            teacher_seq(&tok, &ex("abcd", &["st", "u"], 12.0), true),
        ];
        let b = TeacherBatch::new(rows.clone(), SP.pad);
        let (p, l0, l1) = (&b.padded, rows[0].ids.len(), rows[1].ids.len());
        assert_eq!(p.lens, [l0, l1]);
        assert_eq!(p.ids[1], rows[1].ids);
        assert_eq!(p.ids[0][..l0], rows[0].ids[..]);
        assert_eq!(p.ids[0][l0..], vec![SP.pad; l1 - l0][..]);
        assert_eq!(p.valid[0], [vec![true; l0], vec![false; l1 - l0]].concat());
        assert_eq!(p.valid[1], vec![true; l1]);
        assert!(b.ce_targets()[0].iter().all(|&(pos, _)| pos + 1 < l0));
        assert!(pad_right::<&[u32]>(&[], 0).ids.is_empty());

        let rows = vec![
            student_seq(&tok, SP.eot, &ex("a", &[], 1.0)),
            student_seq(&tok, SP.eot, &ex("abc", &[], 25.0)),
        ];
        let sb = StudentBatch::new(rows, &SP, 2);
        assert_eq!(sb.bot_pos(), [2, 4]);
        assert_eq!(sb.init.ids[0], [BOS, 'a' as u32, SP.bot, SP.lat, SP.lat, SP.pad, SP.pad]);
        assert_eq!(sb.init.valid[0], [true, true, true, true, true, false, false]);
        assert_eq!(sb.tail.lens, [17, 18]);
        assert_eq!(sb.tail.ids[0][17], SP.pad);
    }

    #[test]
    fn ce_targets_never_include_question_tokens_or_eot() {
        let tok = toy(Some(BOS));
        let e = ex("How many?", &["<<1+2=3>>", "<<3*2=6>>"], 6.0);
        let t = teacher_seq(&tok, &e, false);
        let pairs = t.ce_targets();
        // Each pair is the shift by one, and the targets are exactly everything after Q.
        assert!(pairs.iter().all(|&(p, id)| t.ids[p + 1] == id));
        let targets: Vec<usize> = pairs.iter().map(|&(p, _)| p + 1).collect();
        assert_eq!(targets, (t.question.end..t.ids.len()).collect::<Vec<_>>());
        assert_eq!(pairs[0].0, t.question.end - 1);
        assert!(targets.iter().all(|p| !t.question.contains(p) && *p != 0));
        assert!(t
            .trace
            .clone()
            .chain(t.answer_prompt.clone())
            .chain(t.answer.clone())
            .all(|p| targets.contains(&p)));

        let s = student_seq(&tok, SP.eot, &e);
        let pairs = s.ce_targets();
        assert!(pairs.iter().all(|&(p, id)| id != SP.eot && s.tail_ids[p + 1] == id));
        assert_eq!(pairs.len(), s.tail_ids.len() - 1);
        assert_eq!(pairs[0], (0, 'T' as u32));
        assert_eq!(*pairs.last().unwrap(), (s.tail_ids.len() - 2, EOS));
        let sb = StudentBatch::new(vec![s.clone()], &SP, 4);
        assert_eq!(sb.ce_targets()[0], pairs);
    }
}
