//! `odin-status plot`: numeric leaves of recordings drawn over time, to a PNG
//! or an SVG file, with no Python on the host.
//!
//! It reads recordings like `replay` (the same files, the same order) and
//! draws one line per endpoint and leaf; a path naming a branch draws every
//! number below it. The time axis is the snapshots' own timestamps, which are
//! the service's local time. A leaf missing from a snapshot breaks its line
//! rather than being drawn through.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use chrono::{DateTime, NaiveDateTime};
use clap::Args;
use indexmap::IndexMap;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde_json::Value;

use super::recording;
use super::{fail, is_snapshot, EXIT_NACK};
use crate::tree::Node;

#[derive(Debug, Args)]
pub struct PlotArgs {
    /// Files written by `odin-status record` (gzip or not; rotated sets and
    /// quoted globs are read in the order they were written).
    #[arg(value_name = "FILE", required = true)]
    files: Vec<String>,
    /// Path in the tree to draw (e.g. disk/_data/percent); a branch draws each
    /// number below it. Repeat for several.
    #[arg(long, value_name = "PATH", required = true)]
    path: Vec<String>,
    /// Image to write: FILE.png or FILE.svg.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Width of the image in pixels (100 to 8000).
    #[arg(long, value_name = "PX", default_value_t = 1200, value_parser = |v: &str| pixels("--width", v))]
    width: u32,
    /// Height of the image in pixels (100 to 8000).
    #[arg(long, value_name = "PX", default_value_t = 600, value_parser = |v: &str| pixels("--height", v))]
    height: u32,
}

fn pixels(flag: &str, value: &str) -> Result<u32, String> {
    match value.trim().parse::<u32>() {
        Ok(px) if (100..=8_000).contains(&px) => Ok(px),
        _ => Err(format!(
            "{flag} must be a whole number of pixels from 100 to 8000, not '{value}'"
        )),
    }
}

/// One drawn line: an endpoint's leaf, as runs of (seconds, value) points.
#[derive(Debug, Default)]
struct Line {
    runs: Vec<Vec<(f64, f64)>>,
    /// Which snapshot of its endpoint gave the last point, to break the line on a gap.
    last_seen: Option<usize>,
}

pub fn run(args: PlotArgs) -> ExitCode {
    let format = match args.out.extension().and_then(|e| e.to_str()) {
        Some("png") => Format::Png,
        Some("svg") => Format::Svg,
        _ => {
            return fail(format!(
                "--out must name a .png or .svg file, not '{}'",
                args.out.display()
            ))
        }
    };
    let files = match recording::files(&args.files) {
        Ok(files) => files,
        Err(f) => {
            eprintln!("odin-status: {}", f.message);
            return ExitCode::from(f.code);
        }
    };
    let mut lines: IndexMap<(String, String), Line> = IndexMap::new();
    let mut snapshots = 0;
    let mut per_endpoint: std::collections::HashMap<String, usize> = Default::default();
    let read = recording::read(&files, |record| {
        let Some(snapshot) = record.get("snapshot").filter(|s| is_snapshot(s)) else {
            return true;
        };
        let Some(time) = snapshot
            .get("timestamp")
            .and_then(Value::as_str)
            .and_then(seconds_of)
        else {
            return true;
        };
        let endpoint = record
            .get("endpoint")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let tree = Node::from_json(snapshot.get("params").unwrap_or(&Value::Null));
        let nth = per_endpoint.entry(endpoint.clone()).or_default();
        *nth += 1;
        let nth = *nth;
        for path in &args.path {
            let Ok(selection) = tree.get(path) else {
                continue;
            };
            let mut leaves = Vec::new();
            numbers(path.trim_end_matches('/'), &selection.bare(), &mut leaves);
            for (leaf, value) in leaves {
                let line = lines.entry((endpoint.clone(), leaf)).or_default();
                match (line.last_seen, line.runs.last_mut()) {
                    (Some(seen), Some(run)) if seen + 1 == nth => run.push((time, value)),
                    _ => line.runs.push(vec![(time, value)]),
                }
                line.last_seen = Some(nth);
            }
        }
        snapshots += 1;
        true
    });
    if let Err(f) = read {
        eprintln!("odin-status: {}", f.message);
        return ExitCode::from(f.code);
    }
    if lines.is_empty() {
        eprintln!(
            "odin-status: none of the {snapshots} snapshot(s) has a number at {}",
            args.path.join(" or ")
        );
        return ExitCode::from(EXIT_NACK);
    }
    if let Err(e) = load_font() {
        return fail(e);
    }
    let size = (args.width, args.height);
    let drawn = match format {
        Format::Png => {
            // Drawn into memory, then encoded by the png crate: plotters'
            // own encoder would bring the whole image crate.
            let mut rgb = vec![0u8; args.width as usize * args.height as usize * 3];
            draw(
                BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area(),
                &args.path,
                &lines,
            )
            .and_then(|()| write_png(&args.out, size, &rgb))
        }
        Format::Svg => draw(
            SVGBackend::new(&args.out, size).into_drawing_area(),
            &args.path,
            &lines,
        ),
    };
    match drawn {
        Ok(()) => {
            eprintln!(
                "odin-status: plotted {} line(s) from {snapshots} snapshot(s) to {}",
                lines.len(),
                args.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => fail(format!("cannot draw {}: {e}", args.out.display())),
    }
}

enum Format {
    Png,
    Svg,
}

fn write_png(path: &Path, (width, height): (u32, u32), rgb: &[u8]) -> Result<(), String> {
    let file = std::fs::File::create(path).map_err(|e| e.to_string())?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())
}

/// Every number at or below `value`, with its path; lists give `path/0`, `path/1`, ….
fn numbers(path: &str, value: &Value, out: &mut Vec<(String, f64)>) {
    match value {
        Value::Number(n) => {
            if let Some(x) = n.as_f64().filter(|x| x.is_finite()) {
                out.push((path.to_string(), x));
            }
        }
        Value::Object(map) => {
            for (key, child) in map {
                numbers(&join(path, key), child, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                numbers(&join(path, &i.to_string()), child, out);
            }
        }
        _ => {}
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}/{key}")
    }
}

/// A snapshot timestamp (`2026-11-26T06:08:46.456235`, the service's local
/// time) as seconds on a naive time line.
fn seconds_of(timestamp: &str) -> Option<f64> {
    let t = NaiveDateTime::parse_from_str(timestamp, "%Y-%m-%dT%H:%M:%S%.f").ok()?;
    Some(t.and_utc().timestamp_micros() as f64 / 1e6)
}

/// A tick of the time axis, as fine as the span needs: the date over a day,
/// tenths of a second under half a minute.
fn clock(seconds: f64, span: f64) -> String {
    let whole = seconds.floor();
    let nanos = ((seconds - whole) * 1e9) as u32;
    let Some(t) = DateTime::from_timestamp(whole as i64, nanos) else {
        return String::new();
    };
    let t = t.naive_utc();
    match span {
        s if s > 86_400.0 => t.format("%m-%d %H:%M").to_string(),
        s if s < 30.0 => format!("{}.{}", t.format("%H:%M:%S"), nanos / 100_000_000),
        _ => t.format("%H:%M:%S").to_string(),
    }
}

/// The unit of a leaf, from its name (see the tree in the README).
pub fn unit(leaf: &str) -> &'static str {
    let name = leaf.rsplit('/').next().unwrap_or(leaf);
    let name = if name.parse::<usize>().is_ok() {
        // a list element: the list's unit
        leaf.rsplit('/').nth(1).unwrap_or(name)
    } else {
        name
    };
    match name {
        n if n.ends_with("percent") || n == "cpu_percent_per_core" => "%",
        "bytes_sent_rate" | "bytes_recv_rate" | "write_rate" => "bytes/s",
        n if n.ends_with("_rate") => "per s",
        "total" | "used" | "free" | "memory_rss" | "memory_vms" | "memory_shared"
        | "memory_total" | "memory_available" | "swap_total" | "swap_used" | "swap_free"
        | "bytes_sent" | "bytes_recv" | "mtu" => "bytes",
        "time_to_full"
        | "uptime"
        | "update_interval"
        | "last_cycle_duration"
        | "max_cycle_duration" => "s",
        "speed_mbps" => "Mbit/s",
        "boot_time" => "s since 1970",
        "load_average" => "processes",
        _ => "count",
    }
}

/// 1.5 G, 12 k, 0.25: tick labels that fit in a few characters.
fn short(v: f64) -> String {
    let a = v.abs();
    let (scaled, suffix) = match a {
        a if a >= 1e12 => (v / 1e12, "T"),
        a if a >= 1e9 => (v / 1e9, "G"),
        a if a >= 1e6 => (v / 1e6, "M"),
        a if a >= 1e4 => (v / 1e3, "k"),
        _ => (v, ""),
    };
    let text = format!("{scaled:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{suffix}")
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    paths: &[String],
    lines: &IndexMap<(String, String), Line>,
) -> Result<(), String> {
    let points = || lines.values().flat_map(|l| l.runs.iter().flatten());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points() {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x1 - x0 < 1.0 {
        (x0, x1) = (x0 - 0.5, x1 + 0.5);
    }
    let pad = ((y1 - y0) * 0.05).max(y1.abs().max(1.0) * 0.01);
    (y0, y1) = (y0 - pad, y1 + pad);
    let span = x1 - x0;
    let units: BTreeSet<&str> = lines.keys().map(|(_, leaf)| unit(leaf)).collect();
    let units: Vec<&str> = units.into_iter().collect();
    let first_day = clock_date(x0);
    let endpoints: BTreeSet<&str> = lines.keys().map(|(e, _)| e.as_str()).collect();

    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("odin-status: {}", paths.join(", ")),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(45)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(format!("local time of the service, from {first_day}"))
        .y_desc(units.join(", "))
        .x_label_formatter(&|x| clock(*x, span))
        .y_label_formatter(&|y| short(*y))
        .x_labels(8)
        .draw()
        .map_err(e)?;
    for (i, ((endpoint, leaf), line)) in lines.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let label = match endpoints.len() {
            1 => format!("{leaf} ({})", unit(leaf)),
            _ => format!("{endpoint} {leaf} ({})", unit(leaf)),
        };
        for (n, run) in line.runs.iter().enumerate() {
            let series = chart
                .draw_series(LineSeries::new(run.iter().copied(), color.stroke_width(2)))
                .map_err(e)?;
            if n == 0 {
                series.label(label.clone()).legend(move |(x, y)| {
                    Rectangle::new([(x, y - 4), (x + 14, y + 4)], color.filled())
                });
            }
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(e)?;
    root.present().map_err(e)
}

fn clock_date(seconds: f64) -> String {
    DateTime::from_timestamp(seconds.floor() as i64, 0)
        .map(|t| t.naive_utc().format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// Text needs a TrueType font; plotters is built without a system font
/// search, so one is found here: $ODIN_STATUS_FONT, else a common sans font.
fn load_font() -> Result<(), String> {
    const CANDIDATES: &[&str] = &[
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
        "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    ];
    let chosen = std::env::var_os("ODIN_STATUS_FONT").map(PathBuf::from);
    let path = match &chosen {
        Some(path) => path.clone(),
        None => match CANDIDATES.iter().map(Path::new).find(|p| p.is_file()) {
            Some(path) => path.to_path_buf(),
            None => {
                return Err(
                    "no TrueType font was found to write the labels with: install one \
                     (Debian: fonts-dejavu-core) or name a .ttf file in ODIN_STATUS_FONT"
                        .into(),
                )
            }
        },
    };
    let bytes = std::fs::read(&path)
        .map_err(|e| format!("the font {} cannot be read: {e}", path.display()))?;
    // plotters keeps fonts for the life of the program.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("{} is not a TrueType font plotters can use", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn branch_gives_each_number() {
        let mut out = Vec::new();
        numbers(
            "host",
            &json!({"hostname": "x", "load_average": [0.5, 1.0], "cpu_percent": 3.5, "up": true}),
            &mut out,
        );
        assert_eq!(
            out,
            vec![
                ("host/load_average/0".to_string(), 0.5),
                ("host/load_average/1".to_string(), 1.0),
                ("host/cpu_percent".to_string(), 3.5),
            ]
        );
    }

    #[test]
    fn units_from_leaf_names() {
        assert_eq!(unit("disk/_/percent"), "%");
        assert_eq!(unit("disk/_/write_rate"), "bytes/s");
        assert_eq!(unit("network/lo/dropin_rate"), "per s");
        assert_eq!(unit("host/cpu_percent_per_core/1"), "%");
        assert_eq!(unit("process_summary/fp/memory_rss"), "bytes");
        assert_eq!(unit("disk/_/time_to_full"), "s");
        assert_eq!(unit("process_summary/fp/count"), "count");
        assert_eq!(unit("host/boot_time"), "s since 1970");
    }

    #[test]
    fn times_and_ticks() {
        let t = seconds_of("2026-11-26T06:08:46.500000").unwrap();
        assert_eq!(clock(t, 60.0), "06:08:46");
        assert_eq!(clock(t, 10.0), "06:08:46.5");
        assert_eq!(seconds_of("yesterday"), None);
        assert_eq!(short(1_500_000_000.0), "1.5G");
        assert_eq!(short(0.25), "0.25");
        assert_eq!(short(12_000.0), "12k");
    }
}
