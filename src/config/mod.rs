//! What the service monitors and where it listens, from an odin-control config
//! file and/or command-line flags (flags win).
//!
//! Every option has a flag and a key in the file, the key named as
//! `request_configuration` names it (`--ctrl` is `ctrl_endpoint`). Without a
//! config file each list takes its default (disk `/`, every interface present
//! at start, no processes); in a config file an absent `disks` or `interfaces`
//! means none, as odin-control reads the same section, so an odin-control
//! section gives odin's tree. A key given with an empty value means "none".
//! Every error names the option at fault in one sentence; a key of the
//! section that nobody reads is not an error but a warning (see [`Config::warnings`]),
//! since the section is shared with odin-control's adapter.
//!
//! [`Live`] is the part that may change while the service runs (a `configure`
//! request, SIGHUP); its checks are the same ones a file or a flag gets.
//!
//! A process entry is `[label=]name[:N]`. `:N` (decimal digits) is the number
//! of processes expected for that name: `stFrameProcessor1.sh:1`; anything else
//! after a colon is part of the name. `label=` (letters, digits and `_` only,
//! the characters EPICS and fastcs-odin keep in a PV name) keys the name's
//! nodes in the tree instead of the name itself: `fp1=stFrameProcessor1.sh:1`.
//! Anything else before an `=` is part of the name.

mod ini;
mod live;

use std::fmt;
use std::path::PathBuf;

use ini::Ini;

use crate::snapshot::disk_key;
use crate::thresholds::{parse_limit, Limits};

pub use live::Live;

pub const DEFAULT_CTRL: &str = "tcp://127.0.0.1:5040";
pub const DEFAULT_PUB: &str = "tcp://127.0.0.1:5041";
pub const DEFAULT_SECTION: &str = "adapter.status";
pub const DEFAULT_RATE: f64 = 1.0;
/// Above this the cycle would be shorter than a millisecond: a busy loop, not a monitor.
pub const MAX_RATE: f64 = 1000.0;
/// Below this a cycle would be further apart than 1000 s; far smaller rates
/// (`1e-300`) would make an interval no clock can hold.
pub const MIN_RATE: f64 = 0.001;
/// Requests larger than this are refused by the socket itself. A real one is
/// a few hundred bytes; 64 KiB holds a `configure` of a thousand names, and
/// keeps 256 control connections within the memory bound (README).
pub const DEFAULT_MAX_MESSAGE_SIZE: i64 = 64 << 10;
/// ipc socket files: owner and group may connect, others may not.
pub const DEFAULT_IPC_MODE: u32 = 0o660;

/// Every option with a key in the config file: the key (as
/// `request_configuration` names it) and the flag that wins over it. The
/// limits (`disk_percent_warn`, ...) are keys too, named as `--threshold` names them.
const OPTIONS: [(&str, &str); 12] = [
    ("disks", "--disks"),
    ("interfaces", "--interfaces"),
    ("processes", "--processes"),
    ("rate", "--rate"),
    ("ctrl_endpoint", "--ctrl"),
    ("pub_endpoint", "--pub"),
    ("pub_encoding", "--pub-encoding"),
    ("max_message_size", "--max-message-size"),
    ("ipc_mode", "--ipc-mode"),
    ("log_file", "--log-file"),
    ("allow_configure", "--allow-configure"),
    ("metrics", "--metrics"),
];

/// Keys that odin-control's adapter for odin-status (`odin_status.odin_control`)
/// reads from the same section; odin-status leaves them alone.
const ADAPTER_KEYS: [&str; 4] = ["module", "endpoint", "targets", "pub"];

/// How snapshots are encoded on the PUB socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Msgpack,
}

impl Encoding {
    pub fn as_str(self) -> &'static str {
        match self {
            Encoding::Json => "json",
            Encoding::Msgpack => "msgpack",
        }
    }
}

/// The options as given, before defaults and checks.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub config_file: Option<PathBuf>,
    pub section: Option<String>,
    pub disks: Option<String>,
    pub interfaces: Option<String>,
    pub processes: Option<String>,
    pub rate: Option<String>,
    pub ctrl: Option<String>,
    pub publish: Option<String>,
    pub pub_encoding: Option<String>,
    pub max_message_size: Option<String>,
    pub ipc_mode: Option<String>,
    pub log_file: Option<PathBuf>,
    /// `--allow-configure` was given.
    pub allow_configure: bool,
    /// `--threshold NAME=LIMIT`, each as given.
    pub thresholds: Vec<String>,
    /// `--metrics ADDR`.
    pub metrics: Option<String>,
}

/// A checked configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub disks: Vec<String>,
    /// `None`: every interface present when the service starts.
    pub interfaces: Option<Vec<String>>,
    pub processes: Vec<ProcessEntry>,
    pub rate: f64,
    pub ctrl_endpoint: String,
    pub pub_endpoint: String,
    pub pub_encoding: Encoding,
    /// Largest request, in bytes, the control socket accepts.
    pub max_message_size: i64,
    /// Permissions of the ipc socket files the service creates.
    pub ipc_mode: u32,
    /// Log here instead of stderr (reopened on SIGHUP, for logrotate).
    pub log_file: Option<PathBuf>,
    /// `configure` requests may change what is monitored.
    pub allow_configure: bool,
    /// Limits that give nodes a `severity`; none by default.
    pub thresholds: Limits,
    /// Where Prometheus scrapes `/metrics`; off by default.
    pub metrics: Option<std::net::SocketAddr>,
    /// One sentence per key of the file's section that neither odin-status nor
    /// its odin-control adapter reads, to be logged (at start and on SIGHUP).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

fn fail<T>(message: String) -> Result<T, ConfigError> {
    Err(ConfigError(message))
}

impl Config {
    pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
        let file = match &sources.config_file {
            Some(path) => Some(FileOptions::read(path, sources.section.as_deref())?),
            None => {
                if let Some(section) = &sources.section {
                    return fail(format!(
                        "--section {section} needs --config FILE to read it from"
                    ));
                }
                None
            }
        };
        // A flag wins over the file; the origin says where a bad value came from.
        let pick = |flag: &Option<String>, key: &str| -> Result<Option<Given>, ConfigError> {
            if let Some(v) = flag {
                return Ok(Some(Given {
                    value: v.clone(),
                    origin: flag_of(key).to_string(),
                }));
            }
            match &file {
                Some(f) => Ok(f.get(key)?.map(|value| Given {
                    value,
                    origin: f.origin(key),
                })),
                None => Ok(None),
            }
        };

        // Absent from a config file means none, as odin-control reads it;
        // without a file the defaults are useful on their own.
        let disks = match pick(&sources.disks, "disks")? {
            Some(given) => {
                let disks = split_list(&given.value);
                if let Some((a, b)) = colliding_disks(&disks) {
                    return fail(format!(
                        "{} lists {a} and {b}, which share the tree key {}",
                        given.origin,
                        disk_key(a)
                    ));
                }
                disks
            }
            None if file.is_some() => Vec::new(),
            None => vec!["/".to_string()],
        };
        let interfaces = match pick(&sources.interfaces, "interfaces")? {
            Some(given) => Some(split_list(&given.value)),
            None if file.is_some() => Some(Vec::new()),
            None => None,
        };
        let processes = match pick(&sources.processes, "processes")? {
            Some(given) => parse_processes(&given.value, &given.origin)?,
            None => Vec::new(),
        };
        let rate = match pick(&sources.rate, "rate")? {
            Some(given) => parse_rate(&given.value, &given.origin)?,
            None => DEFAULT_RATE,
        };
        let allow_configure = sources.allow_configure
            || match &file {
                Some(f) => match f.get("allow_configure")? {
                    Some(v) => parse_bool(&v, &f.origin("allow_configure"))?,
                    None => false,
                },
                None => false,
            };
        let thresholds = thresholds(&sources.thresholds, file.as_ref())?;
        let metrics = match pick(&sources.metrics, "metrics")? {
            Some(given) => parse_metrics(&given.value, &given.origin)?,
            None => None,
        };
        let endpoint = |flag: &Option<String>, key: &str, default: &str| match pick(flag, key)? {
            Some(given) => check_endpoint(&given.value, &given.origin).map(|e| (e, given.origin)),
            None => Ok((default.to_string(), flag_of(key).to_string())),
        };
        let (ctrl_endpoint, ctrl_origin) = endpoint(&sources.ctrl, "ctrl_endpoint", DEFAULT_CTRL)?;
        let (pub_endpoint, pub_origin) = endpoint(&sources.publish, "pub_endpoint", DEFAULT_PUB)?;
        if ctrl_endpoint == pub_endpoint {
            return fail(format!(
                "{ctrl_origin} and {pub_origin} must differ; both are {ctrl_endpoint}"
            ));
        }
        let pub_encoding = match pick(&sources.pub_encoding, "pub_encoding")? {
            None => Encoding::Json,
            Some(given) => match given.value.trim() {
                "json" => Encoding::Json,
                "msgpack" => Encoding::Msgpack,
                _ => {
                    return fail(format!(
                        "{} must be json or msgpack, not '{}'",
                        given.origin, given.value
                    ))
                }
            },
        };
        let max_message_size = match pick(&sources.max_message_size, "max_message_size")? {
            None => DEFAULT_MAX_MESSAGE_SIZE,
            Some(given) => match given.value.trim().parse::<i64>() {
                Ok(n) if n > 0 => n,
                _ => {
                    return fail(format!(
                        "{} must be a whole number of bytes above 0, not '{}'",
                        given.origin, given.value
                    ))
                }
            },
        };
        let ipc_mode = match pick(&sources.ipc_mode, "ipc_mode")? {
            None => DEFAULT_IPC_MODE,
            Some(given) => match u32::from_str_radix(given.value.trim(), 8) {
                Ok(mode) if mode <= 0o777 => mode,
                _ => {
                    return fail(format!(
                        "{} must be octal permissions such as 660, not '{}'",
                        given.origin, given.value
                    ))
                }
            },
        };
        // An empty `log_file =` in the file means stderr, as no key does.
        let log_file = match (&sources.log_file, &file) {
            (Some(path), _) => Some(path.clone()),
            (None, Some(f)) => f
                .get("log_file")?
                .filter(|v| !v.trim().is_empty())
                .map(|v| PathBuf::from(v.trim())),
            (None, None) => None,
        };
        Ok(Config {
            disks,
            interfaces,
            processes,
            rate,
            ctrl_endpoint,
            pub_endpoint,
            pub_encoding,
            max_message_size,
            ipc_mode,
            log_file,
            allow_configure,
            thresholds,
            metrics,
            warnings: file
                .as_ref()
                .map(FileOptions::unknown_keys)
                .unwrap_or_default(),
        })
    }

    /// Seconds between cycles.
    pub fn interval(&self) -> std::time::Duration {
        interval_of(self.rate)
    }
}

/// `metrics`: an address and port to listen on; empty means off.
fn parse_metrics(value: &str, origin: &str) -> Result<Option<std::net::SocketAddr>, ConfigError> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    match value.parse() {
        Ok(addr) => Ok(Some(addr)),
        Err(_) => fail(format!(
            "{origin} must be an IP address and port such as 127.0.0.1:9640, not '{value}'"
        )),
    }
}

/// A value as given, and where: `--rate` or `'rate' in [adapter.status] of FILE`.
struct Given {
    value: String,
    origin: String,
}

/// The flag of a file key (`ctrl_endpoint` -> `--ctrl`), or the key itself.
fn flag_of(key: &str) -> &str {
    OPTIONS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(key, |(_, flag)| flag)
}

/// The time between cycles at `rate`. Every rate that reaches here passed
/// [`parse_rate`], but the clamp and the checked conversion mean no value can
/// make this panic.
pub fn interval_of(rate: f64) -> std::time::Duration {
    let seconds = 1.0 / rate.clamp(MIN_RATE, MAX_RATE);
    std::time::Duration::try_from_secs_f64(seconds).unwrap_or(std::time::Duration::from_secs(1))
}

/// One configured process name, optionally with the label that keys it in
/// the tree and how many processes are expected to match it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessEntry {
    pub label: Option<String>,
    pub name: String,
    pub expected: Option<u32>,
}

impl ProcessEntry {
    /// `[label=]name[:N]`. A trailing `:N`, N decimal digits, is the
    /// expectation; anything else (`a:b`, `name:`, `:1`) is all name. A
    /// leading `label=` whose label is letters, digits and `_` is the label;
    /// anything else before an `=` is all name. `None` when N does not fit in
    /// 32 bits.
    pub fn parse(item: &str) -> Option<ProcessEntry> {
        let (label, rest) = match item.split_once('=') {
            Some((label, rest)) if is_label(label.trim()) && !rest.trim().is_empty() => {
                (Some(label.trim().to_string()), rest.trim())
            }
            _ => (None, item),
        };
        if let Some((name, digits)) = rest.rsplit_once(':') {
            if !name.is_empty() && !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Some(ProcessEntry {
                    label,
                    name: name.to_string(),
                    expected: Some(digits.parse().ok()?),
                });
            }
        }
        Some(ProcessEntry {
            label,
            name: rest.to_string(),
            expected: None,
        })
    }

    /// The name of this entry's nodes under `process` and `process_summary`,
    /// and in its events: the label, or else the name.
    pub fn key(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }
}

/// A label keeps to what every consumer of the tree keeps in a name: EPICS
/// record names and fastcs-odin's PVs drop anything outside `[A-Za-z0-9_]`.
pub fn is_label(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The entry as it is written in a config file: `[label=]name[:N]`, which
/// [`ProcessEntry::parse`] reads back to the same entry.
impl fmt::Display for ProcessEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(label) = &self.label {
            write!(f, "{label}=")?;
        }
        f.write_str(&self.name)?;
        match self.expected {
            Some(n) => write!(f, ":{n}"),
            None => Ok(()),
        }
    }
}

/// The first two entries that cannot stand together, with why: each name is
/// matched once (with one label and one expectation), and each key names one
/// node. Hash maps, so a long list costs no more than reading it.
pub fn clashing_entries(entries: &[ProcessEntry]) -> Option<String> {
    let mut by_name = std::collections::HashMap::with_capacity(entries.len());
    let mut by_key = std::collections::HashMap::with_capacity(entries.len());
    for entry in entries {
        if let Some(other) = by_name.insert(entry.name.as_str(), entry) {
            let why = if other.key() == entry.key() {
                format!("which disagree on how many {} to expect", entry.name)
            } else {
                format!("which both match {}; give each name once", entry.name)
            };
            return Some(format!("{other} and {entry}, {why}"));
        }
        if let Some(other) = by_key.insert(entry.key(), entry) {
            return Some(format!(
                "{other} and {entry}, which share the tree key {}",
                entry.key()
            ));
        }
    }
    None
}

/// The `processes` list: repeats of an entry dropped, then no clashes.
fn parse_processes(value: &str, origin: &str) -> Result<Vec<ProcessEntry>, ConfigError> {
    let mut entries: Vec<ProcessEntry> = Vec::new();
    for item in split_list(value) {
        let Some(entry) = ProcessEntry::parse(&item) else {
            return fail(format!(
                "{origin} expects too many processes in '{item}' (at most {})",
                u32::MAX
            ));
        };
        if !entries.contains(&entry) {
            entries.push(entry);
        }
    }
    match clashing_entries(&entries) {
        Some(clash) => fail(format!("{origin} lists {clash}")),
        None => Ok(entries),
    }
}

/// The `[adapter.status]` section (or another) of a config file.
struct FileOptions {
    path: PathBuf,
    section: String,
    ini: Ini,
}

impl FileOptions {
    fn read(path: &std::path::Path, section: Option<&str>) -> Result<FileOptions, ConfigError> {
        let shown = path.display();
        let text = match read_config_file(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => return fail(format!("--config {shown} is not UTF-8 text")),
            },
            Err(e) => {
                return fail(format!(
                    "--config {shown} cannot be read: {}",
                    io_reason(&e)
                ))
            }
        };
        let ini = match Ini::parse(&text) {
            Ok(ini) => ini,
            Err(e) => return fail(format!("--config {shown}: {e}")),
        };
        let section = section.unwrap_or(DEFAULT_SECTION).to_string();
        if !ini.has_section(&section) {
            let sections: Vec<String> = ini.section_names().map(|n| format!("[{n}]")).collect();
            let has = match sections.is_empty() {
                true => "it has no sections".to_string(),
                false => format!("it has {}", sections.join(", ")),
            };
            return fail(format!(
                "--config {shown} has no [{section}] section ({has}; choose one with --section)"
            ));
        }
        Ok(FileOptions {
            path: path.to_path_buf(),
            section,
            ini,
        })
    }

    fn get(&self, key: &str) -> Result<Option<String>, ConfigError> {
        self.ini
            .get(&self.section, key)
            .map_err(|e| ConfigError(format!("{}: {e}", self.origin(key))))
    }

    fn origin(&self, key: &str) -> String {
        format!("'{key}' in [{}] of {}", self.section, self.path.display())
    }

    /// A warning for each key of the section that nobody reads, naming the
    /// closest known key when one is close (a misspelling, or a flag's name).
    fn unknown_keys(&self) -> Vec<String> {
        let known: Vec<String> = OPTIONS
            .iter()
            .map(|(key, _)| key.to_string())
            .chain(Limits::names())
            .chain(ADAPTER_KEYS.iter().map(|key| key.to_string()))
            .collect();
        self.ini
            .keys(&self.section)
            .filter(|key| !known.iter().any(|k| k == key))
            .map(|key| {
                let section = &self.section;
                match closest(key, &known) {
                    Some(close) => format!(
                        "'{key}' in [{section}] is not an odin-status key; did you mean '{close}'?"
                    ),
                    None => format!(
                        "'{key}' in [{section}] is not an odin-status key, nor close to one; it is ignored"
                    ),
                }
            })
            .collect()
    }
}

/// The known key most like `key`, if any is like it: at most one edit
/// (insertion, deletion, substitution or swap of neighbours) per three
/// characters of `key`, and at least one. A flag's name written as a key
/// (`ctrl`, `pub-encoding`) points to the option's key.
fn closest<'k>(key: &str, known: &'k [String]) -> Option<&'k str> {
    let as_flag = format!("--{}", key.replace('_', "-"));
    if let Some((file_key, _)) = OPTIONS.iter().find(|(_, flag)| *flag == as_flag) {
        return known.iter().map(String::as_str).find(|k| k == file_key);
    }
    let allowed = (key.chars().count() / 3).max(1);
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(key, k), k.as_str()))
        .filter(|(edits, _)| *edits <= allowed)
        .min_by_key(|(edits, _)| *edits)
        .map(|(_, k)| k)
}

/// odin's list form: comma-separated, items stripped, empty items ignored.
/// Repeats are dropped, since each item is one node of the tree.
pub fn split_list(value: &str) -> Vec<String> {
    let mut items: Vec<String> = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !items.iter().any(|i| i == item) {
            items.push(item.to_string());
        }
    }
    items
}

/// Each disk path becomes a tree key with `/` replaced by `_`; two paths that
/// make the same key would hide one another. The first such pair, if any.
fn colliding_disks(disks: &[String]) -> Option<(&str, &str)> {
    let mut by_key = std::collections::HashMap::with_capacity(disks.len());
    disks.iter().find_map(|b| {
        by_key
            .insert(disk_key(b), b.as_str())
            .map(|a| (a, b.as_str()))
    })
}

/// configparser's `getboolean` words.
fn parse_bool(value: &str, origin: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "yes" | "true" | "on" => Ok(true),
        "0" | "no" | "false" | "off" => Ok(false),
        _ => fail(format!("{origin} must be true or false, not '{value}'")),
    }
}

/// Limits from the file's keys, then `--threshold NAME=LIMIT` flags over them.
fn thresholds(flags: &[String], file: Option<&FileOptions>) -> Result<Limits, ConfigError> {
    let mut limits = Limits::default();
    if let Some(file) = file {
        for name in Limits::names() {
            if let Some(v) = file.get(&name)? {
                let limit = parse_limit_text(&v, &file.origin(&name))?;
                limits.set(&name, Some(limit)).map_err(ConfigError)?;
            }
        }
    }
    for flag in flags {
        let Some((name, v)) = flag.split_once('=') else {
            return fail(format!(
                "--threshold must be NAME=LIMIT, such as disk_percent_warn=90, not '{flag}'"
            ));
        };
        let name = name.trim();
        let limit = parse_limit_text(v, &format!("--threshold {name}"))?;
        limits
            .set(name, Some(limit))
            .map_err(|e| ConfigError(format!("--threshold {e}")))?;
    }
    limits.check().map_err(ConfigError)?;
    Ok(limits)
}

fn parse_limit_text(value: &str, origin: &str) -> Result<f64, ConfigError> {
    match value.trim().parse::<f64>().ok().and_then(parse_limit) {
        Some(limit) => Ok(limit),
        None => fail(format!(
            "{origin} must be a number of at least 0, not '{value}'"
        )),
    }
}

/// The one rule for a rate, wherever it comes from (flag, file, SIGHUP,
/// `configure`): a finite number from [`MIN_RATE`] to [`MAX_RATE`].
fn parse_rate(value: &str, origin: &str) -> Result<f64, ConfigError> {
    let Ok(rate) = value.trim().parse::<f64>() else {
        return fail(format!(
            "{origin} must be a number of updates per second, not '{value}'"
        ));
    };
    if !rate.is_finite() || rate <= 0.0 {
        return fail(format!(
            "{origin} must be above 0 updates per second, not '{value}'"
        ));
    }
    if rate < MIN_RATE {
        return fail(format!(
            "{origin} must be at least {MIN_RATE} updates per second (a cycle every 1000 s), not '{value}'"
        ));
    }
    if rate > MAX_RATE {
        return fail(format!(
            "{origin} must be at most {MAX_RATE} updates per second, not '{value}'"
        ));
    }
    Ok(rate)
}

/// A tcp:// or ipc:// endpoint, as every subcommand takes one; else the sentence saying so.
pub fn check_endpoint(endpoint: &str, flag: &str) -> Result<String, ConfigError> {
    let rest = endpoint
        .strip_prefix("tcp://")
        .or_else(|| endpoint.strip_prefix("ipc://"));
    match rest {
        Some(rest) if !rest.is_empty() => Ok(endpoint.to_string()),
        _ => fail(format!(
            "{flag} must be a tcp://HOST:PORT or ipc://PATH endpoint, not '{endpoint}'"
        )),
    }
}

/// Config files larger than this are refused: a real one is a few KiB.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Reads a config file without ever blocking or growing without bound: the
/// open does not wait (a FIFO with no writer), and only a regular file of at
/// most [`MAX_CONFIG_BYTES`] is read (not `/dev/zero`, a FIFO or a directory).
/// SIGHUP re-reads it on the sampling loop, so either would stall the service.
fn read_config_file(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::{Error, ErrorKind, Read};
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "it is not a regular file",
        ));
    }
    if meta.len() > MAX_CONFIG_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("it is larger than {MAX_CONFIG_BYTES} bytes"),
        ));
    }
    let mut bytes = Vec::new();
    // A file that grows while it is read still stops at the cap.
    file.take(MAX_CONFIG_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CONFIG_BYTES {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            format!("it is larger than {MAX_CONFIG_BYTES} bytes"),
        ));
    }
    Ok(bytes)
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_file(text: &str) -> (tempfile_lite::TempFile, Sources) {
        let file = tempfile_lite::TempFile::new(text);
        let sources = Sources {
            config_file: Some(file.path.clone()),
            ..Sources::default()
        };
        (file, sources)
    }

    /// A file removed when dropped, so tests leave nothing behind.
    mod tempfile_lite {
        use std::path::PathBuf;
        use std::sync::atomic::{AtomicUsize, Ordering};

        static COUNTER: AtomicUsize = AtomicUsize::new(0);

        pub struct TempFile {
            pub path: PathBuf,
        }

        impl TempFile {
            pub fn new(text: &str) -> Self {
                let n = COUNTER.fetch_add(1, Ordering::Relaxed);
                let path = std::env::temp_dir()
                    .join(format!("odin-status-config-{}-{n}.cfg", std::process::id()));
                std::fs::write(&path, text).unwrap();
                TempFile { path }
            }
        }

        impl Drop for TempFile {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }

    #[test]
    fn rates_too_small_for_a_clock_are_refused_not_panicked_on() {
        for tiny in ["1e-300", "1e-19", "0.0009", "5e-324"] {
            let s = Sources {
                rate: Some(tiny.into()),
                ..Sources::default()
            };
            let e = Config::load(&s).unwrap_err().to_string();
            assert_eq!(
                e,
                format!("--rate must be at least 0.001 updates per second (a cycle every 1000 s), not '{tiny}'")
            );
        }
        for rate in [
            MIN_RATE,
            0.5,
            MAX_RATE,
            1e-300,
            f64::MAX,
            f64::NAN,
            -1.0,
            0.0,
        ] {
            let interval = interval_of(rate);
            assert!(interval >= std::time::Duration::from_millis(1), "{rate}");
            assert!(interval <= std::time::Duration::from_secs(1000), "{rate}");
        }
    }

    #[test]
    fn config_reads_only_small_regular_files() {
        let fifo = std::env::temp_dir().join(format!("odin-status-fifo-{}", std::process::id()));
        let _ = std::fs::remove_file(&fifo);
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        for (path, why) in [
            (fifo.clone(), "it is not a regular file"),
            ("/dev/zero".into(), "it is not a regular file"),
            (std::env::temp_dir(), "it is not a regular file"),
        ] {
            let s = Sources {
                config_file: Some(path.clone()),
                ..Sources::default()
            };
            let e = Config::load(&s).unwrap_err().to_string();
            assert_eq!(
                e,
                format!("--config {} cannot be read: {why}", path.display())
            );
        }
        let _ = std::fs::remove_file(&fifo);
        let (f, s) = with_file(&"#".repeat(MAX_CONFIG_BYTES as usize + 1));
        assert_eq!(
            Config::load(&s).unwrap_err().to_string(),
            format!(
                "--config {} cannot be read: it is larger than {MAX_CONFIG_BYTES} bytes",
                f.path.display()
            )
        );
    }

    #[test]
    fn no_options_at_all_runs_usefully() {
        let c = Config::load(&Sources::default()).unwrap();
        assert_eq!(c.disks, ["/"]);
        assert_eq!(c.interfaces, None);
        assert!(c.processes.is_empty());
        assert_eq!(c.rate, 1.0);
        assert_eq!(c.ctrl_endpoint, DEFAULT_CTRL);
        assert_eq!(c.pub_endpoint, DEFAULT_PUB);
        assert_eq!(c.pub_encoding, Encoding::Json);
    }

    #[test]
    fn odin_config_file_and_flags_win() {
        let (_f, mut s) = with_file(
            "[adapter.status]\nmodule = odin_control.adapters.system_status.SystemStatusAdapter\n\
             disks = /, ,/tmp , /\ninterfaces = lo\nprocesses = stFrameProcessor1.sh, stFrameReceiver1.sh\nrate = 2\n",
        );
        let c = Config::load(&s).unwrap();
        assert_eq!(c.disks, ["/", "/tmp"]);
        assert_eq!(c.interfaces, Some(vec!["lo".to_string()]));
        let names: Vec<&str> = c.processes.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["stFrameProcessor1.sh", "stFrameReceiver1.sh"]);
        assert!(c.processes.iter().all(|p| p.expected.is_none()));
        assert_eq!(c.rate, 2.0);
        s.rate = Some("0.5".into());
        s.disks = Some("/var".into());
        let c = Config::load(&s).unwrap();
        assert_eq!(c.rate, 0.5);
        assert_eq!(c.disks, ["/var"]);
    }

    #[test]
    fn empty_value_means_none() {
        let (_f, s) = with_file("[adapter.status]\ndisks =\ninterfaces=\n");
        let c = Config::load(&s).unwrap();
        assert!(c.disks.is_empty());
        assert_eq!(c.interfaces, Some(vec![]));
    }

    #[test]
    fn other_sections_by_name() {
        let (_f, mut s) = with_file("[adapter.status]\nrate=1\n[adapter.fp]\nrate = 4\n");
        s.section = Some("adapter.fp".into());
        assert_eq!(Config::load(&s).unwrap().rate, 4.0);
    }

    #[test]
    fn bad_configuration_names_the_option() {
        let cases: Vec<(Sources, &str)> = vec![
            (
                Sources {
                    config_file: Some("/no/such/odin.cfg".into()),
                    ..Sources::default()
                },
                "--config /no/such/odin.cfg cannot be read: no such file",
            ),
            (
                Sources {
                    rate: Some("fast".into()),
                    ..Sources::default()
                },
                "--rate must be a number of updates per second, not 'fast'",
            ),
            (
                Sources {
                    rate: Some("0".into()),
                    ..Sources::default()
                },
                "--rate must be above 0 updates per second, not '0'",
            ),
            (
                Sources {
                    rate: Some("-3".into()),
                    ..Sources::default()
                },
                "--rate must be above 0 updates per second, not '-3'",
            ),
            (
                Sources {
                    rate: Some("nan".into()),
                    ..Sources::default()
                },
                "--rate must be above 0 updates per second, not 'nan'",
            ),
            (
                Sources {
                    pub_encoding: Some("xml".into()),
                    ..Sources::default()
                },
                "--pub-encoding must be json or msgpack, not 'xml'",
            ),
            (
                Sources {
                    ctrl: Some("udp://x:1".into()),
                    ..Sources::default()
                },
                "--ctrl must be a tcp://HOST:PORT or ipc://PATH endpoint, not 'udp://x:1'",
            ),
            (
                Sources {
                    disks: Some("/data/x_y, /data/x/y".into()),
                    ..Sources::default()
                },
                "--disks lists /data/x_y and /data/x/y, which share the tree key _data_x_y",
            ),
            (
                Sources {
                    max_message_size: Some("0".into()),
                    ..Sources::default()
                },
                "--max-message-size must be a whole number of bytes above 0, not '0'",
            ),
            (
                Sources {
                    metrics: Some("localhost".into()),
                    ..Sources::default()
                },
                "--metrics must be an IP address and port such as 127.0.0.1:9640, not 'localhost'",
            ),
            (
                Sources {
                    ipc_mode: Some("999".into()),
                    ..Sources::default()
                },
                "--ipc-mode must be octal permissions such as 660, not '999'",
            ),
            (
                Sources {
                    section: Some("x".into()),
                    ..Sources::default()
                },
                "--section x needs --config FILE to read it from",
            ),
        ];
        for (sources, message) in cases {
            assert_eq!(Config::load(&sources).unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn metrics_is_off_unless_given() {
        assert_eq!(Config::load(&Sources::default()).unwrap().metrics, None);
        let (_f, s) = with_file("[adapter.status]\nmetrics = 127.0.0.1:9640\n");
        assert_eq!(
            Config::load(&s).unwrap().metrics,
            Some(([127, 0, 0, 1], 9640).into())
        );
        let (_f, mut s) = with_file("[adapter.status]\nmetrics = 127.0.0.1:9640\n");
        s.metrics = Some(String::new());
        assert_eq!(Config::load(&s).unwrap().metrics, None, "the flag wins");
    }

    #[test]
    fn allow_configure_and_limits_from_file_and_flags() {
        let (f, mut s) = with_file(
            "[adapter.status]\nallow_configure = yes\ndisk_percent_warn = 80\nprocess_cpu_alarm = 150\n",
        );
        let c = Config::load(&s).unwrap();
        assert!(c.allow_configure);
        assert_eq!(
            c.thresholds.to_json(),
            serde_json::json!({"disk_percent_warn": 80.0, "process_cpu_alarm": 150.0})
        );
        // A flag wins over the file, key by key.
        s.thresholds = vec![
            "disk_percent_warn=0.0001".into(),
            "disk_percent_alarm = 99".into(),
        ];
        let c = Config::load(&s).unwrap();
        assert_eq!(
            c.thresholds.to_json(),
            serde_json::json!({"disk_percent_warn": 0.0001, "disk_percent_alarm": 99.0, "process_cpu_alarm": 150.0})
        );
        assert!(!Config::load(&Sources::default()).unwrap().allow_configure);
        for (text, key, message) in [
            (
                "allow_configure = maybe",
                "allow_configure",
                "must be true or false, not 'maybe'",
            ),
            (
                "process_cpu_warn = -5",
                "process_cpu_warn",
                "must be a number of at least 0, not '-5'",
            ),
        ] {
            let (g, s) = with_file(&format!("[adapter.status]\n{text}\n"));
            assert_eq!(
                Config::load(&s).unwrap_err().to_string(),
                format!(
                    "'{key}' in [adapter.status] of {} {message}",
                    g.path.display()
                )
            );
        }
        drop(f);
        let flags = |t: &[&str]| Sources {
            thresholds: t.iter().map(|s| s.to_string()).collect(),
            ..Sources::default()
        };
        let errors = [
            (flags(&["disk_percent_warn"]), "--threshold must be NAME=LIMIT, such as disk_percent_warn=90, not 'disk_percent_warn'"),
            (flags(&["disk_percent_warn=lots"]), "--threshold disk_percent_warn must be a number of at least 0, not 'lots'"),
            (flags(&["disk_percent_alarm=50", "disk_percent_warn=60"]), "disk_percent_warn (60) must not be above disk_percent_alarm (50)"),
        ];
        for (sources, message) in errors {
            assert_eq!(Config::load(&sources).unwrap_err().to_string(), message);
        }
        let unknown = Config::load(&flags(&["cpu=1"])).unwrap_err().to_string();
        assert!(
            unknown.starts_with("--threshold 'cpu' is not a limit; the limits are "),
            "{unknown}"
        );
    }

    #[test]
    fn process_entries_carry_an_expected_count() {
        let (_f, mut s) = with_file(
            "[adapter.status]\nprocesses = stFrameProcessor1.sh:1, stFrameReceiver1.sh:2, plain, \
             a:b, tail:, :3, host:5040x, twice:1, twice:1, zero:0, 007:007\n",
        );
        let c = Config::load(&s).unwrap();
        let got: Vec<(&str, Option<u32>)> = c
            .processes
            .iter()
            .map(|p| (p.name.as_str(), p.expected))
            .collect();
        assert_eq!(
            got,
            [
                ("stFrameProcessor1.sh", Some(1)),
                ("stFrameReceiver1.sh", Some(2)),
                ("plain", None),
                ("a:b", None),
                ("tail:", None),
                (":3", None),
                ("host:5040x", None),
                ("twice", Some(1)),
                ("zero", Some(0)),
                ("007", Some(7)),
            ]
        );
        // Written back as configured (leading zeros of N are not kept).
        let shown: Vec<String> = c.processes.iter().map(|p| p.to_string()).collect();
        assert_eq!(shown[0], "stFrameProcessor1.sh:1");
        assert_eq!(shown[2], "plain");
        assert_eq!(shown[3], "a:b");
        // A name is split at its last colon only when digits follow.
        s.processes = Some("x:1:2".into());
        let c = Config::load(&s).unwrap();
        assert_eq!(
            c.processes,
            [ProcessEntry {
                label: None,
                name: "x:1".into(),
                expected: Some(2)
            }]
        );
    }

    #[test]
    fn process_expectations_that_cannot_hold() {
        let cases = [
            (
                "fp:1, fp:2",
                "--processes lists fp:1 and fp:2, which disagree on how many fp to expect",
            ),
            (
                "fp, fp:1",
                "--processes lists fp and fp:1, which disagree on how many fp to expect",
            ),
            (
                "fp:99999999999",
                "--processes expects too many processes in 'fp:99999999999' (at most 4294967295)",
            ),
        ];
        for (value, message) in cases {
            let s = Sources {
                processes: Some(value.into()),
                ..Sources::default()
            };
            assert_eq!(Config::load(&s).unwrap_err().to_string(), message);
        }
    }

    #[test]
    fn bad_file_values_name_key_section_and_file() {
        let (f, s) = with_file("[adapter.status]\nrate = 0\n");
        let err = Config::load(&s).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "'rate' in [adapter.status] of {} must be above 0 updates per second, not '0'",
                f.path.display()
            )
        );
        let (f, s) = with_file("[server]\nport = 1\n");
        let err = Config::load(&s).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "--config {} has no [adapter.status] section (it has [server]; choose one with --section)",
                f.path.display()
            )
        );
    }

    #[test]
    fn a_file_without_disks_or_interfaces_watches_none_as_odin_does() {
        let (_f, mut s) = with_file("[adapter.status]\nprocesses = stFrameProcessor1.sh\n");
        let c = Config::load(&s).unwrap();
        assert!(c.disks.is_empty());
        assert_eq!(c.interfaces, Some(vec![]));
        // Flags still win over the file.
        s.disks = Some("/".into());
        assert_eq!(Config::load(&s).unwrap().disks, ["/"]);
        // Without a file, the defaults.
        let c = Config::load(&Sources::default()).unwrap();
        assert_eq!((c.disks, c.interfaces), (vec!["/".to_string()], None));
    }

    #[test]
    fn every_option_has_a_file_key_and_flags_win() {
        let (f, mut s) = with_file(
            "[adapter.status]\nctrl_endpoint = ipc:///tmp/c\npub_endpoint = tcp://127.0.0.1:6001\n\
             pub_encoding = msgpack\nmax_message_size = 4096\nipc_mode = 600\nlog_file = /tmp/x.log\n",
        );
        let c = Config::load(&s).unwrap();
        assert_eq!(c.ctrl_endpoint, "ipc:///tmp/c");
        assert_eq!(c.pub_endpoint, "tcp://127.0.0.1:6001");
        assert_eq!(c.pub_encoding, Encoding::Msgpack);
        assert_eq!(c.max_message_size, 4096);
        assert_eq!(c.ipc_mode, 0o600);
        assert_eq!(c.log_file, Some(PathBuf::from("/tmp/x.log")));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        s.ctrl = Some("tcp://127.0.0.1:6000".into());
        s.pub_encoding = Some("json".into());
        let c = Config::load(&s).unwrap();
        assert_eq!(c.ctrl_endpoint, "tcp://127.0.0.1:6000");
        assert_eq!(c.pub_encoding, Encoding::Json);
        drop(f);
        let (g, s) = with_file("[adapter.status]\npub_encoding = xml\n");
        assert_eq!(
            Config::load(&s).unwrap_err().to_string(),
            format!(
                "'pub_encoding' in [adapter.status] of {} must be json or msgpack, not 'xml'",
                g.path.display()
            )
        );
    }

    #[test]
    fn keys_nobody_reads_are_warned_with_the_closest_known_key() {
        let (_f, s) = with_file(
            "[DEFAULT]\nroot = /data\n[adapter.status]\nmodule = odin_status.odin_control.StatusAdapter\n\
             endpoint = tcp://127.0.0.1:5040\nproceses = sleep\ndisk = /tmp\nctrl = tcp://x:1\n\
             disk_percent_wran = 9\nhttp_port = 8888\n",
        );
        let c = Config::load(&s).unwrap();
        assert_eq!(
            c.warnings,
            [
                "'proceses' in [adapter.status] is not an odin-status key; did you mean 'processes'?",
                "'disk' in [adapter.status] is not an odin-status key; did you mean 'disks'?",
                "'ctrl' in [adapter.status] is not an odin-status key; did you mean 'ctrl_endpoint'?",
                "'disk_percent_wran' in [adapter.status] is not an odin-status key; did you mean 'disk_percent_warn'?",
                "'http_port' in [adapter.status] is not an odin-status key, nor close to one; it is ignored",
            ]
        );
    }

    #[test]
    fn process_labels_key_the_tree_and_read_back() {
        let (_f, s) = with_file(
            "[adapter.status]\nprocesses = fp1=stFrameProcessor1.sh:1, fr_1 = stFrameReceiver1.sh, \
             --config=fp.json, x-y=z, =a, b=, plain\n",
        );
        let c = Config::load(&s).unwrap();
        let got: Vec<(Option<&str>, &str, Option<u32>, &str)> = c
            .processes
            .iter()
            .map(|p| (p.label.as_deref(), p.name.as_str(), p.expected, p.key()))
            .collect();
        assert_eq!(
            got,
            [
                (Some("fp1"), "stFrameProcessor1.sh", Some(1), "fp1"),
                (Some("fr_1"), "stFrameReceiver1.sh", None, "fr_1"),
                // Not a label before the '=': all of it is the name.
                (None, "--config=fp.json", None, "--config=fp.json"),
                (None, "x-y=z", None, "x-y=z"),
                (None, "=a", None, "=a"),
                (None, "b=", None, "b="),
                (None, "plain", None, "plain"),
            ]
        );
        for entry in &c.processes {
            assert_eq!(
                ProcessEntry::parse(&entry.to_string()).as_ref(),
                Some(entry)
            );
        }
        assert_eq!(c.processes[0].to_string(), "fp1=stFrameProcessor1.sh:1");
    }

    #[test]
    fn labels_and_names_that_clash() {
        let cases = [
            (
                "fp1=a, fp1=b",
                "--processes lists fp1=a and fp1=b, which share the tree key fp1",
            ),
            (
                "a, a=b",
                "--processes lists a and a=b, which share the tree key a",
            ),
            (
                "x=fp, y=fp",
                "--processes lists x=fp and y=fp, which both match fp; give each name once",
            ),
            (
                "fp, y=fp:1",
                "--processes lists fp and y=fp:1, which both match fp; give each name once",
            ),
            (
                "y=fp, y=fp:2",
                "--processes lists y=fp and y=fp:2, which disagree on how many fp to expect",
            ),
        ];
        for (value, message) in cases {
            let s = Sources {
                processes: Some(value.into()),
                ..Sources::default()
            };
            assert_eq!(
                Config::load(&s).unwrap_err().to_string(),
                message,
                "{value}"
            );
        }
        // The same entry twice is one entry.
        let s = Sources {
            processes: Some("y=fp:1, y=fp:1".into()),
            ..Sources::default()
        };
        assert_eq!(Config::load(&s).unwrap().processes.len(), 1);
    }
}
