//! lifestyle: habits, social and family history, functional status, immunisations.

use chrono::NaiveDate;

use super::common;
use super::{CleanRow, Cleaner, Notes, Reason, Rejection};
use crate::table::Table;
use crate::value::{col, Column, ColumnType::*, Value};

#[derive(Debug, Default, Clone, Copy)]
pub struct LifestyleCleaner;

#[derive(Debug, Clone, PartialEq)]
pub struct LifestyleRow {
    pub impairment_category: Option<String>,
    pub impairment: Option<String>,
    pub lifestyle_category: Option<String>,
    pub feature_type: Option<String>,
    pub feature: String,
    pub report_date: Option<NaiveDate>,
    pub clinician_specialty: Option<String>,
    pub specialty: Option<&'static str>,
    pub value: Option<String>,
    /// The value as a number when it is one (ages, visits per year, pulse pressure).
    pub value_num: Option<f64>,
    pub secondary_value: Option<String>,
}

impl Cleaner for LifestyleCleaner {
    type Row = LifestyleRow;
    const TABLE: Table = Table::Lifestyle;
    const SOURCE_COLUMNS: &'static [&'static str] = &[
        "impairment_category",
        "impairment",
        "lifestyle_category",
        "feature_type",
        "feature",
        "report_date",
        "clinician_specialty",
        "value",
        "secondary_value",
        "person_id",
    ];
    const REQUIRED_COLUMNS: &'static [&'static str] =
        &["person_id", "feature", "value", "report_date"];

    fn clean(&self, raw: &super::RawRow<'_>, notes: &mut Notes) -> Result<LifestyleRow, Rejection> {
        let feature = raw
            .get("feature")
            .ok_or(Rejection::new(Reason::MissingRequiredValue, "feature"))?;
        let specialty = common::specialty(raw.get("clinician_specialty"), notes);
        let value = raw.get("value");
        Ok(LifestyleRow {
            impairment_category: raw.get("impairment_category").map(str::to_owned),
            impairment: raw.get("impairment").map(str::to_owned),
            lifestyle_category: raw.get("lifestyle_category").map(str::to_owned),
            feature_type: raw.get("feature_type").map(str::to_owned),
            feature: feature.to_owned(),
            report_date: common::date(raw.get("report_date"), "report_date", notes),
            clinician_specialty: specialty.source,
            specialty: specialty.code,
            value: value.map(str::to_owned),
            value_num: value.and_then(common::number),
            secondary_value: raw.get("secondary_value").map(str::to_owned),
        })
    }
}

impl CleanRow for LifestyleRow {
    const COLUMNS: &'static [Column] = &[
        col("impairment_category", Text),
        col("impairment", Text),
        col("lifestyle_category", Text),
        col("feature_type", Text),
        col("feature", Text),
        col("report_date", Date),
        col("clinician_specialty", Text),
        col("specialty", Text),
        col("value", Text),
        col("value_num", Float8),
        col("secondary_value", Text),
    ];

    fn into_values(self) -> Vec<Value> {
        vec![
            self.impairment_category.into(),
            self.impairment.into(),
            self.lifestyle_category.into(),
            self.feature_type.into(),
            self.feature.into(),
            self.report_date.into(),
            self.clinician_specialty.into(),
            self.specialty.into(),
            self.value.into(),
            self.value_num.into(),
            self.secondary_value.into(),
        ]
    }
}
