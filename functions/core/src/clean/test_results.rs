//! The `tests` table (test results): vitals, imaging, ECG, echo, stress tests and other
//! examinations, one finding a row (the module is not `tests`, which reads as a test module).
//!
//! The value column is free text that sometimes holds a number. It is always kept verbatim;
//! beside it the cleaner fills typed columns when the text is unambiguously one of a few
//! shapes (DATA_NOTES 8.1, 8.2): blood pressure `136/84`, a number, a number with a unit
//! (`60%`, `22 mmHg`, `5.4 cm`), a censored number (`<0.1`), a range (`50-55`), a score
//! (`28/30`) or a duration (`00 hours, 04 minutes, 46 seconds`).
//!
//! Units are never converted: `5.4 cm` stays 5.4 with unit `cm` next to LVDD values written in
//! mm (`46`). Which unit an unlabelled number is in is a feature-level judgement for the
//! feature layer, not something to guess while cleaning.

use chrono::NaiveDate;

use super::common::{self, parse_censored, split_range};
use super::{Cleaner, Flag, Notes, Reason, Rejection};
use crate::table::Table;

#[derive(Debug, Default, Clone, Copy)]
pub struct TestResultsCleaner;

clean_row! {
    #[derive(Debug, Clone, PartialEq)]
    pub struct TestResultRow {
        pub impairment_category: Option<String> => Text,
        pub impairment: Option<String> => Text,
        pub feature: String => Text,
        pub icd_code: Option<String> => Text,
        pub report_date: Option<NaiveDate> => Date,
        /// The value exactly as written (trimmed); free text stays here.
        pub value: Option<String> => Text,
        /// The number in the value: a measurement, a censoring bound, a score's points or a
        /// duration in seconds.
        pub value_num: Option<f64> => Float8,
        /// `<`, `<=`, `>` or `>=` for a censored value.
        pub value_operator: Option<&'static str> => Text,
        /// The unit as written (`%`, `mmHg`, `cm`), `/30` for a score out of 30, `s` for a duration.
        pub value_unit: Option<String> => Text,
        /// A value written as a range (`50-55`).
        pub value_low: Option<f64> => Float8,
        pub value_high: Option<f64> => Float8,
        /// Blood pressure, from `SYS/DIA` on "Blood pressure" rows.
        pub systolic: Option<i32> => Int4,
        pub diastolic: Option<i32> => Int4,
    }
}

impl Cleaner for TestResultsCleaner {
    type Row = TestResultRow;
    const TABLE: Table = Table::Tests;
    const SOURCE_COLUMNS: &'static [&'static str] = &[
        "impairment_category",
        "impairment",
        "feature_type",
        "feature",
        "icd_code",
        "report_date",
        "value",
        "person_id",
    ];
    const REQUIRED_COLUMNS: &'static [&'static str] =
        &["person_id", "feature", "value", "report_date"];

    fn clean(
        &self,
        raw: &super::RawRow<'_>,
        notes: &mut Notes,
    ) -> Result<TestResultRow, Rejection> {
        let feature = raw
            .get("feature")
            .ok_or(Rejection::new(Reason::MissingRequiredValue, "feature"))?;
        common::drop_constant_column(raw.get("feature_type"), "feature_type", "Test", notes);
        let value = raw.get("value");
        let parsed = match value {
            None => Parsed::default(),
            Some(v) if is_blood_pressure(feature) => {
                let bp = blood_pressure(v);
                if bp.is_none() {
                    notes.flag(Flag::ValueUnparsed, "value");
                }
                let (systolic, diastolic) = bp.unzip();
                Parsed {
                    systolic,
                    diastolic,
                    ..Parsed::default()
                }
            }
            Some(v) => parse_value(v),
        };
        Ok(TestResultRow {
            impairment_category: raw.get("impairment_category").map(str::to_owned),
            impairment: raw.get("impairment").map(str::to_owned),
            feature: feature.to_owned(),
            icd_code: common::icd10(raw.get("icd_code"), "icd_code", notes),
            report_date: common::date(raw.get("report_date"), "report_date", notes),
            value: value.map(str::to_owned),
            value_num: parsed.num,
            value_operator: parsed.operator,
            value_unit: parsed.unit,
            value_low: parsed.low,
            value_high: parsed.high,
            systolic: parsed.systolic,
            diastolic: parsed.diastolic,
        })
    }
}

/// The typed reading of a value; every field `None` for free text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Parsed {
    pub num: Option<f64>,
    pub operator: Option<&'static str>,
    pub unit: Option<String>,
    pub low: Option<f64>,
    pub high: Option<f64>,
    pub systolic: Option<i32>,
    pub diastolic: Option<i32>,
}

// ---------------------------------------------------------------------------------------------
// Blood pressure

/// Only the feature "Blood pressure" itself: "Blood pressure-Type of reading" is another
/// feature (with an empty value in the sample).
fn is_blood_pressure(feature: &str) -> bool {
    common::fold(feature) == "blood pressure"
}

/// `136/84` (an optional trailing `mmHg` is allowed) -> (136, 84), when plausible: systolic
/// 40-300, diastolic 20-200 and systolic above diastolic. The bounds are the database's CHECK
/// constraints; the sample spans 112-181 / 49-103.
pub fn blood_pressure(raw: &str) -> Option<(i32, i32)> {
    let raw = raw.trim();
    let raw = strip_suffix_ignore_case(raw, "mmhg")
        .unwrap_or(raw)
        .trim_end();
    let (sys, dia) = raw.split_once('/')?;
    let int = |s: &str| {
        common::parse_positive_int(s.trim())
            .filter(|v| *v <= 1000)
            .map(|v| v as i32)
    };
    let (sys, dia) = (int(sys)?, int(dia)?);
    let plausible = (40..=300).contains(&sys) && (20..=200).contains(&dia) && sys > dia;
    plausible.then_some((sys, dia))
}

fn strip_suffix_ignore_case<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    let tail = s.get(cut..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| &s[..cut])
}

// ---------------------------------------------------------------------------------------------
// Other values

/// Reads a non-blood-pressure value; the first shape that matches wins, free text matches none.
pub fn parse_value(raw: &str) -> Parsed {
    let raw = raw.trim();
    if let Some(v) = common::number(raw) {
        return Parsed {
            num: Some(v),
            ..Parsed::default()
        };
    }
    if let Some((op, v)) = parse_censored(raw) {
        return Parsed {
            num: Some(v),
            operator: Some(op.as_str()),
            ..Parsed::default()
        };
    }
    if let Some((low, high)) = split_range(raw) {
        return Parsed {
            low: Some(low),
            high: Some(high),
            ..Parsed::default()
        };
    }
    let with_unit = score(raw)
        .or_else(|| duration_seconds(raw).map(|s| (s, "s".to_owned())))
        .or_else(|| number_with_unit(raw));
    match with_unit {
        Some((num, unit)) => Parsed {
            num: Some(num),
            unit: Some(unit),
            ..Parsed::default()
        },
        None => Parsed::default(),
    }
}

/// `28/30` -> (28, `/30`): the points, and what they are out of as the unit (MoCA, MMSE).
fn score(raw: &str) -> Option<(f64, String)> {
    let (points, out_of) = raw.split_once('/')?;
    let (points, out_of) = (points.trim(), out_of.trim());
    common::number(out_of)?;
    Some((common::number(points)?, format!("/{out_of}")))
}

/// Units seen after numbers in the sample (`%`, `mmHg`, `cm`) and the few others the same
/// measurements are written in (weight in `kg`/`lb`, height in `in`/`m`, BMI in `kg/m2`: the
/// BMI feature converts by them). A closed list, so that `2D echo`, `1st degree AV block` or
/// `BIRADS 1` stay free text. Matched ignoring case; the unit is stored as written.
const UNITS: &[&str] = &[
    "%", "mmhg", "mm hg", "cm", "mm", "cm2", "bpm", "kg", "lb", "lbs", "ms", "in", "m", "kg/m2",
];

/// `60%` -> (60, `%`), `22 mmHg` -> (22, `mmHg`), `5.4 cm` -> (5.4, `cm`).
fn number_with_unit(raw: &str) -> Option<(f64, String)> {
    let split = raw
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && (c == '-' || c == '+'))))
        .map(|(i, _)| i)?;
    let (number, unit) = (&raw[..split], raw[split..].trim());
    let known = UNITS.iter().any(|u| u.eq_ignore_ascii_case(unit));
    known.then(|| common::number(number).map(|v| (v, unit.to_owned())))?
}

/// `00 hours, 04 minutes, 46 seconds` (commas optional, any of the parts) -> 286 seconds.
/// Every part is a number followed by its unit, and each unit appears at most once.
pub fn duration_seconds(raw: &str) -> Option<f64> {
    let words: Vec<&str> = raw
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect();
    let pairs = words.chunks_exact(2);
    if words.is_empty() || !pairs.remainder().is_empty() {
        return None;
    }
    let mut seen = [false; 3];
    let mut total = 0.0;
    for pair in pairs {
        let amount = common::number(pair[0]).filter(|v| *v >= 0.0)?;
        let (slot, seconds) = match pair[1].to_ascii_lowercase().as_str() {
            "hour" | "hours" | "hr" | "hrs" => (0, 3600.0),
            "minute" | "minutes" | "min" | "mins" => (1, 60.0),
            "second" | "seconds" | "sec" | "secs" => (2, 1.0),
            _ => return None,
        };
        if std::mem::replace(&mut seen[slot], true) {
            return None;
        }
        total += amount * seconds;
    }
    total.is_finite().then_some(total)
}

#[cfg(test)]
mod tests {

    use super::*;
    use crate::clean::{CleanRow, CleanedRow};
    use crate::value::Value;
    use crate::Outcome;

    use crate::clean::test_support;

    fn sample() -> Vec<Outcome> {
        test_support::sample_outcomes(crate::Table::Tests)
    }

    fn clean_rows() -> Vec<CleanedRow> {
        test_support::sample_clean_rows(crate::Table::Tests)
    }

    fn get<'a>(row: &'a CleanedRow, column: &str) -> &'a Value {
        test_support::value(TestResultRow::COLUMNS, row, column)
    }

    fn text<'a>(row: &'a CleanedRow, column: &str) -> Option<&'a str> {
        test_support::text(TestResultRow::COLUMNS, row, column)
    }

    fn num(row: &CleanedRow, column: &str) -> Option<f64> {
        test_support::num(TestResultRow::COLUMNS, row, column)
    }

    fn int(row: &CleanedRow, column: &str) -> Option<i32> {
        match get(row, column) {
            Value::Int4(v) => *v,
            other => panic!("{column} is not an int4: {other:?}"),
        }
    }

    /// The first clean row with this feature and value.
    fn find<'a>(rows: &'a [CleanedRow], feature: &str, value: &str) -> &'a CleanedRow {
        rows.iter()
            .find(|r| text(r, "feature") == Some(feature) && text(r, "value") == Some(value))
            .unwrap_or_else(|| panic!("no row {feature} {value}"))
    }

    #[test]
    fn every_sample_row_is_clean() {
        assert_eq!(sample().len(), 500);
        let rows = clean_rows();
        assert_eq!(rows.len(), 500, "no sample row is quarantined");
        for row in &rows {
            assert_eq!(row.values.len(), TestResultRow::COLUMNS.len());
            for (value, column) in row.values.iter().zip(TestResultRow::COLUMNS) {
                assert_eq!(value.column_type(), column.ty, "{}", column.name);
            }
            assert!(
                !row.flags.contains(&Flag::ValueUnparsed),
                "all 56 BPs parse"
            );
        }
    }

    #[test]
    fn blood_pressure_rows() {
        let rows = clean_rows();
        let row = find(&rows, "Blood pressure", "136/84");
        assert_eq!(
            (int(row, "systolic"), int(row, "diastolic")),
            (Some(136), Some(84))
        );
        assert_eq!(num(row, "value_num"), None);
        assert_eq!(text(row, "value_unit"), None);
        let bp_rows: Vec<_> = rows
            .iter()
            .filter(|r| text(r, "feature") == Some("Blood pressure"))
            .collect();
        assert!(bp_rows.iter().all(|r| int(r, "systolic").is_some()));
        let extreme = find(&rows, "Blood pressure", "181/103");
        assert_eq!(int(extreme, "diastolic"), Some(103));
        // "Blood pressure-Type of reading" is another feature, with an empty value.
        let kind = rows
            .iter()
            .find(|r| text(r, "feature") == Some("Blood pressure-Type of reading"))
            .unwrap();
        assert_eq!((text(kind, "value"), int(kind, "systolic")), (None, None));
        assert!(kind.flags.is_empty());
    }

    #[test]
    fn numbers_with_units() {
        let rows = clean_rows();
        let ef = find(
            &rows,
            "Echocardiogram - Ejection Fraction / LVEF / EF",
            "60%",
        );
        assert_eq!(
            (num(ef, "value_num"), text(ef, "value_unit")),
            (Some(60.0), Some("%"))
        );
        let rvsp = find(
            &rows,
            "Echocardiogram - Right Ventricle Systolic Pressure / RVSP",
            "22 mmHg",
        );
        assert_eq!(
            (num(rvsp, "value_num"), text(rvsp, "value_unit")),
            (Some(22.0), Some("mmHg"))
        );
        let lvdd = find(
            &rows,
            "Echocardiogram - Left Ventricle / LVDD (diastolic diameter",
            "5.4 cm",
        );
        assert_eq!(
            (num(lvdd, "value_num"), text(lvdd, "value_unit")),
            (Some(5.4), Some("cm"))
        );
        // Not converted: the mm values next to it stay as written, without a unit.
        let lvdd_mm = find(
            &rows,
            "Echocardiogram - Left Ventricle / LVDD (diastolic diameter",
            "46",
        );
        assert_eq!(
            (num(lvdd_mm, "value_num"), text(lvdd_mm, "value_unit")),
            (Some(46.0), None)
        );
    }

    #[test]
    fn censored_psa_range_score_and_duration() {
        let rows = clean_rows();
        let psa = find(&rows, "PSA", "<0.1");
        assert_eq!(text(psa, "value_operator"), Some("<"));
        assert_eq!(num(psa, "value_num"), Some(0.1));

        let ef = find(
            &rows,
            "Echocardiogram - Ejection Fraction / LVEF / EF",
            "50-55",
        );
        assert_eq!(
            (num(ef, "value_low"), num(ef, "value_high")),
            (Some(50.0), Some(55.0))
        );
        assert_eq!(num(ef, "value_num"), None);
        let rica = find(&rows, "Carotid ultrasound/doppler/duplex - RICA", "0-39");
        assert_eq!(
            (num(rica, "value_low"), num(rica, "value_high")),
            (Some(0.0), Some(39.0))
        );

        let moca = find(&rows, "MoCA", "28/30");
        assert_eq!(
            (num(moca, "value_num"), text(moca, "value_unit")),
            (Some(28.0), Some("/30"))
        );
        assert_eq!(int(moca, "systolic"), None);

        let minutes = "Cardiac stress test - Minutes of exercise";
        let with_commas = find(&rows, minutes, "00 hours, 04 minutes, 46 seconds");
        assert_eq!(num(with_commas, "value_num"), Some(286.0));
        assert_eq!(text(with_commas, "value_unit"), Some("s"));
        let without = find(&rows, minutes, "00 hours 04 minutes 34 seconds");
        assert_eq!(num(without, "value_num"), Some(274.0));
    }

    #[test]
    fn free_text_stays_text() {
        let rows = clean_rows();
        for (feature, value) in [
            ("EKG - Heart blocks", "1st degree AV block"),
            ("Echocardiogram - Type", "2D echo"),
            ("Mammogram", "BIRADS 1"),
            ("Findings/Impression/Conclusion", "atherosclerosis"),
        ] {
            let row = find(&rows, feature, value);
            assert_eq!(text(row, "value"), Some(value));
            for column in ["value_num", "value_low", "value_high"] {
                assert_eq!(num(row, column), None, "{value} {column}");
            }
            assert_eq!(text(row, "value_unit"), None);
            assert!(row.flags.is_empty(), "{value}: {:?}", row.flags);
        }
        let pathology = rows
            .iter()
            .find(|r| text(r, "feature") == Some("Pathology report"))
            .unwrap();
        assert_eq!(num(pathology, "value_num"), None);
    }

    #[test]
    fn invalid_icd_codes_are_nulled() {
        let rows = clean_rows();
        let ekg = rows
            .iter()
            .find(|r| {
                r.person_id == 3610
                    && text(r, "feature") == Some("EKG - Overall")
                    && r.raw_values
                        .as_ref()
                        .is_some_and(|v| v["icd_code"] == "361")
            })
            .expect("the 361 EKG row of 3610");
        assert_eq!(text(ekg, "icd_code"), None);
        assert!(ekg.flags.contains(&Flag::InvalidIcdCode));

        let weight = rows
            .iter()
            .find(|r| {
                r.raw_values
                    .as_ref()
                    .is_some_and(|v| v["icd_code"] == "124")
            })
            .expect("the 124 weight row");
        assert_eq!(
            (weight.person_id, text(weight, "feature")),
            (3622, Some("Weight"))
        );
        assert_eq!(text(weight, "icd_code"), None);

        let dot_space = rows
            .iter()
            .filter(|r| text(r, "icd_code") == Some("K57.90"))
            .count();
        assert!(dot_space > 0, "K57. 90 is repaired");
    }

    #[test]
    fn placeholder_dates_are_nulled() {
        let rows = clean_rows();
        let placeholder = rows
            .iter()
            .find(|r| r.flags.contains(&Flag::PlaceholderDate))
            .expect("a placeholder report date");
        assert!(matches!(get(placeholder, "report_date"), Value::Date(None)));
        let raw = &placeholder.raw_values.as_ref().unwrap()["report_date"];
        assert!(raw == "1926-07-01" || raw == "1976-07-01", "{raw}");
    }

    // -- Synthetic unit tests ---------------------------------------------------------------

    #[test]
    fn blood_pressures() {
        assert_eq!(blood_pressure("136/84"), Some((136, 84)));
        assert_eq!(blood_pressure(" 120 / 80 "), Some((120, 80)));
        assert_eq!(blood_pressure("120/80 mmHg"), Some((120, 80)));
        assert_eq!(blood_pressure("300/200"), Some((300, 200)));
        for bad in [
            "",
            "/",
            "120",
            "120/",
            "/80",
            "80/120",
            "120/120",
            "39/20",
            "301/80",
            "120/19",
            "120/80/60",
            "120.5/80",
            "-120/80",
            "12O/80",
            "1e2/80",
            "NaN/NaN",
            "99999999999999999999/80",
            "120/８０",
        ] {
            assert_eq!(blood_pressure(bad), None, "{bad}");
        }
    }

    #[test]
    fn an_unreadable_blood_pressure_is_flagged() {
        let input = "feature,value,report_date,person_id\n\
                     Blood pressure,120/80,2030-01-01,1\n\
                     Blood pressure,high,2030-01-01,1\n\
                     Blood pressure,,2030-01-01,1\n\
                     ,1,2030-01-01,1\n";
        let outcomes: Vec<_> = crate::Table::Tests
            .clean(input.as_bytes())
            .unwrap()
            .collect::<std::io::Result<_>>()
            .unwrap();
        let flags: Vec<_> = outcomes
            .iter()
            .map(|o| match o {
                Outcome::Clean(r) => Ok(r.flags.clone()),
                Outcome::Quarantined(q) => Err((q.reason, q.column)),
            })
            .collect();
        assert_eq!(
            flags,
            vec![
                Ok(vec![]),
                Ok(vec![Flag::ValueUnparsed]),
                Ok(vec![]),
                Err((Reason::MissingRequiredValue, Some("feature"))),
            ]
        );
    }

    #[test]
    fn feature_type_other_than_test_is_kept() {
        let input = "feature_type,feature,value,report_date,person_id\n\
                     Test,Pulse,72,2030-01-01,1\n\
                     Lab,Pulse,72,2030-01-01,1\n";
        let rows: Vec<_> = crate::Table::Tests
            .clean(input.as_bytes())
            .unwrap()
            .map(|o| match o.unwrap() {
                Outcome::Clean(r) => r,
                Outcome::Quarantined(q) => panic!("{q:?}"),
            })
            .collect();
        assert_eq!(rows[0].raw_values, None);
        assert_eq!(rows[1].raw_values.as_ref().unwrap()["feature_type"], "Lab");
        assert!(rows[1].flags.is_empty());
    }

    fn parsed(num: Option<f64>, unit: Option<&str>) -> Parsed {
        Parsed {
            num,
            unit: unit.map(str::to_owned),
            ..Parsed::default()
        }
    }

    #[test]
    fn value_shapes() {
        assert_eq!(parse_value("58"), parsed(Some(58.0), None));
        assert_eq!(parse_value("0.00"), parsed(Some(0.0), None));
        assert_eq!(parse_value("60%"), parsed(Some(60.0), Some("%")));
        assert_eq!(parse_value("60 %"), parsed(Some(60.0), Some("%")));
        assert_eq!(parse_value("22 mmHg"), parsed(Some(22.0), Some("mmHg")));
        assert_eq!(parse_value("5.4 CM"), parsed(Some(5.4), Some("CM")));
        // Body measures in the units the BMI feature converts from.
        assert_eq!(parse_value("82 kg"), parsed(Some(82.0), Some("kg")));
        assert_eq!(parse_value("180.5 lbs"), parsed(Some(180.5), Some("lbs")));
        assert_eq!(parse_value("70 in"), parsed(Some(70.0), Some("in")));
        assert_eq!(parse_value("1.78 m"), parsed(Some(1.78), Some("m")));
        assert_eq!(parse_value("24.2 kg/m2"), parsed(Some(24.2), Some("kg/m2")));
        assert_eq!(parse_value("28/30"), parsed(Some(28.0), Some("/30")));
        assert_eq!(parse_value("0/30"), parsed(Some(0.0), Some("/30")));
        assert_eq!(
            parse_value("<0.1"),
            Parsed {
                num: Some(0.1),
                operator: Some("<"),
                ..Parsed::default()
            }
        );
        assert_eq!(
            parse_value("28-33"),
            Parsed {
                low: Some(28.0),
                high: Some(33.0),
                ..Parsed::default()
            }
        );
    }

    #[test]
    fn free_text_and_garbage_never_panic() {
        let huge = "9".repeat(400);
        let inputs = [
            "",
            "-",
            "--",
            ".",
            "..",
            "1e5",
            "NaN",
            "inf",
            "%",
            "60%%",
            "2D echo",
            "BIRADS 1",
            "1st degree AV block",
            "55-50",
            "1-2-3",
            "/",
            "28/",
            "/30",
            "a/b",
            "7(3+4)",
            "<",
            "< ",
            "<=x",
            "5 furlongs",
            "５ cm",
            "é",
            "60 %s",
            &huge,
            &format!("{huge}%"),
            &format!("1-{huge}"),
            &format!("{huge} hours"),
        ];
        for raw in inputs {
            assert_eq!(parse_value(raw), Parsed::default(), "{raw}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(
            duration_seconds("00 hours, 04 minutes, 46 seconds"),
            Some(286.0)
        );
        assert_eq!(
            duration_seconds("00 hours 04 minutes 34 seconds"),
            Some(274.0)
        );
        assert_eq!(duration_seconds("1 hour, 30 min"), Some(5400.0));
        assert_eq!(duration_seconds("12 Minutes"), Some(720.0));
        for bad in [
            "",
            "4",
            "minutes",
            "4 minutes 3",
            "4 minutes, 5 minutes",
            "-1 minutes",
            "4 fortnights",
            "x minutes",
            ",,,",
        ] {
            assert_eq!(duration_seconds(bad), None, "{bad}");
        }
    }
}
