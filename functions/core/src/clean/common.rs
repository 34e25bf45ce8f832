//! Rules shared by several tables: person ids, dates, codes, specialties, numbers.

use chrono::NaiveDate;

use super::{Flag, Notes, Reason, Rejection};
use crate::person_id::PersonId;

/// Person ids are [`PersonId`]s; `3585.0` (a float artefact) is accepted and flagged.
pub fn person_id(raw: Option<&str>, notes: &mut Notes) -> Result<i64, Rejection> {
    let raw = raw.ok_or(Rejection::new(Reason::MissingPersonId, "person_id"))?;
    let (digits, float_encoded) = match strip_float_zero(raw) {
        Some(d) => (d, true),
        None => (raw, false),
    };
    let id = digits
        .parse::<PersonId>()
        .map_err(|_| Rejection::new(Reason::InvalidPersonId, "person_id"))?;
    if float_encoded {
        notes.flag(Flag::FloatEncodedPersonId, "person_id");
    }
    Ok(id.get())
}

/// Parses `[0-9]+` into a positive i64 (no sign, no spaces, no overflow): the [`PersonId`]
/// rule, for other positive ids and counts too.
pub fn parse_positive_int(raw: &str) -> Option<i64> {
    raw.parse::<PersonId>().ok().map(PersonId::get)
}

/// `"190283.0"` -> `Some("190283")`; anything else -> `None`.
pub fn strip_float_zero(raw: &str) -> Option<&str> {
    let (int, frac) = raw.split_once('.')?;
    (!int.is_empty()
        && int.bytes().all(|b| b.is_ascii_digit())
        && !frac.is_empty()
        && frac.bytes().all(|b| b == b'0'))
    .then_some(int)
}

/// Dates that stand for "unknown" in the source (1900-01-01 and 1950-01-01 moved by the
/// data set's de-identification shift, and the unshifted 1900-01-01).
pub const PLACEHOLDER_DATES: [(i32, u32, u32); 3] = [(1926, 7, 1), (1976, 7, 1), (1900, 1, 1)];

/// Parses `YYYY-MM-DD` or `MM/DD/YYYY`. Placeholders and unparseable text become `None`, with
/// a flag and the source text kept. No date is ever shifted.
pub fn date(raw: Option<&str>, column: &'static str, notes: &mut Notes) -> Option<NaiveDate> {
    let raw = raw?;
    let parsed = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(raw, "%m/%d/%Y"))
        .ok()
        // chrono accepts 5-digit years and trailing text lengths we do not want (`2034-03-17x`).
        .filter(|_| raw.len() >= 8 && raw.len() <= 10);
    match parsed {
        None => {
            notes.keep_raw(Flag::InvalidDate, column, raw);
            None
        }
        Some(d) if is_placeholder(d) => {
            notes.keep_raw(Flag::PlaceholderDate, column, raw);
            None
        }
        Some(d) => Some(d),
    }
}

pub fn is_placeholder(d: NaiveDate) -> bool {
    PLACEHOLDER_DATES
        .iter()
        .any(|&(y, m, day)| NaiveDate::from_ymd_opt(y, m, day) == Some(d))
}

/// ICD-10 codes: internal spaces removed (`I49. 9` -> `I49.9`), upper case; anything that is
/// not ICD-10 shaped (`361` on an EKG row) becomes `None` with a flag.
pub fn icd10(raw: Option<&str>, column: &'static str, notes: &mut Notes) -> Option<String> {
    let raw = raw?;
    let code: String = raw
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if is_icd10(&code) {
        Some(code)
    } else {
        notes.keep_raw(Flag::InvalidIcdCode, column, raw);
        None
    }
}

/// Letter, digit, alphanumeric, then optionally a dot and 1-4 alphanumerics.
fn is_icd10(code: &str) -> bool {
    let b = code.as_bytes();
    if b.len() < 3 || !b[0].is_ascii_uppercase() || !b[1].is_ascii_digit() {
        return false;
    }
    if !b[2].is_ascii_alphanumeric() {
        return false;
    }
    match &b[3..] {
        [] => true,
        [b'.', rest @ ..] => {
            (1..=4).contains(&rest.len()) && rest.iter().all(|c| c.is_ascii_alphanumeric())
        }
        _ => false,
    }
}

/// A number as written in the source (`107`, `1.30`, `-2`, `.5`); no units, no operators.
pub fn number(raw: &str) -> Option<f64> {
    let ok = !raw.is_empty()
        && raw
            .bytes()
            .all(|b| b.is_ascii_digit() || b == b'.' || b == b'-' || b == b'+')
        && raw.bytes().any(|b| b.is_ascii_digit());
    ok.then(|| raw.parse::<f64>().ok())
        .flatten()
        .filter(|v| v.is_finite())
}

/// Case and spacing drift removed: lower case, runs of whitespace collapsed.
pub fn fold(raw: &str) -> String {
    raw.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The normalised clinician specialty and the source text that may be kept.
pub struct Specialty {
    /// A closed vocabulary (see `docs/cleaning.md`); `None` when the source says "unknown".
    pub code: Option<&'static str>,
    /// The source text, unless it was a person's name (PII is never stored).
    pub source: Option<String>,
}

/// Maps the free-text specialty onto a closed vocabulary. A person's name (`Jane Doe, MD`)
/// is dropped entirely and flagged.
pub fn specialty(raw: Option<&str>, column: &'static str, notes: &mut Notes) -> Specialty {
    let Some(raw) = raw else {
        return Specialty {
            code: None,
            source: None,
        };
    };
    let folded = fold(raw);
    let code = match folded.as_str() {
        "general" | "general medicine" | "medicine" | "internal medicine" | "family medicine" => {
            Some("general_medicine")
        }
        "unspecified" | "unsepcified" | "unknown" | "not specified" => None,
        "cardiology" | "cardiovascular" | "cardiologist" => Some("cardiology"),
        "dermatology" | "dermatologist" => Some("dermatology"),
        "rheumatology" | "rheumatologist" => Some("rheumatology"),
        "urology" | "urologist" => Some("urology"),
        "oncology" | "oncologist" => Some("oncology"),
        "neurology" | "neurologist" => Some("neurology"),
        "orthopedic" | "orthopedics" | "orthopedist" => Some("orthopedics"),
        "physiatry" | "physical medicine" => Some("physiatry"),
        "gastrology" | "gastroenterology" | "gastroenterologist" => Some("gastroenterology"),
        _ if looks_like_person_name(raw) => {
            notes.flag(Flag::SpecialtyPersonNameRemoved, column);
            return Specialty {
                code: None,
                source: None,
            };
        }
        _ => {
            notes.flag(Flag::UnknownSpecialty, column);
            Some("other")
        }
    };
    Specialty {
        code,
        source: Some(raw.to_owned()),
    }
}

/// Every specialty code [`specialty`] can produce.
pub const SPECIALTY_CODES: [&str; 11] = [
    "general_medicine",
    "cardiology",
    "dermatology",
    "rheumatology",
    "urology",
    "oncology",
    "neurology",
    "orthopedics",
    "physiatry",
    "gastroenterology",
    "other",
];

/// Credentials or a "Dr." title mark a clinician's name rather than a specialty.
fn looks_like_person_name(raw: &str) -> bool {
    let upper = raw.to_ascii_uppercase();
    let words: Vec<&str> = upper
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let credential = [
        "MD", "DO", "NP", "PA", "RN", "DR", "MBBS", "PHD", "FACC", "FACP",
    ];
    words.iter().any(|w| credential.contains(w)) || upper.contains(". ")
}

/// The comparison of a censored result (`<0.1`, `>60`); its text is `as_str`/`Display`/`FromStr`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    strum::IntoStaticStr,
    strum::EnumString,
    strum::Display,
    strum::VariantArray,
)]
pub enum Operator {
    #[strum(serialize = "<")]
    Lt,
    #[strum(serialize = "<=")]
    Le,
    #[strum(serialize = ">")]
    Gt,
    #[strum(serialize = ">=")]
    Ge,
}

impl Operator {
    pub fn as_str(self) -> &'static str {
        self.into()
    }
}

/// `<=5` -> (Le, "5"), `> 60` -> (Gt, "60"); `None` when there is no leading operator.
pub fn split_operator(raw: &str) -> Option<(Operator, &str)> {
    // The longest operator that matches, so `<=` is not read as `<` followed by `=5`.
    <Operator as strum::VariantArray>::VARIANTS
        .iter()
        .filter_map(|op| raw.strip_prefix(op.as_str()).map(|rest| (*op, rest)))
        .max_by_key(|(op, _)| op.as_str().len())
        .map(|(op, rest)| (op, rest.trim_start()))
}

/// A censored number: `<0.1` -> (Lt, 0.1).
pub fn parse_censored(raw: &str) -> Option<(Operator, f64)> {
    let (op, rest) = split_operator(raw)?;
    number(rest).map(|v| (op, v))
}

/// `a-b`, `a - b`, `a- b` with `a <= b` -> (a, b). Every dash after the first character is
/// tried as the separator, so a negative low bound (`-2-2`) still reads. An inverted range
/// (`10-5`) is not a range: comparing against it would call every value both low and high.
pub fn split_range(raw: &str) -> Option<(f64, f64)> {
    raw.char_indices()
        .filter(|&(i, c)| c == '-' && i > 0)
        .find_map(|(i, _)| {
            let low = number(raw[..i].trim())?;
            let high = number(raw[i + 1..].trim())?;
            Some((low, high))
        })
        .filter(|(low, high)| low <= high)
}

/// A source column that carries one constant (`labs.feature_type` is always "Labs") is not
/// stored; any other value would be information, so it is kept in `raw_values`.
pub fn drop_constant_column(
    raw: Option<&str>,
    column: &'static str,
    constant: &str,
    notes: &mut Notes,
) {
    if let Some(other) = raw.filter(|v| !v.eq_ignore_ascii_case(constant)) {
        notes.raw_values.push((column, other.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_ids() {
        let mut notes = Notes::default();
        assert_eq!(person_id(Some("3585"), &mut notes), Ok(3585));
        assert!(notes.flags.is_empty());
        assert_eq!(person_id(Some("3585.0"), &mut notes), Ok(3585));
        assert_eq!(notes.flags, vec![Flag::FloatEncodedPersonId]);
        for bad in [
            "-1",
            "0",
            "0.0",
            "+1",
            "3585.5",
            "-3585.0",
            "abc",
            "35 85",
            "99999999999999999999",
            "1e3",
        ] {
            assert_eq!(
                person_id(Some(bad), &mut notes).unwrap_err().reason,
                Reason::InvalidPersonId,
                "{bad}"
            );
        }
        assert_eq!(
            person_id(None, &mut notes).unwrap_err().reason,
            Reason::MissingPersonId
        );
    }

    #[test]
    fn dates_placeholders_and_formats() {
        let mut notes = Notes::default();
        let d = |s| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            date(Some("2034-03-17"), "report_date", &mut notes),
            Some(d("2034-03-17"))
        );
        assert_eq!(
            date(Some("05/07/2008"), "end_date", &mut notes),
            Some(d("2008-05-07"))
        );
        assert_eq!(
            date(Some("2032-02-29"), "report_date", &mut notes),
            Some(d("2032-02-29"))
        );
        assert!(notes.flags.is_empty());
        assert_eq!(date(Some("1926-07-01"), "report_date", &mut notes), None);
        assert_eq!(date(Some("01/01/1900"), "end_date", &mut notes), None);
        assert_eq!(notes.flags, vec![Flag::PlaceholderDate]);
        assert_eq!(
            notes.raw_values,
            vec![
                ("report_date", "1926-07-01".to_owned()),
                ("end_date", "01/01/1900".to_owned())
            ]
        );
        let mut notes = Notes::default();
        assert_eq!(date(Some("2023-02-30"), "rx_date", &mut notes), None);
        assert_eq!(date(Some("2034-13-01"), "rx_date", &mut notes), None);
        assert_eq!(notes.flags, vec![Flag::InvalidDate]);
    }

    #[test]
    fn icd_codes() {
        let mut notes = Notes::default();
        assert_eq!(
            icd10(Some("I49. 9"), "icd_code", &mut notes).as_deref(),
            Some("I49.9")
        );
        assert_eq!(
            icd10(Some("c44.91"), "icd_code", &mut notes).as_deref(),
            Some("C44.91")
        );
        assert_eq!(
            icd10(Some("I48"), "icd_code", &mut notes).as_deref(),
            Some("I48")
        );
        assert!(notes.flags.is_empty());
        assert_eq!(icd10(Some("361"), "icd_code", &mut notes), None);
        assert_eq!(icd10(Some("124"), "icd_code", &mut notes), None);
        assert_eq!(notes.flags, vec![Flag::InvalidIcdCode]);
    }

    #[test]
    fn specialties() {
        let mut notes = Notes::default();
        for (raw, code) in [
            ("General", Some("general_medicine")),
            ("general", Some("general_medicine")),
            ("General Medicine", Some("general_medicine")),
            ("Unsepcified", None),
            ("Unknown", None),
            ("Urologist", Some("urology")),
            ("Gastrology", Some("gastroenterology")),
        ] {
            assert_eq!(
                specialty(Some(raw), "clinician_specialty", &mut notes).code,
                code,
                "{raw}"
            );
        }
        let named = specialty(
            Some("Richard L. Lindsey, MD"),
            "clinician_specialty",
            &mut notes,
        );
        assert_eq!((named.code, named.source), (None, None));
        assert!(notes.flags.contains(&Flag::SpecialtyPersonNameRemoved));
    }

    #[test]
    fn operators() {
        assert_eq!(split_operator("<=5"), Some((Operator::Le, "5")));
        assert_eq!(split_operator(">= 60"), Some((Operator::Ge, "60")));
        assert_eq!(split_operator("<0.1"), Some((Operator::Lt, "0.1")));
        assert_eq!(split_operator("> 60"), Some((Operator::Gt, "60")));
        assert_eq!(split_operator("=5"), None);
        assert_eq!(split_operator("5"), None);
        let texts: Vec<&str> = [Operator::Lt, Operator::Le, Operator::Gt, Operator::Ge]
            .iter()
            .map(|op| op.as_str())
            .collect();
        assert_eq!(texts, ["<", "<=", ">", ">="]);
        assert_eq!("<=".parse::<Operator>(), Ok(Operator::Le));
        assert!("=<".parse::<Operator>().is_err());
        assert_eq!(Operator::Gt.to_string(), ">");
    }

    #[test]
    fn numbers_and_float_zero() {
        assert_eq!(number("1.30"), Some(1.3));
        assert_eq!(number(">60"), None);
        assert_eq!(number("NaN"), None);
        assert_eq!(number("-"), None);
        assert_eq!(strip_float_zero("190283.0"), Some("190283"));
        assert_eq!(strip_float_zero("1.5"), None);
    }
}
