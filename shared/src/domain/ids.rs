use std::fmt;

use serde::{Deserialize, Serialize};

use super::InvalidValue;
use crate::quoting::{is_hidden, quote};

const MAX_CONNECTOR_ID_LEN: usize = 128;
const MAX_VERSION_LEN: usize = 64;

/// A connector's id: `^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ConnectorId(String);

impl ConnectorId {
    /// Parses an id exactly as given.
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let mut chars = raw.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if first_ok && rest_ok && raw.len() <= MAX_CONNECTOR_ID_LEN {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidValue(format!(
                "{} is not a valid connector id: it must start with a letter or digit, \
                 hold only letters, digits, '_', '.' and '-', and be at most {MAX_CONNECTOR_ID_LEN} characters",
                quote(raw)
            )))
        }
    }

    /// Parses an id as written in `metadata.json`, where the original registry turns spaces into `-`.
    pub fn from_metadata(raw: &str) -> Result<Self, InvalidValue> {
        Self::parse(&raw.replace(' ', "-"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A connector version: 1 to 64 characters, no `/`, `\`, `..`, white space, control or invisible
/// characters (bidirectional controls, zero-width characters: see `text::is_hidden`), so that it
/// is safe inside a row id, a folder name and an object key, and two versions that look the same
/// are the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Version(String);

impl Version {
    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let problem = if raw.is_empty() {
            Some("must not be empty".to_owned())
        } else if raw.chars().count() > MAX_VERSION_LEN {
            Some(format!("must be at most {MAX_VERSION_LEN} characters"))
        } else if raw.contains('/') || raw.contains('\\') {
            Some("must not contain '/' or '\\'".to_owned())
        } else if raw.contains("..") {
            Some("must not contain '..'".to_owned())
        } else if raw.chars().any(|c| c.is_whitespace() || is_hidden(c)) {
            Some("must not contain white space, control or invisible characters".to_owned())
        } else {
            None
        };
        match problem {
            None => Ok(Self(raw.to_owned())),
            Some(why) => Err(InvalidValue(format!("{} is not a valid version: it {why}", quote(raw)))),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A registry row id: `<connector_id>-<version>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RowId(String);

impl RowId {
    /// The most bytes a row id can have: an ASCII connector id, `-`, and a version of characters
    /// of up to four bytes each.
    pub const MAX_BYTES: usize = MAX_CONNECTOR_ID_LEN + 1 + 4 * MAX_VERSION_LEN;

    /// Whether some row could have this id. One that cannot is unknown without asking a store,
    /// whose own key limits (DynamoDB's 2048 bytes) would otherwise answer for it.
    pub fn could_be(id: &str) -> bool {
        !id.is_empty() && id.len() <= Self::MAX_BYTES
    }

    pub fn new(connector_id: &ConnectorId, version: &Version) -> Self {
        Self(format!("{}-{}", connector_id.as_str(), version.as_str()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_newtype_impls {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl From<$t> for String {
            fn from(value: $t) -> String {
                value.0
            }
        }
    )*};
}
string_newtype_impls!(ConnectorId, Version, RowId);

impl TryFrom<String> for ConnectorId {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl TryFrom<String> for Version {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_row_id_is_longer_than_its_bound() {
        let longest = RowId::new(
            &ConnectorId::parse(&"c".repeat(MAX_CONNECTOR_ID_LEN)).unwrap(),
            &Version::parse(&"\u{1F600}".repeat(MAX_VERSION_LEN)).unwrap(),
        );
        assert_eq!(longest.as_str().len(), RowId::MAX_BYTES);
        assert!(RowId::could_be(longest.as_str()));
        assert!(!RowId::could_be(&format!("{}x", longest.as_str())));
        assert!(!RowId::could_be(""));
    }

    #[test]
    fn connector_ids_follow_the_documented_pattern() {
        for ok in ["a", "postgres-connector", "object_store_connector", "A1.b-c_d", &"x".repeat(128)] {
            assert!(ConnectorId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", ".a", "_a", "a b", "a/b", "a..b/c", "é", &"x".repeat(129)] {
            assert!(ConnectorId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metadata_ids_turn_spaces_into_dashes() {
        assert_eq!(ConnectorId::from_metadata("my connector").unwrap().as_str(), "my-connector");
        assert!(ConnectorId::from_metadata(" leading").is_err());
    }

    #[test]
    fn versions_refuse_path_tricks_and_length() {
        for ok in ["1.0.0", "0.1.0-rc.1", "2024_11", &"9".repeat(64)] {
            assert!(Version::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1/0", "..", "1..2", "a\\b", "1 0", "1\n", &"9".repeat(65)] {
            let err = Version::parse(bad).unwrap_err();
            assert!(err.0.contains("not a valid version"), "{bad}: {err}");
        }
    }

    #[test]
    fn versions_and_ids_refuse_characters_that_hide_or_reorder_text() {
        for bad in
            ["1.0\u{202e}", "1.0\u{200b}", "\u{feff}1.0", "1\u{ad}0", "1\u{2066}0\u{2069}", "1\u{200f}", "1\u{1b}[31m"]
        {
            let err = Version::parse(bad).unwrap_err();
            assert!(err.0.contains("invisible") || err.0.contains("control"), "{err}");
            assert!(ConnectorId::parse(&format!("a{bad}")).is_err());
        }
    }

    #[test]
    fn messages_quote_the_value_as_plain_text() {
        assert_eq!(
            Version::parse("1\u{1b}[31m").unwrap_err().0,
            "\"1<U+001B>[31m\" is not a valid version: it must not contain white space, control or invisible characters"
        );
        assert!(
            ConnectorId::parse("a\u{202e}b").unwrap_err().0.starts_with("\"a<U+202E>b\" is not a valid connector id")
        );
    }

    #[test]
    fn row_id_joins_connector_and_version() {
        let id = RowId::new(&ConnectorId::parse("postgres-connector").unwrap(), &Version::parse("1.0.0").unwrap());
        assert_eq!(id.as_str(), "postgres-connector-1.0.0");
    }

    #[test]
    fn serde_refuses_invalid_values() {
        assert!(serde_json::from_str::<Version>("\"1/2\"").is_err());
        assert_eq!(serde_json::from_str::<ConnectorId>("\"kafka\"").unwrap().as_str(), "kafka");
    }
}
