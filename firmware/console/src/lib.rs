//! The front-panel console: capture health, disk usage and detections at a glance.
//!
//! On site the only screen is the appliance's own console: a small monitor on the front
//! panel or a serial terminal at 80x24. A technician must see in two seconds whether the box
//! is capturing, how much history the disk holds, and whether something serious was found.
//!
//! Structure (ratatui's demo-app layout):
//! - [`snapshot`]: plain data the screens show, gathered by a [`source::Source`];
//! - [`source`]: the background feeder thread that polls a source and runs searches, so the
//!   UI never blocks on a slow disk (old data is shown marked *stale*);
//! - [`app`]: state and key handling, no drawing;
//! - [`ui`]: drawing only, a pure function of the app state (pinned by screen tests);
//! - [`event_loop`]: the terminal, the keyboard and the tick, nothing else;
//! - [`alarms`]: alarms latched until acknowledged at the panel, and their log.
//!
//! Invariants: the console only reads, except the alarm log (`DATA/alarms/log.jsonl`, see
//! [`alarms`]) it appends to; it never writes to the store and never takes a lock
//! the capture path could wait on. It must render something sensible at 80x24 with no
//! colors (every state is also spelled in text) and in pure ASCII when asked.
//! It never panics on odd data (empty lists, huge numbers, wide characters).

#![forbid(unsafe_code)]

pub mod alarms;
pub mod app;
pub mod event_loop;
pub mod snapshot;
pub mod source;
pub mod text;
pub mod ui;

pub use app::{App, Screen};
pub use snapshot::Snapshot;
pub use source::Source;
