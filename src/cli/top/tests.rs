//! `top` drawn into ratatui's test backend from a recording of two real
//! services (`tests/data/top.jsonl`: a process killed and restarted, a limit
//! crossed), at the smallest supported size and beyond.

use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::style::Color;
use ratatui::Terminal;
use serde_json::Value;

use super::model::{Key, Model};
use super::view;

const RECORDING: &str = include_str!("../../../tests/data/top.jsonl");

/// The model after every message of the recording, with its endpoints.
fn replayed() -> Model {
    let records: Vec<Value> = RECORDING
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let mut endpoints: Vec<String> = Vec::new();
    for r in &records {
        let e = r["endpoint"].as_str().unwrap_or("").to_string();
        if !endpoints.contains(&e) {
            endpoints.push(e);
        }
    }
    endpoints.sort();
    let mut model = Model::new(&endpoints);
    for r in records {
        let index = endpoints
            .iter()
            .position(|e| r["endpoint"] == e.as_str())
            .unwrap_or(0);
        model.receive(index, r["snapshot"].clone());
    }
    model
}

fn render(model: &Model, width: u16, height: u16) -> Buffer {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| view::draw(f, model)).unwrap();
    terminal.backend().buffer().clone()
}

fn text(buffer: &Buffer) -> String {
    let area = buffer.area;
    (0..area.height)
        .map(|y| {
            (0..area.width)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The colour of the first cell of `word` on the screen.
fn colour_of(buffer: &Buffer, word: &str) -> Option<Color> {
    let screen = text(buffer);
    for (y, line) in screen.lines().enumerate() {
        if let Some(x) = line.find(word) {
            let x = line[..x].chars().count();
            return Some(buffer[(x as u16, y as u16)].fg);
        }
    }
    None
}

#[test]
fn shows_processes_disks_interfaces_and_events_in_80x24() {
    let model = replayed();
    let buffer = render(&model, 80, 24);
    let screen = text(&buffer);
    for expected in [
        "Processes (2)",
        "424242",
        "frameReceiver",
        "missing",
        "Disks (1)",
        "_tmp",
        "Interfaces (1)",
        "lo",
        "Events",
        "exited (exit code -9)",
        "q quit",
    ] {
        assert!(screen.contains(expected), "{expected:?} not on\n{screen}");
    }
    assert_eq!(
        colour_of(&buffer, "missing"),
        Some(Color::Red),
        "\n{screen}"
    );
    // /tmp is over its disk_percent_warn limit of 1: its severity leaf is minor.
    assert_eq!(colour_of(&buffer, "[#"), Some(Color::Yellow), "\n{screen}");
}

#[test]
fn keys_change_what_is_drawn() {
    let mut model = replayed();
    model.key(Key::Char('/'));
    for c in "4242".chars() {
        model.key(Key::Char(c));
    }
    model.key(Key::Enter);
    let screen = text(&render(&model, 100, 30));
    assert!(screen.contains("filter: 4242"), "{screen}");
    assert!(screen.contains("Processes (1)"), "{screen}");
    model.key(Key::Down);
    model.key(Key::Enter);
    model.key(Key::Char('p'));
    let screen = text(&render(&model, 100, 30));
    assert!(screen.contains("PAUSED"), "{screen}");
    model.key(Key::Tab);
    let screen = text(&render(&model, 100, 30));
    assert!(screen.contains("host 2/2"), "{screen}");
}

#[test]
fn stale_header_is_red() {
    let mut model = replayed();
    if let Some(host) = model.hosts.first_mut() {
        host.age = Some(std::time::Duration::from_secs(12));
        host.stale = true;
    }
    let buffer = render(&model, 80, 24);
    let screen = text(&buffer);
    assert!(screen.contains("STALE: last snapshot 12 s ago"), "{screen}");
    assert_eq!(colour_of(&buffer, "STALE"), Some(Color::Red));
}

#[test]
fn any_size_draws_without_panic() {
    let mut model = replayed();
    for (expand, width, height) in [
        (false, 1, 1),
        (true, 2, 1),
        (true, 10, 3),
        (false, 40, 8),
        (true, 80, 24),
        (true, 300, 100),
        (false, 0, 0),
    ] {
        if expand {
            model.key(Key::Down);
            model.key(Key::Enter);
        }
        render(&model, width, height);
    }
    render(&Model::new(&[]), 80, 24);
    render(&Model::new(&["tcp://x:1".to_string()]), 80, 24);
}
