//! Problems found in a configuration: which key, where it was set, what to do.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::error::Kind;
use figment::value::Value;
use figment::{Figment, Metadata};

use crate::ENV_PREFIX;

/// One mistake in the configuration, reported with enough context to fix it without
/// reading the code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The key, in TOML-like notation: `routes[2].destination`, `database.url`.
    pub key: String,
    /// Where the value came from: the configuration file's path, or the environment
    /// variable that set it (`` environment variable `ISTHMUS_DATABASE__URL` ``).
    pub location: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub fix: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}): {}\n  fix: {}",
            self.key, self.location, self.message, self.fix
        )
    }
}

/// A path to a configuration key, e.g. `ledgers[0].rpc[1]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyPath(Vec<Segment>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Field(String),
    Index(usize),
}

impl KeyPath {
    pub(crate) fn root(field: &str) -> Self {
        KeyPath(vec![Segment::Field(field.to_owned())])
    }

    pub(crate) fn field(&self, field: &str) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Field(field.to_owned()));
        next
    }

    pub(crate) fn index(&self, index: usize) -> Self {
        let mut next = self.clone();
        next.0.push(Segment::Index(index));
        next
    }

    /// Builds a path from figment's segments, where array indices are numeric strings.
    fn from_figment(path: &[String]) -> Self {
        KeyPath(
            path.iter()
                .map(|s| match s.parse::<usize>() {
                    Ok(i) => Segment::Index(i),
                    Err(_) => Segment::Field(s.clone()),
                })
                .collect(),
        )
    }

    /// The environment variable that overrides this key, if it can be set from the
    /// environment at all (keys inside arrays cannot, one by one).
    fn env_var(&self) -> Option<String> {
        let mut parts = Vec::new();
        for segment in &self.0 {
            match segment {
                Segment::Field(f) => parts.push(f.to_ascii_uppercase()),
                Segment::Index(_) => return None,
            }
        }
        Some(format!("{ENV_PREFIX}{}", parts.join("__")))
    }

    fn parent(&self) -> Option<Self> {
        let mut up = self.clone();
        up.0.pop()?;
        (!up.0.is_empty()).then_some(up)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Field(name) if i == 0 => f.write_str(name)?,
                Segment::Field(name) => write!(f, ".{name}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// Knows where every value of a loaded configuration came from, to name the file or
/// environment variable in a [`Problem`]. Its `Debug` shows no values.
#[derive(Clone, Default)]
pub(crate) struct Provenance {
    figment: Option<Figment>,
    root: Option<Value>,
    file: Option<PathBuf>,
}

impl fmt::Debug for Provenance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The figment holds every raw value, secrets included: never print it.
        f.debug_struct("Provenance")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl Provenance {
    pub(crate) fn new(figment: &Figment, file: Option<&Path>) -> Self {
        Provenance {
            root: figment.find_value("").ok(),
            figment: Some(figment.clone()),
            file: file.map(Path::to_path_buf),
        }
    }

    /// The file the configuration was loaded from, if any.
    pub(crate) fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    fn find(&self, path: &KeyPath) -> Option<&Value> {
        let mut value = self.root.as_ref()?;
        for segment in &path.0 {
            value = match (segment, value) {
                (Segment::Field(f), Value::Dict(_, dict)) => dict.get(f)?,
                (Segment::Index(i), Value::Array(_, items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(value)
    }

    /// Describes where the value at `path` (or its nearest present parent) was set.
    pub(crate) fn locate(&self, path: &KeyPath) -> String {
        let mut cursor = Some(path.clone());
        while let Some(at) = cursor {
            if let Some(value) = self.find(&at) {
                let metadata = self
                    .figment
                    .as_ref()
                    .and_then(|f| f.get_metadata(value.tag()));
                if let Some(metadata) = metadata {
                    return describe_metadata(metadata, &at, self.file.as_deref());
                }
            }
            cursor = at.parent();
        }
        self.default_location()
    }

    fn default_location(&self) -> String {
        match &self.file {
            Some(file) => file.display().to_string(),
            None => "configuration".to_owned(),
        }
    }

    pub(crate) fn problem(&self, path: &KeyPath, message: String, fix: String) -> Problem {
        Problem {
            key: path.to_string(),
            location: self.locate(path),
            message,
            fix,
        }
    }
}

fn describe_metadata(metadata: &Metadata, path: &KeyPath, file: Option<&Path>) -> String {
    if let Some(source) = metadata.source.as_ref().and_then(|s| s.file_path()) {
        return display_file(source, file);
    }
    if metadata.name.contains("environment") {
        if let Some(var) = path.env_var() {
            return format!("environment variable `{var}`");
        }
        return format!("{ENV_PREFIX}* environment variables");
    }
    metadata.name.to_string()
}

/// Shows the file as the operator named it when it is the file they passed, rather
/// than figment's absolute form.
fn display_file(found: &Path, given: Option<&Path>) -> String {
    if let Some(given) = given {
        let same = match (found.canonicalize(), given.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => found == given,
        };
        if same {
            return given.display().to_string();
        }
    }
    found.display().to_string()
}

/// Turns a figment extraction error (possibly several chained) into problems naming
/// the key, the file or variable, and the fix.
pub(crate) fn from_figment_error(error: figment::Error, provenance: &Provenance) -> Vec<Problem> {
    error
        .into_iter()
        .map(|e| one_figment_error(e, provenance))
        .collect()
}

fn one_figment_error(error: figment::Error, provenance: &Provenance) -> Problem {
    let path = KeyPath::from_figment(&error.path);
    let location_of = |p: &KeyPath| match &error.metadata {
        Some(metadata) => describe_metadata(metadata, p, provenance.file()),
        None => provenance.locate(p),
    };
    let (key, message, fix) = match &error.kind {
        Kind::UnknownField(field, expected) => {
            let key = child(&path, field);
            let fix = if expected.is_empty() {
                "remove it".to_owned()
            } else {
                format!(
                    "remove it, or use one of the keys accepted here: {}",
                    expected.join(", ")
                )
            };
            (key, format!("unknown key `{field}`"), fix)
        }
        Kind::MissingField(field) => {
            let key = child(&path, field);
            let section = match key.parent() {
                Some(parent) => format!("`{parent}`"),
                None => "the top level".to_owned(),
            };
            (
                key,
                "required key is missing".to_owned(),
                format!("add `{field}` under {section}"),
            )
        }
        Kind::UnknownVariant(found, expected) => (
            path.clone(),
            format!("`{found}` is not an accepted value"),
            format!("use one of: {}", expected.join(", ")),
        ),
        Kind::InvalidType(actual, expected) => (
            path.clone(),
            format!("found {actual}, expected {expected}"),
            format!("write {expected} here"),
        ),
        Kind::InvalidValue(actual, expected) => (
            path.clone(),
            format!("invalid value {actual}, expected {expected}"),
            format!("write {expected} here"),
        ),
        Kind::InvalidLength(len, expected) => (
            path.clone(),
            format!("has {len} items, expected {expected}"),
            format!("give {expected}"),
        ),
        Kind::DuplicateField(field) => (
            child(&path, field),
            "key is given twice".to_owned(),
            "keep one of them".to_owned(),
        ),
        other => (
            path.clone(),
            other.to_string(),
            "correct the value; docs/configuration.md lists every key and its form".to_owned(),
        ),
    };
    let location = location_of(&key);
    Problem {
        key: key.to_string(),
        location,
        message,
        fix,
    }
}

/// `path.field`, unless figment already ended the path with `field`.
fn child(path: &KeyPath, field: &str) -> KeyPath {
    if path.0.last() == Some(&Segment::Field(field.to_owned())) {
        path.clone()
    } else if path.0.is_empty() {
        KeyPath::root(field)
    } else {
        path.field(field)
    }
}
