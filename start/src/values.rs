//! The value types of the settings: durations written like `15m`, and connection
//! URLs kept secret.

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration written like `15m`, `3s` or `250ms` (or a number of seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Text(String),
            Seconds(u64),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Seconds(s) => Ok(Self(Duration::from_secs(s))),
            Raw::Text(text) => humantime::parse_duration(text.trim())
                .map(Self)
                .map_err(|e| serde::de::Error::custom(format!("`{text}` is not a duration: {e}"))),
        }
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

/// A connection URL that may carry a password (`mysql://user:pass@host/db`, or several
/// comma-separated Redis nodes): a secret that is never printed — `Debug` and
/// serialisation (figment's defaults) show it with every password masked.
#[derive(Clone)]
pub struct SecretUrl(SecretString);

impl SecretUrl {
    /// `url`, kept secret.
    pub fn new(url: impl Into<String>) -> Self {
        Self(SecretString::from(url.into()))
    }

    /// The URL itself, to connect with.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The URL with the password of each node replaced by `***`.
    pub fn masked(&self) -> String {
        self.expose()
            .split(',')
            .map(mask_password)
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// `scheme://user:***@rest` for `scheme://user:password@rest`; anything else as it is.
fn mask_password(url: &str) -> String {
    let Some(scheme) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme..];
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    match authority[..at].find(':') {
        Some(colon) => format!("{}{}:***{}", &url[..scheme], &rest[..colon], &rest[at..]),
        None => url.to_owned(),
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for SecretUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.masked())
    }
}

impl<'de> Deserialize<'de> for SecretUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_and_the_rest_is_kept() {
        let masked = |url: &str| SecretUrl::new(url).masked();
        assert_eq!(
            masked("mysql://root:hunter2@db:3306/sale"),
            "mysql://root:***@db:3306/sale"
        );
        assert_eq!(
            masked("redis://:s3cret@a:6379,redis://:s3cret@b:6379"),
            "redis://:***@a:6379,redis://:***@b:6379"
        );
        assert_eq!(
            masked("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(
            masked("sqlite://flash-sale.db?mode=rwc"),
            "sqlite://flash-sale.db?mode=rwc"
        );
        assert_eq!(masked(""), "");
        let url = SecretUrl::new("mysql://u:p@h/d");
        assert_eq!(format!("{url:?}"), "mysql://u:***@h/d");
        assert_eq!(url.expose(), "mysql://u:p@h/d");
    }
}
