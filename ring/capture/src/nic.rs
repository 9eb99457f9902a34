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

/// NIC counters that only grow, whatever the driver does: each reading adds what every
/// counter rose since the previous one, and a counter that went *down* (a driver reset, a
/// re-created interface) is taken as restarted from 0, so its whole new value is new drops.
/// (A delta from a start-up base with a saturating subtraction would read 0 after a reset
/// and hide new drops until they passed the old base.)
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NicTotals {
    last: NicCounters,
    total: NicCounters,
}

fn grown(now: u64, last: u64) -> u64 {
    if now >= last { now - last } else { now }
}

impl NicTotals {
    /// Starts counting from `base` (the reading at start-up).
    pub fn new(base: NicCounters) -> NicTotals {
        NicTotals {
            last: base,
            total: NicCounters::default(),
        }
    }

    /// Adds a new reading; returns the totals since the start.
    pub fn update(&mut self, now: NicCounters) -> NicCounters {
        let t = &mut self.total;
        t.rx_dropped = t
            .rx_dropped
            .saturating_add(grown(now.rx_dropped, self.last.rx_dropped));
        t.rx_missed = t
            .rx_missed
            .saturating_add(grown(now.rx_missed, self.last.rx_missed));
        t.rx_fifo = t
            .rx_fifo
            .saturating_add(grown(now.rx_fifo, self.last.rx_fifo));
        self.last = now;
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

/// The counters the driver exposes; absent files read as 0 (not every driver has them).
pub fn read_counters(ifname: &str) -> NicCounters {
    let s = sys_dir(ifname).join("statistics");
    NicCounters {
        rx_dropped: read_u64(s.join("rx_dropped")).unwrap_or(0),
        rx_missed: read_u64(s.join("rx_missed_errors")).unwrap_or(0),
        rx_fifo: read_u64(s.join("rx_fifo_errors")).unwrap_or(0),
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
        let mut t = NicTotals::new(c(500, 1000, 7));
        assert_eq!(t.update(c(510, 1000, 7)), c(10, 0, 0));
        // The driver resets its counters (or the interface is re-created): the new values
        // are drops since the reset, far below the old base.
        assert_eq!(t.update(c(3, 4, 0)), c(13, 4, 0));
        assert_eq!(t.update(c(5, 4, 2)), c(15, 4, 2));
        // A second reset to exactly 0 loses nothing counted so far.
        assert_eq!(t.update(c(0, 0, 0)), c(15, 4, 2));
        assert_eq!(t.totals(), c(15, 4, 2));
    }

    #[test]
    fn loopback_is_readable() {
        // `lo` exists in every network namespace; its carrier is up.
        assert!(link_up("lo"));
        let _ = read_counters("lo");
        assert_eq!(read_counters("no-such-if0"), NicCounters::default());
    }
}
