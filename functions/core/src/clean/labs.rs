//! labs: laboratory results with their LOINC, reference range and source flag.
//!
//! The analyte is identified by the feature name, never by LOINC: the feed uses 4548-4 (the
//! HbA1c code) for hemoglobin too, and one code for two analytes elsewhere (DATA_NOTES 5.2, 9).
//! Values and reference ranges are parsed into numbers where they are numbers, the source text
//! is always kept beside them, and the High/Low flag is recomputed from the parsed numbers so
//! the source flag can be checked (DATA_NOTES 5.6).

use chrono::NaiveDate;

use super::common::{self, parse_censored, split_range, Operator};
use super::{Cleaner, Flag, Notes, Reason, Rejection};
use crate::table::Table;

#[derive(Debug, Default, Clone, Copy)]
pub struct LabsCleaner;

clean_row! {
    #[derive(Debug, Clone, PartialEq)]
    pub struct LabRow {
        pub impairment_category: Option<String> => Text,
        pub impairment: Option<String> => Text,
        /// A well-formed LOINC (check digit verified); it may still name the wrong analyte.
        pub loinc: Option<String> => Text,
        pub feature: String => Text,
        /// Canonical analyte from the feature name (see [`ANALYTES`]); `None` when unknown.
        pub analyte: Option<&'static str> => Text,
        pub feature_date: Option<NaiveDate> => Date,
        /// The result exactly as written (trimmed).
        pub value_raw: Option<String> => Text,
        /// The result as a number, or the bound of a censored result (`>60` -> 60).
        pub value_num: Option<f64> => Float8,
        /// `<`, `<=`, `>` or `>=` for a censored result.
        pub value_operator: Option<&'static str> => Text,
        /// A qualitative result (`Negative`, `2+`).
        pub value_text: Option<String> => Text,
        /// The reference range exactly as written (trimmed).
        pub range_raw: Option<String> => Text,
        pub range_low: Option<f64> => Float8,
        pub range_high: Option<f64> => Float8,
        /// A qualitative reference (`Negative`).
        pub range_text: Option<String> => Text,
        /// The source's evaluation as written (High, Low, Normal, Abnormal, Negative).
        pub flag_src: Option<String> => Text,
        /// The evaluation recomputed from the value and the range: low, normal, high or abnormal.
        pub flag_calc: Option<&'static str> => Text,
    }
}

impl Cleaner for LabsCleaner {
    type Row = LabRow;
    const TABLE: Table = Table::Labs;
    const SOURCE_COLUMNS: &'static [&'static str] = &[
        "impairment_category",
        "impairment",
        "feature_type",
        "loinc",
        "feature_date",
        "feature",
        "value",
        "normal_range_of_value",
        "result_evaluation_or_flag",
        "person_id",
    ];
    const REQUIRED_COLUMNS: &'static [&'static str] =
        &["person_id", "feature", "value", "feature_date"];

    fn clean(&self, raw: &super::RawRow<'_>, notes: &mut Notes) -> Result<LabRow, Rejection> {
        let feature = raw
            .get("feature")
            .ok_or(Rejection::new(Reason::MissingRequiredValue, "feature"))?;
        common::drop_constant_column(raw.get("feature_type"), "feature_type", "Labs", notes);

        let loinc = raw.get("loinc").and_then(|code| {
            let valid = is_valid_loinc(code);
            if !valid {
                notes.keep_raw(Flag::InvalidLoinc, "loinc", code);
            }
            valid.then(|| code.to_owned())
        });
        let analyte = analyte(feature);
        match analyte {
            None => notes.flag(Flag::UnknownAnalyte, "feature"),
            Some(a) if is_known_loinc_mismatch(a, loinc.as_deref()) => {
                notes.flag(Flag::LoincAnalyteMismatch, "loinc")
            }
            Some(_) => {}
        }

        let value_raw = raw.get("value");
        let reading = value_raw.map(parse_reading);

        let range_raw = raw.get("normal_range_of_value");
        let range = range_raw.map(parse_range).unwrap_or_default();
        match (range.status, range_raw) {
            (RangeStatus::Repaired, Some(r)) => {
                notes.keep_raw(Flag::RangeRepaired, "normal_range_of_value", r)
            }
            (RangeStatus::Unparsed, _) => notes.flag(Flag::RangeUnparsed, "normal_range_of_value"),
            _ => {}
        }

        let flag_src = raw.get("result_evaluation_or_flag");
        let flag_calc = reading.as_ref().and_then(|r| evaluate(r, &range));
        if contradicts(flag_src, flag_calc) {
            notes.flag(Flag::FlagMismatch, "result_evaluation_or_flag");
        }

        let (value_num, value_operator, value_text) = match reading {
            None => (None, None, None),
            Some(Reading::Number(v)) => (Some(v), None, None),
            Some(Reading::Censored(op, v)) => (Some(v), Some(op.as_str()), None),
            Some(Reading::Text(t)) => (None, None, Some(t)),
        };
        Ok(LabRow {
            impairment_category: raw.get("impairment_category").map(str::to_owned),
            impairment: raw.get("impairment").map(str::to_owned),
            loinc,
            feature: feature.to_owned(),
            analyte,
            feature_date: common::date(raw.get("feature_date"), "feature_date", notes),
            value_raw: value_raw.map(str::to_owned),
            value_num,
            value_operator,
            value_text,
            range_raw: range_raw.map(str::to_owned),
            range_low: range.low,
            range_high: range.high,
            range_text: range.text,
            flag_src: flag_src.map(str::to_owned),
            flag_calc,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// LOINC

/// `^\d{1,7}-\d$` with a valid mod-10 check digit. A valid check digit only shows the code is
/// well formed, not that it belongs to the analyte.
pub fn is_valid_loinc(code: &str) -> bool {
    let Some((body, check)) = code.split_once('-') else {
        return false;
    };
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !(1..=7).contains(&body.len())
        || check.len() != 1
        || !digits_only(body)
        || !digits_only(check)
    {
        return false;
    }
    loinc_check_digit(body) == check.as_bytes()[0] - b'0'
}

/// LOINC's mod-10 check digit (the Luhn scheme): from the right, every other digit starting
/// with the last is doubled and its digits summed; the check digit tops the sum up to a
/// multiple of ten. `4548` -> 4, `718` -> 7.
fn loinc_check_digit(body: &str) -> u8 {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let doubled = d * 2;
                doubled / 10 + doubled % 10
            } else {
                d
            }
        })
        .sum();
    ((10 - sum % 10) % 10) as u8
}

/// (analyte, LOINC) pairs known to be wrong in the feed: 4548-4 is Hemoglobin A1c, yet it is
/// the only code on "Hemoglobin (HGB)" rows (DATA_NOTES 9); 718-7 is blood hemoglobin. The
/// LOINC is kept as given; the row is flagged.
const LOINC_MISMATCHES: &[(&str, &str)] = &[("hemoglobin", "4548-4"), ("a1c", "718-7")];

fn is_known_loinc_mismatch(analyte: &str, loinc: Option<&str>) -> bool {
    loinc.is_some_and(|l| LOINC_MISMATCHES.contains(&(analyte, l)))
}

// ---------------------------------------------------------------------------------------------
// Analytes

/// Feature name (folded with [`common::fold`]) -> canonical analyte. Covers every feature of
/// the sample (DATA_NOTES 5.2) plus a few spellings of the same tests that make the hemoglobin
/// rule ambiguous (MCH, MCHC and HbA1c written out). Absolute counts (`_abs`) and percentages
/// (`_pct`) of white cells are different analytes even where the feed gives them one LOINC;
/// eGFR keeps its race-specific variants apart.
pub const ANALYTES: &[(&str, &str)] = &[
    // Blood count
    ("hemoglobin (hgb)", "hemoglobin"),
    ("hematocrit (hct)", "hematocrit"),
    ("rbc", "rbc"),
    ("mch", "mch"),
    ("mean corpuscular hemoglobin", "mch"),
    ("mchc", "mchc"),
    ("mean corpuscular hemoglobin concentration", "mchc"),
    ("mcv", "mcv"),
    ("rdw", "rdw"),
    ("mpv", "mpv"),
    ("platelet count", "platelets"),
    ("wbc count", "wbc"),
    ("neutrophils (anc)", "neutrophils_abs"),
    ("neutrophils%", "neutrophils_pct"),
    ("lymphocytes (alc)", "lymphocytes_abs"),
    ("lymphocytes%", "lymphocytes_pct"),
    ("monocytes (amc)", "monocytes_abs"),
    ("monocytes%", "monocytes_pct"),
    ("eosinophils (aec)", "eosinophils_abs"),
    ("basophils (abc)", "basophils_abs"),
    ("basophils%", "basophils_pct"),
    ("esr (erythrocyte sedimentation rate)", "esr"),
    ("inr", "inr"),
    // Iron and vitamins
    ("ferritin", "ferritin"),
    ("iron saturation", "iron_saturation"),
    ("vitamin b12", "vitamin_b12"),
    ("vitamin d", "vitamin_d"),
    ("homocysteine", "homocysteine"),
    // Diabetes
    ("a1c", "a1c"),
    ("hba1c", "a1c"),
    ("hemoglobin a1c", "a1c"),
    ("glycated hemoglobin", "a1c"),
    ("glucose", "glucose"),
    // Lipids
    ("total cholesterol", "total_cholesterol"),
    ("hdl", "hdl"),
    ("ldl", "ldl"),
    ("vldl", "vldl"),
    ("triglycerides", "triglycerides"),
    ("total cholesterol/hdl-c ratio", "cholesterol_hdl_ratio"),
    // Kidney
    ("blood creatinine", "creatinine"),
    ("blood urea, or blood urea nitrogen (bun)", "bun"),
    ("bun/creatinine", "bun_creatinine_ratio"),
    ("egfr-aa", "egfr_aa"),
    ("egfr-naa", "egfr_naa"),
    (
        "acr, umacr, uacr, albumin to creatinine ratio",
        "albumin_creatinine_ratio",
    ),
    ("urine protein", "urine_protein"),
    // Electrolytes and minerals
    ("sodium", "sodium"),
    ("potassium", "potassium"),
    ("chloride", "chloride"),
    ("carbon dioxide", "co2"),
    ("calcium", "calcium"),
    // Liver and proteins
    ("alt", "alt"),
    ("ast", "ast"),
    ("alkaline phosphatase (alp or ap)", "alp"),
    ("bilirubin", "bilirubin"),
    ("albumin (serum)", "albumin"),
    ("globulin", "globulin"),
    ("a/g ratio", "ag_ratio"),
    ("total protein", "total_protein"),
    ("amylase", "amylase"),
    // Heart, thyroid, prostate
    ("bnp", "bnp"),
    ("tsh", "tsh"),
    ("free thyroxine (free t4)", "free_t4"),
    ("total psa", "psa"),
];

/// Words that make a name mentioning hemoglobin some other test: HbA1c, the red-cell indices
/// MCH/MCHC and urine dipstick hemoglobin.
const NOT_BLOOD_HEMOGLOBIN: &[&str] = &["a1c", "glyc", "corpuscular", "mean cell", "urine"];

/// The canonical analyte of a feature name: the [`ANALYTES`] table first, then the hemoglobin
/// rule of DATA_NOTES 9 (/hemoglobin|\bhgb\b/i and not A1c) for spellings the table lacks.
pub fn analyte(feature: &str) -> Option<&'static str> {
    let folded = common::fold(feature);
    if let Some((_, analyte)) = ANALYTES.iter().find(|(name, _)| *name == folded) {
        return Some(analyte);
    }
    let names_hemoglobin = folded.contains("hemoglobin")
        || folded
            .split(|c: char| !c.is_alphanumeric())
            .any(|word| word == "hgb");
    let other_test = NOT_BLOOD_HEMOGLOBIN.iter().any(|w| folded.contains(w));
    (names_hemoglobin && !other_test).then_some("hemoglobin")
}

// ---------------------------------------------------------------------------------------------
// Values

/// A lab result as written.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// `107`, `1.30`.
    Number(f64),
    /// `>60`: the true value lies beyond the bound.
    Censored(Operator, f64),
    /// Anything else (`Negative`, `2+`, `Trace`): kept as text, never guessed at.
    Text(String),
}

pub fn parse_reading(raw: &str) -> Reading {
    let raw = raw.trim();
    if let Some(v) = common::number(raw) {
        Reading::Number(v)
    } else if let Some((op, v)) = parse_censored(raw) {
        Reading::Censored(op, v)
    } else {
        Reading::Text(raw.to_owned())
    }
}

// ---------------------------------------------------------------------------------------------
// Reference ranges

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RangeStatus {
    /// Parsed as written (or empty).
    #[default]
    Parsed,
    /// A known typing slip was repaired (DATA_NOTES 5.5).
    Repaired,
    /// Not a range we can read; only the raw text is kept.
    Unparsed,
}

/// A parsed reference range. A one-sided range (`<100`, `>60`) has one bound; bounds are
/// inclusive whatever the operator, the convention the source's own flags follow.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Range {
    pub low: Option<f64>,
    pub high: Option<f64>,
    /// A qualitative reference (`Negative`).
    pub text: Option<String>,
    pub status: RangeStatus,
}

impl Range {
    fn bounds(low: Option<f64>, high: Option<f64>, status: RangeStatus) -> Range {
        Range {
            low,
            high,
            text: None,
            status,
        }
    }
}

pub fn parse_range(raw: &str) -> Range {
    let raw = raw.trim();
    if raw.is_empty() {
        return Range::default();
    }
    if let Some((op, x)) = parse_censored(raw) {
        return match op {
            Operator::Lt | Operator::Le => Range::bounds(None, Some(x), RangeStatus::Parsed),
            Operator::Gt | Operator::Ge => Range::bounds(Some(x), None, RangeStatus::Parsed),
        };
    }
    if let Some((low, high)) = split_range(raw) {
        return Range::bounds(Some(low), Some(high), RangeStatus::Parsed);
    }
    if let Some((low, high)) = repair_range(raw) {
        return Range::bounds(Some(low), Some(high), RangeStatus::Repaired);
    }
    let has_letter = raw.chars().any(char::is_alphabetic);
    let has_digit = raw.chars().any(|c| c.is_ascii_digit());
    if has_letter && !has_digit {
        return Range {
            text: Some(raw.to_owned()),
            ..Range::default()
        };
    }
    Range {
        status: RangeStatus::Unparsed,
        ..Range::default()
    }
}
/// The two malformed ranges of DATA_NOTES 5.5, repaired only when the result is a proper
/// range (low < high):
/// - a stray `.0` on a bound: `4.4.0-10.0` -> 4.4..10.0;
/// - a lost dash between two 3-digit bounds: `136144` -> 136..144 (sodium).
fn repair_range(raw: &str) -> Option<(f64, f64)> {
    let (low, high) = if raw.len() == 6 && raw.bytes().all(|b| b.is_ascii_digit()) {
        (common::number(&raw[..3])?, common::number(&raw[3..])?)
    } else {
        let (left, right) = raw.split_once('-')?;
        let bound = |s: &str| {
            let s = s.trim();
            common::number(s).or_else(|| common::number(strip_stray_zero(s)?))
        };
        (bound(left)?, bound(right)?)
    };
    (low < high).then_some((low, high))
}

/// `4.4.0` -> `4.4`: a number with a second `.0…` appended. `None` for anything else.
fn strip_stray_zero(s: &str) -> Option<&str> {
    let (number, zeros) = s.rsplit_once('.')?;
    let well_formed = number.contains('.') && !zeros.is_empty() && zeros.bytes().all(|b| b == b'0');
    well_formed.then_some(number)
}

// ---------------------------------------------------------------------------------------------
// Evaluation

/// One end of the set of values a result can stand for: the bound, and whether the bound
/// itself is possible (`<=5` includes 5, `<5` does not).
type End = Option<(f64, bool)>;

/// The interval a reading stands for: `7` is [7, 7], `<0.1` is (-inf, 0.1), `>=60` is [60, inf).
fn interval(reading: &Reading) -> Option<(End, End)> {
    Some(match *reading {
        Reading::Number(v) => (Some((v, true)), Some((v, true))),
        Reading::Censored(Operator::Lt, v) => (None, Some((v, false))),
        Reading::Censored(Operator::Le, v) => (None, Some((v, true))),
        Reading::Censored(Operator::Gt, v) => (Some((v, false)), None),
        Reading::Censored(Operator::Ge, v) => (Some((v, true)), None),
        Reading::Text(_) => return None,
    })
}

/// Recomputes the evaluation: `low`/`high` when every value the reading can stand for is
/// below/above the range, `normal` when every such value is inside it (bounds inclusive:
/// HGB 13.5 in 13.5-18.0 is normal), otherwise `None` (no range, or a censored value the range
/// cannot place: `>60` against 0-100). A qualitative result against a qualitative reference is
/// `normal` when they say the same thing and `abnormal` otherwise.
pub fn evaluate(reading: &Reading, range: &Range) -> Option<&'static str> {
    if let (Reading::Text(value), Some(reference)) = (reading, &range.text) {
        let same = common::fold(value) == common::fold(reference);
        return Some(if same { "normal" } else { "abnormal" });
    }
    let (lower, upper) = interval(reading)?;
    if range.low.is_none() && range.high.is_none() {
        return None;
    }
    let below = |low: f64| upper.is_some_and(|(x, inclusive)| x < low || (!inclusive && x <= low));
    let above =
        |high: f64| lower.is_some_and(|(x, inclusive)| x > high || (!inclusive && x >= high));
    if range.low.is_some_and(below) {
        return Some("low");
    }
    if range.high.is_some_and(above) {
        return Some("high");
    }
    let low_ok = range
        .low
        .is_none_or(|low| lower.is_some_and(|(x, _)| x >= low));
    let high_ok = range
        .high
        .is_none_or(|high| upper.is_some_and(|(x, _)| x <= high));
    (low_ok && high_ok).then_some("normal")
}

/// The source flag is checkable when it is High, Low or Normal (`Abnormal` and `Negative` are
/// not directions); it contradicts the recomputed one when both exist and differ.
fn contradicts(flag_src: Option<&str>, flag_calc: Option<&str>) -> bool {
    let (Some(src), Some(calc)) = (flag_src, flag_calc) else {
        return false;
    };
    let src = src.to_ascii_lowercase();
    ["high", "low", "normal"].contains(&src.as_str()) && src != calc
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::clean::{CleanRow, CleanedRow};
    use crate::Outcome;

    use crate::clean::test_support;

    fn sample() -> Vec<Outcome> {
        test_support::sample_outcomes(crate::Table::Labs)
    }

    fn clean_rows() -> Vec<CleanedRow> {
        test_support::sample_clean_rows(crate::Table::Labs)
    }

    fn text<'a>(row: &'a CleanedRow, column: &str) -> Option<&'a str> {
        test_support::text(LabRow::COLUMNS, row, column)
    }

    fn num(row: &CleanedRow, column: &str) -> Option<f64> {
        test_support::num(LabRow::COLUMNS, row, column)
    }

    /// The first clean row of a person with this feature and raw value.
    fn find<'a>(rows: &'a [CleanedRow], person: i64, feature: &str, value: &str) -> &'a CleanedRow {
        rows.iter()
            .find(|r| {
                r.person_id == person
                    && text(r, "feature") == Some(feature)
                    && text(r, "value_raw") == Some(value)
            })
            .unwrap_or_else(|| panic!("no row {person} {feature} {value}"))
    }

    #[test]
    fn columns_match_values() {
        let rows = clean_rows();
        for row in &rows {
            assert_eq!(row.values.len(), LabRow::COLUMNS.len());
            for (value, column) in row.values.iter().zip(LabRow::COLUMNS) {
                assert_eq!(value.column_type(), column.ty, "{}", column.name);
            }
        }
    }

    #[test]
    fn every_sample_row_is_clean_with_a_known_analyte() {
        let outcomes = sample();
        assert_eq!(outcomes.len(), 460);
        let rows = clean_rows();
        assert_eq!(rows.len(), 460, "no sample row is quarantined");
        for row in &rows {
            assert!(text(row, "analyte").is_some(), "{:?}", text(row, "feature"));
            assert!(!row.flags.contains(&Flag::UnknownAnalyte));
            assert!(
                !row.flags.contains(&Flag::InvalidLoinc),
                "56/56 sample LOINCs are valid"
            );
            assert!(text(row, "loinc").is_some());
        }
    }

    #[test]
    fn hemoglobin_is_found_by_name_and_its_loinc_flagged() {
        let rows = clean_rows();
        let row = find(&rows, 3597, "Hemoglobin (HGB)", "11.5");
        assert_eq!(text(row, "analyte"), Some("hemoglobin"));
        assert_eq!(text(row, "loinc"), Some("4548-4"), "kept as given");
        assert_eq!(num(row, "value_num"), Some(11.5));
        assert_eq!(
            (num(row, "range_low"), num(row, "range_high")),
            (Some(14.0), Some(18.0))
        );
        assert_eq!(text(row, "flag_calc"), Some("low"));
        assert!(row.flags.contains(&Flag::LoincAnalyteMismatch));
        let hemoglobin_rows = rows
            .iter()
            .filter(|r| text(r, "analyte") == Some("hemoglobin"))
            .count();
        assert_eq!(hemoglobin_rows, 18, "DATA_NOTES 9");
    }

    #[test]
    fn a1c_shares_the_loinc_but_is_not_hemoglobin() {
        let rows = clean_rows();
        let a1c: Vec<_> = rows
            .iter()
            .filter(|r| text(r, "feature") == Some("A1c"))
            .collect();
        assert_eq!(a1c.len(), 3);
        for row in a1c {
            assert_eq!(text(row, "analyte"), Some("a1c"));
            assert_eq!(text(row, "loinc"), Some("4548-4"));
            assert!(!row.flags.contains(&Flag::LoincAnalyteMismatch));
        }
    }

    #[test]
    fn censored_egfr() {
        let rows = clean_rows();
        let row = find(&rows, 3585, "eGFR-AA", ">60");
        assert_eq!(text(row, "analyte"), Some("egfr_aa"));
        assert_eq!(text(row, "value_operator"), Some(">"));
        assert_eq!(num(row, "value_num"), Some(60.0));
        assert_eq!(text(row, "value_text"), None);
        assert_eq!(
            (num(row, "range_low"), num(row, "range_high")),
            (Some(60.0), None)
        );
        assert_eq!(text(row, "flag_calc"), Some("normal"), ">60 is inside >60");
        assert!(row.flags.is_empty(), "{:?}", row.flags);
    }

    #[test]
    fn qualitative_urine_protein() {
        let rows = clean_rows();
        let negative = rows
            .iter()
            .find(|r| {
                text(r, "value_raw") == Some("Negative") && text(r, "flag_src") == Some("Negative")
            })
            .expect("a Negative urine protein");
        assert_eq!(text(negative, "analyte"), Some("urine_protein"));
        assert_eq!(text(negative, "value_text"), Some("Negative"));
        assert_eq!(num(negative, "value_num"), None);
        assert_eq!(text(negative, "range_text"), Some("Negative"));
        assert_eq!(text(negative, "flag_calc"), Some("normal"));
        assert!(negative.flags.is_empty());

        let two_plus = rows
            .iter()
            .find(|r| text(r, "value_raw") == Some("2+"))
            .expect("a 2+ urine protein");
        assert_eq!(text(two_plus, "value_text"), Some("2+"));
        assert_eq!(text(two_plus, "flag_calc"), Some("abnormal"));
        assert_eq!(text(two_plus, "flag_src"), Some("Abnormal"));
        assert!(!two_plus.flags.contains(&Flag::FlagMismatch));
    }

    #[test]
    fn malformed_ranges_are_repaired() {
        let rows = clean_rows();
        let sodium = rows
            .iter()
            .find(|r| text(r, "range_raw") == Some("136144"))
            .expect("the 136144 sodium range");
        assert_eq!(sodium.person_id, 3607);
        assert_eq!(text(sodium, "analyte"), Some("sodium"));
        assert_eq!(
            (num(sodium, "range_low"), num(sodium, "range_high")),
            (Some(136.0), Some(144.0))
        );
        assert!(sodium.flags.contains(&Flag::RangeRepaired));
        assert_eq!(
            sodium.raw_values.as_ref().unwrap()["normal_range_of_value"],
            "136144"
        );

        let wbc = rows
            .iter()
            .find(|r| text(r, "range_raw") == Some("4.4.0-10.0"))
            .expect("the 4.4.0-10.0 WBC range");
        assert_eq!(wbc.person_id, 3621);
        assert_eq!(
            (num(wbc, "range_low"), num(wbc, "range_high")),
            (Some(4.4), Some(10.0))
        );
        assert!(wbc.flags.contains(&Flag::RangeRepaired));

        let repaired = rows
            .iter()
            .filter(|r| r.flags.contains(&Flag::RangeRepaired));
        let ranges: BTreeSet<_> = repaired.map(|r| text(r, "range_raw")).collect();
        assert_eq!(ranges, BTreeSet::from([Some("136144"), Some("4.4.0-10.0")]));
        assert!(!rows.iter().any(|r| r.flags.contains(&Flag::RangeUnparsed)));
    }

    #[test]
    fn glucose_flag_mismatch() {
        let rows = clean_rows();
        let row = find(&rows, 3588, "Glucose", "124");
        assert_eq!(text(row, "range_raw"), Some("135-148"));
        assert_eq!(text(row, "flag_src"), Some("High"));
        assert_eq!(text(row, "flag_calc"), Some("low"));
        assert!(row.flags.contains(&Flag::FlagMismatch));
    }

    #[test]
    fn range_bounds_are_inclusive() {
        let rows = clean_rows();
        let row = find(&rows, 3595, "Hemoglobin (HGB)", "13.5");
        assert_eq!(text(row, "range_raw"), Some("13.5-18.0"));
        assert_eq!(text(row, "flag_calc"), Some("normal"));
        assert!(!row.flags.contains(&Flag::FlagMismatch));
    }

    #[test]
    fn the_seven_flag_mismatches_of_data_notes() {
        let rows = clean_rows();
        let mismatches: BTreeSet<_> = rows
            .iter()
            .filter(|r| r.flags.contains(&Flag::FlagMismatch))
            .map(|r| {
                (
                    r.person_id,
                    text(r, "feature").unwrap(),
                    text(r, "value_raw").unwrap(),
                )
            })
            .collect();
        let expected = BTreeSet::from([
            (3613, "HDL", "59"),
            (3609, "HDL", "58.0"),
            (3588, "Glucose", "124"),
            (3626, "BNP", "319.0"),
            (3611, "A/G ratio", "0.8"),
            (3611, "LDL", "121"),
            (3590, "MCV", "98.3"),
        ]);
        assert_eq!(mismatches, expected);
    }

    #[test]
    fn flag_calc_is_always_in_its_domain() {
        for row in clean_rows() {
            let calc = text(&row, "flag_calc");
            assert!(
                calc.is_none_or(|c| ["low", "normal", "high", "abnormal"].contains(&c)),
                "{calc:?}"
            );
        }
    }

    // -- Synthetic unit tests ---------------------------------------------------------------

    fn range(low: Option<f64>, high: Option<f64>) -> Range {
        Range::bounds(low, high, RangeStatus::Parsed)
    }

    #[test]
    fn loinc_check_digits() {
        for good in ["4548-4", "718-7", "2947-0", "50384-7", "1-8", "26474-7"] {
            assert!(is_valid_loinc(good), "{good}");
        }
        for bad in [
            "4548-5",
            "4548",
            "-4",
            "4548-",
            "4548-44",
            "12345678-9",
            "45a8-4",
            "4548 -4",
            "",
            "-",
            "4548-4-4",
            "٤٥٤٨-٤",
        ] {
            assert!(!is_valid_loinc(bad), "{bad}");
        }
    }

    #[test]
    fn analytes_by_name() {
        assert_eq!(analyte("Hemoglobin (HGB)"), Some("hemoglobin"));
        assert_eq!(analyte("HGB"), Some("hemoglobin"));
        assert_eq!(analyte("hemoglobin"), Some("hemoglobin"));
        assert_eq!(analyte("Blood  HGB, venous"), Some("hemoglobin"));
        assert_eq!(analyte("Hemoglobin A1c"), Some("a1c"));
        assert_eq!(
            analyte("HbA1c (glycated hemoglobin)"),
            None,
            "not blood hemoglobin"
        );
        assert_eq!(analyte("Mean corpuscular hemoglobin"), Some("mch"));
        assert_eq!(analyte("MCHC"), Some("mchc"));
        assert_eq!(analyte("HGBX"), None, "hgb must be a word");
        assert_eq!(analyte("eGFR-NAA"), Some("egfr_naa"));
        assert_eq!(analyte("  total   CHOLESTEROL "), Some("total_cholesterol"));
        assert_eq!(analyte("Unobtainium"), None);
    }

    #[test]
    fn analyte_table_is_well_formed() {
        let mut names = BTreeSet::new();
        for (name, analyte) in ANALYTES {
            assert_eq!(common::fold(name), *name, "keys are folded");
            assert!(names.insert(name), "{name} twice");
            assert!(
                !analyte.is_empty()
                    && analyte
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
                "{analyte}"
            );
        }
    }

    #[test]
    fn readings() {
        assert_eq!(parse_reading("107"), Reading::Number(107.0));
        assert_eq!(parse_reading("1.30"), Reading::Number(1.3));
        assert_eq!(parse_reading(">60"), Reading::Censored(Operator::Gt, 60.0));
        assert_eq!(parse_reading("<0.1"), Reading::Censored(Operator::Lt, 0.1));
        assert_eq!(parse_reading("<=5"), Reading::Censored(Operator::Le, 5.0));
        assert_eq!(
            parse_reading(">= 60"),
            Reading::Censored(Operator::Ge, 60.0)
        );
        for text in [
            "Negative", "2+", "Trace", "-", "1e5", "NaN", "inf", "..", "<", ">=", "<x", "<<1",
        ] {
            assert_eq!(
                parse_reading(text),
                Reading::Text(text.to_owned()),
                "{text}"
            );
        }
        let huge = "9".repeat(400);
        assert_eq!(parse_reading(&huge), Reading::Text(huge.clone()));
        assert_eq!(
            parse_reading(&format!("<{huge}")),
            Reading::Text(format!("<{huge}"))
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range("65-99"), range(Some(65.0), Some(99.0)));
        assert_eq!(parse_range("8.6 - 10.2"), range(Some(8.6), Some(10.2)));
        assert_eq!(parse_range("8.5- 10.6"), range(Some(8.5), Some(10.6)));
        assert_eq!(parse_range("5-5"), range(Some(5.0), Some(5.0)));
        assert_eq!(parse_range("-2-2"), range(Some(-2.0), Some(2.0)));
        assert_eq!(parse_range("<0.8"), range(None, Some(0.8)));
        assert_eq!(parse_range("<=5.0"), range(None, Some(5.0)));
        assert_eq!(parse_range(">60"), range(Some(60.0), None));
        assert_eq!(parse_range(">=60"), range(Some(60.0), None));
        assert_eq!(parse_range(""), Range::default());
        let negative = parse_range("Negative");
        assert_eq!(negative.text.as_deref(), Some("Negative"));
        assert_eq!(negative.status, RangeStatus::Parsed);
    }

    #[test]
    fn range_repairs() {
        let repaired = |low, high| Range::bounds(Some(low), Some(high), RangeStatus::Repaired);
        assert_eq!(parse_range("136144"), repaired(136.0, 144.0));
        assert_eq!(parse_range("4.4.0-10.0"), repaired(4.4, 10.0));
        assert_eq!(parse_range("4.4-10.0.0"), repaired(4.4, 10.0));
        // Only when the repair gives a proper range.
        for raw in ["144136", "144144", "10.0.0-4.4", "1361440", "13614"] {
            assert_eq!(parse_range(raw).status, RangeStatus::Unparsed, "{raw}");
        }
    }

    #[test]
    fn unreadable_ranges_never_panic() {
        let huge = "9".repeat(400);
        let inputs = [
            "-",
            "--",
            "..",
            "1e5",
            "10-5",
            "1-2-3",
            "<",
            "> ",
            "4.4.0.0-10",
            "0.5-",
            "-0.5",
            "1 to 5",
            "½-1",
            &huge,
            &format!("1-{huge}"),
        ];
        for raw in inputs {
            let parsed = parse_range(raw);
            assert_eq!(parsed.status, RangeStatus::Unparsed, "{raw}");
            assert_eq!(
                (parsed.low, parsed.high, parsed.text),
                (None, None, None),
                "{raw}"
            );
        }
        // Letters without digits are a qualitative reference, whatever they say.
        for raw in ["NaN", "a-b", "é-ü", "Trace"] {
            assert_eq!(parse_range(raw).text.as_deref(), Some(raw));
        }
    }

    #[test]
    fn evaluations() {
        let n = Reading::Number;
        let c = Reading::Censored;
        let r = range(Some(13.5), Some(18.0));
        assert_eq!(evaluate(&n(13.5), &r), Some("normal"));
        assert_eq!(evaluate(&n(18.0), &r), Some("normal"));
        assert_eq!(evaluate(&n(13.4), &r), Some("low"));
        assert_eq!(evaluate(&n(18.1), &r), Some("high"));
        assert_eq!(evaluate(&n(5.0), &Range::default()), None);
        assert_eq!(evaluate(&n(0.8), &range(None, Some(0.8))), Some("normal"));
        assert_eq!(evaluate(&n(58.0), &range(Some(60.0), None)), Some("low"));
        // Censored values.
        assert_eq!(
            evaluate(&c(Operator::Lt, 0.1), &range(Some(0.5), Some(4.0))),
            Some("low")
        );
        assert_eq!(
            evaluate(&c(Operator::Lt, 0.5), &range(Some(0.5), Some(4.0))),
            Some("low")
        );
        assert_eq!(
            evaluate(&c(Operator::Le, 0.5), &range(Some(0.5), Some(4.0))),
            None
        );
        assert_eq!(
            evaluate(&c(Operator::Lt, 0.1), &range(Some(0.0), Some(4.0))),
            None
        );
        assert_eq!(
            evaluate(&c(Operator::Lt, 3.0), &range(None, Some(4.0))),
            Some("normal")
        );
        assert_eq!(
            evaluate(&c(Operator::Gt, 60.0), &range(Some(0.0), Some(100.0))),
            None
        );
        assert_eq!(
            evaluate(&c(Operator::Gt, 60.0), &range(Some(60.0), None)),
            Some("normal")
        );
        assert_eq!(
            evaluate(&c(Operator::Gt, 100.0), &range(Some(0.0), Some(100.0))),
            Some("high")
        );
        assert_eq!(
            evaluate(&c(Operator::Ge, 100.0), &range(Some(0.0), Some(100.0))),
            None
        );
        assert_eq!(
            evaluate(&c(Operator::Gt, 50.0), &range(Some(60.0), None)),
            None
        );
        // Qualitative.
        let negative = Range {
            text: Some("Negative".into()),
            ..Range::default()
        };
        assert_eq!(
            evaluate(&Reading::Text("negative".into()), &negative),
            Some("normal")
        );
        assert_eq!(
            evaluate(&Reading::Text("2+".into()), &negative),
            Some("abnormal")
        );
        assert_eq!(evaluate(&n(1.0), &negative), None);
        assert_eq!(evaluate(&Reading::Text("Trace".into()), &r), None);
    }

    #[test]
    fn flag_contradictions() {
        assert!(contradicts(Some("High"), Some("low")));
        assert!(contradicts(Some("normal"), Some("abnormal")));
        assert!(!contradicts(Some("HIGH"), Some("high")));
        assert!(!contradicts(Some("Abnormal"), Some("normal")));
        assert!(!contradicts(Some("Negative"), Some("abnormal")));
        assert!(!contradicts(Some("High"), None));
        assert!(!contradicts(None, Some("high")));
    }
}
