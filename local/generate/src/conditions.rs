//! conditions: diagnoses and their details. Each person has one to three conditions, and their
//! facts are details of those (a cancer's type, treatment and stage), keyed by a record id.

use medrec_core::Table;

use super::fields::{Fields, Layout};
use super::person::Person;
use super::rng::{Rng, Weighted};
use super::vocab::{
    push_event_date, push_int64, push_specialty, push_value, Placeholders, Sex, CLINICIAN_NAME, V,
};
use super::{Elem, TableGen, IDS_PER_PERSON};

/// One kind of condition fact; `group` ties the facts of one clinical condition together
/// (BCC, SCC, melanoma and "skin cancer" rows describe the same person's skin cancer).
struct Template {
    weight: u16,
    group: &'static str,
    impairment_category: &'static str,
    impairment: &'static str,
    feature_type: &'static str,
    feature: &'static str,
    icd_code: &'static str,
    value: V,
}

#[allow(clippy::too_many_arguments)]
const fn t(
    weight: u16,
    group: &'static str,
    impairment_category: &'static str,
    impairment: &'static str,
    feature_type: &'static str,
    feature: &'static str,
    icd_code: &'static str,
    value: V,
) -> Template {
    Template {
        weight,
        group,
        impairment_category,
        impairment,
        feature_type,
        feature,
        icd_code,
        value,
    }
}

fn group_sex(group: &str) -> Sex {
    match group {
        "prostate cancer" => Sex::Male,
        "breast cancer" => Sex::Female,
        _ => Sex::Any,
    }
}

/// Derived from the sample's vocabulary (see `vocab.rs`), sorted by group: categories,
/// features, ICD-10 codes (dot-space codes such as `I49. 9` included) and values as the
/// source writes them. The two long pathology/prognosis texts are the generator's own.
#[rustfmt::skip]
const TEMPLATES: &[Template] = &[
    t(1, "anemia", "Blood Disorders", "Anemia", "Treatment", "Treatment for Anemia", "D64.9", V::List(&[("OTC iron", 1)])),
    t(3, "anemia", "Blood Disorders", "Anemia", "Type", "Anemia Type", "D64.9", V::List(&[("Unspecified", 2), ("Iron deficiency anemia", 1)])),
    t(1, "aneurysm", "Aneurysms", "Abdominal aortic aneurysm", "Treatment", "Aneurysm repair", "I71.4", V::List(&[("Yes", 1)])),
    t(1, "aneurysm", "No Match", "aneurysm", "Impairment", "In medical history only", "", V::List(&[("> 1 mention", 1)])),
    t(1, "arrhythmia", "CAD/Cardiovascular", "Arrhythmias", "Symptoms", "Symptoms", "I49.9", V::List(&[("asymptomatic", 1)])),
    t(2, "arrhythmia", "CAD/Cardiovascular", "Arrhythmias", "Type", "Arrhythmias Type", "I47.9", V::List(&[("tachycardia", 3), ("PVCs", 2), ("PAF", 1), ("SVT", 1), ("bradycardia", 1)])),
    t(1, "arrhythmia", "CAD/Cardiovascular", "Arrhythmias", "Type", "Arrhythmias Type", "I49. 9", V::List(&[("tachycardia", 3), ("PVCs", 2), ("PAF", 1), ("SVT", 1), ("bradycardia", 1)])),
    t(4, "arrhythmia", "CAD/Cardiovascular", "Arrhythmias", "Type", "Arrhythmias Type", "I49.9", V::List(&[("tachycardia", 3), ("PVCs", 2), ("PAF", 1), ("SVT", 1), ("bradycardia", 1)])),
    t(1, "arrhythmia", "CAD/Cardiovascular", "Arrhythmias", "Type", "Arrhythmias Type", "R00. 1", V::List(&[("tachycardia", 3), ("PVCs", 2), ("PAF", 1), ("SVT", 1), ("bradycardia", 1)])),
    t(1, "arrhythmia", "CAD/Cardiovascular", "bradycardia", "Treatment", "Pacemaker insertion", "R00.1", V::List(&[("Yes", 1)])),
    t(1, "arrhythmia", "CAD/Cardiovascular", "bradycardia", "Type", "Arrhythmias Type", "R00.1", V::List(&[("bradycardia", 1)])),
    t(3, "arrhythmia", "CAD/Cardiovascular", "palpitations", "Type", "Arrhythmias Type", "R00.2", V::List(&[("palpitations", 3)])),
    t(1, "arrhythmia", "No Match", "arrhythmias", "Impairment", "In medical history only", "I49.9", V::List(&[("> 1 mention", 1)])),
    t(1, "asthma", "Pulmonary", "Asthma", "Impairment", "Asthma", "J45.909", V::List(&[("Yes", 1)])),
    t(1, "atrial fibrillation", "CAD/Cardiovascular", "atrial fibrillation", "Symptoms", "Symptoms", "I48.91", V::List(&[("asymptomatic", 1)])),
    t(1, "atrial fibrillation", "CAD/Cardiovascular", "atrial fibrillation", "Treatment", "Medication for arrhythmia", "I48. 91", V::List(&[("anticoagulation", 2), ("rhythm control", 1)])),
    t(2, "atrial fibrillation", "CAD/Cardiovascular", "atrial fibrillation", "Treatment", "Medication for arrhythmia", "I48.91", V::List(&[("anticoagulation", 2), ("rhythm control", 1)])),
    t(1, "atrial fibrillation", "CAD/Cardiovascular", "atrial fibrillation", "Type", "Arrhythmias Type", "I48", V::List(&[("Atrial Fibrillation", 7), ("PAF", 3), ("irregular rhythm/heartbeat", 1)])),
    t(1, "atrial fibrillation", "CAD/Cardiovascular", "atrial fibrillation", "Type", "Arrhythmias Type", "I48.20", V::List(&[("Atrial Fibrillation", 7), ("PAF", 3), ("irregular rhythm/heartbeat", 1)])),
    t(9, "atrial fibrillation", "CAD/Cardiovascular", "atrial fibrillation", "Type", "Arrhythmias Type", "I48.91", V::List(&[("Atrial Fibrillation", 7), ("PAF", 3), ("irregular rhythm/heartbeat", 1)])),
    t(1, "bladder cancer", "Cancer", "Bladder cancer", "Treatment", "Treatment for bladder cancer", "C67.9", V::List(&[("TURBT", 1)])),
    t(2, "bladder cancer", "Cancer", "Bladder cancer", "Treatment", "Treatment for cancer", "C67.9", V::List(&[("radiation", 1), ("surgery", 1)])),
    t(1, "bladder cancer", "Cancer", "Bladder cancer", "Type", "Type of bladder cancer", "C67.9", V::List(&[("TCC", 1)])),
    t(1, "bladder cancer", "Cancer", "Bladder cancer", "Type", "Type of cancer", "C67.9", V::List(&[("Bladder cancer", 1)])),
    t(2, "breast cancer", "Cancer", "breast cancer", "Treatment", "Treatment for cancer", "C50.919", V::List(&[("radiation", 1), ("surgery", 1)])),
    t(1, "breast cancer", "Cancer", "breast cancer", "Type", "Specific subtype of cancer", "C50.919", V::List(&[("Invasive lobular carcinoma", 1)])),
    t(1, "chronic bronchitis", "Pulmonary", "chronic bronchitis", "Type", "Type of pulmonary disease", "J20.9", V::List(&[("Bronchitis", 2)])),
    t(1, "chronic bronchitis", "Pulmonary", "chronic bronchitis", "Type", "Type of pulmonary disease", "J42", V::List(&[("Bronchitis", 2)])),
    t(1, "chronic kidney disease", "No Match", "Chronic kidney disease", "Impairment", "In medical history only", "N18.9", V::List(&[("> 1 mention", 1)])),
    t(5, "chronic kidney disease", "Renal", "Chronic kidney disease", "Stage", "CKD Stage", "N18.9", V::List(&[("Unspecified", 2), ("renal insufficency", 2), ("4", 1)])),
    t(3, "cognitive", "Neurological", "Alzheimer's", "Symptoms", "Cognitive impairment manifestations", "G30.9", V::List(&[("", 1), ("forgetfulness", 1), ("repetition", 1)])),
    t(2, "cognitive", "Neurological", "Alzheimer's", "Type", "Dementia Type", "G30.9", V::List(&[("Alzheimer's", 2)])),
    t(1, "cognitive", "Neurological", "Dementia", "Symptoms", "Cognitive impairment manifestations", "F03.90", V::List(&[("with behavioral disturbance", 1)])),
    t(1, "cognitive", "Neurological", "MCI", "Symptoms", "Memory loss", "G31.84", V::List(&[("short-term", 1)])),
    t(1, "cognitive", "Neurological", "memory issues", "Symptoms", "Cognitive impairment manifestations", "R41.3", V::List(&[("forgetfulness", 1)])),
    t(2, "cognitive", "Neurological", "memory loss", "Symptoms", "Memory loss", "R41.3", V::List(&[("age-related", 1), ("no details", 1)])),
    t(1, "colon polyps", "Gastrointestinal", "colon polyps", "Impairment", "Gastrointestinal disorders", "K63.5", V::List(&[("colon polyps", 1)])),
    t(1, "coronary disease", "", "Angina", "Symptoms", "Angina", "", V::List(&[("Yes", 6)])),
    t(5, "coronary disease", "CAD/Cardiovascular", "Angina", "Symptoms", "Angina", "I20.9", V::List(&[("Yes", 6)])),
    t(2, "coronary disease", "CAD/Cardiovascular", "Atheroclerosis", "Impairment", "Disease present", "I25.10", V::List(&[("Heart", 5), ("aorta", 1)])),
    t(4, "coronary disease", "CAD/Cardiovascular", "Atheroclerosis", "Impairment", "Disease present", "I70.90", V::List(&[("Heart", 5), ("aorta", 1)])),
    t(3, "coronary disease", "CAD/Cardiovascular", "CABG", "Factor", "# of vessels CABG", "Z95.1", V::List(&[("4", 2), ("3", 2), ("2", 1), ("", 1)])),
    t(1, "coronary disease", "CAD/Cardiovascular", "CAD", "Factor", "# Stents Placed", "I25.10", V::Int(1, 4)),
    t(2, "coronary disease", "No Match", "CAD", "Impairment", "In medical history only", "I25.10", V::List(&[("> 1 mention", 2)])),
    t(3, "diabetes", "Endocrine", "Diabetes", "Factor", "Complications", "E11.8", V::List(&[("", 2), ("nephropathy", 1)])),
    t(1, "diabetes", "Endocrine", "prediabetes", "Impairment", "Endocrine disorders", "R73.03", V::List(&[("pre-diabetes", 1)])),
    t(1, "diabetes", "No Match", "Diabetes", "Impairment", "In medical history only", "E11.8", V::List(&[("> 1 mention", 1)])),
    t(1, "diverticular disease", "Gastrointestinal", "diverticulitis", "Impairment", "Gastrointestinal disorders", "K57. 92", V::List(&[("Diverticulosis", 1), ("diverticulitis", 1)])),
    t(1, "diverticular disease", "Gastrointestinal", "diverticulitis", "Impairment", "Gastrointestinal disorders", "K57.92", V::List(&[("Diverticulosis", 1), ("diverticulitis", 1)])),
    t(3, "diverticular disease", "Gastrointestinal", "diverticulosis", "Impairment", "Gastrointestinal disorders", "K57.90", V::List(&[("Diverticulosis", 3)])),
    t(9, "edema", "CAD/Cardiovascular", "Edema", "Symptoms", "Edema", "R60.9", V::List(&[("", 3), ("1+", 3), ("2+", 1), ("bilateral", 1), ("peripheral", 1)])),
    t(7, "gerd", "Gastrointestinal", "GERD", "Impairment", "Gastrointestinal disorders", "K21.9", V::List(&[("GERD", 7)])),
    t(2, "gout", "Gastrointestinal", "gout", "Impairment", "Gastrointestinal disorders", "M10.9", V::List(&[("gout", 2)])),
    t(6, "heart failure", "CAD/Cardiovascular", "heart failure", "Type", "Heart failure type", "I50.9", V::List(&[("CHF", 5), ("heart failure", 1)])),
    t(1, "heart murmur", "", "heart murmur", "Grade", "Grade", "R01. 1", V::List(&[("I", 1), ("II", 1)])),
    t(1, "heart murmur", "", "heart murmur", "Grade", "Grade", "R01.1", V::List(&[("I", 1), ("II", 1)])),
    t(13, "heart murmur", "Valvular heart disease", "Heart murmur", "Grade", "Grade", "R01.1", V::List(&[("2/6", 7), ("systolic", 4), ("3/6", 1), ("II", 1)])),
    t(1, "hip fracture", "Orthopedic", "hip fracture", "Impairment", "Other orthopedic disorders", "S72.90XA", V::List(&[("hip fracture", 1)])),
    t(1, "history", "All", "", "Impairment", "In medical history only", "", V::List(&[("> 1 mention", 2)])),
    t(1, "history", "No Match", "", "Impairment", "In medical history only", "", V::List(&[("> 1 mention", 2)])),
    t(2, "hypothyroidism", "Endocrine", "hypothyroidism", "Impairment", "Endocrine disorders", "E03.9", V::List(&[("Hypothyroidism", 2)])),
    t(1, "joint replacement", "Orthopedic", "Joint replacement", "Impairment", "Other orthopedic disorders", "Z96.651", V::List(&[("Joint replacement", 1)])),
    t(1, "left ventricular hypertrophy", "", "Left Ventricular Hypertrophy", "Factor", "Description", "I42.2", V::List(&[("not defined", 1)])),
    t(1, "left ventricular hypertrophy", "", "Left Ventricular Hypertrophy", "Treatment", "Treatment for LVH", "I42.2", V::List(&[("angiotensin receptor blockers (ARBs)", 1)])),
    t(1, "lifestyle", "Autoimmune Disorders", "Lifestyle", "Factor", "Functional status", "Z72.9", V::List(&[("ambulatory (short distances only)", 1)])),
    t(2, "myocardial infarction", "CAD/Cardiovascular", "MI", "Impairment", "Type of heart attack", "I21.9", V::List(&[("", 2)])),
    t(1, "myocardial infarction", "CAD/Cardiovascular", "Myocardial infarction", "Impairment", "Type of heart attack", "I21.9", V::List(&[("", 1)])),
    t(3, "neuropathy", "Neurological", "Neuropathy", "Impairment", "Peripheral neuropathy", "G90.09", V::List(&[("Yes", 3)])),
    t(1, "neuropathy", "No Match", "Neuropathy", "Impairment", "In medical history only", "G90.09", V::List(&[("Single mention", 1)])),
    t(1, "pancreatic cancer", "Cancer", "pancreatic cancer", "Factor", "Post treatment surveillance", "C25.9", V::List(&[("Yes", 1)])),
    t(2, "pancreatic cancer", "Cancer", "pancreatic cancer", "Treatment", "Treatment for cancer", "C25.9", V::List(&[("surgery", 2)])),
    t(2, "pancreatic cancer", "Cancer", "pancreatic cancer", "Type", "Type of cancer", "C25.9", V::List(&[("Pancreatic cancer", 2)])),
    t(1, "peptic ulcer", "Gastrointestinal", "peptic ulcer", "Impairment", "Gastrointestinal disorders", "K27", V::List(&[("peptic ulcer", 1)])),
    t(1, "pneumonia", "Pulmonary", "Pneumonia", "Impairment", "Pneumonia", "J18.9", V::List(&[("Single episode", 1)])),
    t(1, "prostate cancer", "Cancer", "prostate cancer", "Factor", "Post treatment surveillance", "C61", V::List(&[("Yes", 1)])),
    t(1, "prostate cancer", "Cancer", "prostate cancer", "Factor", "Prognosis per doctor", "C61", V::List(&[("Continue active surveillance, repeat PSA in 6 months", 1), ("Begin hormone therapy, then radiation in 3-4 months", 1)])),
    t(1, "prostate cancer", "Cancer", "prostate cancer", "Scale", "Gleason Group", "C61", V::List(&[("4+3 (7)", 1)])),
    t(1, "prostate cancer", "Cancer", "prostate cancer", "Stage", "Stage", "C61", V::List(&[("4", 1)])),
    t(1, "prostate cancer", "Cancer", "prostate cancer", "Stage", "TNM Staging", "C61", V::List(&[("T2b NX M0", 1)])),
    t(1, "prostate cancer", "Cancer", "prostate cancer", "Treatment", "Prostatetomy", "C61", V::List(&[("Yes", 1)])),
    t(1, "prostate cancer", "Cancer", "prostate cancer", "Treatment", "Treatment for cancer", "C61", V::List(&[("radiation", 1)])),
    t(1, "prostate cancer", "Cancer", "prostate cancer", "Type", "Type of cancer", "C61", V::List(&[("Prostate cancer", 1)])),
    t(2, "prostate cancer", "Cancer", "prostate cancer", "Type", "Type of prostate cancer", "C61", V::List(&[("Adenocarcinoma", 2)])),
    t(1, "pulmonary embolism", "Pulmonary", "Pulmonary embolism", "Impairment", "Pulmonary embolism", "I26.99", V::List(&[("Yes", 1)])),
    t(4, "records", "Underwriter Observations", "APS illegible or difficult", "Factor", "Medical records evaluation", "", V::List(&[("APS illegible or difficult", 3), ("APS generally hard to read", 1)])),
    t(2, "records", "Underwriter Observations", "Comingled records", "Factor", "Medical records evaluation", "", V::List(&[("Comingled records", 2)])),
    t(1, "renal cancer", "Cancer", "renal cancer", "Scale", "Grade", "C64.9", V::List(&[("high", 1)])),
    t(1, "renal cancer", "Cancer", "renal cancer", "Type", "Type of cancer", "C64.9", V::List(&[("TCC", 1)])),
    t(1, "rheumatoid arthritis", "No Match", "Rheumatoid arthritis", "Impairment", "In medical history only", "M06.9", V::List(&[("> 1 mention", 1)])),
    t(2, "skin cancer", "Cancer", "BCC", "Treatment", "Treatment for cancer", "C44.91", V::List(&[("radiation", 1), ("surgery", 1)])),
    t(7, "skin cancer", "Cancer", "BCC", "Type", "Specific subtype of cancer", "C44.91", V::List(&[("BCC", 7)])),
    t(5, "skin cancer", "Cancer", "BCC", "Type", "Type of cancer", "C44.91", V::List(&[("Skin cancer", 4), ("Skin Cancer", 1)])),
    t(1, "skin cancer", "Cancer", "SCC", "Type", "Specific subtype of cancer", "C44.92", V::List(&[("SCC", 1)])),
    t(1, "skin cancer", "Cancer", "melanoma", "Factor", "Histology", "C43. 9", V::List(&[("Pathology: Rt forearm: superficial spreading melanoma, level II, 0.6 MM invasion. Margins clear", 1), ("Pathology: Back: nodular melanoma, level III, 1.2 MM invasion, one margin involved", 1)])),
    t(1, "skin cancer", "Cancer", "melanoma", "Type", "Type of cancer", "C43. 9", V::List(&[("Malignant melanoma", 1), ("Skin cancer", 1)])),
    t(1, "skin cancer", "Cancer", "melanoma", "Type", "Type of cancer", "C43.9", V::List(&[("Malignant melanoma", 1), ("Skin cancer", 1)])),
    t(3, "skin cancer", "Cancer", "skin cancer", "Treatment", "Treatment for cancer", "C44.9", V::List(&[("surgery", 4)])),
    t(1, "skin cancer", "Cancer", "skin cancer", "Treatment", "Treatment for cancer", "C44.90", V::List(&[("surgery", 4)])),
    t(2, "skin cancer", "Cancer", "skin cancer", "Type", "Specific subtype of cancer", "C44.90", V::List(&[("SCC", 2)])),
    t(1, "skin cancer", "Cancer", "skin cancer", "Type", "Type of cancer", "C44.9", V::List(&[("SCC", 3), ("BCC", 2)])),
    t(4, "skin cancer", "Cancer", "skin cancer", "Type", "Type of cancer", "C44.90", V::List(&[("SCC", 3), ("BCC", 2)])),
    t(4, "sleep apnea", "Pulmonary", "Sleep apnea", "Impairment", "Obstructive sleep apnea", "G47.30", V::List(&[("Yes", 4)])),
    t(1, "sleep apnea", "Pulmonary", "Sleep apnea", "Treatment", "Treatment for sleep apnea", "G47.30", V::List(&[("CPAP compliance", 1)])),
    t(1, "spinal disease", "Orthopedic", "spinal disease", "Impairment", "Other orthopedic disorders", "", V::List(&[("spinal disease", 3)])),
    t(2, "spinal disease", "Orthopedic", "spinal disease", "Impairment", "Other orthopedic disorders", "G95.9", V::List(&[("spinal disease", 3)])),
    t(1, "stroke", "Cerebrovascular", "", "Type", "Other cerebrovascular type", "R09.89", V::List(&[("carotid bruit", 1)])),
    t(1, "stroke", "Cerebrovascular", "CVA", "Factor", "Residual effects of event", "I63.9", V::List(&[("visual effects", 1)])),
    t(3, "stroke", "Cerebrovascular", "TIA", "Type", "Stroke type", "G45.9", V::List(&[("TIA", 3)])),
    t(2, "stroke", "No Match", "Stroke", "Impairment", "In medical history only", "I63.9", V::List(&[("> 1 mention", 1), ("Single mention", 1)])),
    t(1, "thrombocythemia", "Blood Disorders", "essential thrombocytopenia", "Factor", "Myeloproliferative Disorder", "D47.3", V::List(&[("Yes", 1)])),
    t(1, "thrombocythemia", "No Match", "Essential thrombocythemia", "Impairment", "In medical history only", "D47.3", V::List(&[("> 1 mention", 1)])),
    t(1, "ureteral cancer", "Cancer", "ureteral cancer", "Factor", "Recurrence", "C66.9", V::List(&[("Yes", 1)])),
    t(2, "valve disease", "Valvular heart disease", "Valve replacement / valve repair", "Treatment", "Valve Replacement / Valve Repair", "Z95.4", V::List(&[("", 1), ("mitral valve", 1)])),
    t(6, "valve disease", "Valvular heart disease", "aortic valve disease", "Type", "Type of valve disease", "I35.9", V::List(&[("aortic valve stenosis", 4), ("", 1), ("Aortic valve insufficiency", 1)])),
    t(3, "valve disease", "Valvular heart disease", "mitral valve disease", "Type", "Type of valve disease", "I34.9", V::List(&[("mitral valve regurgitation", 2), ("mitral valve insufficiency", 1)])),
    t(1, "vascular disease", "No Match", "PVD", "Impairment", "In medical history only", "I73.9", V::List(&[("> 1 mention", 1)])),
    t(2, "vascular disease", "PVD", "Venous insufficiency", "Symptoms", "Venous insufficiency", "I87.2", V::List(&[("with edema", 2)])),
];

/// Specialties by distinct sample rows, including the clinician's name the cleaner removes.
const SPECIALTIES: &[(&str, u16)] = &[
    ("General", 189),
    ("Unspecified", 18),
    ("general", 7),
    ("Cardiology", 6),
    ("General Medicine", 3),
    ("Dermatology", 3),
    ("Unsepcified", 1),
    ("Neurology", 1),
    ("Urologist", 1),
    ("Unknown", 1),
    ("Medicine", 1),
    ("Rheumatology", 1),
    (CLINICIAN_NAME, 1),
    ("Cardiovascular", 1),
    ("Oncologist", 1),
];

/// 8 of the sample's 235 distinct condition rows have a placeholder date, mostly 1976-07-01.
const PLACEHOLDERS: Placeholders = Placeholders {
    rate: 0.034,
    share_1926: 0.15,
};

/// 3 of the 235 distinct sample rows repeat the previous fact's content under a new id.
const SAME_CONTENT_NEW_ID: f64 = 0.013;

pub struct Conditions {
    /// Each group's templates: a range of `TEMPLATES` and the weights within it.
    groups: Vec<(usize, Weighted)>,
    /// Groups by total weight, indexed by `Person::male`.
    group_by_sex: [Weighted; 2],
}

impl Conditions {
    pub fn new() -> Conditions {
        let mut groups = Vec::new();
        let mut start = 0;
        while start < TEMPLATES.len() {
            let name = TEMPLATES[start].group;
            let end = start
                + TEMPLATES[start..]
                    .iter()
                    .take_while(|t| t.group == name)
                    .count();
            let weights = TEMPLATES[start..end].iter().map(|t| u32::from(t.weight));
            groups.push((start, Weighted::new(weights)));
            start = end;
        }
        let by_sex = |male: bool| {
            Weighted::new(groups.iter().map(|(start, w)| {
                if group_sex(TEMPLATES[*start].group).fits(male) {
                    w.total()
                } else {
                    0
                }
            }))
        };
        let group_by_sex = [by_sex(false), by_sex(true)];
        Conditions {
            groups,
            group_by_sex,
        }
    }

    /// A condition group for a person (used when the person is built).
    pub fn pick_group(&self, rng: &mut Rng, male: bool) -> u16 {
        self.group_by_sex[usize::from(male)]
            .sample(rng)
            .expect("groups fit every person") as u16
    }

    fn render(&self, p: &Person, rng: &mut Rng, e: Elem, out: &mut Fields) {
        let group = p.conditions[rng.below(p.nconditions as u32) as usize];
        let (start, weights) = &self.groups[usize::from(group)];
        let t = &TEMPLATES[start + weights.sample(rng).expect("groups are not empty")];
        out.push_with(|b| push_int64(b, p.id * IDS_PER_PERSON + i64::from(e.index)));
        out.push(t.impairment_category);
        out.push(t.impairment);
        out.push(t.feature_type);
        out.push(t.feature);
        out.push(t.icd_code);
        let day = e.date.unwrap_or_else(|| p.visit(Self::TABLE, rng));
        push_event_date(out, rng, day, PLACEHOLDERS, e.date.is_some());
        push_specialty(out, SPECIALTIES, rng);
        push_value(out, &t.value, rng, p);
        out.push_with(|b| push_int64(b, p.id));
    }
}

impl TableGen for Conditions {
    const TABLE: Table = Table::Conditions;
    const LAYOUT: Layout = Layout {
        columns: &[
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
        ],
        person_id: 9,
        required: 4,
        id: Some(0),
        text: 8,
    };
    const EXTRA: (i32, i32) = (0, 1);

    fn element(&self, p: &Person, rng: &mut Rng, e: Elem, out: &mut Fields) {
        let copies_previous =
            |index: u32, rng: &mut Rng| index > 0 && rng.chance(SAME_CONTENT_NEW_ID);
        if e.date.is_some() || !copies_previous(e.index, rng) {
            return self.render(p, rng, e, out);
        }
        // The content of the nearest earlier fact that is not itself a copy, rendered from its
        // own stream exactly as it was, under this fact's id.
        let mut source = e.index - 1;
        let mut source_rng = p.element_rng(Self::TABLE, source);
        while copies_previous(source, &mut source_rng) {
            source -= 1;
            source_rng = p.element_rng(Self::TABLE, source);
        }
        self.render(
            p,
            &mut source_rng,
            Elem {
                index: source,
                date: None,
            },
            out,
        );
        let mut id = String::new();
        push_int64(&mut id, p.id * IDS_PER_PERSON + i64::from(e.index));
        out.replace(0, &id);
    }
}
