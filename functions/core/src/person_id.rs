//! Person ids: the database's key for a person, a positive 64-bit integer.
//!
//! One rule for every way an id arrives: CSV fields and vendor files (through the cleaners),
//! the API's path, the features queue's messages.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A positive `i64`. Text is decimal digits only (no sign, no spaces, no `.0`: the CSV's
/// float repair is the cleaner's, `clean::common::person_id`); JSON is an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PersonId(i64);

/// Not a person id. Says what one is, never what the rejected value was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a person id must be a positive integer below 2^63, written in digits only")]
pub struct PersonIdError;

impl PersonId {
    pub const MAX: PersonId = PersonId(i64::MAX);

    /// `Some` for a positive id.
    pub const fn new(id: i64) -> Option<PersonId> {
        if id > 0 {
            Some(PersonId(id))
        } else {
            None
        }
    }

    pub const fn get(self) -> i64 {
        self.0
    }
}

impl TryFrom<i64> for PersonId {
    type Error = PersonIdError;
    fn try_from(id: i64) -> Result<PersonId, PersonIdError> {
        PersonId::new(id).ok_or(PersonIdError)
    }
}

impl From<PersonId> for i64 {
    fn from(id: PersonId) -> i64 {
        id.0
    }
}

impl FromStr for PersonId {
    type Err = PersonIdError;
    /// `[0-9]+` that fits an i64 and is not zero (leading zeros are allowed: `007` is 7).
    fn from_str(text: &str) -> Result<PersonId, PersonIdError> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PersonIdError);
        }
        let id = text.parse::<i64>().map_err(|_| PersonIdError)?;
        PersonId::try_from(id)
    }
}

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl Serialize for PersonId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0)
    }
}

/// From an integer only: `0`, negatives, floats (`1.0` too), strings and integers above
/// `i64::MAX` are refused, with an error that does not repeat the value.
impl<'de> Deserialize<'de> for PersonId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<PersonId, D::Error> {
        // `any`, not `i64`: so that a float or a string reaches the visitor (serde_json would
        // otherwise describe it, value included, itself).
        deserializer.deserialize_any(PersonIdVisitor)
    }
}

struct PersonIdVisitor;

impl PersonIdVisitor {
    fn refuse<E: de::Error>() -> E {
        E::custom(PersonIdError)
    }
}

impl<'de> Visitor<'de> for PersonIdVisitor {
    type Value = PersonId;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a positive integer below 2^63")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<PersonId, E> {
        PersonId::new(v).ok_or_else(Self::refuse)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<PersonId, E> {
        i64::try_from(v)
            .ok()
            .and_then(PersonId::new)
            .ok_or_else(Self::refuse)
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<PersonId, E> {
        i64::try_from(v)
            .ok()
            .and_then(PersonId::new)
            .ok_or_else(Self::refuse)
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<PersonId, E> {
        i64::try_from(v)
            .ok()
            .and_then(PersonId::new)
            .ok_or_else(Self::refuse)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<PersonId, E> {
        Err(Self::refuse())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<PersonId, E> {
        Err(Self::refuse())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_positive_digits_that_fit() {
        assert_eq!("3585".parse::<PersonId>().map(PersonId::get), Ok(3585));
        assert_eq!("007".parse::<PersonId>().map(PersonId::get), Ok(7));
        assert_eq!("9223372036854775807".parse::<PersonId>(), Ok(PersonId::MAX));
        for bad in [
            "",
            "0",
            "00",
            "-1",
            "+1",
            "1.0",
            "3585.0",
            "1e3",
            "abc",
            " 1",
            "1 ",
            "35 85",
            "9223372036854775808",
            "99999999999999999999",
        ] {
            assert_eq!(bad.parse::<PersonId>(), Err(PersonIdError), "{bad:?}");
        }
    }

    #[test]
    fn from_i64_only_positive() {
        assert_eq!(PersonId::try_from(1).map(i64::from), Ok(1));
        assert_eq!(PersonId::try_from(0), Err(PersonIdError));
        assert_eq!(PersonId::try_from(-4), Err(PersonIdError));
        assert_eq!(PersonId::try_from(i64::MIN), Err(PersonIdError));
        assert_eq!(PersonId::new(i64::MAX), Some(PersonId::MAX));
    }

    #[test]
    fn json_is_an_integer() {
        let id: PersonId = serde_json::from_str("3591").unwrap();
        assert_eq!(id.get(), 3591);
        assert_eq!(
            serde_json::from_str::<PersonId>("9223372036854775807").unwrap(),
            PersonId::MAX
        );
        // Refused without repeating the value (it may be a record's data).
        for bad in [
            "0",
            "-4",
            "1.5",
            "1.0",
            "1e3",
            "\"1234\"",
            "9223372036854775808",
            "99999999999999999999",
        ] {
            let error = serde_json::from_str::<PersonId>(bad)
                .unwrap_err()
                .to_string();
            assert!(
                error.starts_with(&PersonIdError.to_string()),
                "{bad}: {error}"
            );
            assert!(!error.contains(bad.trim_matches('"')), "{bad}: {error}");
        }
        for bad in ["null", "true", "[1]", "{}"] {
            assert!(serde_json::from_str::<PersonId>(bad).is_err(), "{bad}");
        }
        let ids: Vec<PersonId> = serde_json::from_str("[1, 2]").unwrap();
        assert_eq!(serde_json::to_string(&ids).unwrap(), "[1,2]");
        assert_eq!(serde_json::to_value(PersonId::MAX).unwrap(), i64::MAX);
    }

    #[test]
    fn displays_as_the_number() {
        assert_eq!(PersonId::new(42).unwrap().to_string(), "42");
        assert_eq!(format!("{:>4}", PersonId::new(7).unwrap()), "   7");
    }
}
