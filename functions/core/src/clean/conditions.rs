//! conditions: diagnoses and their details, keyed by the source's record `id`.

use chrono::NaiveDate;

use super::common;
use super::{CleanRow, Cleaner, Notes, Reason, Rejection};
use crate::table::Table;
use crate::value::{col, Column, ColumnType::*, Value};

#[derive(Debug, Default, Clone, Copy)]
pub struct ConditionsCleaner;

#[derive(Debug, Clone, PartialEq)]
pub struct ConditionRow {
    /// The source record id: one id is one fact (DATA_NOTES 4.1), so it is the natural key.
    pub id: i64,
    pub impairment_category: Option<String>,
    pub impairment: Option<String>,
    pub feature_type: Option<String>,
    pub feature: String,
    pub icd_code: Option<String>,
    pub report_date: Option<NaiveDate>,
    pub clinician_specialty: Option<String>,
    pub specialty: Option<&'static str>,
    pub value: Option<String>,
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
        let specialty = common::specialty(raw.get("clinician_specialty"), notes);
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

impl CleanRow for ConditionRow {
    const COLUMNS: &'static [Column] = &[
        col("id", Int8),
        col("impairment_category", Text),
        col("impairment", Text),
        col("feature_type", Text),
        col("feature", Text),
        col("icd_code", Text),
        col("report_date", Date),
        col("clinician_specialty", Text),
        col("specialty", Text),
        col("value", Text),
    ];

    fn into_values(self) -> Vec<Value> {
        vec![
            Some(self.id).into(),
            self.impairment_category.into(),
            self.impairment.into(),
            self.feature_type.into(),
            self.feature.into(),
            self.icd_code.into(),
            self.report_date.into(),
            self.clinician_specialty.into(),
            self.specialty.into(),
            self.value.into(),
        ]
    }
}
