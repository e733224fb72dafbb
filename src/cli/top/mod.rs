//! `odin-status top`: a live full-screen view of one or more services, from
//! their PUB streams (the same `Feed` as `watch` and `record`).
//!
//! The terminal is put back as it was on every way out: `q`, Ctrl-C (a key
//! in raw mode), SIGTERM/SIGINT/SIGHUP (the stop flag, checked every tick), an
//! error, and a panic (the hook restores before the message is printed).

mod model;
mod view;

use std::io::{self, Stdout};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Args;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::event::{self, Event as TermEvent, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::crossterm::execute;
use ratatui::crossterm::terminal::{
    disable_raw_mode, enable_raw_mode, EnterAlternateScreen, LeaveAlternateScreen,
};
use ratatui::Terminal;
use serde_json::{json, Value};

use super::feed::{Event, Feed};
use super::{ctrl_endpoint, fail, pub_endpoint, stop_on_signal};
use crate::config;
use crate::protocol::timestamp_now;
use crate::transport;
pub use model::{Key, Model};

#[derive(Debug, Args)]
pub struct TopArgs {
    /// Status publisher endpoint (tcp://HOST:PORT or ipc://PATH); repeat for
    /// several hosts and move between them with Tab.
    #[arg(long = "pub", value_name = "ENDPOINT", default_value = config::DEFAULT_PUB, value_parser = pub_endpoint)]
    publish: Vec<String>,
    /// Control endpoint of the first host's service: its whole tree is asked
    /// for once at start, so the screen fills before the first snapshot.
    #[arg(long, value_name = "ENDPOINT", value_parser = ctrl_endpoint)]
    ctrl: Option<String>,
}

/// How often the screen is redrawn when nothing arrives (ages move on).
const TICK: Duration = Duration::from_millis(250);

pub fn run(args: TopArgs) -> ExitCode {
    let stop = stop_on_signal();
    let mut feed = match Feed::connect(&args.publish) {
        Ok(feed) => feed,
        Err(e) => return fail(e),
    };
    let mut model = Model::new(&args.publish);
    if let Some(ctrl) = &args.ctrl {
        if let Some(tree) = whole_tree(ctrl) {
            model.receive(
                0,
                json!({"msg_val": "status", "timestamp": timestamp_now(), "params": tree}),
            );
        }
    }
    let mut terminal = match Screen::enter() {
        Ok(screen) => screen,
        Err(e) => return fail(format!("cannot use the terminal for top: {e}")),
    };
    let result = run_loop(&mut terminal.terminal, &mut feed, &mut model, &|| {
        stop.load(Ordering::Relaxed)
    });
    drop(terminal);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// `status` from the control socket, or None (the stream will fill the screen).
fn whole_tree(ctrl: &str) -> Option<Value> {
    let body = json!({"msg_type": "cmd", "msg_val": "status", "id": 1,
        "timestamp": timestamp_now(), "params": {}});
    let reply =
        transport::request(ctrl, body.to_string().as_bytes(), Duration::from_secs(1)).ok()??;
    let reply: Value = serde_json::from_slice(&reply).ok()?;
    (reply.get("msg_type")? == "ack").then(|| reply.get("params").cloned())?
}

fn run_loop(
    terminal: &mut Terminal<CrosstermBackend<Stdout>>,
    feed: &mut Feed,
    model: &mut Model,
    stopped: &dyn Fn() -> bool,
) -> Result<(), String> {
    let mut drawn = Instant::now() - TICK;
    let mut changed = true;
    while !stopped() {
        // Everything that arrived, without waiting.
        for _ in 0..1000 {
            match feed.next(Duration::ZERO).map_err(|e| e.to_string())? {
                Event::Message { index, message, .. } => {
                    model.receive(index, message);
                    changed = true;
                }
                Event::Idle => break,
                Event::Stale { .. } | Event::Back { .. } | Event::Undecodable { .. } => {
                    changed = true
                }
            }
        }
        let now = Instant::now();
        for (host, source) in model.hosts.iter_mut().zip(&feed.sources) {
            host.age = source.staleness.age(now);
            host.stale = source.staleness.is_stale(now);
            host.missed = source.gaps.missed;
        }
        if changed || drawn.elapsed() >= TICK {
            terminal
                .draw(|frame| view::draw(frame, model))
                .map_err(|e| format!("cannot draw on the terminal: {e}"))?;
            drawn = Instant::now();
            changed = false;
        }
        if event::poll(Duration::from_millis(50))
            .map_err(|e| format!("cannot read the terminal: {e}"))?
        {
            match event::read().map_err(|e| format!("cannot read the terminal: {e}"))? {
                TermEvent::Key(k) if k.kind != KeyEventKind::Release => {
                    let Some(key) = translate(k.code, k.modifiers) else {
                        continue;
                    };
                    if !model.key(key) {
                        return Ok(());
                    }
                    changed = true;
                }
                TermEvent::Resize(..) => changed = true,
                _ => {}
            }
        }
    }
    Ok(())
}

fn translate(code: KeyCode, modifiers: KeyModifiers) -> Option<Key> {
    Some(match code {
        KeyCode::Char('c') if modifiers.contains(KeyModifiers::CONTROL) => Key::Quit,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Escape,
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Tab => Key::Tab,
        KeyCode::BackTab => Key::BackTab,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        _ => return None,
    })
}

/// The terminal in raw mode on the alternate screen, for as long as this lives.
struct Screen {
    terminal: Terminal<CrosstermBackend<Stdout>>,
}

impl Screen {
    fn enter() -> io::Result<Screen> {
        enable_raw_mode()?;
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
        let entered = execute!(io::stdout(), EnterAlternateScreen)
            .and_then(|()| Terminal::new(CrosstermBackend::new(io::stdout())));
        match entered {
            Ok(mut terminal) => {
                let _ = terminal.hide_cursor();
                let _ = terminal.clear();
                Ok(Screen { terminal })
            }
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        restore();
        let _ = self.terminal.show_cursor();
    }
}

fn restore() {
    let _ = disable_raw_mode();
    let _ = execute!(
        io::stdout(),
        LeaveAlternateScreen,
        ratatui::crossterm::cursor::Show
    );
}

#[cfg(test)]
mod tests;
