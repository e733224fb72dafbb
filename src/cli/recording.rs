//! Recordings read back, for `replay` and `plot`: which files, in which
//! order, and each record in them.
//!
//! `record --rotate-mb` writes `run.jsonl.gz`, `run-1.jsonl.gz`, … `run-10…`;
//! a shell glob sorts `-10` before `-2` and the first file last, so the files
//! named are put back in the order they were written: by set (first
//! appearance), then by number. Whether a file is gzip is told by its first
//! bytes, so a `.gz` name on a plain file is an error, not garbage.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use serde_json::Value;

use super::{EXIT_ERROR, EXIT_NACK};

/// Lines read without finding a record before a file is called no recording.
const GIVE_UP_AFTER: usize = 10;

/// A reason to stop reading, with the exit status it deserves: 2 for a file
/// that cannot be had, 1 for one that is not a recording.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

fn unusable(message: String) -> Failure {
    Failure {
        message,
        code: EXIT_ERROR,
    }
}

fn not_recording(message: String) -> Failure {
    Failure {
        message,
        code: EXIT_NACK,
    }
}

/// Whether `arg` holds a wildcard that the shell left for us.
pub fn is_pattern(arg: &str) -> bool {
    arg.contains(['*', '?'])
}

/// The files `args` name (globs expanded), in the order they were written.
pub fn files(args: &[String]) -> Result<Vec<PathBuf>, Failure> {
    let mut named = Vec::new();
    for arg in args {
        let path = PathBuf::from(arg);
        if is_pattern(arg) && !path.exists() {
            let matched = expand(&path)?;
            if matched.is_empty() {
                return Err(unusable(format!("no file matches {arg}")));
            }
            named.extend(matched);
        } else {
            named.push(path);
        }
    }
    let mut sets: Vec<PathBuf> = Vec::new();
    let mut keyed: Vec<(usize, u64, PathBuf)> = Vec::new();
    for path in named {
        if keyed.iter().any(|(_, _, p)| *p == path) {
            continue;
        }
        let (set, number) = rotation(&path);
        let index = match sets.iter().position(|s| *s == set) {
            Some(index) => index,
            None => {
                sets.push(set);
                sets.len() - 1
            }
        };
        keyed.push((index, number, path));
    }
    keyed.sort_by_key(|(set, number, _)| (*set, *number));
    Ok(keyed.into_iter().map(|(_, _, path)| path).collect())
}

/// `dir/run-3.jsonl.gz` -> (`dir/run.jsonl.gz`, 3); a name without a number is 0.
fn rotation(path: &Path) -> (PathBuf, u64) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dot = name.find('.').filter(|dot| *dot > 0).unwrap_or(name.len());
    let (stem, extension) = name.split_at(dot);
    if let Some((base, digits)) = stem.rsplit_once('-') {
        if let (false, Ok(n)) = (base.is_empty(), digits.parse::<u64>()) {
            return (path.with_file_name(format!("{base}{extension}")), n);
        }
    }
    (path.to_path_buf(), 0)
}

/// The files of one directory whose names match the last part of `pattern`
/// (`*` any run of characters, `?` one).
fn expand(pattern: &Path) -> Result<Vec<PathBuf>, Failure> {
    let dir = match pattern.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let wanted: Vec<char> = pattern
        .file_name()
        .map(|n| n.to_string_lossy().chars().collect())
        .unwrap_or_default();
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| unusable(format!("{} cannot be listed: {e}", dir.display())))?;
    let mut matched: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter(|e| {
            let name: Vec<char> = e.file_name().to_string_lossy().chars().collect();
            wildcard(&wanted, &name)
        })
        .map(|e| {
            if pattern.parent().is_some_and(|p| !p.as_os_str().is_empty()) {
                e.path()
            } else {
                PathBuf::from(e.file_name())
            }
        })
        .collect();
    matched.sort();
    Ok(matched)
}

/// Glob matching with one backtrack point: linear in practice, never exponential.
fn wildcard(pattern: &[char], name: &[char]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(c) if *c == '?' || Some(c) == name.get(n) => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((at, from)) => {
                    star = Some((at, from + 1));
                    p = at + 1;
                    n = from + 1;
                }
                None => return false,
            },
        }
    }
    pattern.get(p..).unwrap_or(&[]).iter().all(|c| *c == '*')
}

/// Calls `each` with every record of every file in turn (until it returns
/// false). Lines that are not records are skipped with a warning; a file with
/// no record at all (or none in its first lines) is not a recording.
pub fn read(files: &[PathBuf], mut each: impl FnMut(Value) -> bool) -> Result<(), Failure> {
    for path in files {
        if !read_file(path, &mut each)? {
            break;
        }
    }
    Ok(())
}

fn read_file(path: &Path, each: &mut impl FnMut(Value) -> bool) -> Result<bool, Failure> {
    let shown = path.display();
    let file = File::open(path).map_err(|e| unusable(format!("{shown} cannot be read: {e}")))?;
    let mut file = BufReader::new(file);
    let start = file
        .fill_buf()
        .map_err(|e| unusable(format!("{shown} cannot be read: {e}")))?;
    let gzip = start.starts_with(&[0x1f, 0x8b]);
    if !gzip && !start.is_empty() && path.extension().is_some_and(|e| e == "gz") {
        return Err(not_recording(format!(
            "{shown} is not gzip, though its name ends in .gz"
        )));
    }
    let reader: Box<dyn Read> = if gzip {
        Box::new(MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut skipped = 0;
    let mut records = 0;
    for (index, line) in super::capped_lines(BufReader::new(reader)).enumerate() {
        let number = index + 1;
        let line = match line {
            Ok(line) => line,
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                eprintln!("odin-status: {shown} ends early (it was not closed by its recorder); read up to line {}", number - 1);
                break;
            }
            Err(e) if super::is_line_too_long(&e) => {
                return Err(unusable(format!("{shown}: cannot read line {number}: {e}")))
            }
            Err(e) if gzip => {
                return Err(not_recording(format!(
                    "{shown} is not a readable gzip file: {e} (at line {number})"
                )))
            }
            Err(e) => return Err(unusable(format!("{shown}: cannot read line {number}: {e}"))),
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record = match serde_json::from_slice::<Value>(&line) {
            Ok(record) if record.get("snapshot").is_some() => record,
            _ => {
                skipped += 1;
                if records == 0 && skipped == GIVE_UP_AFTER {
                    break;
                }
                if records > 0 {
                    eprintln!("odin-status: {shown}: line {number} is not a record; skipped");
                }
                continue;
            }
        };
        records += 1;
        if !each(record) {
            return Ok(false);
        }
    }
    if records == 0 && skipped > 0 {
        return Err(not_recording(format!(
            "{shown} is not a recording: none of its first {skipped} line(s) is a record written by odin-status record"
        )));
    }
    if skipped > 0 {
        eprintln!("odin-status: {shown}: {skipped} line(s) skipped");
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_numbers() {
        assert_eq!(
            rotation(Path::new("/x/run-3.jsonl.gz")),
            (PathBuf::from("/x/run.jsonl.gz"), 3)
        );
        assert_eq!(
            rotation(Path::new("run.jsonl")),
            (PathBuf::from("run.jsonl"), 0)
        );
        assert_eq!(
            rotation(Path::new("run-a.jsonl")),
            (PathBuf::from("run-a.jsonl"), 0)
        );
        assert_eq!(rotation(Path::new("-1.x")), (PathBuf::from("-1.x"), 0));
    }

    #[test]
    fn files_in_the_order_written() {
        let named: Vec<String> = ["r-10.jsonl", "r-2.jsonl", "r.jsonl", "s.jsonl", "r-1.jsonl"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let order: Vec<String> = files(&named)
            .unwrap()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        assert_eq!(
            order,
            ["r.jsonl", "r-1.jsonl", "r-2.jsonl", "r-10.jsonl", "s.jsonl"]
        );
    }

    #[test]
    fn wildcards() {
        let m = |p: &str, n: &str| {
            wildcard(
                &p.chars().collect::<Vec<_>>(),
                &n.chars().collect::<Vec<_>>(),
            )
        };
        assert!(m("run*.gz", "run-1.jsonl.gz"));
        assert!(m("run*.gz", "run.gz"));
        assert!(!m("run*.gz", "run.gzip"));
        assert!(m("r?n", "run"));
        assert!(!m("r?n", "rn"));
    }
}
