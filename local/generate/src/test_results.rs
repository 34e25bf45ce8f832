//! The `tests` table (test results): vitals, imaging, ECG, echo, stress tests and other
//! examinations, one finding a row. Vitals (blood pressure `SYS/DIA`, pulse, weight, height, BMI)
//! come from the person's own baseline, so repeated measurements of one person agree with each
//! other.

use medrec_core::Table;

use super::fields::{Fields, Layout};
use super::person::Person;
use super::rng::{Rng, Weighted};
use super::vocab::{push_event_date, push_int64, push_value, Placeholders, Sex, Vital, V};
use super::{Elem, TableGen};

/// One kind of test finding; the weight is how many distinct sample rows had it.
struct Template {
    weight: u16,
    impairment_category: &'static str,
    impairment: &'static str,
    feature: &'static str,
    icd_code: &'static str,
}

const fn t(
    weight: u16,
    impairment_category: &'static str,
    impairment: &'static str,
    feature: &'static str,
    icd_code: &'static str,
) -> Template {
    Template {
        weight,
        impairment_category,
        impairment,
        feature,
        icd_code,
    }
}

impl Template {
    fn sex(&self) -> Sex {
        if self.feature == "PSA" || self.impairment == "prostate cancer" || self.impairment == "BPH"
        {
            Sex::Male
        } else if self.feature == "Mammogram" || self.impairment == "breast cancer" {
            Sex::Female
        } else {
            Sex::Any
        }
    }

    /// Hypertension context (impairment, "Hypertension diagnosed") only on hypertensive persons.
    fn hypertension(&self) -> bool {
        self.impairment == "Hypertension"
    }
}

/// Derived from the sample's vocabulary (see `vocab.rs`): contexts, feature names (the
/// truncated LVDD name included) and ICD codes, the invalid ones (`361`, `124`) included.
#[rustfmt::skip]
const TEMPLATES: &[Template] = &[
    t(1, "Pulmonary", "Sleep apnea", "AHI", "G47.30"),
    t(1, "Valvular heart disease", "aortic valve disease", "Aortic Valve Area", "I35.9"),
    t(9, "Basic", "BMI", "BMI", ""),
    t(1, "Valvular heart disease", "aortic valve disease", "Bicuspid vs trileaflet valve", "I35.9"),
    t(17, "CAD/Cardiovascular", "", "Blood pressure", ""),
    t(38, "CAD/Cardiovascular", "Hypertension", "Blood pressure", "I10"),
    t(1, "CAD/Cardiovascular", "Hypertension", "Blood pressure", "I25.10"),
    t(1, "CAD", "Hypertension", "Blood pressure-Type of reading", "I10"),
    t(13, "Lifestyle", "Temperature", "Body temperature", ""),
    t(3, "", "", "CXR - Findings", ""),
    t(5, "CAD/Cardiovascular", "", "CXR - Findings", ""),
    t(4, "Pulmonary", "", "CXR - Findings", ""),
    t(7, "Pulmonary", "COPD", "CXR - Findings", "J44.9"),
    t(1, "CAD/Cardiovascular", "CAD", "Cardiac catheterization - Ejection fraction", "I25.10"),
    t(1, "CAD/Cardiovascular", "", "Cardiac catheterization - Findings", ""),
    t(3, "CAD/Cardiovascular", "CAD", "Cardiac catheterization - Findings", "I25.10"),
    t(1, "CAD", "CAD", "Cardiac catheterization - Overall", "I25.81"),
    t(3, "CAD/Cardiovascular", "CAD", "Cardiac catheterization - Procedure", "I25.10"),
    t(1, "CAD/Cardiovascular", "", "Cardiac stress test - % of maximum predicted HR for age", ""),
    t(2, "CAD/Cardiovascular", "CAD", "Cardiac stress test - % of maximum predicted HR for age", "I25.10"),
    t(3, "CAD/Cardiovascular", "", "Cardiac stress test - EKG portion", ""),
    t(1, "CAD/Cardiovascular", "CAD", "Cardiac stress test - EKG portion", "I25.10"),
    t(1, "CAD/Cardiovascular", "Good exercise tolerance", "Cardiac stress test - Exercise tolerance", ""),
    t(1, "CAD/Cardiovascular", "", "Cardiac stress test - METS (metabolic equivalent task)", ""),
    t(1, "CAD/Cardiovascular", "", "Cardiac stress test - Minutes of exercise", ""),
    t(1, "CAD/Cardiovascular", "CAD", "Cardiac stress test - Minutes of exercise", "I25.10"),
    t(2, "CAD/Cardiovascular", "", "Cardiac stress test - Myocardial perfusion imaging", ""),
    t(1, "CAD/Cardiovascular", "CAD", "Cardiac stress test - Myocardial perfusion imaging", "I25.10"),
    t(2, "CAD/Cardiovascular", "", "Cardiac stress test - Overall", ""),
    t(2, "CAD/Cardiovascular", "CAD", "Cardiac stress test - Overall", "I25.10"),
    t(1, "CAD/Cardiovascular", "CAD", "Cardiac stress test - Stress Ejection Fraction %", "I25.10"),
    t(1, "CAD/Cardiovascular", "mitral valve disease", "Cardiac stress test - Stress Ejection Fraction %", "I34.9"),
    t(1, "CAD/Cardiovascular", "", "Cardiac stress test - Symptoms during exercise", ""),
    t(1, "CAD/Cardiovascular", "CAD", "Cardiac stress test - Symptoms during exercise", "I25.10"),
    t(2, "CAD/Cardiovascular", "", "Cardiac stress test - Type", ""),
    t(1, "CAD/Cardiovascular", "CAD", "Cardiac stress test - Type", "I25.10"),
    t(1, "", "", "Carotid ultrasound/doppler/duplex", ""),
    t(4, "Cerebrovascular", "", "Carotid ultrasound/doppler/duplex", ""),
    t(1, "Cerebrovascular", "carotid stenosis", "Carotid ultrasound/doppler/duplex", "I65.29"),
    t(1, "Cerebrovascular", "carotid stenosis", "Carotid ultrasound/doppler/duplex - RICA", "I65.29"),
    t(9, "", "", "Colonoscopy Results", ""),
    t(2, "", "", "Colonoscopy Type", ""),
    t(1, "Lifestyle", "Active", "Duke Activity Index Score", ""),
    t(1, "CAD/Cardiovascular", "", "EKG - Arrhythmias", ""),
    t(1, "CAD", "", "EKG - Heart blocks", ""),
    t(4, "CAD/Cardiovascular", "", "EKG - Heart blocks", ""),
    t(2, "CAD/Cardiovascular", "bifascicular block", "EKG - Heart blocks", ""),
    t(5, "CAD/Cardiovascular", "", "EKG - Heart rate", ""),
    t(4, "CAD/Cardiovascular", "CAD", "EKG - Heart rate", "I25.10"),
    t(1, "CAD/Cardiovascular", "atrial fibrillation", "EKG - Heart rate", "I48.91"),
    t(1, "CAD/Cardiovascular", "palpitations", "EKG - Heart rate", "R00.2"),
    t(1, "CAD/Cardiovascular", "", "EKG - Infarction", ""),
    t(1, "CAD/Cardiovascular", "palpitations", "EKG - Infarction", "R00.2"),
    t(6, "CAD/Cardiovascular", "", "EKG - Overall", ""),
    t(1, "CAD/Cardiovascular", "", "EKG - Overall", "361"),
    t(5, "CAD/Cardiovascular", "CAD", "EKG - Overall", "I25.10"),
    t(1, "CAD/Cardiovascular", "atrial fibrillation", "EKG - Overall", "I48"),
    t(1, "CAD/Cardiovascular", "atrial fibrillation", "EKG - Overall", "I48.91"),
    t(1, "CAD/Cardiovascular", "bradycardia", "EKG - Overall", "R00.1"),
    t(1, "CAD/Cardiovascular", "palpitations", "EKG - Overall", "R00.2"),
    t(1, "CAD", "", "EKG - Rhythm", ""),
    t(5, "CAD/Cardiovascular", "", "EKG - Rhythm", ""),
    t(3, "CAD/Cardiovascular", "CAD", "EKG - Rhythm", "I25.10"),
    t(1, "CAD/Cardiovascular", "bradycardia", "EKG - Rhythm", "R00. 1"),
    t(2, "CAD/Cardiovascular", "bradycardia", "EKG - Rhythm", "R00.1"),
    t(3, "CAD/Cardiovascular", "palpitations", "EKG - Rhythm", "R00.2"),
    t(4, "CAD/Cardiovascular", "", "EKG - Wave abnormalities", ""),
    t(1, "CAD", "", "Echocardiogram - Ejection Fraction / LVEF / EF", ""),
    t(2, "CAD/Cardiovascular", "CAD", "Echocardiogram - Ejection Fraction / LVEF / EF", "I25.10"),
    t(1, "Valvular heart disease", "heart failure", "Echocardiogram - Ejection Fraction / LVEF / EF", "I50.9"),
    t(4, "", "", "Echocardiogram - Impression", ""),
    t(1, "", "CAD", "Echocardiogram - Impression", "I25.10"),
    t(2, "Valvular heart disease", "", "Echocardiogram - Impression", ""),
    t(1, "Valvular heart disease", "aortic valve disease", "Echocardiogram - Impression", "I35.0"),
    t(3, "Valvular heart disease", "aortic valve disease", "Echocardiogram - Impression", "I35.9"),
    t(1, "Valvular heart disease", "mitral valve disease", "Echocardiogram - Impression", "I34.9"),
    t(2, "", "", "Echocardiogram - Left Ventricle / LVDD (diastolic diameter", ""),
    t(2, "Valvular heart disease", "", "Echocardiogram - Left Ventricle / LVDD (diastolic diameter", ""),
    t(2, "Valvular heart disease", "aortic valve disease", "Echocardiogram - Left Ventricle / LVDD (diastolic diameter", "I35.9"),
    t(1, "Valvular heart disease", "mitral valve disease", "Echocardiogram - Left Ventricle / LVDD (diastolic diameter", "I34.9"),
    t(3, "", "", "Echocardiogram - Regurgitation", ""),
    t(1, "CAD/Cardiovascular", "aortic stenosis", "Echocardiogram - Regurgitation", "I35.0"),
    t(1, "CAD/Cardiovascular", "diastolic dysfunction", "Echocardiogram - Regurgitation", "I50.3"),
    t(2, "CAD/Cardiovascular", "heart failure", "Echocardiogram - Regurgitation", "I50.9"),
    t(2, "Valvular heart disease", "", "Echocardiogram - Regurgitation", ""),
    t(2, "Valvular heart disease", "aortic valve disease", "Echocardiogram - Regurgitation", "I35.9"),
    t(1, "Valvular heart disease", "mitral valve disease", "Echocardiogram - Regurgitation", "I34.9"),
    t(1, "", "", "Echocardiogram - Right Ventricle Systolic Pressure / RVSP", ""),
    t(1, "", "CAD", "Echocardiogram - Right Ventricle Systolic Pressure / RVSP", "I25.10"),
    t(1, "CAD", "", "Echocardiogram - Right Ventricle Systolic Pressure / RVSP", ""),
    t(1, "Valvular heart disease", "aortic valve disease", "Echocardiogram - Stenosis", "I35.0"),
    t(2, "", "", "Echocardiogram - Type", ""),
    t(2, "Valvular heart disease", "", "Echocardiogram - Type", ""),
    t(2, "Valvular heart disease", "aortic valve disease", "Echocardiogram - Type", "I35.9"),
    t(1, "Valvular heart disease", "mitral valve disease", "Echocardiogram - Type", "I34.9"),
    t(23, "", "", "Findings/Impression/Conclusion", ""),
    t(1, "Aneurysms", "Thoracic aortic aneurysm", "Findings/Impression/Conclusion", "I71.2"),
    t(3, "CAD/Cardiovascular", "", "Findings/Impression/Conclusion", ""),
    t(2, "CAD/Cardiovascular", "CAD", "Findings/Impression/Conclusion", "I25.10"),
    t(1, "Cancer", "breast cancer", "Findings/Impression/Conclusion", "C50.919"),
    t(1, "Cancer", "ureteral cancer", "Findings/Impression/Conclusion", "C66.9"),
    t(5, "Cerebrovascular", "", "Findings/Impression/Conclusion", ""),
    t(11, "Gastrointestinal", "", "Findings/Impression/Conclusion", ""),
    t(1, "Gastrointestinal", "GERD", "Findings/Impression/Conclusion", "K21.9"),
    t(1, "Gastrointestinal", "colon polyps", "Findings/Impression/Conclusion", "K63.5"),
    t(1, "Gastrointestinal", "diverticulosis", "Findings/Impression/Conclusion", "K57. 90"),
    t(6, "Neurological", "Alzheimer's", "Findings/Impression/Conclusion", "G30.9"),
    t(4, "Orthopedic", "", "Findings/Impression/Conclusion", ""),
    t(4, "Orthopedic", "Osteoporosis", "Findings/Impression/Conclusion", "M81.0"),
    t(1, "Pulmonary", "COPD", "Findings/Impression/Conclusion", "J44.9"),
    t(3, "Renal", "", "Findings/Impression/Conclusion", ""),
    t(1, "Renal", "Chronic kidney disease", "Findings/Impression/Conclusion", "N18.9"),
    t(11, "Basic", "Height", "Height", ""),
    t(1, "CAD/Cardiovascular", "", "Holter Monitor - Duration of pause", ""),
    t(1, "CAD/Cardiovascular", "", "Holter Monitor - Underlying rhythm", ""),
    t(9, "CAD/Cardiovascular", "Hypertension", "Hypertension diagnosed", "I10"),
    t(9, "", "", "Mammogram", ""),
    t(1, "Cancer", "breast cancer", "Mammogram", "C50.012"),
    t(1, "Cancer", "breast cancer", "Mammogram", "C50.911"),
    t(1, "Valvular heart disease", "", "Mean Gradient", ""),
    t(1, "Valvular heart disease", "mitral valve disease", "Mean Gradient", "I34.9"),
    t(1, "Neurological", "Alzheimer's", "MoCA", "G30.9"),
    t(3, "Neurological", "", "Orientation to person", ""),
    t(3, "Neurological", "", "Orientation to place", ""),
    t(1, "Neurological", "memory issues", "Orientation to situation", "R41.3"),
    t(4, "Neurological", "", "Orientation to time", ""),
    t(1, "Neurological", "memory loss", "Oriented x 2", "R41.3"),
    t(5, "Neurological", "", "Oriented x 3", ""),
    t(1, "Neurological", "", "Oriented x 4", ""),
    t(1, "Pulmonary", "COPD", "PFT - restrictive or obstructive disease", "J44.9"),
    t(2, "", "", "PSA", ""),
    t(1, "", "BPH", "PSA", "N40.1"),
    t(8, "Cancer", "prostate cancer", "PSA", "C61"),
    t(1, "Cancer", "Bladder cancer", "Pathology report", "C67.9"),
    t(1, "Cancer", "prostate cancer", "Pathology report", "C61"),
    t(1, "", "", "Pulse", ""),
    t(1, "", "", "Pulse", "I25.10"),
    t(14, "CAD/Cardiovascular", "", "Pulse", ""),
    t(4, "CAD/Cardiovascular", "atrial fibrillation", "Pulse", "I48.91"),
    t(2, "CAD/Cardiovascular", "bradycardia", "Pulse", "R00.1"),
    t(5, "Pulmonary", "", "SPO2, oxygen level, oxygen saturation, nadir", ""),
    t(27, "Basic", "Weight", "Weight", ""),
    t(1, "Basic", "Weight", "Weight", "124"),
];

/// Values by feature, derived from the sample's vocabulary (units, ranges, scores, durations,
/// censored PSA and empty values as written); measurements are generated.
#[rustfmt::skip]
const VALUES: &[(&str, V)] = &[
("AHI", V::List(&[("14.4", 1)])),
    ("Aortic Valve Area", V::List(&[("1.3", 1)])),
    ("BMI", V::Vital(Vital::Bmi)),
    ("Bicuspid vs trileaflet valve", V::List(&[("trileaflet", 1)])),
    ("Blood pressure", V::Vital(Vital::BloodPressure)),
    ("Blood pressure-Type of reading", V::List(&[("", 1)])),
    ("Body temperature", V::Vital(Vital::Temperature)),
    ("CXR - Findings", V::List(&[("no acute cardiopulmonary disease", 3), ("atherosclerosis", 2), ("degenerative changes", 2), ("elevated hemidiaphragm", 2), ("", 1), ("Spondylosis", 1), ("aortic ectasia", 1), ("atelectasis", 1), ("cardiomegaly", 1), ("fracture", 1), ("no acute pathology", 1), ("no disease", 1), ("no infiltrate", 1), ("scarring", 1)])),
    ("Cardiac catheterization - Ejection fraction", V::List(&[("20-25", 1)])),
    ("Cardiac catheterization - Findings", V::List(&[("Location and severity and/or % of blockage stated", 1), ("aneurysm", 1), ("calcification", 1), ("occlusion", 1)])),
    ("Cardiac catheterization - Overall", V::List(&[("normal", 1)])),
    ("Cardiac catheterization - Procedure", V::List(&[("coronary angiography/angiogram/arteriogram", 1), ("left ventriculography", 1), ("right heart cath", 1)])),
    ("Cardiac stress test - % of maximum predicted HR for age", V::Int(70, 100)),
    ("Cardiac stress test - EKG portion", V::List(&[("abnormal", 2), ("", 1), ("nonischemic", 1)])),
    ("Cardiac stress test - Exercise tolerance", V::List(&[("Good", 1)])),
    ("Cardiac stress test - METS (metabolic equivalent task)", V::List(&[("7.4", 1)])),
    ("Cardiac stress test - Minutes of exercise", V::List(&[("00 hours 04 minutes 34 seconds", 1), ("00 hours, 04 minutes, 46 seconds", 1)])),
    ("Cardiac stress test - Myocardial perfusion imaging", V::List(&[("", 1), ("no reversible ischemia", 1), ("reversible defect", 1)])),
    ("Cardiac stress test - Overall", V::List(&[("presence of ischemia", 2), ("abnormal", 1), ("normal", 1)])),
    ("Cardiac stress test - Stress Ejection Fraction %", V::Int(45, 70)),
    ("Cardiac stress test - Symptoms during exercise", V::List(&[("Fatigue", 2)])),
    ("Cardiac stress test - Type", V::List(&[("exercise", 2), ("SPECT", 1)])),
    ("Carotid ultrasound/doppler/duplex", V::List(&[("plaque", 5), ("normal", 1)])),
    ("Carotid ultrasound/doppler/duplex - RICA", V::List(&[("0-39", 1)])),
    ("Colonoscopy Results", V::List(&[("diverticulosis", 4), ("hemorrhoids", 2), ("normal findings", 1), ("polyp(s) removed", 1), ("polyps", 1)])),
    ("Colonoscopy Type", V::List(&[("Colonoscopy", 2)])),
    ("Duke Activity Index Score", V::Int(20, 58)),
    ("EKG - Arrhythmias", V::List(&[("PVCs", 1)])),
    ("EKG - Heart blocks", V::List(&[("1st degree AV block", 5), ("RBBB", 1), ("bifascicular", 1)])),
    ("EKG - Heart rate", V::Vital(Vital::Pulse)),
    ("EKG - Infarction", V::List(&[("old", 1), ("possible", 1)])),
    ("EKG - Overall", V::List(&[("abnormal", 7), ("Normal", 4), ("unspecified", 4), ("paced", 1)])),
    ("EKG - Rhythm", V::List(&[("Sinus rhythm", 11), ("sinus bradycardia", 4)])),
    ("EKG - Wave abnormalities", V::List(&[("nonspecific", 2), ("ST wave", 1), ("ST-T wave", 1)])),
    ("Echocardiogram - Ejection Fraction / LVEF / EF", V::List(&[("50-55", 1), ("55", 1), ("58", 1), ("60%", 1)])),
    ("Echocardiogram - Impression", V::List(&[("", 2), ("Left ventricular hypertrophy", 2), ("aortic dilation", 2), ("calcification", 1), ("dilated L atrium", 1), ("no ischemia", 1), ("normal findings", 1), ("pericardial effusion", 1), ("wall motion abnormalities", 1)])),
    ("Echocardiogram - Left Ventricle / LVDD (diastolic diameter", V::List(&[("5.6", 2), ("4.5", 1), ("40.1", 1), ("46", 1), ("5.4 cm", 1), ("67", 1)])),
    ("Echocardiogram - Regurgitation", V::List(&[("mitral", 5), ("tricuspid", 3), ("Aortic", 2), ("pulmonic", 2)])),
    ("Echocardiogram - Right Ventricle Systolic Pressure / RVSP", V::List(&[("18 mmHg", 1), ("22 mmHg", 1), ("28-33", 1)])),
    ("Echocardiogram - Stenosis", V::List(&[("Aortic", 1)])),
    ("Echocardiogram - Type", V::List(&[("2D echo", 5), ("stress echo", 2)])),
    ("Findings/Impression/Conclusion", V::List(&[("normal findings", 9), ("diverticulosis", 5), ("negative findings", 4), ("renal cyst(s)", 4), ("Atrophy", 3), ("DDD", 3), ("atherosclerosis", 3), ("calcification", 3), ("no evidence of disease", 3), ("", 2), ("no fracture", 2), ("no hemorrhage", 2), ("osteopenia", 2), ("spondylosis", 2), ("T scores", 1), ("adenoma", 1), ("aortic calcification", 1), ("cyst(s)-type", 1), ("degenerative changes", 1), ("density", 1), ("enlarged prostate", 1), ("fibrosis", 1), ("gastritis", 1), ("hernia", 1), ("hyperechoic", 1), ("lesion", 1), ("no mass", 1), ("osteophytes", 1), ("pericardial effusion", 1), ("plaque", 1), ("scarring", 1), ("small vessel ischemic disease", 1), ("stenosis", 1), ("tortuous aorta", 1), ("white matter changes", 1), ("white matter disease", 1)])),
    ("Height", V::Vital(Vital::Height)),
    ("Holter Monitor - Duration of pause", V::List(&[("6.5", 1)])),
    ("Holter Monitor - Underlying rhythm", V::List(&[("Sinus rhythm", 1)])),
    ("Hypertension diagnosed", V::List(&[("Yes", 9)])),
    ("Mammogram", V::List(&[("screening", 3), ("BIRADS 1", 2), ("BIRADS 2", 1), ("C-A-D", 1), ("Digital", 1), ("calcifications", 1), ("heterogeneously dense", 1), ("no evidence of malignancy", 1)])),
    ("Mean Gradient", V::Int(2, 40)),
    ("MoCA", V::List(&[("28/30", 1)])),
    ("Orientation to person", V::List(&[("Yes", 3)])),
    ("Orientation to place", V::List(&[("Yes", 3)])),
    ("Orientation to situation", V::List(&[("Yes", 1)])),
    ("Orientation to time", V::List(&[("Yes", 4)])),
    ("Oriented x 2", V::List(&[("Yes", 1)])),
    ("Oriented x 3", V::List(&[("Yes", 5)])),
    ("Oriented x 4", V::List(&[("Yes", 1)])),
    ("PFT - restrictive or obstructive disease", V::List(&[("obstructive", 1)])),
    ("PSA", V::List(&[("<0.1", 4), ("0.00", 1), ("0.10", 1), ("0.13", 1), ("1.9", 1), ("3.7", 1), ("3.88", 1), ("7.9", 1)])),
    ("Pathology report", V::List(&[("Prostate, right, needle biopsy: Adenocarcinoma, Gleason score 6(3+3) involving approximately 20% of the biopsy material", 1), ("Bladder wash: no atypical urothelial cells, benign urothelium", 1)])),
    ("Pulse", V::Vital(Vital::Pulse)),
    ("SPO2, oxygen level, oxygen saturation, nadir", V::Int(90, 100)),
    ("Weight", V::Vital(Vital::Weight)),
];

/// 3 of the sample's 448 distinct test rows have a placeholder date.
const PLACEHOLDERS: Placeholders = Placeholders {
    rate: 0.007,
    share_1926: 0.7,
};

pub struct Tests {
    /// Each template's value specification.
    values: Vec<&'static V>,
    /// Indexed by `2 * male + hypertensive`.
    tables: [Weighted; 4],
}

impl Tests {
    pub fn new() -> Tests {
        let values = TEMPLATES
            .iter()
            .map(|t| {
                let (_, v) = VALUES
                    .iter()
                    .find(|(feature, _)| *feature == t.feature)
                    .unwrap_or_else(|| panic!("no values for test feature {}", t.feature));
                v
            })
            .collect();
        let table = |male: bool, hypertensive: bool| {
            Weighted::new(TEMPLATES.iter().map(|t| {
                let fits = t.sex().fits(male) && (hypertensive || !t.hypertension());
                if fits {
                    u32::from(t.weight)
                } else {
                    0
                }
            }))
        };
        Tests {
            values,
            tables: [
                table(false, false),
                table(false, true),
                table(true, false),
                table(true, true),
            ],
        }
    }
}

impl TableGen for Tests {
    const TABLE: Table = Table::Tests;
    const LAYOUT: Layout = Layout {
        columns: &[
            "impairment_category",
            "impairment",
            "feature_type",
            "feature",
            "icd_code",
            "report_date",
            "value",
            "person_id",
        ],
        person_id: 7,
        required: 3,
        id: None,
        text: 6,
    };
    const EXTRA: (i32, i32) = (1, 3);

    fn element(&self, p: &Person, rng: &mut Rng, e: Elem, out: &mut Fields) {
        let table = &self.tables[2 * usize::from(p.male) + usize::from(p.hypertensive)];
        let i = table.sample(rng).expect("templates fit every person");
        let t = &TEMPLATES[i];
        out.push(t.impairment_category);
        out.push(t.impairment);
        out.push("Test");
        out.push(t.feature);
        out.push(t.icd_code);
        let day = e.date.unwrap_or_else(|| p.visit(Self::TABLE, rng));
        push_event_date(out, rng, day, PLACEHOLDERS, e.date.is_some());
        push_value(out, self.values[i], rng, p);
        out.push_with(|b| push_int64(b, p.id));
    }
}

// The table is called "tests"; its unit tests keep the name every other module uses.
#[cfg(test)]
#[allow(clippy::module_inception)]
mod tests {
    use super::*;

    #[test]
    fn every_feature_has_values() {
        let tests = Tests::new();
        assert_eq!(tests.values.len(), TEMPLATES.len());
        assert!(VALUES
            .iter()
            .all(|(f, _)| TEMPLATES.iter().any(|t| t.feature == *f)));
    }
}
