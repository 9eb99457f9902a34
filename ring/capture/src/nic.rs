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

impl NicCounters {
    /// Counter-wise `self - base`, 0 where the driver reset a counter.
    pub fn since(&self, base: &NicCounters) -> NicCounters {
        NicCounters {
            rx_dropped: self.rx_dropped.saturating_sub(base.rx_dropped),
            rx_missed: self.rx_missed.saturating_sub(base.rx_missed),
            rx_fifo: self.rx_fifo.saturating_sub(base.rx_fifo),
        }
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

/// Carrier up (`carrier` reads 1); false when down or unreadable.
pub fn link_up(ifname: &str) -> bool {
    read_u64(sys_dir(ifname).join("carrier")) == Some(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_never_go_negative() {
        let base = NicCounters {
            rx_dropped: 5,
            rx_missed: 1,
            rx_fifo: 0,
        };
        let now = NicCounters {
            rx_dropped: 9,
            rx_missed: 0,
            rx_fifo: 2,
        };
        assert_eq!(
            now.since(&base),
            NicCounters {
                rx_dropped: 4,
                rx_missed: 0,
                rx_fifo: 2
            }
        );
    }

    #[test]
    fn loopback_is_readable() {
        // `lo` exists in every network namespace; its carrier is up.
        assert!(link_up("lo"));
        let _ = read_counters("lo");
        assert_eq!(read_counters("no-such-if0"), NicCounters::default());
    }
}
