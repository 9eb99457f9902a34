//! Alarms: conditions an operator must not miss, latched until acknowledged at the panel.
//!
//! Why a latch: a link that was down for ten minutes at night, a disk write error that made
//! `kuroko run` restart the capture, an analyzer that skipped a crash window, are over by
//! the time anyone looks; the front panel must still say they happened until somebody
//! acknowledges them. Why a log: the acknowledgment is part of the evidence chain (who saw
//! the gap, and when), and latches must survive a console restart and a capture restart
//! (which resets the capture's counters).
//!
//! Each [`Alarm`] is one *occurrence* of a condition: its `key` names the condition and its
//! subject (`link_down/eth1`), its `occurrence` changes whenever the condition happens
//! again (for counters: the capture's start time and the count; for conditions: when they
//! started), so an alarm that recurs after an acknowledgment latches again. The source of
//! the console (and `kuroko status`) derives the current alarms from the live counters; the
//! console appends every occurrence it sees to the log (`raised`) and the operator's
//! acknowledgment (`ack`, with who and when). Latched = raised or seen, and not
//! acknowledged.
//!
//! The log is `DATA/alarms/log.jsonl`, one JSON object a line, appended only:
//! `{"event":"raised"|"ack","at":RFC3339,"kind":…,"subject":…,"occurrence":…,"detail":…,"values":…,"who":…}`
//! (`detail` in English, `values` the [`AlarmDetail`] every language is rendered from).
//! Lines that do not parse are skipped (and counted), never fatal.

use kuroko_model::Timestamp;
use kuroko_model::finding::Lang;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What kind of condition an alarm is; `as_str` is its name in the log and in JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AlarmKind {
    /// A capture ran on this data dir and is not running now: nothing is recorded.
    CaptureStopped,
    /// A capture interface is (or was) down.
    LinkDown,
    /// A capture interface is (or was) deleted: nothing is recorded from it.
    InterfaceGone,
    /// The disk failed writes: packets counted as stored are not on the disk.
    DiskWriteErrors,
    /// Segment slots or segments of the ring are damaged: their packets are unreadable.
    DamagedSlots,
    /// The analyzer died repeatedly at the same place and skipped that window.
    AnalyzerCrashLoop,
    /// The ring is about to overwrite packets the analyzer has not read yet.
    RingNearLoss,
    /// Alert mail or syslog cannot be delivered (a relay whose certificate does not verify,
    /// no STARTTLS, a dead collector): alerts wait in the outbox or are lost to syslog.
    AlertDelivery,
    /// The kernel's capture ring filled to its high-water mark: the capture was close to
    /// losing frames (an early warning; losses, if any, are counted by cause).
    CaptureNearLoss,
    /// The store writer's counters (`writer.state`) are not current: its writer stopped
    /// without writing them, cannot write them (a failing disk under them), or they are
    /// missing. Write errors and losses after them are not counted.
    StoreCountersStale,
    /// The background scrub has fallen far behind (a sealed segment unchecked for longer
    /// than its bound) or stopped while its analyzer runs: damage that appears in sealed
    /// segments goes unnoticed until something reads them.
    ScrubBehind,
}

impl AlarmKind {
    pub const ALL: [AlarmKind; 11] = [
        AlarmKind::CaptureStopped,
        AlarmKind::LinkDown,
        AlarmKind::InterfaceGone,
        AlarmKind::DiskWriteErrors,
        AlarmKind::DamagedSlots,
        AlarmKind::AnalyzerCrashLoop,
        AlarmKind::RingNearLoss,
        AlarmKind::AlertDelivery,
        AlarmKind::CaptureNearLoss,
        AlarmKind::StoreCountersStale,
        AlarmKind::ScrubBehind,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlarmKind::CaptureStopped => "capture_stopped",
            AlarmKind::LinkDown => "link_down",
            AlarmKind::InterfaceGone => "interface_gone",
            AlarmKind::DiskWriteErrors => "disk_write_errors",
            AlarmKind::DamagedSlots => "damaged_slots",
            AlarmKind::AnalyzerCrashLoop => "analyzer_crash_loop",
            AlarmKind::RingNearLoss => "ring_near_loss",
            AlarmKind::AlertDelivery => "alert_delivery",
            AlarmKind::CaptureNearLoss => "capture_near_loss",
            AlarmKind::StoreCountersStale => "store_counters_stale",
            AlarmKind::ScrubBehind => "scrub_behind",
        }
    }

    pub fn parse(s: &str) -> Option<AlarmKind> {
        AlarmKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One occurrence of a condition, as the source sees it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alarm {
    pub kind: AlarmKind,
    /// What it is about: an interface name, `store`, `analyzer`, `capture`.
    pub subject: String,
    /// Changes when the condition happens again (see the module doc).
    pub occurrence: String,
    /// The condition holds now (false: it happened and is over).
    pub active: bool,
    /// When it started, when known.
    pub since: Option<Timestamp>,
    /// The figures, rendered per language by [`AlarmDetail::render`].
    pub detail: AlarmDetail,
}

/// What an alarm's detail says, as values: rendered in the panel's, the web page's or
/// `status`'s language by one function, [`AlarmDetail::render`]. The log keeps both the
/// English text (`detail`, for people reading the file) and these values (`values`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum AlarmDetail {
    CaptureStopped {
        pid: u32,
    },
    /// Durations in tenths of a second.
    LinkDown {
        times: u64,
        tenths: u64,
    },
    InterfaceGone {
        times: u64,
        tenths: u64,
        missed: u64,
    },
    DiskWriteErrors {
        writes: u64,
        packets: u64,
    },
    Damaged {
        slots: u64,
        segments: u64,
        blocks: u64,
    },
    CrashLoop {
        windows: u64,
        packets: u64,
    },
    /// Sizes already formatted (`1.2 GiB`: the same in every language).
    RingNearLoss {
        backlog: String,
        budget: String,
    },
    /// `error` is the failing system's own message (data, quoted as is).
    AlertDelivery {
        target: String,
        tls: String,
        error: String,
        pending: u64,
    },
    CaptureNearLoss {
        high_water_pct: u64,
        times: u64,
        peak_pct: u64,
        lost: u64,
    },
    /// `state`: `stale` (the running writer has not rewritten them for `seconds`),
    /// `not_closed` (writer `pid` stopped `seconds` ago without writing its last ones),
    /// `missing` (no readable `writer.state` beside segments).
    StoreCounters {
        state: String,
        pid: u32,
        seconds: u64,
    },
    /// Segment `seq`, the oldest the scrub has not checked since it was sealed, waited
    /// `waited_secs`, longer than `bound_secs` (`[storage] scrub_overdue`).
    ScrubOverdue {
        seq: u64,
        waited_secs: u64,
        bound_secs: u64,
    },
    /// The scrub of analyzer `pid` has not moved for `secs`.
    ScrubStalled {
        pid: u64,
        secs: u64,
    },
    /// A detail from a log written before the values were kept (English).
    Text {
        text: String,
    },
}

impl AlarmDetail {
    /// The detail in `lang`: the one function behind the panel, `status` and the web page.
    pub fn render(&self, lang: Lang) -> String {
        let ja = lang == Lang::Ja;
        let secs = |t: &u64| format!("{}.{}", t / 10, t % 10);
        match self {
            AlarmDetail::CaptureStopped { pid } if ja => {
                format!("キャプチャ (pid {pid}) が動作していません: 何も記録されていません")
            }
            AlarmDetail::CaptureStopped { pid } => {
                format!("capture pid {pid} is not running: nothing is recorded")
            }
            AlarmDetail::LinkDown { times, tenths } if ja => {
                format!("ダウン {times} 回、計 {} 秒", secs(tenths))
            }
            AlarmDetail::LinkDown { times, tenths } => {
                format!("down {times}x, {} s in all", secs(tenths))
            }
            AlarmDetail::InterfaceGone {
                times,
                tenths,
                missed,
            } if ja => format!(
                "消失 {times} 回、計 {} 秒、再接続前に失われたフレーム {missed}",
                secs(tenths)
            ),
            AlarmDetail::InterfaceGone {
                times,
                tenths,
                missed,
            } => format!(
                "gone {times}x, {} s in all, {missed} frames lost before re-binding",
                secs(tenths)
            ),
            AlarmDetail::DiskWriteErrors { writes, packets } if ja => {
                format!("書込み失敗 {writes} 回、失われたパケット {packets}")
            }
            AlarmDetail::DiskWriteErrors { writes, packets } => {
                format!("{writes} failed writes, {packets} packets lost")
            }
            AlarmDetail::Damaged {
                slots,
                segments,
                blocks,
            } if ja => {
                format!("破損スロット {slots}、破損セグメント {segments} (ブロック {blocks})")
            }
            AlarmDetail::Damaged {
                slots,
                segments,
                blocks,
            } => format!("{slots} damaged slots, {segments} damaged segments ({blocks} blocks)"),
            AlarmDetail::CrashLoop { windows, packets } if ja => format!(
                "異常終了の繰り返しで {windows} 区間を飛ばしました、未解析パケット {packets}"
            ),
            AlarmDetail::CrashLoop { windows, packets } => format!(
                "{windows} windows skipped after repeated crashes, {packets} packets not analyzed"
            ),
            AlarmDetail::RingNearLoss { backlog, budget } if ja => {
                format!("未解析 {backlog} (リング {budget}): 次にリングが上書きします")
            }
            AlarmDetail::RingNearLoss { backlog, budget } => {
                format!("{backlog} of {budget} not analyzed yet: the ring overwrites them next")
            }
            AlarmDetail::AlertDelivery {
                target,
                tls,
                error,
                pending,
            } => {
                let mut s = if ja {
                    format!("{target} (TLS `{tls}`): `{error}`")
                } else {
                    format!("{target} (tls {tls}): {error}")
                };
                if *pending > 0 {
                    s.push_str(&if ja {
                        format!("、送信待ちメール {pending} 通")
                    } else {
                        format!("; {pending} mail(s) wait in the outbox")
                    });
                }
                s
            }
            AlarmDetail::CaptureNearLoss {
                high_water_pct,
                times,
                peak_pct,
                lost,
            } if ja => format!(
                "カーネルリングの使用率が {high_water_pct}% に {times} 回到達 (最大 {peak_pct}%)、リング溢れで失われたフレーム {lost}"
            ),
            AlarmDetail::CaptureNearLoss {
                high_water_pct,
                times,
                peak_pct,
                lost,
            } => format!(
                "kernel ring filled to {high_water_pct}% {times}x (peak {peak_pct}%); frames lost to it: {lost}"
            ),
            AlarmDetail::StoreCounters {
                state,
                pid,
                seconds,
            } => match (state.as_str(), ja) {
                ("stale", true) => format!(
                    "書込みプロセス (pid {pid}) が {seconds} 秒間カウンタを書けていません: ディスクの書込み失敗の可能性"
                ),
                ("stale", false) => format!(
                    "writer pid {pid} has not written its counters for {seconds} s: the disk may refuse writes"
                ),
                ("not_closed", true) => format!(
                    "書込みプロセス (pid {pid}) が最終カウンタを書かずに停止 ({seconds} 秒前): 強制終了かディスクの書込み失敗。損失が数えられていない可能性"
                ),
                ("not_closed", false) => format!(
                    "writer pid {pid} stopped without writing its last counters ({seconds} s ago): killed, or the disk refused them; losses may be uncounted"
                ),
                (_, true) => "writer.state がないか破損: 書込みカウンタ不明".to_string(),
                (_, false) => "writer.state missing or damaged: write counters unknown".to_string(),
            },
            AlarmDetail::ScrubOverdue {
                seq,
                waited_secs,
                bound_secs,
            } if ja => format!(
                "セグメント (通番 {seq}) が封印後 {} 未検査 (上限 {}): 保存済みセグメントの損傷が見逃されます",
                span(*waited_secs, lang),
                span(*bound_secs, lang)
            ),
            AlarmDetail::ScrubOverdue {
                seq,
                waited_secs,
                bound_secs,
            } => format!(
                "segment seq {seq} not checked for {} since it was sealed (bound {}): damage in sealed segments goes unnoticed",
                span(*waited_secs, lang),
                span(*bound_secs, lang)
            ),
            AlarmDetail::ScrubStalled { pid, secs } if ja => format!(
                "解析プロセス (pid {pid}) のスクラブが {} 停止しています: 保存済みセグメントが検査されていません",
                span(*secs, lang)
            ),
            AlarmDetail::ScrubStalled { pid, secs } => format!(
                "the scrub of analyzer pid {pid} has not moved for {}: sealed segments are not checked",
                span(*secs, lang)
            ),
            AlarmDetail::Text { text } => text.clone(),
        }
    }
}

/// A span of seconds in the largest two units (`3 d 4 h`, `5 h 12 m`, `42 s`; in ja
/// `3 日 4 時間`).
fn span(secs: u64, lang: Lang) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    let u: [&str; 4] = match lang {
        Lang::Ja => ["日", "時間", "分", "秒"],
        Lang::En => ["d", "h", "m", "s"],
    };
    let parts = [(d, u[0]), (h, u[1]), (m, u[2]), (s, u[3])];
    let first = parts.iter().position(|(n, _)| *n > 0).unwrap_or(3);
    parts[first..]
        .iter()
        .take(2)
        .filter(|(n, _)| *n > 0 || first == 3)
        .map(|(n, unit)| format!("{n} {unit}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Alarm {
    /// `kind/subject`.
    pub fn key(&self) -> String {
        format!("{}/{}", self.kind.as_str(), self.subject)
    }
}

/// An alarm as the panel and `status` show it: latched until acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlarmState {
    pub alarm: Alarm,
    /// Who acknowledged this occurrence, and when; `None` = latched, not acknowledged.
    pub acked: Option<Ack>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    pub who: String,
    pub at: Timestamp,
}

/// One line of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// `raised` or `ack`.
    pub event: String,
    pub at: String,
    pub kind: String,
    pub subject: String,
    pub occurrence: String,
    /// The detail in English, for people reading the file.
    #[serde(default)]
    pub detail: String,
    /// The detail's values (absent in logs written before they were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<AlarmDetail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub who: Option<String>,
}

/// The alarm log of a data directory, read into memory.
#[derive(Clone, Debug, Default)]
pub struct AlarmLog {
    path: PathBuf,
    entries: Vec<LogEntry>,
    /// Lines that did not parse (a torn last line after a power cut).
    pub bad_lines: usize,
}

/// Path of the log in a data directory.
pub fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join("alarms").join("log.jsonl")
}

impl AlarmLog {
    /// Reads the log; a missing log is an empty one.
    pub fn load(data_dir: &Path) -> std::io::Result<AlarmLog> {
        let path = log_path(data_dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e),
        };
        let mut log = AlarmLog {
            path,
            ..Default::default()
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str::<LogEntry>(line) {
                Ok(e) => log.entries.push(e),
                Err(_) => log.bad_lines += 1,
            }
        }
        Ok(log)
    }

    pub fn entries(&self) -> &[LogEntry] {
        &self.entries
    }

    fn find(&self, event: &str, kind: &str, subject: &str, occurrence: &str) -> Option<&LogEntry> {
        self.entries.iter().rev().find(|e| {
            e.event == event && e.kind == kind && e.subject == subject && e.occurrence == occurrence
        })
    }

    fn ack_of(&self, kind: &str, subject: &str, occurrence: &str) -> Option<Ack> {
        self.find("ack", kind, subject, occurrence).map(|e| Ack {
            who: e.who.clone().unwrap_or_default(),
            at: Timestamp::parse_rfc3339(&e.at).unwrap_or_default(),
        })
    }

    /// Every alarm to show: the current ones (acknowledged or not), and the occurrences
    /// raised earlier that are no longer current (their counters were reset by a capture
    /// restart, or the condition changed) and were not acknowledged. Latched ones first.
    pub fn states(&self, current: &[Alarm]) -> Vec<AlarmState> {
        let mut out: Vec<AlarmState> = current
            .iter()
            .map(|a| AlarmState {
                alarm: a.clone(),
                acked: self.ack_of(a.kind.as_str(), &a.subject, &a.occurrence),
            })
            .collect();
        let mut seen = std::collections::HashSet::new();
        for e in self.entries.iter().filter(|e| e.event == "raised") {
            let Some(kind) = AlarmKind::parse(&e.kind) else {
                continue;
            };
            if !seen.insert((e.kind.as_str(), e.subject.as_str(), e.occurrence.as_str())) {
                continue;
            }
            let is_current = current
                .iter()
                .any(|a| a.kind == kind && a.subject == e.subject && a.occurrence == e.occurrence);
            if is_current || self.ack_of(&e.kind, &e.subject, &e.occurrence).is_some() {
                continue;
            }
            out.push(AlarmState {
                alarm: Alarm {
                    kind,
                    subject: e.subject.clone(),
                    occurrence: e.occurrence.clone(),
                    active: false,
                    since: Timestamp::parse_rfc3339(&e.at).ok(),
                    detail: e.values.clone().unwrap_or_else(|| AlarmDetail::Text {
                        text: e.detail.clone(),
                    }),
                },
                acked: None,
            });
        }
        out.sort_by_key(|s| (s.acked.is_some(), !s.alarm.active, s.alarm.kind));
        out
    }

    /// Records every current occurrence not in the log yet as `raised` (so it stays
    /// latched even once its counters are reset). Returns how many were added.
    pub fn raise_new(&mut self, current: &[Alarm], now: Timestamp) -> std::io::Result<usize> {
        let new: Vec<LogEntry> = current
            .iter()
            .filter(|a| {
                self.find("raised", a.kind.as_str(), &a.subject, &a.occurrence)
                    .is_none()
            })
            .map(|a| LogEntry {
                event: "raised".into(),
                at: a.since.unwrap_or(now).to_rfc3339(),
                kind: a.kind.as_str().into(),
                subject: a.subject.clone(),
                occurrence: a.occurrence.clone(),
                detail: a.detail.render(Lang::En),
                values: Some(a.detail.clone()),
                who: None,
            })
            .collect();
        self.append(new)
    }

    /// Acknowledges every latched alarm (`states` not acknowledged) as `who` at `now`.
    /// Returns how many were acknowledged.
    pub fn acknowledge(
        &mut self,
        current: &[Alarm],
        who: &str,
        now: Timestamp,
    ) -> std::io::Result<usize> {
        let acks: Vec<LogEntry> = self
            .states(current)
            .into_iter()
            .filter(|s| s.acked.is_none())
            .map(|s| LogEntry {
                event: "ack".into(),
                at: now.to_rfc3339(),
                kind: s.alarm.kind.as_str().into(),
                subject: s.alarm.subject,
                occurrence: s.alarm.occurrence,
                detail: s.alarm.detail.render(Lang::En),
                values: Some(s.alarm.detail),
                who: Some(who.to_string()),
            })
            .collect();
        self.append(acks)
    }

    fn append(&mut self, new: Vec<LogEntry>) -> std::io::Result<usize> {
        if new.is_empty() {
            return Ok(0);
        }
        let mut text = String::new();
        for e in &new {
            text.push_str(&serde_json::to_string(e).map_err(std::io::Error::other)?);
            text.push('\n');
        }
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        // One write of whole lines: a reader never sees half an entry (short of a power cut,
        // whose torn line `load` skips).
        f.write_all(text.as_bytes())?;
        f.sync_data()?;
        let n = new.len();
        self.entries.extend(new);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alarm(kind: AlarmKind, subject: &str, occurrence: &str, active: bool) -> Alarm {
        Alarm {
            kind,
            subject: subject.into(),
            occurrence: occurrence.into(),
            active,
            since: Some(Timestamp(1_000_000_000)),
            detail: AlarmDetail::DiskWriteErrors {
                writes: 1,
                packets: 2,
            },
        }
    }

    /// One detail of every kind, with figures.
    pub(crate) fn every_detail() -> Vec<AlarmDetail> {
        vec![
            AlarmDetail::CaptureStopped { pid: 4242 },
            AlarmDetail::LinkDown {
                times: 2,
                tenths: 40,
            },
            AlarmDetail::InterfaceGone {
                times: 1,
                tenths: 35,
                missed: 7,
            },
            AlarmDetail::DiskWriteErrors {
                writes: 3,
                packets: 120,
            },
            AlarmDetail::Damaged {
                slots: 1,
                segments: 2,
                blocks: 5,
            },
            AlarmDetail::CrashLoop {
                windows: 2,
                packets: 900,
            },
            AlarmDetail::RingNearLoss {
                backlog: "1.5 GiB".into(),
                budget: "2.0 GiB".into(),
            },
            AlarmDetail::AlertDelivery {
                target: "smtp.example.jp:587".into(),
                tls: "starttls".into(),
                error: "certificate verify failed: unable to get local issuer".into(),
                pending: 3,
            },
            AlarmDetail::CaptureNearLoss {
                high_water_pct: 80,
                times: 2,
                peak_pct: 94,
                lost: 0,
            },
            AlarmDetail::ScrubOverdue {
                seq: 41,
                waited_secs: 3 * 86_400 + 5 * 3600,
                bound_secs: 2 * 86_400,
            },
            AlarmDetail::ScrubStalled {
                pid: 4242,
                secs: 1_800,
            },
        ]
    }

    #[test]
    fn spans_read_in_two_units() {
        assert_eq!(span(0, Lang::En), "0 s");
        assert_eq!(span(42, Lang::En), "42 s");
        assert_eq!(span(3600, Lang::En), "1 h");
        assert_eq!(span(3 * 86_400 + 5 * 3600 + 7, Lang::En), "3 d 5 h");
        assert_eq!(span(312, Lang::Ja), "5 分 12 秒");
        assert_eq!(
            AlarmDetail::ScrubOverdue {
                seq: 41,
                waited_secs: 3 * 86_400 + 5 * 3600,
                bound_secs: 2 * 86_400,
            }
            .render(Lang::En),
            "segment seq 41 not checked for 3 d 5 h since it was sealed (bound 2 d): damage in sealed segments goes unnoticed"
        );
    }

    /// Lower-case ASCII words of two letters or more outside backticks: English prose
    /// in a text meant to be Japanese (numbers, units, addresses and quoted data aside).
    fn english_words(text: &str) -> Vec<String> {
        text.split('`')
            .step_by(2)
            .flat_map(|t| t.split(|c: char| !c.is_ascii_alphanumeric() && c != '.'))
            .filter(|w| w.len() >= 2 && w.chars().all(|c| c.is_ascii_lowercase()))
            .filter(|w| !["pid"].contains(w))
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn every_alarm_detail_is_japanese_in_ja_and_unchanged_in_en() {
        let ja: Vec<String> = every_detail().iter().map(|d| d.render(Lang::Ja)).collect();
        for (d, text) in every_detail().iter().zip(&ja) {
            assert!(english_words(text).is_empty(), "{d:?} in ja: {text}");
            assert_ne!(*text, d.render(Lang::En));
        }
        // English as before the values were kept (logs, scripts and docs quote these).
        assert_eq!(
            AlarmDetail::LinkDown {
                times: 2,
                tenths: 40
            }
            .render(Lang::En),
            "down 2x, 4.0 s in all"
        );
        assert_eq!(every_detail()[1].render(Lang::Ja), "ダウン 2 回、計 4.0 秒");
        // The log keeps the values, so a latched alarm read back renders in ja too.
        let dir = tempfile::tempdir().unwrap();
        let mut log = AlarmLog::load(dir.path()).unwrap();
        let a = Alarm {
            detail: every_detail()[3].clone(),
            ..alarm(AlarmKind::DiskWriteErrors, "store", "3", true)
        };
        log.raise_new(std::slice::from_ref(&a), Timestamp(2_000_000_000))
            .unwrap();
        let log = AlarmLog::load(dir.path()).unwrap();
        let st = log.states(&[]);
        assert_eq!(st[0].alarm.detail, a.detail);
        assert_eq!(
            st[0].alarm.detail.render(Lang::Ja),
            "書込み失敗 3 回、失われたパケット 120"
        );
    }

    #[test]
    fn latched_until_acknowledged_and_latched_again_when_it_recurs() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AlarmLog::load(dir.path()).unwrap();
        let down = alarm(AlarmKind::LinkDown, "eth1", "10:1", true);
        assert_eq!(
            log.raise_new(std::slice::from_ref(&down), Timestamp(5))
                .unwrap(),
            1
        );
        assert_eq!(
            log.raise_new(std::slice::from_ref(&down), Timestamp(6))
                .unwrap(),
            0
        );
        // The link came back: the occurrence is over but stays latched.
        let over = Alarm {
            active: false,
            ..down.clone()
        };
        let s = log.states(std::slice::from_ref(&over));
        assert_eq!(s.len(), 1);
        assert!(s[0].acked.is_none());
        // A capture restart reset the counters: the alarm is no longer current, the log
        // keeps it latched.
        let s = AlarmLog::load(dir.path()).unwrap().states(&[]);
        assert_eq!(s.len(), 1, "{s:?}");
        assert_eq!(s[0].alarm.key(), "link_down/eth1");
        // Acknowledged at the panel: recorded with who and when, no longer latched.
        let n = log
            .acknowledge(&[], "front panel /dev/tty1", Timestamp(7_000_000_000))
            .unwrap();
        assert_eq!(n, 1);
        let log = AlarmLog::load(dir.path()).unwrap();
        assert!(log.states(&[]).is_empty());
        let ack = log.entries().iter().find(|e| e.event == "ack").unwrap();
        assert_eq!(ack.who.as_deref(), Some("front panel /dev/tty1"));
        assert_eq!(ack.occurrence, "10:1");
        // The same occurrence still shown while current, as acknowledged.
        let s = log.states(std::slice::from_ref(&over));
        assert_eq!(s[0].acked.as_ref().unwrap().who, "front panel /dev/tty1");
        // It recurs (a second down event): latched again.
        let again = alarm(AlarmKind::LinkDown, "eth1", "10:2", true);
        let s = log.states(std::slice::from_ref(&again));
        assert_eq!(s.len(), 1);
        assert!(s[0].acked.is_none());
    }

    #[test]
    fn a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AlarmLog::load(dir.path()).unwrap();
        let a = alarm(AlarmKind::DamagedSlots, "store", "2", true);
        log.raise_new(&[a], Timestamp(1)).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(log_path(dir.path()))
            .unwrap();
        f.write_all(b"{\"event\":\"ack\",\"at").unwrap();
        let log = AlarmLog::load(dir.path()).unwrap();
        assert_eq!(log.bad_lines, 1);
        assert_eq!(log.states(&[]).len(), 1);
    }
}
