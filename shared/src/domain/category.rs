use std::fmt;

use serde::{Deserialize, Serialize};

use super::InvalidValue;
use crate::quoting::quote;

/// A connector category. The original list filter only knew `Database` and `File` while real
/// packages say `batch` and `stream`; we accept any `^[A-Za-z][A-Za-z0-9_-]{0,63}$` on both sides,
/// so every registered category can also be filtered on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Category(String);

impl Category {
    pub const PATTERN: &'static str = "^[A-Za-z][A-Za-z0-9_-]{0,63}$";

    pub fn parse(raw: &str) -> Result<Self, InvalidValue> {
        let mut chars = raw.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
        if first_ok && rest_ok && raw.len() <= 64 {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidValue(format!("{} is not a valid category: it must match {}", quote(raw), Self::PATTERN)))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Category {
    type Error = InvalidValue;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Category> for String {
    fn from(value: Category) -> Self {
        value.0
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_old_and_new_categories() {
        for ok in ["Database", "File", "batch", "stream", "a", &format!("a{}", "b".repeat(63))] {
            assert!(Category::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1db", "-x", "a b", "a.b", &format!("a{}", "b".repeat(64))] {
            assert!(Category::parse(bad).is_err(), "{bad}");
        }
    }
}
