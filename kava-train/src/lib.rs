//! KaVa training, evaluation and export (the `kava-train` issue). So far: the training data
//! (method.md §1: GSM8k JSONL and GSM8k-Aug readers, `aug`/`nl` traces, drop-last-step, exact
//! segment layouts and batching) and the seeded generator of synthetic GSM8k-style problems that
//! the embedded demo model will be trained on, the loss terms of the objective (method.md §3) and
//! the training configuration (TOML, Table-6 presets, command-line overrides), and the training
//! loop in [`train`]: one step for all six methods, AdamW with warm-up + cosine and global-norm
//! clipping, gradient accumulation, atomic checkpoints with exact resume, evaluation and export
//! (LoRA lives in `kava::model::Linear`). [`plot`] renders the metrics; [`scratch`] starts a model from nothing (vocabulary + initial weights).

pub mod bench;
pub mod config;
pub mod data;
pub mod objective;
pub mod plot;
pub mod scratch;
pub mod synth;
pub mod train;
