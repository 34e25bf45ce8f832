//! rx: prescriptions. The drug is resolved to a normalised name, an active ingredient and a
//! drug class through the lookup tables in `functions/core/data/` (see `docs/drugs.md`),
//! because the source's `rx_type` label is free text and sometimes wrong (HYTRIN, terazosin,
//! is labelled "Quinazoline Derivative" but is an alpha-1 blocker).

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::NaiveDate;

use super::common;
use super::{Cleaner, Flag, Notes, Reason, Rejection};
use crate::table::Table;

#[derive(Debug, Default, Clone, Copy)]
pub struct RxCleaner;

clean_row! {
    #[derive(Debug, Clone, PartialEq)]
    pub struct RxRow {
        pub impairment_category: Option<String> => Text,
        pub impairment: Option<String> => Text,
        /// Canadian Drug Identification Number, 8 digits.
        pub din: Option<String> => Text,
        pub rx_norm: Option<String> => Text,
        /// The drug name as written.
        pub rx_name: String => Text,
        /// Upper case, spaces collapsed, known misspellings fixed.
        pub rx_name_norm: String => Text,
        pub ingredient: Option<String> => Text,
        /// From the ingredient when the drug is known, else from the `rx_type` label.
        pub drug_class: Option<&'static str> => Text,
        /// The label as written, and the class it names.
        pub rx_type: Option<String> => Text,
        pub rx_type_class: Option<&'static str> => Text,
        pub start_date: Option<NaiveDate> => Date,
        /// As written (MM/DD/YYYY in the source): never shifted, see `docs/cleaning.md`.
        pub end_date: Option<NaiveDate> => Date,
        pub rx_date: Option<NaiveDate> => Date,
    }
}

/// A drug from `drugs.csv`.
#[derive(Debug)]
pub struct Drug {
    pub name: String,
    pub ingredient: Option<String>,
    pub drug_class: &'static str,
}

/// The lookup tables, parsed once from the CSV files compiled into the binary.
pub struct DrugBook {
    pub classes: Vec<(&'static str, &'static str)>,
    drugs: Vec<Drug>,
    by_name: HashMap<String, usize>,
    by_rx_norm: HashMap<String, usize>,
    by_din: HashMap<String, usize>,
    aliases: HashMap<String, String>,
    by_label: HashMap<String, &'static str>,
}

const DRUG_CLASSES_CSV: &str = include_str!("../../data/drug_classes.csv");
const DRUGS_CSV: &str = include_str!("../../data/drugs.csv");
const DRUG_ALIASES_CSV: &str = include_str!("../../data/drug_aliases.csv");
const RX_TYPES_CSV: &str = include_str!("../../data/rx_types.csv");

/// Rows of a compiled-in CSV (they are checked by this module's tests).
fn rows(csv_text: &'static str) -> impl Iterator<Item = csv::StringRecord> {
    csv::Reader::from_reader(csv_text.as_bytes())
        .into_records()
        .map(|r| r.expect("compiled-in lookup CSV is valid"))
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_owned().into_boxed_str())
}

pub static DRUG_BOOK: LazyLock<DrugBook> = LazyLock::new(|| {
    let classes: Vec<(&'static str, &'static str)> = rows(DRUG_CLASSES_CSV)
        .map(|r| (leak(&r[0]), leak(&r[1])))
        .collect();
    let class = |name: &str| -> &'static str {
        classes
            .iter()
            .find(|(c, _)| *c == name)
            .map(|(c, _)| *c)
            .unwrap_or_else(|| panic!("unknown drug class {name} in lookup CSV"))
    };
    let mut book = DrugBook {
        classes: classes.clone(),
        drugs: Vec::new(),
        by_name: HashMap::new(),
        by_rx_norm: HashMap::new(),
        by_din: HashMap::new(),
        aliases: rows(DRUG_ALIASES_CSV)
            .map(|r| (r[0].to_owned(), r[1].to_owned()))
            .collect(),
        by_label: rows(RX_TYPES_CSV)
            .map(|r| (r[0].to_owned(), class(&r[1])))
            .collect(),
    };
    for r in rows(DRUGS_CSV) {
        let index = book.drugs.len();
        book.by_name.insert(r[0].to_owned(), index);
        for code in r[3].split_whitespace() {
            book.by_rx_norm.insert(code.to_owned(), index);
        }
        for code in r[4].split_whitespace() {
            book.by_din.insert(code.to_owned(), index);
        }
        book.drugs.push(Drug {
            name: r[0].to_owned(),
            ingredient: Some(r[1].to_owned()).filter(|s| !s.is_empty()),
            drug_class: class(&r[2]),
        });
    }
    book
});

impl DrugBook {
    /// Upper case, whitespace collapsed, aliases applied: `Tyenol` -> `TYLENOL`.
    pub fn normalize_name(&self, raw: &str) -> String {
        let upper = raw
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_uppercase();
        self.aliases.get(&upper).cloned().unwrap_or(upper)
    }

    /// By RxNorm code first, then DIN, then the normalised name.
    pub fn resolve(&self, rx_norm: Option<&str>, din: Option<&str>, name: &str) -> Option<&Drug> {
        rx_norm
            .and_then(|c| self.by_rx_norm.get(c))
            .or_else(|| din.and_then(|c| self.by_din.get(c)))
            .or_else(|| self.by_name.get(name))
            .map(|&i| &self.drugs[i])
    }

    /// The class a free-text `rx_type` label names.
    pub fn label_class(&self, label: &str) -> Option<&'static str> {
        self.by_label.get(&common::fold(label)).copied()
    }
}

/// RxNorm concept ids are 1-10 digits; `190283.0` is the float artefact of `190283`.
fn rx_norm_code(raw: Option<&str>, notes: &mut Notes) -> Option<String> {
    let raw = raw?;
    let digits = common::strip_float_zero(raw).unwrap_or(raw);
    if (1..=10).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) {
        Some(digits.to_owned())
    } else {
        notes.keep_raw(Flag::InvalidRxNorm, "rx_norm", raw);
        None
    }
}

/// DINs are 8 digits; the source lost leading zeros and added `.0` (`2270102.0`).
fn din_code(raw: Option<&str>, notes: &mut Notes) -> Option<String> {
    let raw = raw?;
    let digits = common::strip_float_zero(raw).unwrap_or(raw);
    if !(1..=8).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        notes.keep_raw(Flag::InvalidDin, "din", raw);
        return None;
    }
    let din = format!("{digits:0>8}");
    // 8000xxxx numbers are Natural Product Numbers (a vitamin), not drug DINs.
    if din.starts_with("8000") {
        notes.flag(Flag::NaturalProductNumber, "din");
    }
    Some(din)
}

impl Cleaner for RxCleaner {
    type Row = RxRow;
    const TABLE: Table = Table::Rx;
    const SOURCE_COLUMNS: &'static [&'static str] = &[
        "impairment_category",
        "impairment",
        "din",
        "rx_name",
        "rx_type",
        "start_date",
        "end_date",
        "rx_date",
        "rx_norm",
        "person_id",
    ];
    const REQUIRED_COLUMNS: &'static [&'static str] = &["person_id", "rx_name", "rx_date"];

    fn clean(&self, raw: &super::RawRow<'_>, notes: &mut Notes) -> Result<RxRow, Rejection> {
        let book = &*DRUG_BOOK;
        let rx_name = raw
            .get("rx_name")
            .ok_or(Rejection::new(Reason::MissingRequiredValue, "rx_name"))?;
        let rx_norm = rx_norm_code(raw.get("rx_norm"), notes);
        let din = din_code(raw.get("din"), notes);
        let rx_name_norm = book.normalize_name(rx_name);
        let drug = book.resolve(rx_norm.as_deref(), din.as_deref(), &rx_name_norm);
        let rx_type = raw.get("rx_type");
        let rx_type_class = rx_type.and_then(|t| book.label_class(t));
        let drug_class = match drug {
            Some(drug) => {
                if rx_type_class.is_some_and(|c| c != drug.drug_class) {
                    notes.flag(Flag::ClassFromIngredient, "rx_type");
                }
                Some(drug.drug_class)
            }
            None => {
                notes.flag(Flag::UnknownDrug, "rx_name");
                rx_type_class
            }
        };
        let start_date = common::date(raw.get("start_date"), "start_date", notes);
        let end_date = common::date(raw.get("end_date"), "end_date", notes);
        if let (Some(start), Some(end)) = (start_date, end_date) {
            if end < start {
                notes.flag(Flag::EndBeforeStart, "end_date");
            }
        }
        Ok(RxRow {
            impairment_category: raw.get("impairment_category").map(str::to_owned),
            impairment: raw.get("impairment").map(str::to_owned),
            din,
            rx_norm,
            rx_name: rx_name.to_owned(),
            rx_name_norm,
            ingredient: drug.and_then(|d| d.ingredient.clone()),
            drug_class,
            rx_type: rx_type.map(str::to_owned),
            rx_type_class,
            start_date,
            end_date,
            rx_date: common::date(raw.get("rx_date"), "rx_date", notes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clean::Outcome;
    use crate::clean::{CleanRow, CleanedRow};
    use crate::value::Value;

    use crate::clean::test_support;

    fn sample_rows() -> Vec<CleanedRow> {
        let outcomes = test_support::sample_outcomes(Table::Rx);
        assert!(
            outcomes.iter().all(|o| matches!(o, Outcome::Clean(_))),
            "a sample row was quarantined"
        );
        test_support::sample_clean_rows(Table::Rx)
    }

    fn text<'a>(row: &'a CleanedRow, column: &str) -> Option<&'a str> {
        test_support::text(RxRow::COLUMNS, row, column)
    }

    fn find<'a>(rows: &'a [CleanedRow], person: i64, name: &str) -> &'a CleanedRow {
        rows.iter()
            .find(|r| r.person_id == person && text(r, "rx_name") == Some(name))
            .unwrap_or_else(|| panic!("{person} {name} not in sample"))
    }

    #[test]
    fn lookup_tables_are_consistent() {
        let book = &*DRUG_BOOK;
        assert!(book.classes.len() > 50);
        for alias_target in book.aliases.values() {
            assert!(book.by_name.contains_key(alias_target), "{alias_target}");
        }
        assert_eq!(book.drugs.len(), book.by_name.len(), "duplicate drug names");
    }

    #[test]
    fn every_sample_row_is_clean_and_every_drug_known() {
        let rows = sample_rows();
        assert_eq!(rows.len(), 480);
        for row in &rows {
            assert!(
                !row.flags.contains(&Flag::UnknownDrug),
                "{:?}",
                text(row, "rx_name")
            );
            assert!(text(row, "drug_class").is_some());
        }
    }

    #[test]
    fn hytrin_is_an_alpha_blocker_despite_its_label() {
        let rows = sample_rows();
        let hytrin = find(&rows, 3591, "HYTRIN");
        assert_eq!(text(hytrin, "ingredient"), Some("terazosin"));
        assert_eq!(text(hytrin, "drug_class"), Some("alpha_1_blocker"));
        assert_eq!(text(hytrin, "rx_type"), Some("Quinazoline Derivative"));
        assert!(hytrin.flags.contains(&Flag::ClassFromIngredient));
        let proscar = find(&rows, 3583, "PROSCAR");
        assert_eq!(
            text(proscar, "drug_class"),
            Some("five_alpha_reductase_inhibitor")
        );
        let lipoic = find(&rows, 3604, "ALPHA-LIPOIC ACID");
        assert_ne!(text(lipoic, "drug_class"), Some("alpha_1_blocker"));
    }

    #[test]
    fn float_codes_and_din_padding() {
        let rows = sample_rows();
        let flomax = find(&rows, 3585, "FLOMAX");
        assert_eq!(text(flomax, "rx_norm"), Some("190283"));
        let din_flomax = find(&rows, 3596, "Flomax");
        assert_eq!(text(din_flomax, "din"), Some("02270102"));
        assert_eq!(text(din_flomax, "rx_name_norm"), Some("FLOMAX"));
        assert_eq!(text(din_flomax, "drug_class"), Some("alpha_1_blocker"));
        let tylenol = find(&rows, 3586, "Tyenol");
        assert_eq!(text(tylenol, "rx_name_norm"), Some("TYLENOL"));
    }

    #[test]
    fn dates_placeholders_and_unshifted_end_dates() {
        let rows = sample_rows();
        let digoxin = find(&rows, 3588, "Digoxin");
        assert!(digoxin.flags.contains(&Flag::PlaceholderDate));
        assert_eq!(
            digoxin.raw_values.as_ref().unwrap()["end_date"],
            serde_json::json!("01/01/1900")
        );
        let end_i = RxRow::COLUMNS
            .iter()
            .position(|c| c.name == "end_date")
            .unwrap();
        assert_eq!(digoxin.values[end_i], Value::Date(None));
        let zoloft = find(&rows, 3596, "Zoloft");
        assert_eq!(
            zoloft.values[end_i],
            Value::Date(NaiveDate::from_ymd_opt(2007, 1, 31))
        );
        assert!(zoloft.flags.contains(&Flag::EndBeforeStart));
        // Each flag keeps the source column it was raised on.
        assert!(digoxin
            .flagged_columns
            .contains(&(Flag::PlaceholderDate, "end_date")));
        assert!(zoloft
            .flagged_columns
            .contains(&(Flag::EndBeforeStart, "end_date")));
    }

    #[test]
    fn bad_codes_are_nulled_and_kept_raw() {
        let mut notes = Notes::default();
        assert_eq!(rx_norm_code(Some("12.5"), &mut notes), None);
        assert_eq!(din_code(Some("123456789"), &mut notes), None);
        assert_eq!(
            din_code(Some("80003328.0"), &mut notes).as_deref(),
            Some("80003328")
        );
        assert!(notes.flags.contains(&Flag::InvalidRxNorm));
        assert!(notes.flags.contains(&Flag::InvalidDin));
        assert!(notes.flags.contains(&Flag::NaturalProductNumber));
    }
}
