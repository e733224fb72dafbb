//! The subset of Python's `configparser` that odin-control config files use.
//!
//! odin-control reads its file with `configparser.ConfigParser()`: sections in
//! brackets, `key = value` or `key: value`, keys case-insensitive, full-line
//! `#`/`;` comments, indented continuation lines, a `[DEFAULT]` section whose
//! keys every section inherits, and `%(key)s` interpolation with `%%` for `%`.

use std::fmt;

const DEFAULT_SECTION: &str = "DEFAULT";
const MAX_INTERPOLATION_DEPTH: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for IniError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

type Options = Vec<(String, String)>;

#[derive(Debug, Default)]
pub struct Ini {
    sections: Vec<(String, Options)>,
    defaults: Options,
}

impl Ini {
    pub fn parse(text: &str) -> Result<Ini, IniError> {
        let mut ini = Ini::default();
        // (section index or None for DEFAULT, option index, indent) of the option
        // a continuation line would extend.
        let mut current: Option<Option<usize>> = None;
        let mut last_option: Option<(usize, usize)> = None;
        for (index, raw) in text.lines().enumerate() {
            let number = index + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let indent = raw.len() - raw.trim_start().len();
            if let (Some(section), Some((option, option_indent))) = (current, last_option) {
                if indent > option_indent {
                    let options = ini.options_mut(section);
                    if let Some((_, value)) = options.get_mut(option) {
                        value.push('\n');
                        value.push_str(line);
                    }
                    continue;
                }
            }
            if let Some(rest) = line.strip_prefix('[') {
                let Some(end) = rest.rfind(']') else {
                    return Err(error(number, "a section header must end with ']'"));
                };
                let name = rest.get(..end).unwrap_or_default();
                if name.is_empty() {
                    return Err(error(number, "a section header needs a name"));
                }
                if name == DEFAULT_SECTION {
                    current = Some(None);
                } else {
                    if ini.sections.iter().any(|(n, _)| n == name) {
                        return Err(error(number, &format!("section [{name}] appears twice")));
                    }
                    ini.sections.push((name.to_string(), Vec::new()));
                    current = Some(Some(ini.sections.len() - 1));
                }
                last_option = None;
                continue;
            }
            let Some(section) = current else {
                return Err(error(number, "an option comes before any [section] header"));
            };
            let Some(split) = line.find(['=', ':']) else {
                return Err(error(
                    number,
                    "expected 'key = value' or a [section] header",
                ));
            };
            let key = line.get(..split).unwrap_or_default().trim().to_lowercase();
            let value = line.get(split + 1..).unwrap_or_default().trim().to_string();
            if key.is_empty() {
                return Err(error(number, "an option needs a name before '='"));
            }
            let options = ini.options_mut(section);
            if options.iter().any(|(k, _)| *k == key) {
                return Err(error(
                    number,
                    &format!("option '{key}' appears twice in its section"),
                ));
            }
            options.push((key, value));
            last_option = Some((options.len() - 1, indent));
        }
        Ok(ini)
    }

    fn options_mut(&mut self, section: Option<usize>) -> &mut Options {
        match section.and_then(|i| self.sections.get_mut(i)) {
            Some((_, options)) => options,
            None => &mut self.defaults,
        }
    }

    /// The sections' names in file order (DEFAULT is not one).
    pub fn section_names(&self) -> impl Iterator<Item = &str> {
        self.sections.iter().map(|(n, _)| n.as_str())
    }

    pub fn has_section(&self, section: &str) -> bool {
        self.sections.iter().any(|(n, _)| n == section)
    }

    /// The keys written in `section` itself (lower case, in file order), not
    /// those it inherits from `[DEFAULT]`, which serve every section.
    pub fn keys(&self, section: &str) -> impl Iterator<Item = &str> {
        self.sections
            .iter()
            .find(|(n, _)| n == section)
            .into_iter()
            .flat_map(|(_, options)| options.iter().map(|(k, _)| k.as_str()))
    }

    fn raw(&self, section: &str, key: &str) -> Option<&str> {
        self.sections
            .iter()
            .find(|(n, _)| n == section)
            .and_then(|(_, options)| options.iter().find(|(k, _)| k == key))
            .or_else(|| self.defaults.iter().find(|(k, _)| k == key))
            .map(|(_, v)| v.as_str())
    }

    /// The value of `key` in `section` (or DEFAULT), interpolated.
    pub fn get(&self, section: &str, key: &str) -> Result<Option<String>, IniError> {
        let key = key.to_lowercase();
        match self.raw(section, &key) {
            None => Ok(None),
            Some(raw) => self.interpolate(section, &key, raw, 0).map(Some),
        }
    }

    fn interpolate(
        &self,
        section: &str,
        key: &str,
        raw: &str,
        depth: usize,
    ) -> Result<String, IniError> {
        if depth > MAX_INTERPOLATION_DEPTH {
            return Err(error(
                0,
                &format!("option '{key}' refers to itself through %(...)s"),
            ));
        }
        let mut out = String::with_capacity(raw.len());
        let mut rest = raw;
        while let Some(at) = rest.find('%') {
            out.push_str(rest.get(..at).unwrap_or_default());
            let after = rest.get(at + 1..).unwrap_or_default();
            if let Some(tail) = after.strip_prefix('%') {
                out.push('%');
                rest = tail;
            } else if let Some(tail) = after.strip_prefix('(') {
                let bad = || error(0, &format!("option '{key}' has a bad %(name)s reference"));
                let close = tail.find(")s").ok_or_else(bad)?;
                let name = tail.get(..close).ok_or_else(bad)?.to_lowercase();
                let value = self.raw(section, &name).ok_or_else(|| {
                    error(
                        0,
                        &format!("option '{key}' refers to '%({name})s', which is not set"),
                    )
                })?;
                out.push_str(&self.interpolate(section, &name, value, depth + 1)?);
                rest = tail.get(close + 2..).unwrap_or_default();
            } else {
                return Err(error(
                    0,
                    &format!("option '{key}' has a lone '%'; write '%%' for a percent sign"),
                ));
            }
        }
        out.push_str(rest);
        Ok(out)
    }
}

fn error(line: usize, message: &str) -> IniError {
    IniError {
        line,
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ODIN: &str = "\
[server]
debug_mode = 1
http_port  = 8888
adapters   = status

; a comment
[adapter.status]
module = odin_control.adapters.system_status.SystemStatusAdapter
Disks = /, /tmp
interfaces: lo
processes = stFrameProcessor1.sh,
    stFrameReceiver1.sh
rate = 2
";

    #[test]
    fn reads_an_odin_control_file() {
        let ini = Ini::parse(ODIN).unwrap();
        assert!(ini.has_section("adapter.status"));
        assert!(!ini.has_section("adapter.other"));
        assert_eq!(
            ini.get("adapter.status", "disks").unwrap().unwrap(),
            "/, /tmp"
        );
        assert_eq!(
            ini.get("adapter.status", "interfaces").unwrap().unwrap(),
            "lo"
        );
        assert_eq!(
            ini.get("adapter.status", "processes").unwrap().unwrap(),
            "stFrameProcessor1.sh,\nstFrameReceiver1.sh"
        );
        assert_eq!(ini.get("adapter.status", "rate").unwrap().unwrap(), "2");
        assert_eq!(ini.get("adapter.status", "missing").unwrap(), None);
        let keys: Vec<&str> = ini.keys("adapter.status").collect();
        assert_eq!(keys, ["module", "disks", "interfaces", "processes", "rate"]);
    }

    #[test]
    fn defaults_and_interpolation() {
        let ini =
            Ini::parse("[DEFAULT]\nroot = /data\n[s]\ndisks = %(root)s/raw, 100%%\n").unwrap();
        assert_eq!(ini.get("s", "disks").unwrap().unwrap(), "/data/raw, 100%");
        assert_eq!(ini.get("s", "root").unwrap().unwrap(), "/data");
        let ini = Ini::parse("[s]\na = 5%\nb = %(b)s\nc = %(nope)s\n").unwrap();
        assert!(ini.get("s", "a").unwrap_err().message.contains("lone '%'"));
        assert!(ini
            .get("s", "b")
            .unwrap_err()
            .message
            .contains("refers to itself"));
        assert!(ini.get("s", "c").unwrap_err().message.contains("not set"));
    }

    #[test]
    fn malformed_files_name_the_line() {
        for (text, line) in [
            ("key = 1\n", 1),
            ("[s]\njunk\n", 2),
            ("[s\n", 1),
            ("[]\n", 1),
            ("[s]\na=1\n[s]\n", 3),
            ("[s]\na=1\nA=2\n", 3),
            ("[s]\n= 2\n", 2),
        ] {
            let err = Ini::parse(text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
        }
    }
}
