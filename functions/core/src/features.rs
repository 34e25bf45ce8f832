//! The per-person feature catalogue. The definitions are SQL, in one file:
//! `migrations/definitions/R__30_features.sql` (`person_features_as_of`); this list names them,
//! in export order, with their types (tests check it against that file and the database).

/// How a feature's values are typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureKind {
    Bool,
    Int,
    Float,
    Date,
    Text,
}

impl FeatureKind {
    /// Its JSON Schema / OpenAPI type name (`date` is a string in `format: date`).
    pub fn json_type(self) -> &'static str {
        match self {
            FeatureKind::Bool => "boolean",
            FeatureKind::Int => "integer",
            FeatureKind::Float => "number",
            FeatureKind::Date | FeatureKind::Text => "string",
        }
    }

    /// Its name in the catalogue (`GET /features`, the exports' catalogue).
    pub fn name(self) -> &'static str {
        match self {
            FeatureKind::Bool => "boolean",
            FeatureKind::Int => "integer",
            FeatureKind::Float => "number",
            FeatureKind::Date => "date",
            FeatureKind::Text => "string",
        }
    }
}

/// One feature as the catalogue describes it: the words for what the SQL computes.
#[derive(Debug, Clone, Copy)]
pub struct Feature {
    pub name: &'static str,
    pub kind: FeatureKind,
    /// The unit of its values, where it has one.
    pub unit: Option<&'static str>,
    /// The clean tables its definition reads.
    pub tables: &'static [Table],
    pub description: &'static str,
    /// What a NULL value means for it ("no data" is NULL, never false or zero).
    pub null_means: &'static str,
}

use crate::Table;
use FeatureKind::*;

/// Every table: the index date and encounters come from the dates of all five.
const ALL_TABLES: &[Table] = &Table::ALL;

pub const FEATURES: &[Feature] = &[
    Feature {
        name: "taking_alpha_blockers",
        kind: Bool,
        unit: None,
        tables: &[Table::Rx],
        description: "has an rx row whose drug is an alpha-1 blocker (the class comes from the \
                      ingredient, not from the vendor's drug type label)",
        null_means: "no rx rows on or before the as-of date",
    },
    Feature {
        name: "hgb_latest",
        kind: Float,
        unit: Some("g/dL"),
        tables: &[Table::Labs],
        description: "most recent numeric hemoglobin result",
        null_means: "no numeric hemoglobin result on or before the as-of date",
    },
    Feature {
        name: "hgb_latest_date",
        kind: Date,
        unit: None,
        tables: &[Table::Labs],
        description: "date of hgb_latest",
        null_means: "as hgb_latest",
    },
    Feature {
        name: "encounters_6m",
        kind: Int,
        unit: Some("days"),
        tables: ALL_TABLES,
        description: "distinct event dates in the 6 calendar months up to the index date, both \
                      ends included",
        null_means: "no dated event on or before the as-of date",
    },
    Feature {
        name: "bp_systolic_latest",
        kind: Int,
        unit: Some("mmHg"),
        tables: &[Table::Tests],
        description: "most recent systolic blood pressure",
        null_means: "no blood pressure reading with both values",
    },
    Feature {
        name: "bp_diastolic_latest",
        kind: Int,
        unit: Some("mmHg"),
        tables: &[Table::Tests],
        description: "most recent diastolic blood pressure",
        null_means: "no blood pressure reading with both values",
    },
    Feature {
        name: "bp_latest_date",
        kind: Date,
        unit: None,
        tables: &[Table::Tests],
        description: "date of the most recent blood pressure",
        null_means: "no blood pressure reading with both values",
    },
    Feature {
        name: "bmi_latest",
        kind: Float,
        unit: Some("kg/m2"),
        tables: &[Table::Tests],
        description: "latest BMI: the latest weight over the square of the height measured \
                      nearest to it (at most 3 years apart), in the units recorded (no unit: lb \
                      and in); a recorded BMI newer than that weight wins",
        null_means: "no plausible weight with a height within 3 years, and no recorded BMI",
    },
    Feature {
        name: "bmi_latest_date",
        kind: Date,
        unit: None,
        tables: &[Table::Tests],
        description: "date of bmi_latest (the weight's, or the recorded BMI's)",
        null_means: "as bmi_latest",
    },
    Feature {
        name: "a1c_latest",
        kind: Float,
        unit: Some("%"),
        tables: &[Table::Labs],
        description: "most recent numeric HbA1c result",
        null_means: "no numeric HbA1c result on or before the as-of date",
    },
    Feature {
        name: "creatinine_latest",
        kind: Float,
        unit: Some("mg/dL"),
        tables: &[Table::Labs],
        description: "most recent numeric serum creatinine result",
        null_means: "no numeric creatinine result on or before the as-of date",
    },
    Feature {
        name: "ldl_latest",
        kind: Float,
        unit: Some("mg/dL"),
        tables: &[Table::Labs],
        description: "most recent numeric LDL cholesterol result",
        null_means: "no numeric LDL result on or before the as-of date",
    },
    Feature {
        name: "smoking_status",
        kind: Text,
        unit: None,
        tables: &[Table::Lifestyle],
        description: "never / former / current / unknown, from the latest smoking record",
        null_means: "no smoking record on or before the as-of date",
    },
    Feature {
        name: "active_medications_12m",
        kind: Int,
        unit: Some("ingredients"),
        tables: ALL_TABLES,
        description: "distinct ingredients prescribed in the 12 months up to the index date",
        null_means: "no rx rows (0: rx rows, none in the window)",
    },
    Feature {
        name: "condition_categories",
        kind: Int,
        unit: Some("categories"),
        tables: &[Table::Conditions],
        description: "distinct ICD-10 categories (3 characters) among the conditions",
        null_means: "no conditions rows on or before the as-of date",
    },
    Feature {
        name: "abnormal_lab_share_12m",
        kind: Float,
        unit: Some("share, 0 to 1"),
        tables: ALL_TABLES,
        description: "share of lab results outside their range in the 12 months up to the \
                      index date",
        null_means: "no lab result with a computed flag in the window",
    },
    Feature {
        name: "index_date",
        kind: Date,
        unit: None,
        tables: ALL_TABLES,
        description: "the person's latest event date (on or before the as-of date): the end of \
                      every window",
        null_means: "no dated event on or before the as-of date",
    },
];

/// The catalogue as a document: what `GET /features` serves and what exports carry (a
/// `.catalogue.json` beside a CSV, the `medrec.catalogue` key of a Parquet file's metadata).
pub fn catalogue(definitions_version: &str) -> serde_json::Value {
    let features: Vec<_> = FEATURES
        .iter()
        .map(|f| {
            serde_json::json!({
                "name": f.name,
                "type": f.kind.name(),
                "unit": f.unit,
                "description": f.description,
                "null_means": f.null_means,
                "tables": f.tables.iter().map(|t| t.name()).collect::<Vec<_>>(),
            })
        })
        .collect();
    serde_json::json!({
        "definitions_version": definitions_version,
        "definitions": "migrations/definitions/R__30_features.sql",
        "features": features,
    })
}

/// The SQL function that computes [`FEATURES`] for a set of persons as of a date.
pub const FEATURES_FUNCTION: &str = "person_features_as_of";
