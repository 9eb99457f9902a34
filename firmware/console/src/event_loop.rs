//! The terminal, the keyboard and the tick; nothing else.
//!
//! A serial console reports its size as 0x0, and ratatui then silently draws nothing
//! (measured, see research/crates.md pitfall 5): the loop falls back to a fixed 80x24
//! viewport in that case.

use crate::app::{App, Key};
use crate::source::{Feeder, Source, Update};
use kuroko_model::Timestamp;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::{execute, terminal};
use ratatui::layout::Rect;
use ratatui::prelude::CrosstermBackend;
use ratatui::{Terminal, TerminalOptions, Viewport};
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How often the source is asked for a new snapshot.
pub const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(1);
/// Longest wait for a key before redrawing (keeps the clock and stale marker honest).
const POLL: Duration = Duration::from_millis(200);

fn map_key(code: KeyCode, mods: KeyModifiers) -> Option<Key> {
    Some(match code {
        KeyCode::Char('c') if mods.contains(KeyModifiers::CONTROL) => Key::Char('q'),
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Tab => Key::Tab,
        KeyCode::BackTab => Key::BackTab,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::Left => Key::Left,
        KeyCode::Right => Key::Right,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        KeyCode::Home => Key::Home,
        KeyCode::End => Key::End,
        KeyCode::Backspace => Key::Backspace,
        _ => return None,
    })
}

/// Runs the console on the current terminal until the user quits.
pub fn run<S: Source>(source: S, app: App) -> io::Result<()> {
    run_until(source, app, &AtomicBool::new(false))
}

/// Like [`run`], but also returns when `stop` is set (the appliance is shutting down).
pub fn run_until<S: Source>(source: S, mut app: App, stop: &AtomicBool) -> io::Result<()> {
    let feeder = Feeder::spawn(source, SNAPSHOT_INTERVAL)?;
    terminal::enable_raw_mode()?;
    let mut stdout = io::stdout();
    execute!(stdout, terminal::EnterAlternateScreen)?;
    let backend = CrosstermBackend::new(stdout);
    let size = terminal::size().unwrap_or((0, 0));
    let terminal = if size.0 == 0 || size.1 == 0 {
        Terminal::with_options(
            backend,
            TerminalOptions {
                viewport: Viewport::Fixed(Rect::new(0, 0, 80, 24)),
            },
        )
    } else {
        Terminal::new(backend)
    };
    let result = match terminal {
        Ok(mut t) => main_loop(&mut t, &feeder, &mut app, stop),
        Err(e) => Err(e),
    };
    // Restore the terminal whatever happened.
    let _ = terminal::disable_raw_mode();
    let _ = execute!(io::stdout(), terminal::LeaveAlternateScreen);
    result
}

fn main_loop<B: ratatui::backend::Backend>(
    terminal: &mut Terminal<B>,
    feeder: &Feeder,
    app: &mut App,
    stop: &AtomicBool,
) -> io::Result<()>
where
    io::Error: From<B::Error>,
{
    loop {
        while let Some(u) = feeder.try_recv() {
            match u {
                Update::Snapshot(s) => app.update(*s),
                Update::Search(r) => app.on_search_result(r),
                Update::Acknowledged(r) => app.on_acknowledged(r),
            }
        }
        app.now = Timestamp::now();
        terminal.draw(|f| crate::ui::draw(f, app))?;
        if event::poll(POLL)?
            && let Event::Key(k) = event::read()?
            && k.kind == KeyEventKind::Press
            && let Some(key) = map_key(k.code, k.modifiers)
        {
            app.on_key(key);
        }
        if let Some(q) = app.take_search_request() {
            feeder.request_search(q);
        }
        if app.take_ack_request() {
            feeder.request_acknowledge(app.operator.clone());
        }
        if app.quit || stop.load(Ordering::SeqCst) {
            return Ok(());
        }
    }
}
