//! lifestyle: habits, social and family history, functional status, immunisations.

use chrono::NaiveDate;

use super::common;
use super::{Cleaner, Notes, Reason, Rejection};
use crate::table::Table;

#[derive(Debug, Default, Clone, Copy)]
pub struct LifestyleCleaner;

clean_row! {
    #[derive(Debug, Clone, PartialEq)]
    pub struct LifestyleRow {
        pub impairment_category: Option<String> => Text,
        pub impairment: Option<String> => Text,
        pub lifestyle_category: Option<String> => Text,
        pub feature_type: Option<String> => Text,
        pub feature: String => Text,
        pub report_date: Option<NaiveDate> => Date,
        pub clinician_specialty: Option<String> => Text,
        pub specialty: Option<&'static str> => Text,
        pub value: Option<String> => Text,
        /// The value as a number when it is one (ages, visits per year, pulse pressure).
        pub value_num: Option<f64> => Float8,
        pub secondary_value: Option<String> => Text,
    }
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
        let specialty =
            common::specialty(raw.get("clinician_specialty"), "clinician_specialty", notes);
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
