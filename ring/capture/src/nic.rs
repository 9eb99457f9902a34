//! NIC counters from `/sys/class/net/IF/` (drops that happen before AF_PACKET sees a
//! packet) and the link state. Read by the supervisor thread, never on the hot path.

use std::path::PathBuf;

/// NIC drop counters, absolute (as the driver reports them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NicCounters {
    pub rx_dropped: u64,
    pub rx_missed: u64,
    pub rx_fifo: u64,
}

/// One reading of the NIC counters: `None` for a counter that could not be read (the
/// interface is gone for the moment, or its driver has no such file). Unknown is not 0:
/// taking it as 0 made the next good reading look like a driver reset and added the
/// counter's whole value again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NicReading {
    pub rx_dropped: Option<u64>,
    pub rx_missed: Option<u64>,
    pub rx_fifo: Option<u64>,
}

impl From<Option<NicCounters>> for NicReading {
    fn from(c: Option<NicCounters>) -> NicReading {
        NicReading {
            rx_dropped: c.map(|c| c.rx_dropped),
            rx_missed: c.map(|c| c.rx_missed),
            rx_fifo: c.map(|c| c.rx_fifo),
        }
    }
}

/// NIC counters that only grow, whatever the driver does: each reading adds what every
/// counter rose since the previous one, and a counter that went *down* (a driver reset, a
/// re-created interface) is taken as restarted from 0, so its whole new value is new drops.
/// (A delta from a start-up base with a saturating subtraction would read 0 after a reset
/// and hide new drops until they passed the old base.) A counter that could not be read is
/// skipped: its last value stays the base, so nothing is counted twice.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NicTotals {
    last: NicCounters,
    total: NicCounters,
}

fn grown(now: u64, last: u64) -> u64 {
    if now >= last { now - last } else { now }
}

/// Adds to `total` what `now` (if read) grew over `last`, and makes it the new `last`.
fn account(total: &mut u64, last: &mut u64, now: Option<u64>) {
    if let Some(now) = now {
        *total = total.saturating_add(grown(now, *last));
        *last = now;
    }
}

impl NicTotals {
    /// Starts counting from `base` (the reading at start-up; unknown counters from 0).
    pub fn new(base: NicReading) -> NicTotals {
        NicTotals {
            last: NicCounters {
                rx_dropped: base.rx_dropped.unwrap_or(0),
                rx_missed: base.rx_missed.unwrap_or(0),
                rx_fifo: base.rx_fifo.unwrap_or(0),
            },
            total: NicCounters::default(),
        }
    }

    /// Adds a new reading; returns the totals since the start.
    pub fn update(&mut self, now: NicReading) -> NicCounters {
        let (t, l) = (&mut self.total, &mut self.last);
        account(&mut t.rx_dropped, &mut l.rx_dropped, now.rx_dropped);
        account(&mut t.rx_missed, &mut l.rx_missed, now.rx_missed);
        account(&mut t.rx_fifo, &mut l.rx_fifo, now.rx_fifo);
        self.total
    }

    pub fn totals(&self) -> NicCounters {
        self.total
    }
}

fn sys_dir(ifname: &str) -> PathBuf {
    PathBuf::from("/sys/class/net").join(ifname)
}

fn read_u64(path: PathBuf) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The counters the driver exposes; a file that cannot be read is `None` (see
/// [`NicReading`]).
pub fn read_counters(ifname: &str) -> NicReading {
    let s = sys_dir(ifname).join("statistics");
    NicReading {
        rx_dropped: read_u64(s.join("rx_dropped")),
        rx_missed: read_u64(s.join("rx_missed_errors")),
        rx_fifo: read_u64(s.join("rx_fifo_errors")),
    }
}

/// Frames the interface received since it was created (`statistics/rx_packets`), or
/// `None` when the file cannot be read (the interface is gone again).
pub fn rx_packets(ifname: &str) -> Option<u64> {
    read_u64(sys_dir(ifname).join("statistics").join("rx_packets"))
}

/// Carrier up (`carrier` reads 1); false when down or unreadable.
pub fn link_up(ifname: &str) -> bool {
    read_u64(sys_dir(ifname).join("carrier")) == Some(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(rx_dropped: u64, rx_missed: u64, rx_fifo: u64) -> NicCounters {
        NicCounters {
            rx_dropped,
            rx_missed,
            rx_fifo,
        }
    }

    #[test]
    fn totals_only_grow_across_a_driver_counter_reset() {
        let mut t = NicTotals::new(Some(c(500, 1000, 7)).into());
        assert_eq!(t.update(Some(c(510, 1000, 7)).into()), c(10, 0, 0));
        // The driver resets its counters (or the interface is re-created): the new values
        // are drops since the reset, far below the old base.
        assert_eq!(t.update(Some(c(3, 4, 0)).into()), c(13, 4, 0));
        assert_eq!(t.update(Some(c(5, 4, 2)).into()), c(15, 4, 2));
        // A second reset to exactly 0 loses nothing counted so far.
        assert_eq!(t.update(Some(c(0, 0, 0)).into()), c(15, 4, 2));
        assert_eq!(t.totals(), c(15, 4, 2));
    }

    /// A reading that failed (the interface gone for a moment, a statistics file that could
    /// not be read) is not a driver reset: counting it as one made the next good reading
    /// add the counter's whole value again (a double count of every drop since the
    /// interface was created).
    #[test]
    fn an_unreadable_counter_is_not_a_reset() {
        let mut t = NicTotals::new(Some(c(500, 1000, 7)).into());
        assert_eq!(t.update(Some(c(510, 1000, 7)).into()), c(10, 0, 0));
        // The statistics cannot be read (interface gone, moved out and back in).
        assert_eq!(t.update(NicReading::default()), c(10, 0, 0));
        // Back with the same counters, grown a little: only the growth is new.
        assert_eq!(t.update(Some(c(512, 1001, 7)).into()), c(12, 1, 0));
        // One file unreadable: that counter keeps its last value.
        let partial = NicReading {
            rx_dropped: Some(515),
            rx_missed: None,
            rx_fifo: Some(7),
        };
        assert_eq!(t.update(partial), c(15, 1, 0));
        assert_eq!(t.update(Some(c(515, 1003, 7)).into()), c(15, 3, 0));
        assert_eq!(
            read_counters("no-such-if0"),
            NicReading::default(),
            "a missing interface reads as unknown, not 0"
        );
    }

    #[test]
    fn loopback_is_readable() {
        // `lo` exists in every network namespace; its carrier is up.
        assert!(link_up("lo"));
        let lo = read_counters("lo");
        assert!(lo.rx_dropped.is_some(), "{lo:?}");
    }
}
