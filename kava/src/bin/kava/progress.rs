//! A one-line progress bar on stderr (only when stderr is a terminal), with rate and ETA.

use std::io::{IsTerminal, Write};

use web_time::Instant;

pub struct Progress {
    what: String,
    len: u64,
    pos: u64,
    start: Instant,
    tty: bool,
}

pub fn progress(len: u64, what: &str) -> Progress {
    Progress { what: what.to_string(), len, pos: 0, start: Instant::now(), tty: std::io::stderr().is_terminal() }
}

impl Progress {
    pub fn inc(&mut self, n: u64) {
        self.pos = (self.pos + n).min(self.len);
        if !self.tty {
            return;
        }
        let elapsed = self.start.elapsed().as_secs_f64();
        let frac = self.pos as f64 / self.len.max(1) as f64;
        let eta = if self.pos > 0 { elapsed / frac - elapsed } else { 0.0 };
        let filled = (frac * 30.0).round() as usize;
        eprint!(
            "\r{} [{}{}] {}/{} {:.0}s eta {:.0}s ",
            self.what,
            "=".repeat(filled),
            " ".repeat(30 - filled),
            self.pos,
            self.len,
            elapsed,
            eta
        );
        let _ = std::io::stderr().flush();
    }

    pub fn finish_and_clear(&self) {
        if self.tty {
            eprint!("\r{}\r", " ".repeat(80));
        }
    }
}
