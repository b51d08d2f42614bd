//! KaVa training, evaluation and export (the `kava-train` issue). So far: the training data
//! (method.md §1: GSM8k JSONL and GSM8k-Aug readers, `aug`/`nl` traces, drop-last-step, exact
//! segment layouts and batching) and the seeded generator of synthetic GSM8k-style problems that
//! the embedded demo model will be trained on, and the loss terms of the objective (method.md §3).
//! The training step, loop, LoRA and export are still to come.

pub mod data;
pub mod objective;
pub mod synth;
