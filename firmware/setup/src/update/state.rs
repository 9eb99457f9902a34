//! The A/B boot state on the config disk (`/config/boot/state`).
//!
//! Why a file on the config disk: the qemu board has no bootloader environment (the kernel
//! is booted directly), and the config disk is the one disk both the initramfs and the
//! running system can write. The initramfs script (`image/rootfs/etc/initramfs-tools/
//! scripts/local-top/kuroko-slot`) reads and writes the same `key=value` lines with the
//! same rules as [`BootState::boot`]; the unit tests here are the specification both follow.
//!
//! Lines: `active=a|b` (the slot known to work), and while an update is on trial
//! `pending=a|b` and `tries=N` (boots left before it is given up); after a rollback
//! `rolled_back=a|b` and `reason=TEXT`. A missing or garbled file means: boot slot A.

use std::fmt;
use std::path::Path;

/// Boots an update gets before it is rolled back (one retry against a power cut during the
/// first boot; each failed boot costs a panic timeout or a watchdog period).
pub const TRIES: u32 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    A,
    B,
}

impl Slot {
    pub fn parse(s: &str) -> Option<Slot> {
        match s.trim() {
            "a" | "A" => Some(Slot::A),
            "b" | "B" => Some(Slot::B),
            _ => None,
        }
    }
    pub fn other(self) -> Slot {
        match self {
            Slot::A => Slot::B,
            Slot::B => Slot::A,
        }
    }
    pub fn letter(self) -> &'static str {
        match self {
            Slot::A => "a",
            Slot::B => "b",
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Slot::A => "A",
            Slot::B => "B",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootState {
    /// The slot known to come up.
    pub active: Slot,
    /// An update on trial and the boots it has left.
    pub pending: Option<(Slot, u32)>,
    /// The last update given up, and why.
    pub rolled_back: Option<(Slot, String)>,
}

impl Default for BootState {
    fn default() -> BootState {
        BootState {
            active: Slot::A,
            pending: None,
            rolled_back: None,
        }
    }
}

/// What the boot stage decides (see [`BootState::boot`]).
#[derive(Debug, PartialEq, Eq)]
pub struct BootDecision {
    pub slot: Slot,
    pub next: BootState,
    pub message: String,
}

impl BootState {
    /// Parses the file's text; `Err` says what is garbled.
    pub fn parse(text: &str) -> Result<BootState, String> {
        let (mut active, mut pending, mut tries, mut rb, mut reason) =
            (None, None, None, None, None);
        for line in text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let Some((k, v)) = line.split_once('=') else {
                return Err(format!("line `{line}` is not key=value"));
            };
            let bad_slot = || format!("`{line}`: the slot is a or b");
            match k.trim() {
                "active" => active = Some(Slot::parse(v).ok_or_else(bad_slot)?),
                "pending" => pending = Some(Slot::parse(v).ok_or_else(bad_slot)?),
                "tries" => {
                    tries = Some(
                        v.trim()
                            .parse::<u32>()
                            .ok()
                            .filter(|t| *t <= 100)
                            .ok_or_else(|| format!("`{line}`: tries is a number 0..100"))?,
                    )
                }
                "rolled_back" => rb = Some(Slot::parse(v).ok_or_else(bad_slot)?),
                "reason" => reason = Some(v.trim().to_string()),
                _ => {} // written by a newer image: ignored
            }
        }
        let active = active.ok_or("no `active=` line")?;
        let pending = match (pending, tries) {
            (Some(p), _) if p == active => {
                return Err(format!("pending slot {p} is the active one"));
            }
            (Some(p), Some(t)) => Some((p, t)),
            (Some(_), None) => return Err("`pending=` without `tries=`".into()),
            (None, _) => None,
        };
        Ok(BootState {
            active,
            pending,
            rolled_back: rb.map(|s| (s, reason.unwrap_or_default())),
        })
    }

    pub fn render(&self) -> String {
        let mut s = format!("active={}\n", self.active.letter());
        if let Some((p, t)) = self.pending {
            s.push_str(&format!("pending={}\ntries={t}\n", p.letter()));
        }
        if let Some((r, why)) = &self.rolled_back {
            let why: String = why.chars().filter(|c| !c.is_control()).collect();
            s.push_str(&format!("rolled_back={}\nreason={why}\n", r.letter()));
        }
        s
    }

    /// Reads the state file: missing = a box that never updated (slot A); garbled = slot A
    /// too, with the error for the console.
    pub fn load(path: &Path) -> (BootState, Option<String>) {
        match std::fs::read_to_string(path) {
            Ok(t) => match BootState::parse(&t) {
                Ok(s) => (s, None),
                Err(e) => (
                    BootState::default(),
                    Some(format!("{} is garbled ({e}): slot A", path.display())),
                ),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (BootState::default(), None),
            Err(e) => (
                BootState::default(),
                Some(format!("cannot read {}: {e}: slot A", path.display())),
            ),
        }
    }

    /// Writes the file atomically (temporary file, fsync, rename, fsync of the directory).
    pub fn store(&self, path: &Path) -> std::io::Result<()> {
        kuroko_model::config::write_atomic(path, self.render().as_bytes())
    }

    /// The boot stage's decision (what the initramfs script does): an update on trial with
    /// boots left is booted and its count decremented; one with none left is given up and
    /// the active slot booted.
    pub fn boot(&self) -> BootDecision {
        match self.pending {
            Some((p, t)) if t > 0 => BootDecision {
                slot: p,
                next: BootState {
                    pending: Some((p, t - 1)),
                    ..self.clone()
                },
                message: format!("trying slot {p} ({} boot(s) left after this one)", t - 1),
            },
            Some((p, _)) => {
                let why = format!("slot {p} did not come up in {TRIES} boot(s)");
                BootDecision {
                    slot: self.active,
                    next: BootState {
                        active: self.active,
                        pending: None,
                        rolled_back: Some((p, why.clone())),
                    },
                    message: format!("{why}: rolled back to slot {}", self.active),
                }
            }
            None => BootDecision {
                slot: self.active,
                next: self.clone(),
                message: format!("slot {}", self.active),
            },
        }
    }

    /// An update was written to `slot`: it is on trial from the next boot.
    pub fn begin(&self, running: Slot, slot: Slot) -> Result<BootState, String> {
        if slot == running {
            return Err(format!("slot {slot} is the running one"));
        }
        if running != self.active {
            return Err(format!(
                "the running slot {running} is on trial and not marked good yet: reboot, or wait until it is"
            ));
        }
        Ok(BootState {
            active: self.active,
            pending: Some((slot, TRIES)),
            rolled_back: None,
        })
    }

    /// The running slot came up: an update on trial in it becomes the active slot.
    /// `Ok(None)`: nothing to change.
    pub fn mark_good(&self, running: Slot) -> Result<Option<BootState>, String> {
        match self.pending {
            Some((p, _)) if p == running => Ok(Some(BootState {
                active: running,
                pending: None,
                rolled_back: None,
            })),
            _ if running == self.active => Ok(None),
            _ => Err(format!(
                "running slot {running} is neither the active slot {} nor on trial",
                self.active
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_render_round_trip() {
        let s = BootState {
            active: Slot::B,
            pending: Some((Slot::A, 1)),
            rolled_back: Some((Slot::A, "slot A did not come up".into())),
        };
        assert_eq!(BootState::parse(&s.render()).unwrap(), s);
        assert_eq!(
            BootState::parse("active=a\n").unwrap(),
            BootState::default()
        );
    }

    #[test]
    fn garbled_state_is_an_error_and_loads_as_slot_a() {
        for bad in [
            "",
            "active=c\n",
            "junk\n",
            "active=a\npending=a\ntries=1\n",
            "active=a\npending=b\n",
            "active=a\npending=b\ntries=x\n",
            "\u{0}\u{1}binary",
        ] {
            assert!(BootState::parse(bad).is_err(), "{bad:?} parsed");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("state");
        std::fs::write(&p, "active=q\n").unwrap();
        let (s, msg) = BootState::load(&p);
        assert_eq!(s, BootState::default());
        assert!(msg.unwrap().contains("garbled"));
        let (s, msg) = BootState::load(&dir.path().join("missing"));
        assert_eq!((s, msg), (BootState::default(), None));
    }

    #[test]
    fn an_update_is_tried_then_rolled_back() {
        let s = BootState::default().begin(Slot::A, Slot::B).unwrap();
        assert_eq!(s.pending, Some((Slot::B, TRIES)));
        let mut cur = s;
        for left in (0..TRIES).rev() {
            let d = cur.boot();
            assert_eq!(d.slot, Slot::B);
            assert_eq!(d.next.pending, Some((Slot::B, left)));
            cur = d.next;
        }
        let d = cur.boot();
        assert_eq!(d.slot, Slot::A, "{}", d.message);
        assert_eq!(d.next.pending, None);
        assert_eq!(d.next.active, Slot::A);
        assert_eq!(d.next.rolled_back.as_ref().map(|r| r.0), Some(Slot::B));
        // The rolled-back state boots A from then on.
        assert_eq!(d.next.boot().slot, Slot::A);
    }

    #[test]
    fn mark_good_makes_the_trial_slot_active() {
        let s = BootState::default().begin(Slot::A, Slot::B).unwrap();
        let d = s.boot();
        let good = d.next.mark_good(Slot::B).unwrap().unwrap();
        assert_eq!(good.active, Slot::B);
        assert_eq!(good.pending, None);
        assert_eq!(good.boot().slot, Slot::B);
        // Already good: nothing to do; an update from B goes to A.
        assert_eq!(good.mark_good(Slot::B).unwrap(), None);
        assert_eq!(
            good.begin(Slot::B, Slot::A).unwrap().pending,
            Some((Slot::A, TRIES))
        );
        // Not from a slot on trial, not onto the running slot.
        assert!(d.next.begin(Slot::B, Slot::A).is_err());
        assert!(good.begin(Slot::B, Slot::B).is_err());
        assert!(BootState::default().mark_good(Slot::B).is_err());
    }

    #[test]
    fn store_is_atomic_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("boot/state");
        let s = BootState::default().begin(Slot::A, Slot::B).unwrap();
        s.store(&p).unwrap();
        assert_eq!(BootState::load(&p), (s, None));
        assert_eq!(std::fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }
}
