use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::InvalidValue;
use crate::quoting::quote;

/// A registry row's status, as the original table defines it. Registration only produces `Live`
/// and `Retired`; `Draft` rows are readable with `mode=edit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Status {
    Draft,
    InValidation,
    Live,
    Retired,
}

impl Status {
    pub const ALL: [Status; 4] = [Status::Draft, Status::InValidation, Status::Live, Status::Retired];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "Draft",
            Status::InValidation => "InValidation",
            Status::Live => "Live",
            Status::Retired => "Retired",
        }
    }
}

impl FromStr for Status {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| InvalidValue(format!("{} is not a status", quote(s))))
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_its_name() {
        for status in Status::ALL {
            assert_eq!(status.as_str().parse::<Status>().unwrap(), status);
            assert_eq!(serde_json::to_string(&status).unwrap(), format!("\"{status}\""));
        }
        assert!("live".parse::<Status>().is_err());
    }
}
