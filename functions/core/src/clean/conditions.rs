//! conditions: diagnoses and their details, keyed by the source's record `id`.

use chrono::NaiveDate;

use super::common;
use super::{Cleaner, Notes, Reason, Rejection};
use crate::table::Table;

#[derive(Debug, Default, Clone, Copy)]
pub struct ConditionsCleaner;

clean_row! {
    #[derive(Debug, Clone, PartialEq)]
    pub struct ConditionRow {
        /// The source record id: one id is one fact (DATA_NOTES 4.1), so it is the natural key.
        pub id: i64 => Int8,
        pub impairment_category: Option<String> => Text,
        pub impairment: Option<String> => Text,
        pub feature_type: Option<String> => Text,
        pub feature: String => Text,
        pub icd_code: Option<String> => Text,
        pub report_date: Option<NaiveDate> => Date,
        pub clinician_specialty: Option<String> => Text,
        pub specialty: Option<&'static str> => Text,
        pub value: Option<String> => Text,
    }
}

impl Cleaner for ConditionsCleaner {
    type Row = ConditionRow;
    const TABLE: Table = Table::Conditions;
    const SOURCE_COLUMNS: &'static [&'static str] = &[
        "id",
        "impairment_category",
        "impairment",
        "feature_type",
        "feature",
        "icd_code",
        "report_date",
        "clinician_specialty",
        "value",
        "person_id",
    ];
    const REQUIRED_COLUMNS: &'static [&'static str] =
        &["id", "person_id", "feature", "value", "report_date"];

    fn clean(&self, raw: &super::RawRow<'_>, notes: &mut Notes) -> Result<ConditionRow, Rejection> {
        let id = raw
            .get("id")
            .ok_or(Rejection::new(Reason::MissingRequiredValue, "id"))?;
        let id = common::parse_positive_int(common::strip_float_zero(id).unwrap_or(id))
            .ok_or(Rejection::new(Reason::InvalidId, "id"))?;
        let feature = raw
            .get("feature")
            .ok_or(Rejection::new(Reason::MissingRequiredValue, "feature"))?;
        let specialty =
            common::specialty(raw.get("clinician_specialty"), "clinician_specialty", notes);
        Ok(ConditionRow {
            id,
            impairment_category: raw.get("impairment_category").map(str::to_owned),
            impairment: raw.get("impairment").map(str::to_owned),
            feature_type: raw.get("feature_type").map(str::to_owned),
            feature: feature.to_owned(),
            icd_code: common::icd10(raw.get("icd_code"), "icd_code", notes),
            report_date: common::date(raw.get("report_date"), "report_date", notes),
            clinician_specialty: specialty.source,
            specialty: specialty.code,
            value: raw.get("value").map(str::to_owned),
        })
    }
}
