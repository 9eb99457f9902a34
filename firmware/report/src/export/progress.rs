//! A progress bar on a terminal; silence when stderr is piped.

use std::io::{IsTerminal, Write};

pub struct Progress {
    total: u64,
    done: u64,
    on_tty: bool,
    last_pct: u64,
}

impl Progress {
    pub fn new(total: u64, enabled: bool) -> Self {
        Progress {
            total: total.max(1),
            done: 0,
            on_tty: enabled && std::io::stderr().is_terminal(),
            last_pct: u64::MAX,
        }
    }

    pub fn add(&mut self, n: u64, what: &str) {
        self.done = self.done.saturating_add(n);
        if !self.on_tty {
            return;
        }
        let pct = (self.done.min(self.total) * 100) / self.total;
        if pct == self.last_pct {
            return;
        }
        self.last_pct = pct;
        let filled = (pct / 4) as usize;
        let bar: String = "#".repeat(filled) + &".".repeat(25 - filled.min(25));
        let mut e = std::io::stderr();
        let _ = write!(
            e,
            "\r[{bar}] {pct:>3}% {} / {}  {:<40}",
            kuroko_model::units::format_bytes(self.done),
            kuroko_model::units::format_bytes(self.total),
            crate::escape::clip(what, 40)
        );
        let _ = e.flush();
    }

    pub fn finish(&mut self) {
        // Sizes planned for zips are upper bounds: show the end as the end.
        if self.done < self.total {
            let rest = self.total - self.done;
            self.add(rest, "");
        }
        if self.on_tty {
            let _ = writeln!(std::io::stderr());
        }
    }
}
