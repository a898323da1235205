//! Values that must never reach a log line, a `Debug` dump or a serialized copy.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The text printed (and serialized) in place of a secret.
pub const REDACTED: &str = "[redacted]";

/// A value that is kept in memory but never shown.
///
/// `Debug`, `Display` and `Serialize` all produce [`REDACTED`], so a secret can sit
/// inside a struct that derives `Debug` and be logged with `?config` without leaking.
/// The only way to read the value is the explicit [`Secret::expose`], which makes
/// every use greppable.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// Borrows the secret value. Callers must not log or persist what they get.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> Serialize for Secret<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Secret<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        T::deserialize(deserializer).map(Secret)
    }
}

/// A database connection URL whose password is never shown.
///
/// `Debug` and `Display` print the URL with the password (in the user-info part or a
/// `password=` query parameter) replaced by [`REDACTED`], so operators still see which
/// host and database are meant. A string that does not look like a URL is hidden
/// entirely, because it may be a bare password.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(Secret<String>);

impl DatabaseUrl {
    /// Wraps a URL string.
    pub fn new(url: impl Into<String>) -> Self {
        Self(Secret::new(url.into()))
    }

    /// The full URL, password included, for handing to the database driver only.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The URL with any password replaced by [`REDACTED`].
    pub fn redacted(&self) -> String {
        redact_url(self.0.expose())
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DatabaseUrl")
            .field(&self.redacted())
            .finish()
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.redacted())
    }
}

/// Replaces the password of `scheme://user:password@host/...?password=...` by
/// [`REDACTED`]. Works on the raw text (no re-encoding), so everything else is shown
/// exactly as written.
pub(crate) fn redact_url(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://") else {
        return REDACTED.to_owned();
    };
    let (head, rest) = raw.split_at(scheme_end + 3);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let (userinfo, host) = authority.split_at(at);
            match userinfo.find(':') {
                Some(colon) => format!("{}:{REDACTED}{host}", &userinfo[..colon]),
                None => authority.to_owned(),
            }
        }
        None => authority.to_owned(),
    };
    let tail = match tail.find('?') {
        Some(q) => {
            let (path, query) = tail.split_at(q + 1);
            let (query, fragment) = match query.find('#') {
                Some(h) => query.split_at(h),
                None => (query, ""),
            };
            let query = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                        format!("{name}={REDACTED}")
                    }
                    _ => pair.to_owned(),
                })
                .collect::<Vec<_>>()
                .join("&");
            format!("{path}{query}{fragment}")
        }
        None => tail.to_owned(),
    };
    format!("{head}{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_prints_and_serializes_redacted() {
        let s = Secret::new("hunter2".to_owned());
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(s.to_string(), REDACTED);
        let toml = figment::value::Value::serialize(&s).expect("serializes");
        assert_eq!(toml.as_str(), Some(REDACTED));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn database_url_hides_only_the_password() {
        let url =
            DatabaseUrl::new("postgres://isthmus:s3cr3t@db.example:5432/relay?sslmode=require");
        let shown = format!("{url} {url:?}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert_eq!(
            url.redacted(),
            "postgres://isthmus:[redacted]@db.example:5432/relay?sslmode=require"
        );
        assert_eq!(
            url.expose(),
            "postgres://isthmus:s3cr3t@db.example:5432/relay?sslmode=require"
        );
    }

    #[test]
    fn database_url_hides_query_password_and_odd_strings() {
        let url = DatabaseUrl::new("postgres://db/relay?user=a&password=p4ss#frag");
        assert_eq!(
            url.redacted(),
            "postgres://db/relay?user=a&password=[redacted]#frag"
        );
        assert_eq!(DatabaseUrl::new("just-a-password").redacted(), REDACTED);
        assert_eq!(
            DatabaseUrl::new("postgres://postgres@127.0.0.1:5432/postgres").redacted(),
            "postgres://postgres@127.0.0.1:5432/postgres"
        );
        // A password containing '@' must be hidden whole.
        assert_eq!(
            DatabaseUrl::new("postgres://u:p@ss@h/d").redacted(),
            "postgres://u:[redacted]@h/d"
        );
    }
}
