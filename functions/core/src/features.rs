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

#[derive(Debug, Clone, Copy)]
pub struct Feature {
    pub name: &'static str,
    pub kind: FeatureKind,
    pub description: &'static str,
}

const fn feature(name: &'static str, kind: FeatureKind, description: &'static str) -> Feature {
    Feature {
        name,
        kind,
        description,
    }
}

use FeatureKind::*;

pub const FEATURES: &[Feature] = &[
    feature(
        "taking_alpha_blockers",
        Bool,
        "has an rx row whose drug is an alpha-1 blocker (NULL: no rx rows)",
    ),
    feature("hgb_latest", Float, "most recent hemoglobin result, g/dL"),
    feature("hgb_latest_date", Date, "date of hgb_latest"),
    feature(
        "encounters_6m",
        Int,
        "distinct event dates in the 6 calendar months up to the index date",
    ),
    feature(
        "bp_systolic_latest",
        Int,
        "most recent systolic blood pressure, mmHg",
    ),
    feature(
        "bp_diastolic_latest",
        Int,
        "most recent diastolic blood pressure, mmHg",
    ),
    feature(
        "bp_latest_date",
        Date,
        "date of the most recent blood pressure",
    ),
    feature(
        "bmi_latest",
        Float,
        "BMI from the latest weight and height, else the latest recorded BMI",
    ),
    feature("a1c_latest", Float, "most recent HbA1c, %"),
    feature(
        "creatinine_latest",
        Float,
        "most recent serum creatinine, mg/dL",
    ),
    feature("ldl_latest", Float, "most recent LDL cholesterol, mg/dL"),
    feature(
        "smoking_status",
        Text,
        "never / former / current / unknown, from the latest smoking record",
    ),
    feature(
        "active_medications_12m",
        Int,
        "distinct ingredients prescribed in the 12 months up to the index date",
    ),
    feature(
        "condition_categories",
        Int,
        "distinct ICD-10 categories (3 characters) among the conditions",
    ),
    feature(
        "abnormal_lab_share_12m",
        Float,
        "share of lab results outside their range in the 12 months up to the index date",
    ),
    feature(
        "index_date",
        Date,
        "the person's latest event date (on or before the as-of date): the end of every window",
    ),
];

/// The SQL function that computes [`FEATURES`] for a set of persons as of a date.
pub const FEATURES_FUNCTION: &str = "person_features_as_of";
