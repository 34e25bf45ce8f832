//! labs: laboratory results with LOINC, reference range and the source's High/Low flag.
//!
//! A person's lab facts fall on one to four lab dates, so panels share a date. Values come
//! from each analyte's usual range; the source flag is what the written value and reference
//! range say (computed with the cleaner's own rules), except for the share of flags that
//! contradict them, as in the sample (DATA_NOTES 5.6).

use medrec_core::clean::labs::{evaluate, parse_range, Range, Reading};
use medrec_core::Table;

use super::fields::{Fields, Layout};
use super::person::Person;
use super::rng::{Rng, Weighted};
use super::vocab::{push_decimal, push_int64, write_iso, Sex};
use super::{Elem, TableGen};

/// One lab result kind in one context; the weight is how many distinct sample rows had it.
struct Template {
    weight: u16,
    impairment_category: &'static str,
    impairment: &'static str,
    loinc: &'static str,
    feature: &'static str,
}

const fn t(
    weight: u16,
    impairment_category: &'static str,
    impairment: &'static str,
    loinc: &'static str,
    feature: &'static str,
) -> Template {
    Template {
        weight,
        impairment_category,
        impairment,
        loinc,
        feature,
    }
}

/// Derived from the sample's vocabulary (see `vocab.rs`): contexts, LOINC codes as the source
/// assigns them (4548-4 on hemoglobin, one code for two analytes) and feature names.
#[rustfmt::skip]
const TEMPLATES: &[Template] = &[
    t(4, "labs", "CMP Panel", "1759-0", "A/G ratio"),
    t(1, "Endocrine", "Diabetes", "4548-4", "A1c"),
    t(1, "Endocrine", "impaired glucose tolerance", "4548-4", "A1c"),
    t(1, "Endocrine", "Diabetes", "14959-1", "ACR, uMACR, uACR, Albumin to Creatinine ratio"),
    t(5, "labs", "CMP Panel", "1742-6", "ALT"),
    t(5, "labs", "CMP Panel", "1920-8", "AST"),
    t(3, "labs", "CMP Panel", "1751-7", "Albumin (serum)"),
    t(1, "Gastrointestinal", "Hepatitis", "6768-6", "Alkaline Phosphatase (ALP Or AP)"),
    t(7, "labs", "CMP Panel", "6768-6", "Alkaline Phosphatase (ALP Or AP)"),
    t(1, "labs", "", "25312-0", "Amylase"),
    t(1, "labs", "", "30934-4", "BNP"),
    t(7, "labs", "CMP Panel", "3097-3", "BUN/Creatinine"),
    t(3, "labs", "CBC Panel", "30180-4", "Basophils (ABC)"),
    t(5, "labs", "CBC Panel", "705-4", "Basophils%"),
    t(7, "labs", "CMP Panel", "1975-2", "Bilirubin"),
    t(4, "Renal", "Chronic kidney disease", "2160-0", "Blood creatinine"),
    t(10, "labs", "CMP Panel", "2160-0", "Blood creatinine"),
    t(1, "Renal", "Chronic kidney disease", "3094-0", "Blood urea, or blood urea nitrogen (BUN)"),
    t(8, "labs", "CMP Panel", "3094-0", "Blood urea, or blood urea nitrogen (BUN)"),
    t(8, "labs", "CMP Panel", "17861-6", "Calcium"),
    t(3, "labs", "CMP Panel", "11557-6", "Carbon dioxide"),
    t(3, "labs", "CMP Panel", "77138-6", "Chloride"),
    t(1, "labs", "", "4537-7", "ESR (Erythrocyte sedimentation rate)"),
    t(3, "labs", "CBC Panel", "26449-9", "Eosinophils (AEC)"),
    t(1, "Blood Disorders", "Anemia", "2276-4", "Ferritin"),
    t(2, "labs", "", "3024-7", "Free thyroxine (Free T4)"),
    t(2, "labs", "CMP Panel", "2336-6", "Globulin"),
    t(2, "Endocrine", "Diabetes", "1558-6", "Glucose"),
    t(9, "labs", "CMP Panel", "1558-6", "Glucose"),
    t(3, "CAD/Cardiovascular", "Hyperlipidemia", "2085-9", "HDL"),
    t(2, "labs", "", "2085-9", "HDL"),
    t(1, "labs", "Hyperlipidemia", "2085-9", "HDL"),
    t(2, "Blood Disorders", "Anemia", "20570-8", "Hematocrit (HCT)"),
    t(5, "labs", "CBC Panel", "20570-8", "Hematocrit (HCT)"),
    t(7, "labs", "CBC Panel", "4548-4", "Hemoglobin (HGB)"),
    t(2, "labs", "", "2428-1", "Homocysteine"),
    t(2, "labs", "", "34714-6", "INR"),
    t(1, "Blood Disorders", "Anemia", "14801-5", "Iron saturation"),
    t(8, "CAD/Cardiovascular", "Hyperlipidemia", "2089-1", "LDL"),
    t(1, "labs", "", "2089-1", "LDL"),
    t(7, "labs", "CBC Panel", "26474-7", "Lymphocytes (ALC)"),
    t(3, "labs", "CBC Panel", "26474-7", "Lymphocytes%"),
    t(11, "labs", "CBC Panel", "785-6", "MCH"),
    t(5, "labs", "CBC Panel", "786-4", "MCHC"),
    t(7, "labs", "CBC Panel", "30428-7", "MCV"),
    t(2, "labs", "CBC Panel", "32623-1", "MPV"),
    t(1, "labs", "CBC Panel", "26484-6", "Monocytes (AMC)"),
    t(4, "labs", "CBC Panel", "744-3", "Monocytes%"),
    t(2, "labs", "CBC Panel", "26499-4", "Neutrophils (ANC)"),
    t(1, "Blood Disorders", "Anemia", "753-4", "Neutrophils%"),
    t(5, "labs", "CBC Panel", "7796-6", "Platelet count"),
    t(2, "labs", "CMP Panel", "6298-4", "Potassium"),
    t(2, "Blood Disorders", "Anemia", "789-8", "RBC"),
    t(3, "labs", "CBC Panel", "789-8", "RBC"),
    t(6, "labs", "CBC Panel", "21000-5", "RDW"),
    t(6, "labs", "CMP Panel", "2947-0", "Sodium"),
    t(2, "labs", "", "30166-3", "TSH"),
    t(1, "labs", "", "2857-1", "Total PSA"),
    t(4, "labs", "CMP Panel", "2885-2", "Total Protein"),
    t(6, "CAD/Cardiovascular", "Hyperlipidemia", "2093-3", "Total cholesterol"),
    t(5, "labs", "", "2093-3", "Total cholesterol"),
    t(1, "labs", "Hyperlipidemia", "2093-3", "Total cholesterol"),
    t(3, "CAD/Cardiovascular", "Hyperlipidemia", "9830-1", "Total cholesterol/HDL-C ratio"),
    t(4, "labs", "", "9830-1", "Total cholesterol/HDL-C ratio"),
    t(4, "CAD/Cardiovascular", "Hyperlipidemia", "2571-8", "Triglycerides"),
    t(1, "labs", "", "2571-8", "Triglycerides"),
    t(1, "Renal", "Chronic kidney disease", "20454-5", "Urine protein"),
    t(3, "labs", "", "20454-5", "Urine protein"),
    t(4, "CAD/Cardiovascular", "Hyperlipidemia", "13458-5", "VLDL"),
    t(1, "labs", "", "2132-9", "Vitamin B12"),
    t(1, "Lifestyle", "", "62292-8", "Vitamin D"),
    t(2, "labs", "", "62292-8", "Vitamin D"),
    t(6, "labs", "CBC Panel", "26464-8", "WBC count"),
    t(2, "Endocrine", "Diabetes", "50384-7", "eGFR-AA"),
    t(1, "Renal", "Chronic kidney disease", "50384-7", "eGFR-AA"),
    t(2, "labs", "CMP Panel", "50384-7", "eGFR-AA"),
    t(5, "labs", "CMP Panel", "50384-7", "eGFR-NAA"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Number,
    /// eGFR: a value above 60 is often written `>60`.
    CensoredAbove60,
    /// Urine protein: `Negative`, `Trace`, `1+`, `2+` against the reference `Negative`.
    Qualitative,
    /// Absolute white-cell counts: 10^3/uL, or cells/uL (x1000) for some persons' labs.
    Count {
        cell_ranges: &'static [&'static str],
    },
}

/// How an analyte's results look: decimals, the usual (normal) span values are drawn around,
/// and the reference ranges labs print for it (several spellings, spaces included).
struct Analyte {
    feature: &'static str,
    decimals: u32,
    low: f64,
    high: f64,
    ranges: &'static [&'static str],
    kind: Kind,
}

const fn a(
    feature: &'static str,
    decimals: u32,
    low: f64,
    high: f64,
    ranges: &'static [&'static str],
) -> Analyte {
    Analyte {
        feature,
        decimals,
        low,
        high,
        ranges,
        kind: Kind::Number,
    }
}

const fn count(
    feature: &'static str,
    low: f64,
    high: f64,
    ranges: &'static [&'static str],
    cell_ranges: &'static [&'static str],
) -> Analyte {
    Analyte {
        feature,
        decimals: 1,
        low,
        high,
        ranges,
        kind: Kind::Count { cell_ranges },
    }
}

/// Value spans and reference ranges after the sample's (DATA_NOTES 5.2-5.5).
#[rustfmt::skip]
const ANALYTES: &[Analyte] = &[
    a("A/G ratio", 1, 1.0, 2.0, &["0.8-2.0", "1.1-2.5"]),
    a("A1c", 1, 4.6, 6.2, &["4.0-6.0", "4.0-5.6"]),
    a("ACR, uMACR, uACR, Albumin to Creatinine ratio", 0, 5.0, 40.0, &["<30"]),
    a("ALT", 0, 8.0, 38.0, &["0-35", "6-40", "7-56"]),
    a("AST", 0, 10.0, 36.0, &["0-35", "0-40", "8-40"]),
    a("Albumin (serum)", 1, 3.5, 5.0, &["3.5-6.0", "4.0-6.0", "3.5-5.0"]),
    a("Alkaline Phosphatase (ALP Or AP)", 0, 40.0, 120.0, &["30-120", "32-104", "40-115", "32-92"]),
    a("Amylase", 0, 30.0, 110.0, &["28-100", "30-110"]),
    a("BNP", 1, 10.0, 150.0, &["0.0-100", "0.0-450"]),
    a("BUN/Creatinine", 1, 8.0, 22.0, &["6.0-22.0", "6-20", "11-26"]),
    count("Basophils (ABC)", 0.0, 0.2, &["0.0-0.1", "0.0-0.2"], &["0-200", "0-100"]),
    a("Basophils%", 1, 0.1, 1.0, &["0-1", "0-2"]),
    a("Bilirubin", 1, 0.2, 1.1, &["0-1.0", "0.0-1.2", "0.1-1.2", "0.2-1.2"]),
    a("Blood creatinine", 1, 0.6, 1.3, &["0.5-1.3", "0.6-1.2", "0.7-1.2", "0.4-1.2", "0.50-1.30", "0.7-1.4"]),
    a("Blood urea, or blood urea nitrogen (BUN)", 0, 8.0, 25.0, &["7-25", "7.0-25.0", "7.0-20.0", "8-20", "6-23"]),
    a("Calcium", 1, 8.6, 10.2, &["8.5- 10.6", "8.6 - 10.4", "8.6 - 10.2", "8.5-10.1", "8.4-10.2", "8.6-10.6"]),
    a("Carbon dioxide", 0, 22.0, 31.0, &["24-34", "16-30", "22-32"]),
    a("Chloride", 0, 98.0, 107.0, &["98-106", "98-110"]),
    a("ESR (Erythrocyte sedimentation rate)", 0, 2.0, 25.0, &["0-20", "0-30"]),
    count("Eosinophils (AEC)", 0.0, 0.4, &["0.0-0.4", "0.0-0.5"], &["0-350", "15-500"]),
    a("Ferritin", 0, 30.0, 300.0, &["30-400", "20-300"]),
    a("Free thyroxine (Free T4)", 1, 0.8, 1.8, &["0.8-2.8", "0.8-1.8"]),
    a("Globulin", 1, 2.0, 3.5, &["2.0-4.0", "1.5-4.5"]),
    a("Glucose", 0, 72.0, 105.0, &["65-99", "70-110", "70-99"]),
    a("HDL", 0, 40.0, 75.0, &["40-75", ">60", ">39", ">=40"]),
    a("Hematocrit (HCT)", 1, 37.0, 50.0, &["38.5-50.0", "35.0-45.0", "42.0-52.0", "40.0-54.0"]),
    a("Hemoglobin (HGB)", 1, 11.5, 16.5, &["13.5-17.5", "13.5-18.0", "14-18", "11-16", "13.6-17.0"]),
    a("Homocysteine", 2, 5.0, 13.0, &["5.00-13.90", "<10"]),
    a("INR", 1, 0.9, 1.3, &["0.9-1.1", "0.0-1.1"]),
    a("Iron saturation", 0, 15.0, 50.0, &["15-55", "20-50"]),
    a("LDL", 0, 60.0, 140.0, &["50-130", "<100", "100-129", "0-99"]),
    count("Lymphocytes (ALC)", 1.0, 3.5, &["0.8-3.1", "1.1-4.0", "1.2-5.5"], &["850-3500", "850-3900"]),
    a("Lymphocytes%", 1, 18.0, 45.0, &["30-45", "15.0-49.0"]),
    a("MCH", 1, 27.0, 33.5, &["26.0-32.0", "27.0-31.0", "27-31.2", "27.5-33.1", "27.0-34.0", "27.0-33.0"]),
    a("MCHC", 1, 32.0, 36.0, &["31.0-36.0", "32.9-35.1", "32-37.0", "32.0-36.0"]),
    a("MCV", 1, 80.0, 98.0, &["80-100", "80.0-94.0", "79-97"]),
    a("MPV", 1, 7.5, 11.5, &["7.5-11.5", "7.4-10.4"]),
    count("Monocytes (AMC)", 0.2, 0.9, &["0.1-0.9", "0.2-1.0"], &["200-950"]),
    a("Monocytes%", 0, 4.0, 12.0, &["0-6", "4-12", "4-13"]),
    count("Neutrophils (ANC)", 1.8, 7.5, &["2.0-7.7", "1.8-7.8"], &["1500-7800"]),
    a("Neutrophils%", 1, 45.0, 72.0, &["40-74", "45.0-75.0"]),
    a("Platelet count", 0, 150.0, 400.0, &["150-450", "140-415", "150-400"]),
    a("Potassium", 1, 3.5, 5.0, &["3.5-5.1", "3.5-5.0"]),
    a("RBC", 2, 4.2, 5.8, &["4.20-6.30", "4.5-5.7", "4.50-5.90", "4.2-5.4", "4.20-5.80"]),
    a("RDW", 1, 11.5, 15.0, &["9.0-17.9", "11.5-14.5", "12-15", "11.7-15.0", "11.0-15.0"]),
    a("Sodium", 0, 135.0, 145.0, &["135-145", "136-145", "135-148"]),
    a("TSH", 2, 0.5, 4.5, &["0.5-4.5", "0.47-5.0"]),
    a("Total PSA", 1, 0.5, 4.5, &["0.0-4.0"]),
    a("Total Protein", 1, 6.2, 8.1, &["6.6-8.7", "6.0-8.0", "6.2-8.3", "6.1-8.1"]),
    a("Total cholesterol", 0, 150.0, 230.0, &["60-200", "0-200", "100-199", "125.0-200.0"]),
    a("Total cholesterol/HDL-C ratio", 1, 3.0, 5.0, &["<5.0", "4.2-7.0", "<4.5", "<=5.0"]),
    a("Triglycerides", 0, 60.0, 170.0, &["30-150", "55-149", "40-160", "0-150"]),
    Analyte { feature: "Urine protein", decimals: 0, low: 0.0, high: 0.0, ranges: &["Negative"], kind: Kind::Qualitative },
    a("VLDL", 0, 8.0, 32.0, &["1-36", "<40", "3-31", "11-29"]),
    a("Vitamin B12", 0, 250.0, 900.0, &["190-950", "200-1100"]),
    a("Vitamin D", 1, 22.0, 70.0, &["20-40", "30.00-100.00", "32.0-100.0"]),
    a("WBC count", 1, 4.5, 10.5, &["4.5-11.0", "3.8-10.8", "4.4-10.0"]),
    Analyte { feature: "eGFR-AA", decimals: 0, low: 40.0, high: 95.0, ranges: &[">60", ">=60"], kind: Kind::CensoredAbove60 },
    Analyte { feature: "eGFR-NAA", decimals: 0, low: 40.0, high: 95.0, ranges: &[">60"], kind: Kind::CensoredAbove60 },
];

/// Rates from the sample's 269 distinct lab rows: 31 without a reference range, 7 whose flag
/// contradicts value and range, 2 with a malformed range.
const NO_RANGE: f64 = 0.06;
const FLAG_WITHOUT_RANGE: f64 = 0.15;
const CONTRADICTING_FLAG: f64 = 0.03;
const MALFORMED_RANGE: f64 = 0.008;
/// Persons whose counts are in 10^3/uL but whose lab printed a cells/uL range (AEC 0.1 with
/// range 0-350 in the sample).
const MIXED_COUNT_UNITS: f64 = 0.05;

pub struct Labs {
    /// For each template: its analyte and its parsed reference ranges (then cells/uL ranges).
    analytes: Vec<(&'static Analyte, Vec<Range>, Vec<Range>)>,
    /// Indexed by `Person::male`.
    by_sex: [Weighted; 2],
}

fn template_sex(t: &Template) -> Sex {
    if t.feature == "Total PSA" {
        Sex::Male
    } else {
        Sex::Any
    }
}

impl Labs {
    pub fn new() -> Labs {
        let analytes = TEMPLATES
            .iter()
            .map(|t| {
                let analyte = ANALYTES
                    .iter()
                    .find(|a| a.feature == t.feature)
                    .unwrap_or_else(|| panic!("no analyte for lab feature {}", t.feature));
                let cell_ranges = match analyte.kind {
                    Kind::Count { cell_ranges } => {
                        cell_ranges.iter().map(|r| parse_range(r)).collect()
                    }
                    _ => Vec::new(),
                };
                (
                    analyte,
                    analyte.ranges.iter().map(|r| parse_range(r)).collect(),
                    cell_ranges,
                )
            })
            .collect();
        let table = |male: bool| {
            Weighted::new(TEMPLATES.iter().map(|t| {
                if template_sex(t).fits(male) {
                    u32::from(t.weight)
                } else {
                    0
                }
            }))
        };
        Labs {
            analytes,
            by_sex: [table(false), table(true)],
        }
    }
}

/// The source's spelling of an evaluation.
fn flag_text(calc: Option<&str>) -> &'static str {
    match calc {
        Some("low") => "Low",
        Some("normal") => "Normal",
        Some("high") => "High",
        Some("abnormal") => "Abnormal",
        _ => "",
    }
}

/// A typing slip the cleaner repairs (DATA_NOTES 5.5): the dash lost between two 3-digit
/// bounds (`136144`), or a stray `.0` after a decimal low bound (`4.4.0-10.0`).
fn malformed(range: &str) -> Option<String> {
    let (low, high) = range.split_once('-')?;
    let digits = |s: &str| s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit());
    if digits(low) && digits(high) {
        Some(format!("{low}{high}"))
    } else if low.contains('.') && !low.contains(' ') && !high.starts_with(' ') {
        Some(format!("{low}.0-{high}"))
    } else {
        None
    }
}

impl TableGen for Labs {
    const TABLE: Table = Table::Labs;
    const LAYOUT: Layout = Layout {
        columns: &[
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
        ],
        person_id: 9,
        required: 5,
        id: None,
        text: 6,
    };
    const EXTRA: (i32, i32) = (0, 3);

    fn element(&self, p: &Person, rng: &mut Rng, e: Elem, out: &mut Fields) {
        let i = self.by_sex[usize::from(p.male)]
            .sample(rng)
            .expect("templates fit every person");
        let t = &TEMPLATES[i];
        let (analyte, ranges, cell_ranges) = &self.analytes[i];
        out.push(t.impairment_category);
        out.push(t.impairment);
        out.push("Labs");
        out.push(t.loinc);
        let day = e.date.unwrap_or_else(|| p.visit(Self::TABLE, rng));
        out.push_with(|b| write_iso(b, day));
        out.push(t.feature);

        if analyte.kind == Kind::Qualitative {
            let value = *rng.pick(&[("Negative", 8), ("Trace", 1), ("1+", 1), ("2+", 2)]);
            out.push(value);
            out.push(if rng.chance(NO_RANGE) { "" } else { "Negative" });
            let flag = if value == "Negative" {
                *rng.pick(&[("Negative", 1), ("", 1)])
            } else {
                "Abnormal"
            };
            out.push(flag);
            out.push_with(|b| push_int64(b, p.id));
            return;
        }

        // Most results normal, twice as many high as low: the sample's distinct lab rows are
        // 53% normal, 26% high, 13% low, and so are these.
        let x = 0.66 + 0.6 * rng.normal();
        let mut value = (analyte.low + (analyte.high - analyte.low) * x).max(0.0);
        let mut decimals = analyte.decimals;
        let mut range_texts = analyte.ranges;
        let mut parsed: &[Range] = ranges;
        if let Kind::Count { cell_ranges: cells } = analyte.kind {
            let cells_value = p.cells_per_ul;
            if cells_value || rng.chance(MIXED_COUNT_UNITS) {
                range_texts = cells;
                parsed = cell_ranges;
            }
            if cells_value {
                value *= 1000.0;
                decimals = 0;
            }
        }
        let scale = 10f64.powi(decimals as i32);
        let value = (value * scale).round() / scale;
        let censored = analyte.kind == Kind::CensoredAbove60 && value > 60.0 && rng.chance(0.5);
        let reading = if censored {
            Reading::Censored(medrec_core::clean::common::Operator::Gt, 60.0)
        } else {
            Reading::Number(value)
        };
        if censored {
            out.push(">60");
        } else {
            out.push_with(|b| push_decimal(b, value, decimals));
        }

        let r = rng.below(range_texts.len() as u32) as usize;
        let flag = if rng.chance(NO_RANGE) {
            out.push("");
            // A few flags stand without a range (the lab's own judgement).
            if rng.chance(FLAG_WITHOUT_RANGE) {
                flag_text(evaluate(&reading, &parsed[r]).or(Some("abnormal")))
            } else {
                ""
            }
        } else {
            match malformed(range_texts[r]).filter(|_| rng.chance(MALFORMED_RANGE)) {
                Some(text) => out.push(&text),
                None => out.push(range_texts[r]),
            }
            flag_text(evaluate(&reading, &parsed[r]))
        };
        let flag = if ["Low", "Normal", "High"].contains(&flag) && rng.chance(CONTRADICTING_FLAG) {
            let others: [&str; 2] = match flag {
                "Low" => ["Normal", "High"],
                "Normal" => ["Low", "High"],
                _ => ["Low", "Normal"],
            };
            others[rng.below(2) as usize]
        } else {
            flag
        };
        out.push(flag);
        out.push_with(|b| push_int64(b, p.id));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lab_feature_has_an_analyte_with_readable_ranges() {
        let labs = Labs::new();
        for (analyte, ranges, _) in &labs.analytes {
            for (text, range) in analyte.ranges.iter().zip(ranges) {
                let readable = range.low.is_some() || range.high.is_some() || range.text.is_some();
                assert!(readable, "{} {text}", analyte.feature);
            }
        }
        assert!(ANALYTES
            .iter()
            .all(|a| TEMPLATES.iter().any(|t| t.feature == a.feature)));
    }

    #[test]
    fn malformed_ranges_are_the_two_known_slips() {
        assert_eq!(malformed("136-145").as_deref(), Some("136145"));
        assert_eq!(malformed("4.5-11.0").as_deref(), Some("4.5.0-11.0"));
        assert_eq!(malformed("8.6 - 10.2"), None);
        assert_eq!(malformed("0-35"), None);
    }
}
