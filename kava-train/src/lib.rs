//! KaVa training, evaluation and export. Not written yet: tracked by the `kava-train` issue.
