//! Draws the model: a header, the process table, disks, interfaces and the
//! latest events, coloured as Glances and htop users read them (green ok,
//! yellow minor or extra, red major, missing, drops and errors).
//!
//! Everything is laid out from the frame's size: rows that do not fit are
//! left out, never drawn outside it, so no terminal size can panic it.

use std::time::Duration;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table};
use ratatui::Frame;
use serde_json::{Map, Value};

use super::model::{Host, Model, ProcessRow};
use crate::cli::feed::seconds;

const OK: Color = Color::Green;
const MINOR: Color = Color::Yellow;
const MAJOR: Color = Color::Red;
const DIM: Color = Color::DarkGray;

pub fn draw(frame: &mut Frame, model: &Model) {
    let area = frame.area();
    let disks = entries(model, "/disk");
    let interfaces = entries(model, "/network");
    // Each block's rows plus its title; the process table takes what is left.
    let boxed = |n: usize, most: usize| Constraint::Length((n.min(most) as u16) + 2);
    let [header, processes, disks_area, interfaces_area, events, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(4),
        boxed(disks.len().max(1), 6),
        boxed(interfaces.len().max(1), 6),
        Constraint::Length(6),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(frame, header, model);
    draw_processes(frame, processes, model);
    draw_disks(frame, disks_area, &disks);
    draw_interfaces(frame, interfaces_area, &interfaces);
    draw_events(frame, events, model);
    draw_footer(frame, footer, model);
}

fn entries(model: &Model, pointer: &str) -> Vec<(String, Map<String, Value>)> {
    model
        .host()
        .and_then(|h| h.at(pointer))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_object()?.clone())))
                .collect()
        })
        .unwrap_or_default()
}

fn num(v: &Map<String, Value>, key: &str) -> Option<f64> {
    v.get(key).and_then(Value::as_f64)
}

fn severity_colour(v: &Map<String, Value>) -> Option<Color> {
    match v.get("severity").and_then(Value::as_str) {
        Some("major") => Some(MAJOR),
        Some("minor") => Some(MINOR),
        _ => None,
    }
}

fn draw_header(frame: &mut Frame, area: Rect, model: &Model) {
    let Some(host) = model.host() else {
        return;
    };
    let f = |p: &str| host.at(p).and_then(Value::as_f64);
    let title = Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED);
    let mut first = match host.hostname() {
        Some(name) => vec![
            Span::styled(format!(" {name} "), title),
            Span::raw(format!(" {}", host.endpoint)),
        ],
        None => vec![Span::styled(format!(" {} ", host.endpoint), title)],
    };
    first.push(age_span(host));
    match host.cycle {
        Some(c) => first.push(Span::raw(format!("  cycle {c}"))),
        None if !host.stale => first.push(Span::raw("  waiting for the first snapshot")),
        None => {}
    }
    if model.hosts.len() > 1 {
        first.push(Span::raw(format!(
            "  host {}/{} (Tab)",
            model.current + 1,
            model.hosts.len()
        )));
    }
    if model.paused {
        first.push(Span::styled(
            "  PAUSED (p)",
            Style::new().fg(MINOR).add_modifier(Modifier::BOLD),
        ));
    }
    let mut second = Vec::new();
    if let Some(cpu) = f("/host/cpu_percent") {
        second.push(Span::raw(" CPU "));
        second.push(Span::styled(format!("{cpu:.1}%"), level(cpu, 75.0, 90.0)));
    }
    if let Some(mem) = f("/host/memory_percent") {
        second.push(Span::raw("  mem "));
        second.push(Span::styled(format!("{mem:.1}%"), level(mem, 75.0, 90.0)));
        if let Some(total) = f("/host/memory_total") {
            second.push(Span::raw(format!(" of {}", bytes(total))));
        }
    }
    if let Some(load) = host.at("/host/load_average").and_then(Value::as_array) {
        let load: Vec<String> = load
            .iter()
            .filter_map(Value::as_f64)
            .map(|l| format!("{l:.2}"))
            .collect();
        second.push(Span::raw(format!("  load {}", load.join(" "))));
    }
    if let Some(up) = f("/host/uptime") {
        second.push(Span::raw(format!("  up {}", duration(up))));
    }
    if host.missed > 0 {
        second.push(Span::styled(
            format!("  {} missed", host.missed),
            Style::new().fg(MINOR),
        ));
    }
    frame.render_widget(
        Paragraph::new(vec![Line::from(first), Line::from(second)]),
        area,
    );
}

fn age_span(host: &Host) -> Span<'static> {
    match (host.age, host.stale) {
        (Some(age), true) => Span::styled(
            format!("  STALE: last snapshot {} ago", seconds(age)),
            Style::new().fg(MAJOR).add_modifier(Modifier::BOLD),
        ),
        (None, true) => Span::styled(
            "  STALE: no snapshot yet",
            Style::new().fg(MAJOR).add_modifier(Modifier::BOLD),
        ),
        (Some(age), false) => Span::raw(format!("  age {}", seconds(age))),
        (None, false) => Span::raw(""),
    }
}

fn level(value: f64, minor: f64, major: f64) -> Style {
    match value {
        v if v >= major => Style::new().fg(MAJOR),
        v if v >= minor => Style::new().fg(MINOR),
        _ => Style::new().fg(OK),
    }
}

fn block(title: String) -> Block<'static> {
    Block::new().borders(Borders::TOP).title(Span::styled(
        title,
        Style::new().add_modifier(Modifier::BOLD),
    ))
}

fn draw_processes(frame: &mut Frame, area: Rect, model: &Model) {
    let rows = model.processes();
    let mut title = format!(
        "Processes ({}) sort: {} (s)",
        rows.len(),
        model.sort.label()
    );
    if model.typing {
        title += &format!("  filter: {}_", model.filter);
    } else if !model.filter.is_empty() {
        title += &format!("  filter: {} (Esc clears)", model.filter);
    }
    let header = Row::new(
        [
            "name", "count", "state", "restarts", "uptime", "cpu%", "rss", "thr", "fds",
        ]
        .map(Cell::from),
    )
    .style(Style::new().fg(DIM));
    let mut lines = Vec::new();
    for row in &rows {
        let selected = model.selected.as_deref() == Some(row.name.as_str());
        lines.push(process_line(
            row,
            selected,
            model.expanded.contains(&row.name),
        ));
        if model.expanded.contains(&row.name) {
            lines.extend(pid_lines(model, &row.name));
        }
    }
    if rows.is_empty() {
        let text = match model.host().and_then(|h| h.tree.as_ref()) {
            None => "  (no snapshot yet)",
            Some(_) if model.filter.is_empty() => "  (no processes configured)",
            Some(_) => "  (none matches the filter)",
        };
        lines.push(Row::new([Cell::from(text)]).style(Style::new().fg(DIM)));
    }
    let widths = [
        Constraint::Fill(1),
        Constraint::Length(5),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(4),
        Constraint::Length(5),
    ];
    frame.render_widget(
        Table::new(lines, widths)
            .header(header)
            .block(block(title))
            .column_spacing(1),
        area,
    );
}

fn process_line(row: &ProcessRow, selected: bool, expanded: bool) -> Row<'static> {
    let colour = match row.state.as_str() {
        "ok" => OK,
        "missing" => MAJOR,
        "extra" => MINOR,
        _ => Color::Reset,
    };
    let count = match row.expected {
        Some(n) => format!("{}/{n}", row.count),
        None => row.count.to_string(),
    };
    let marker = if expanded { "-" } else { "+" };
    let mut style = Style::new();
    if selected {
        style = style.add_modifier(Modifier::REVERSED);
    }
    Row::new(vec![
        Cell::from(format!("{marker}{}", row.name)),
        Cell::from(count),
        Cell::from(Span::styled(row.state.clone(), Style::new().fg(colour))),
        Cell::from(Span::styled(
            row.restarts.to_string(),
            if row.restarts > 0 {
                Style::new().fg(MINOR)
            } else {
                Style::new()
            },
        )),
        Cell::from(row.uptime.map(duration).unwrap_or_default()),
        Cell::from(format!("{:.1}", row.cpu)),
        Cell::from(bytes(row.rss as f64)),
        Cell::from(row.threads.to_string()),
        Cell::from(row.fds.map(|n| n.to_string()).unwrap_or("-".into())),
    ])
    .style(style)
}

fn pid_lines(model: &Model, name: &str) -> Vec<Row<'static>> {
    let pointer = format!("/process/{}", name.replace('~', "~0").replace('/', "~1"));
    let Some(pids) = model
        .host()
        .and_then(|h| h.at(&pointer))
        .and_then(Value::as_object)
    else {
        return Vec::new();
    };
    pids.iter()
        .filter_map(|(pid, p)| {
            let p = p.as_object()?;
            let cpu = num(p, "cpu_percent").unwrap_or(0.0);
            let colour = severity_colour(p).unwrap_or(Color::Reset);
            Some(
                Row::new(vec![
                    Cell::from(format!("   pid {pid}")),
                    Cell::from(""),
                    Cell::from(""),
                    Cell::from(""),
                    Cell::from(""),
                    Cell::from(Span::styled(format!("{cpu:.1}"), Style::new().fg(colour))),
                    Cell::from(bytes(num(p, "memory_rss").unwrap_or(0.0))),
                ])
                .style(Style::new().fg(DIM)),
            )
        })
        .collect()
}

fn draw_disks(frame: &mut Frame, area: Rect, disks: &[(String, Map<String, Value>)]) {
    let rows: Vec<Row> = disks
        .iter()
        .map(|(key, d)| {
            let percent = num(d, "percent").unwrap_or(0.0);
            let style = match severity_colour(d) {
                Some(c) => Style::new().fg(c),
                None => level(percent, 80.0, 95.0),
            };
            let full = match num(d, "time_to_full") {
                Some(s) => duration(s),
                None => "-".into(),
            };
            Row::new(vec![
                Cell::from(key.clone()),
                Cell::from(Span::styled(bar(percent, 10), style)),
                Cell::from(Span::styled(format!("{percent:.1}%"), style)),
                Cell::from(bytes(num(d, "free").unwrap_or(0.0))),
                Cell::from(format!("{}/s", bytes(num(d, "write_rate").unwrap_or(0.0)))),
                Cell::from(full),
            ])
        })
        .collect();
    let header = Row::new(["disk", "use", "", "free", "writing", "full in"].map(Cell::from))
        .style(Style::new().fg(DIM));
    let widths = [
        Constraint::Fill(1),
        Constraint::Length(12),
        Constraint::Length(6),
        Constraint::Length(8),
        Constraint::Length(10),
        Constraint::Length(8),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(block(format!("Disks ({})", disks.len()))),
        area,
    );
}

fn draw_interfaces(frame: &mut Frame, area: Rect, interfaces: &[(String, Map<String, Value>)]) {
    let rows: Vec<Row> = interfaces
        .iter()
        .map(|(name, n)| {
            let rate = |k: &str| num(n, k).unwrap_or(0.0);
            let drops = rate("dropin_rate") + rate("dropout_rate");
            let errors = rate("errin_rate") + rate("errout_rate");
            let bad = |v: f64| {
                if v > 0.0 {
                    Style::new().fg(MAJOR).add_modifier(Modifier::BOLD)
                } else {
                    Style::new()
                }
            };
            let up = n.get("link_up").and_then(Value::as_bool);
            let link = match up {
                Some(true) => Span::styled("up", Style::new().fg(OK)),
                Some(false) => Span::styled("down", Style::new().fg(MAJOR)),
                None => Span::raw("?"),
            };
            let speed = match n.get("speed_mbps").and_then(Value::as_u64) {
                Some(s) => format!("{s}M"),
                None => "-".into(),
            };
            Row::new(vec![
                Cell::from(name.clone()),
                Cell::from(format!("{}/s", bytes(rate("bytes_recv_rate")))),
                Cell::from(format!("{}/s", bytes(rate("bytes_sent_rate")))),
                Cell::from(Span::styled(format!("{drops:.0}/s"), bad(drops))),
                Cell::from(Span::styled(format!("{errors:.0}/s"), bad(errors))),
                Cell::from(link),
                Cell::from(speed),
            ])
        })
        .collect();
    let header =
        Row::new(["interface", "rx", "tx", "drops", "errors", "link", "speed"].map(Cell::from))
            .style(Style::new().fg(DIM));
    let widths = [
        Constraint::Fill(1),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(5),
        Constraint::Length(7),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(block(format!("Interfaces ({})", interfaces.len()))),
        area,
    );
}

fn draw_events(frame: &mut Frame, area: Rect, model: &Model) {
    let room = area.height.saturating_sub(1) as usize;
    let several = model.hosts.len() > 1;
    let skip = model.notices.len().saturating_sub(room);
    let lines: Vec<Line> = model
        .notices
        .iter()
        .skip(skip)
        .map(|n| {
            let colour = match n.level.as_str() {
                "major" | "exited" => MAJOR,
                "minor" => MINOR,
                "ok" | "started" => OK,
                _ => Color::Reset,
            };
            let time = n.time.split('T').nth(1).unwrap_or(&n.time);
            let time = time.split('.').next().unwrap_or(time);
            let mut spans = vec![Span::styled(format!("{time} "), Style::new().fg(DIM))];
            if several {
                let host = model.hosts.get(n.host).map(Host::name).unwrap_or("");
                spans.push(Span::raw(format!("{host} ")));
            }
            spans.push(Span::styled(n.text.clone(), Style::new().fg(colour)));
            Line::from(spans)
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines).block(block("Events".to_string())),
        area,
    );
}

fn draw_footer(frame: &mut Frame, area: Rect, model: &Model) {
    let keys = if model.typing {
        " type a filter, Enter to keep it, Esc to clear it"
    } else {
        " q quit  s sort  / filter  p pause  Up/Down select  Enter expand  Tab host"
    };
    frame.render_widget(
        Paragraph::new(Span::styled(keys, Style::new().fg(DIM))),
        area,
    );
}

/// `[#####     ]` for a percentage.
fn bar(percent: f64, width: usize) -> String {
    let filled = ((percent.clamp(0.0, 100.0) / 100.0) * width as f64).round() as usize;
    format!(
        "[{}{}]",
        "#".repeat(filled),
        " ".repeat(width.saturating_sub(filled))
    )
}

/// 1.5G, 12.0M, 512B: binary multiples, as top and df -h show them.
fn bytes(value: f64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    let mut v = value.max(0.0);
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{v:.0}{}", UNITS[0]),
        _ => format!("{v:.1}{}", UNITS.get(unit).unwrap_or(&"?")),
    }
}

/// 45s, 12m, 3h05m, 2d04h.
fn duration(seconds: f64) -> String {
    let s = Duration::try_from_secs_f64(seconds.max(0.0))
        .map(|d| d.as_secs())
        .unwrap_or(u64::MAX);
    match s {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m{:02}s", s / 60, s % 60),
        s if s < 86_400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s => format!("{}d{:02}h", s / 86_400, s % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures() {
        assert_eq!(bytes(512.0), "512B");
        assert_eq!(bytes(1536.0 * 1024.0 * 1024.0), "1.5G");
        assert_eq!(duration(45.2), "45s");
        assert_eq!(duration(3.0 * 3600.0 + 300.0), "3h05m");
        assert!(!duration(f64::INFINITY).is_empty());
        assert_eq!(bar(50.0, 10), "[#####     ]");
        assert_eq!(bar(150.0, 4), "[####]");
    }
}
