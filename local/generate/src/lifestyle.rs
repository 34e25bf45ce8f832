//! lifestyle: habits, social and family history, function, immunisations, and the few vitals
//! the source files here (systolic hypertension, pulse pressure).

use medrec_core::Table;

use super::fields::{Fields, Layout};
use super::person::Person;
use super::rng::{Rng, Weighted};
use super::vocab::{push_event_date, push_int64, push_specialty, push_value, Placeholders, Sex, V};
use super::{Elem, TableGen};

/// One kind of lifestyle fact; the weight is how many distinct sample rows had it.
struct Template {
    weight: u16,
    impairment_category: &'static str,
    impairment: &'static str,
    lifestyle_category: &'static str,
    feature_type: &'static str,
    feature: &'static str,
    value: V,
}

const fn t(
    weight: u16,
    impairment_category: &'static str,
    impairment: &'static str,
    lifestyle_category: &'static str,
    feature_type: &'static str,
    feature: &'static str,
    value: V,
) -> Template {
    Template {
        weight,
        impairment_category,
        impairment,
        lifestyle_category,
        feature_type,
        feature,
        value,
    }
}

impl Template {
    fn sex(&self) -> Sex {
        let bph = matches!(self.value, V::List(values) if values.iter().any(|(v, _)| *v == "BPH symptoms"));
        if self.feature == "Sexual well-being" || bph {
            Sex::Male
        } else {
            Sex::Any
        }
    }
}

/// Derived from the sample's vocabulary (see `vocab.rs`): categories, features and values as
/// the source spells them, case drift and typos included.
#[rustfmt::skip]
const TEMPLATES: &[Template] = &[
    t(2, "CAD", "Hypertension", "Impairment", "Calculation", "Systolic Hypertension", V::List(&[("140", 2), ("150", 2), ("145", 1), ("160", 1)])),
    t(2, "CAD", "Pulse pressure", "Test", "Test", "Pulse pressure", V::Int(35, 70)),
    t(1, "CAD/Cardiovascular", "Syncope", "Impairment", "Symptom", "Syncope", V::List(&[("Single episode", 1)])),
    t(7, "Family History", "Family history - Longevity", "Family history", "Factor", "Family history of longevity-Father", V::Int(50, 102)),
    t(6, "Family History", "Family history - Longevity", "Family history", "Factor", "Family history of longevity-Mother", V::Int(55, 102)),
    t(2, "Family History", "Family history - Longevity", "Family history", "Factor", "Family history of longevity-Mother", V::List(&[("", 1)])),
    t(7, "Family History", "Family history - Longevity", "Family history", "Factor", "Family history of longevity-Siblings", V::List(SIBLINGS)),
    t(1, "Lifestyle", "", "Medical", "Impairment", "Bladder function", V::List(&[("nocturia", 1)])),
    t(1, "Lifestyle", "ADL dressing", "Activity", "Scale", "ADL dressing", V::List(&[("complete loss", 1)])),
    t(3, "Lifestyle", "ADL toileting", "Activity", "Scale", "ADL toileting", V::List(&[("no loss", 2), ("complete loss", 1)])),
    t(2, "Lifestyle", "ADLs - All", "Activity", "Scale", "ADLs - All", V::List(&[("needs assistance", 1), ("no loss", 1)])),
    t(3, "Lifestyle", "Active", "Activity", "Factor", "Activity level", V::List(&[("Active", 3)])),
    t(12, "Lifestyle", "Alcohol", "Habits", "Impairment", "Alcohol use", V::List(&[("2+/week", 2), ("daily", 2), ("rare", 2), ("social", 2), ("1-2/week", 1), ("1/week", 1), ("occasional", 1), ("positive for alcohol use", 1)])),
    t(1, "Lifestyle", "Anxiety", "Impairment", "Impairment", "Anxiety", V::List(&[("required anti-anxiety meds only", 1)])),
    t(45, "Lifestyle", "Appearance", "Habits", "Symptom", "Appearance", V::List(&[("no acute distress", 13), ("well-developed", 12), ("well-nourished", 9), ("pleasant", 3), ("well-appearing", 3), ("Looks younger than stated age", 2), ("healthy", 1), ("ill-appearing", 1), ("well-hydrated", 1)])),
    t(4, "Lifestyle", "Assistive device", "Activity", "Factor", "Use of assistive devices/Mobility assistance", V::List(&[("cane", 2), ("Walker", 1), ("wheelchair", 1)])),
    t(10, "Lifestyle", "Bladder function", "Medical", "Impairment", "Bladder function", V::List(&[("nocturia", 5), ("dysuria", 2), ("occasional/intermittent incontinence", 1), ("use of diapers", 1), ("use of pads", 1)])),
    t(5, "Lifestyle", "Bladder function", "Medical", "Impairment", "Bladder function", V::List(BPH_SYMPTOMS)),
    t(1, "Lifestyle", "Current cognitive status", "Test", "Test", "Current cognitive status", V::List(&[("MMSE 0/30", 1)])),
    t(5, "Lifestyle", "Depression", "Impairment", "Impairment", "Depression", V::List(&[("Situational", 2), ("noted with no details", 2), ("major", 1)])),
    t(1, "Lifestyle", "Diet", "Medical", "Longevity factor", "Diet", V::List(&[("Diabetic diet", 1)])),
    t(4, "Lifestyle", "Dizziness", "Symptom", "Symptom", "Dizziness/vertigo", V::List(&[("Dizziness", 4)])),
    t(1, "Lifestyle", "Education level", "Financial", "Factor", "Education level", V::List(&[("high school", 1)])),
    t(4, "Lifestyle", "Employment", "Financial", "Factor", "Employment", V::List(&[("Retired", 3), ("working", 1)])),
    t(16, "Lifestyle", "Exercise", "Activity", "Factor", "Exercise type", V::List(&[("treadmill", 3), ("walking", 3), ("type not specified", 2), ("weights", 2), ("None", 1), ("biking", 1), ("goes to gym", 1), ("swimming", 1), ("works with trainer", 1), ("yard work", 1)])),
    t(14, "Lifestyle", "Exercise", "Activity", "Factor", "Frequency", V::List(&[("unspecified", 8), ("daily", 4), ("4x/week", 1), ("regular", 1)])),
    t(8, "Lifestyle", "Falls", "Impairment", "Impairment", "Falls", V::List(&[("fall with minor injury", 4), ("fall with fracture", 1), ("fall with head injury", 1), ("fall with no injury", 1), ("reports multiple falls", 1)])),
    t(1, "Lifestyle", "Family involvement", "Social", "Factor", "Family involvement in medical care", V::List(&[("attend visits", 1)])),
    t(1, "Lifestyle", "Full code", "Legal", "Factor", "DNR / Full code", V::List(&[("Full code-Active", 1)])),
    t(3, "Lifestyle", "Functional status", "Functional status", "Factor", "Overall functional status", V::List(&[("use of cane", 2), ("independent", 1)])),
    t(4, "Lifestyle", "Hospitalization", "Medical", "Factor", "Hospitalization duration", V::List(&[("5", 2), ("", 1), ("3", 1), ("26", 1), ("2", 1), ("8", 1)])),
    t(3, "Lifestyle", "Hospitalization", "Medical", "Factor", "Hospitalization reason", V::List(&[("Severe acute mitral regurgitation with pulmonary edema", 1), ("Severe valvular heart disease", 1), ("Shortness of breath", 1)])),
    t(1, "Lifestyle", "IADLs", "Activity", "Scale", "IADL doing laundry", V::List(&[("no loss", 1)])),
    t(1, "Lifestyle", "IADLs", "Activity", "Scale", "IADL driving or public transportation", V::List(&[("needs assistance", 1)])),
    t(2, "Lifestyle", "IADLs", "Activity", "Scale", "IADL managing medications", V::List(&[("complete loss", 1), ("needs assistance", 1)])),
    t(1, "Lifestyle", "IADLs", "Activity", "Scale", "IADL using the phone", V::List(&[("needs assistance", 1)])),
    t(27, "Lifestyle", "Immunization", "Medical", "Factor", "Immunization", V::List(&[("flu", 15), ("pneumococcal", 6), ("Td/Tdap", 2), ("Prevnar", 1), ("Shingles", 1), ("flu high dose", 1), ("refuses all vaccines", 1)])),
    t(7, "Lifestyle", "Impaired vision", "Impairment", "Impairment", "Impaired vision", V::List(&[("cataracts", 6), ("macular degeneration", 1)])),
    t(6, "Lifestyle", "Living status", "Living situation", "Factor", "Living status", V::List(&[("living with spouse", 3), ("Lives w/significant other", 1), ("in retirement community", 1), ("lives alone", 1)])),
    t(2, "Lifestyle", "Non-Compliance", "Medical", "Factor", "Non-Compliance", V::List(&[("declined medication due to cost", 1), ("needs prescription to continue medications", 1)])),
    t(21, "Lifestyle", "Office visit frequency", "Medical", "Factor", "Office visit frequency", V::List(&[("1.5", 3), ("2", 3), ("1", 2), ("3.5", 2), ("4", 2), ("5.5", 2), ("10", 1), ("13.5", 1), ("18", 1), ("4.5", 1), ("6", 1), ("8", 1), ("9", 1)])),
    t(6, "Lifestyle", "Osteoarthritis", "Impairment", "Impairment", "Osteoarthritis", V::List(&[("Yes", 6)])),
    t(1, "Lifestyle", "Osteopenia", "Impairment", "Impairment", "Osteoporosis/Osteopenia", V::List(&[("osteopenia", 1)])),
    t(4, "Lifestyle", "Osteoporosis", "Impairment", "Impairment", "Osteoporosis/Osteopenia", V::List(&[("Osteoporosis", 4)])),
    t(29, "Lifestyle", "Pain", "Impairment", "Symptom", "Pain", V::List(&[("back pain", 10), ("abdominal pain", 6), ("limb pain", 4), ("neck pain", 4), ("arthritic pain", 2), ("hip pain", 2), ("with more than 1 pain med", 1)])),
    t(1, "Lifestyle", "Poor balance", "Impairment", "Impairment", "Poor balance or abnormal gait", V::List(&[("balance difficulty", 1)])),
    t(1, "Lifestyle", "Positive attitude", "Social", "Factor", "Good humor/positive attitude", V::List(&[("views health as good or excellent", 1)])),
    t(16, "Lifestyle", "Preventive care", "Medical", "Factor", "Yearly preventive/screening exams", V::List(&[("Yes", 15), ("No", 1)])),
    t(5, "Lifestyle", "Profession", "Financial", "Factor", "Profession", V::List(PROFESSIONS)),
    t(1, "Lifestyle", "Pulse pressure", "Test", "Test", "Pulse pressure", V::Int(35, 70)),
    t(2, "Lifestyle", "Sensory losses", "Medical", "Impairment", "Sensory losses", V::List(&[("hearing", 2)])),
    t(2, "Lifestyle", "Sexual well-being", "Medical", "Factor", "Sexual well-being", V::List(&[("erectile dysfunction", 2)])),
    t(8, "Lifestyle", "Sleep hygiene", "Habits", "Symptom", "Sleep hygiene", V::List(&[("Insomnia", 3), ("medication use", 2), ("nocturia", 2), ("difficulty sleeping", 1)])),
    t(1, "Lifestyle", "Smoker", "Habits", "Impairment", "Smoking", V::List(&[("d/c smoking > 20 years", 1)])),
    t(7, "Lifestyle", "Spouse status", "Social", "Factor", "Spouse status", V::List(&[("Living", 6), ("deceased", 1)])),
    t(1, "Lifestyle", "Substance abuse", "Habits", "Impairment", "Substance Abuse (drugs)", V::List(&[("none", 1)])),
    t(4, "Lifestyle", "Travel", "Financial", "Factor", "Travel", V::List(&[("Domestic travel", 3), ("international travel", 1)])),
    t(1, "Lifestyle", "UTIs", "Medical", "Impairment", "Bladder function", V::List(&[("single UTI", 1)])),
    t(1, "Lifestyle", "Weakness", "Impairment", "Symptom", "Fatigue", V::List(&[("fatigue", 1)])),
    t(1, "Lifestyle", "abnormal gait", "Impairment", "Impairment", "Poor balance or abnormal gait", V::List(&[("unsteady", 1)])),
    t(10, "Lifestyle", "alcohol-None", "Habits", "Impairment", "Alcohol use", V::List(&[("none", 10)])),
    t(1, "Lifestyle", "chronic pain", "Impairment", "Symptom", "Pain", V::List(&[("back pain", 1)])),
    t(9, "Lifestyle", "fatigue", "Impairment", "Symptom", "Fatigue", V::List(&[("fatigue", 9)])),
    t(9, "Lifestyle", "former smoker", "Habits", "Impairment", "Smoking", V::List(&[("d/c smoking > 20 years", 4), ("discontinued smoking", 3), ("d/c smoking < 20 years", 2)])),
    t(2, "Lifestyle", "hematuria", "Medical", "Impairment", "Bladder function", V::List(&[("hematuria", 2)])),
    t(1, "Lifestyle", "never smoker", "Habits", "Impairment", "Smoking", V::List(&[("Never smoker", 1)])),
    t(6, "Lifestyle", "non-smoker", "Habits", "Impairment", "Smoking", V::List(&[("non-smoker", 6)])),
    t(1, "Lifestyle", "non-smoker", "Habits", "Symptom", "Smoking", V::List(&[("non-smoker", 1)])),
    t(1, "Lifestyle", "vertigo", "Symptom", "Symptom", "Dizziness/vertigo", V::List(&[("vertigo", 1)])),
    t(1, "Orthopedic", "Compression fractures", "Impairment", "Impairment", "Compression fractures", V::List(&[("Yes", 1)])),
    t(1, "Orthopedic", "Osteopenia", "Impairment", "Impairment", "Osteoporosis/Osteopenia", V::List(&[("osteopenia", 1)])),
    t(1, "Orthopedic", "Osteoporosis", "Impairment", "Impairment", "Osteoporosis/Osteopenia", V::List(&[("Osteoporosis", 1)])),
    t(1, "Orthopedic", "scoliosis", "Impairment", "Impairment", "Kyphosis/scoliosis", V::List(&[("scoliosis", 1)])),
];

/// The prostate's share of the sample's bladder-function values.
const BPH_SYMPTOMS: &[(&str, u16)] = &[("BPH symptoms", 4), ("obstruction", 1)];

/// Free text with commas, like the source's notes (in the generator's own words).
const SIBLINGS: &[(&str, u16)] = &[
    ("", 1),
    ("Brother: 79, sister: 84", 1),
    (
        "One sister died at 70 of stroke, one brother alive at 88",
        1,
    ),
    ("Brother & sister: heart disease, diabetes", 1),
    ("Sister 1: 90, Sister 2: 77. Brother : 68, lung cancer", 1),
    ("Brother: Alive, Sister: Deceased", 1),
    ("Two brothers alive, no known illnesses", 1),
];

const PROFESSIONS: &[(&str, u16)] = &[
    ("Accountant", 1),
    ("Teacher", 1),
    ("Homemaker", 1),
    ("Retired engineer", 1),
    ("Farmer", 1),
    ("Small business owner", 1),
    ("Nurse", 1),
];

/// Specialties by distinct sample rows.
const SPECIALTIES: &[(&str, u16)] = &[
    ("General", 276),
    ("Unspecified", 68),
    ("general", 13),
    ("Cardiology", 8),
    ("Medicine", 4),
    ("Rheumatology", 3),
    ("Cardiovascular", 3),
    ("Oncologist", 2),
    ("Dermatology", 2),
    ("Orthopedic", 2),
    ("Physiatry", 1),
    ("Gastrology", 1),
    ("General Medicine", 1),
];

/// 9 of the sample's 384 distinct lifestyle rows have a placeholder date, mostly 1926-07-01.
const PLACEHOLDERS: Placeholders = Placeholders {
    rate: 0.023,
    share_1926: 0.9,
};

pub struct Lifestyle {
    /// Indexed by `Person::male`.
    by_sex: [Weighted; 2],
}

impl Lifestyle {
    pub fn new() -> Lifestyle {
        let table = |male: bool| {
            Weighted::new(TEMPLATES.iter().map(|t| {
                if t.sex().fits(male) {
                    u32::from(t.weight)
                } else {
                    0
                }
            }))
        };
        Lifestyle {
            by_sex: [table(false), table(true)],
        }
    }
}

impl TableGen for Lifestyle {
    const TABLE: Table = Table::Lifestyle;
    const LAYOUT: Layout = Layout {
        columns: &[
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
        ],
        person_id: 9,
        required: 4,
        id: None,
        text: 7,
    };
    const EXTRA: (i32, i32) = (0, 2);

    fn element(&self, p: &Person, rng: &mut Rng, e: Elem, out: &mut Fields) {
        let i = self.by_sex[usize::from(p.male)]
            .sample(rng)
            .expect("templates fit every person");
        let t = &TEMPLATES[i];
        out.push(t.impairment_category);
        out.push(t.impairment);
        out.push(t.lifestyle_category);
        out.push(t.feature_type);
        out.push(t.feature);
        let day = e.date.unwrap_or_else(|| p.visit(Self::TABLE, rng));
        push_event_date(out, rng, day, PLACEHOLDERS, e.date.is_some());
        push_specialty(out, SPECIALTIES, rng);
        push_value(out, &t.value, rng, p);
        // The sample's only secondary value is a note on hip pain.
        let note = t.feature == "Pain" && out.get(7) == "hip pain" && rng.chance(0.5);
        out.push(if note { "Possible AVN" } else { "" });
        out.push_with(|b| push_int64(b, p.id));
    }
}
