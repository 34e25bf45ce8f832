//! rx: prescriptions. A person's drugs come from one of the source's two systems (RxNorm with
//! upper-case names, or DIN with mixed-case names: DATA_NOTES 7.1), which is where most of the
//! name case drift comes from. Persons with BPH take an alpha blocker (FLOMAX, or HYTRIN whose
//! label says "Quinazoline Derivative"), some also PROSCAR, which is not one.

use medrec_core::Table;

use super::fields::{Fields, Layout};
use super::person::{EndDates, Person};
use super::rng::{Rng, Weighted};
use super::vocab::{
    minus_months, push_int64, write_iso, write_us, Day, PLACEHOLDER_1926, PLACEHOLDER_1976,
    PLACEHOLDER_US_1900,
};
use super::{Elem, TableGen};

/// One drug as the source records it, with an indication; the weight is how many distinct
/// sample rows had it. Codes are written float-encoded (`190283.0`), as every code in the
/// sample is.
struct Template {
    weight: u16,
    impairment_category: &'static str,
    impairment: &'static str,
    din: &'static str,
    rx_name: &'static str,
    rx_type: &'static str,
    rx_norm: &'static str,
}

const fn t(
    weight: u16,
    impairment_category: &'static str,
    impairment: &'static str,
    din: &'static str,
    rx_name: &'static str,
    rx_type: &'static str,
    rx_norm: &'static str,
) -> Template {
    Template {
        weight,
        impairment_category,
        impairment,
        din,
        rx_name,
        rx_type,
        rx_norm,
    }
}

impl Template {
    /// Whether a person of this system can have the drug: coded drugs belong to one system,
    /// uncoded ones (about a tenth of the rows) to both.
    fn fits(&self, din_person: bool) -> bool {
        if din_person {
            self.rx_norm.is_empty()
        } else {
            self.din.is_empty()
        }
    }

    fn is_alpha_blocker(&self) -> bool {
        ["FLOMAX", "HYTRIN"].contains(&self.rx_name.to_ascii_uppercase().as_str())
    }

    fn is_proscar(&self) -> bool {
        self.rx_name == "PROSCAR"
    }
}

/// Derived from the sample's vocabulary (see `vocab.rs`): names with their case variants and
/// misspellings (Tyenol, Vallium, LEVOQUIN), labels as written (wrong ones included), RxNorm
/// codes and DINs without leading zeros.
#[rustfmt::skip]
const TEMPLATES: &[Template] = &[
    t(1, "CAD/Cardiovascular", "Hypertension", "", "ACCUPRIL", "Angiotensin-Converting Enzyme (Ace) Inhibitors", "72210"),
    t(1, "CAD/Cardiovascular", "atrial fibrillation", "2147610", "Acebutolol", "Beta blockers", ""),
    t(1, "Lifestyle", "Pain", "", "ACETAMINOPHEN", "Opioid Analgesics", "315268"),
    t(1, "", "", "", "ACTONEL", "Bone Resorption Inhibitors", "905034"),
    t(1, "Endocrine", "Diabetes", "", "ACTOS", "Thiazolidinediones", "261267"),
    t(1, "Pulmonary", "COPD", "", "ADVAIR DISKUS", "Adrenals", "896165"),
    t(1, "", "", "", "ALENDRONATE SODIUM", "Synthetic Bisphosphonate", "904431"),
    t(1, "", "", "", "ALEVE", "NSAIDS", "1112233"),
    t(1, "", "", "2396335", "Allopurinol", "Antigout Agents", ""),
    t(1, "Gastrointestinal", "", "", "ALLOPURINOL", "Xanthine Oxidase Inhibitor;  Urate Transporter Inhibitor", "519"),
    t(1, "", "", "", "ALOXI", "5-HT3 Receptor Antagonists", "1728052"),
    t(1, "", "", "", "ALPHA-LIPOIC ACID", "Antioxidant", "849093"),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "ALTACE", "Angiotensin-Converting Enzyme (Ace) Inhibitors", "262418"),
    t(1, "", "", "", "AMBIEN", "Benzodiazepines", "131725"),
    t(1, "Lifestyle", "", "", "AMBIEN", "Benzodiazepines", "131725"),
    t(1, "Lifestyle", "", "", "AMBIEN", "Benzodiazepines", "854878"),
    t(1, "Lifestyle", "Sleep hygiene", "", "AMBIEN", "Benzodiazepines", "131725"),
    t(1, "CAD/Cardiovascular", "atrial fibrillation", "2245248", "Amiodarone", "Antiarrhythmics", ""),
    t(1, "", "", "", "AMITIZA", "Bicyclic Fatty Acid", "617768"),
    t(1, "", "", "", "AMITRIPTYLINE HYDROCHLORIDE", "Tricyclics And Other Norepinephrine-Reuptake Inhibitors", "856773"),
    t(1, "Lifestyle", "Pain", "", "AMLODIPINE BESYLATE", "Antihypertensive Combinations", "308136"),
    t(1, "Lifestyle", "", "2433079", "Amoxicillin", "Penicillin-like antibiotics", ""),
    t(1, "Pulmonary", "Pneumonia", "", "AMOXICILLIN TRIHYDRATE", "Penicillin like antibiotics", "308189"),
    t(1, "", "", "", "ANUSOL HC", "Corticosteroids", "1659445"),
    t(1, "", "", "", "ARICEPT", "Reversible Acetylcholinesterase Inhibitor", "135446"),
    t(1, "Neurological", "Alzheimer's", "", "ARICEPT", "Reversible Acetylcholinesterase Inhibitor", "135446"),
    t(5, "", "", "", "ASA", "NSAIDS", "243670"),
    t(2, "CAD/Cardiovascular", "", "", "ASA", "NSAIDS", "243670"),
    t(1, "CAD/Cardiovascular", "Angina", "", "ASA", "NSAIDS", "243670"),
    t(1, "CAD/Cardiovascular", "atrial fibrillation", "2237726", "ASA", "Antiplatelet", ""),
    t(4, "Lifestyle", "Pain", "", "ASA", "NSAIDS", "243670"),
    t(1, "", "", "", "Aspirin", "NSAIDs", ""),
    t(1, "Lifestyle", "Pain", "2289970", "Aspirin", "salicylates", ""),
    t(1, "Lifestyle", "Pain", "", "ASPIRIN/DIPYRIDAMOLE", "Antiplatelet agents", "259081"),
    t(2, "CAD/Cardiovascular", "Hypertension", "", "ATENOLOL", "Antihypertensive Combinations", "1202"),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "ATENOLOL", "Antihypertensive Combinations", "315437"),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "ATENOLOL", "Antihypertensive Combinations", "315438"),
    t(1, "CAD/Cardiovascular", "Hyperlipidemia", "2243097", "Atorvastatin", "HMG-CoA Reductase Inhibitors (Statins)", ""),
    t(1, "", "", "", "BACITRACIN", "Topical antibiotics", "1291"),
    t(1, "", "", "", "BENADRYL", "Antihistamines", "203457"),
    t(1, "CAD/Cardiovascular", "atrial fibrillation", "", "BETAPACE", "Non-Selective Beta-Blocker", "1923427"),
    t(2, "", "", "", "CALCIUM", "Calcium Supplement", "1895"),
    t(1, "", "", "", "Calcium", "Supplement", ""),
    t(1, "Lifestyle", "Osteoporosis", "", "CALCIUM", "Calcium Supplement", "237420"),
    t(1, "Orthopedic", "Osteopenia", "", "CALCIUM", "Calcium Supplement", "1895"),
    t(1, "", "", "", "CALTRATE", "Calcium supplement", "215850"),
    t(1, "", "", "", "CEFADROXIL", "First Generation Cephalosporins", "309049"),
    t(1, "", "", "2239941", "Celebrex", "NSAIDs", ""),
    t(1, "Lifestyle", "Pain", "", "CELESTONE SOLUSPAN", "Bronchodilator", "47847"),
    t(1, "", "", "", "CENTRUM SILVER", "Vitamins", "92105"),
    t(1, "", "", "", "CEPHALEXIN", "Antibiotics", "197454"),
    t(1, "", "", "", "Cerefolin", "Multivitamin", "404926"),
    t(1, "", "", "", "Ceron", "Supplement", ""),
    t(1, "", "", "", "CETAPHIL LOTION", "", ""),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "CHLORTHALIDONE", "Antihypertensive Combinations", "197499"),
    t(1, "", "", "2247340", "Cipro", "fluoroquinolones", ""),
    t(1, "", "", "", "CIPROFLOXACIN", "Antibiotics", "309309"),
    t(1, "", "", "2150166", "Citracal", "Calcium Salts", ""),
    t(1, "", "", "", "CLARITIN", "Antihistamines", "206805"),
    t(1, "", "", "", "CLINDAMYCIN", "Lincomycin Antibiotics", "284215"),
    t(1, "", "", "", "CLOBETASOL PROPIONATE", "Corticosteroids", "1995455"),
    t(1, "", "", "", "CLOBETASOL PROPIONATE", "Corticosteroids", "21245"),
    t(1, "", "", "", "CLODERM", "corticosteroid", ""),
    t(1, "", "", "", "CLONAZEPAM", "Benzodiazepines", "349198"),
    t(1, "", "", "", "CODEINE SULFATE", "Opioid Analgesics", "91104"),
    t(1, "Gastrointestinal", "", "", "COLACE", "Laxatives", "1247756"),
    t(1, "", "", "2402181", "Colchicine", "Anti-gout agents", ""),
    t(1, "CAD/Cardiovascular", "CAD", "2245852", "COQ 10", "1,4-Benzoquinone", ""),
    t(1, "CAD/Cardiovascular", "Hyperlipidemia", "", "COREG", "Non-Selective Beta-Blocker", "216221"),
    t(1, "CAD/Cardiovascular", "CAD", "", "COUMADIN", "Coumarin Derivative", "855346"),
    t(1, "CAD/Cardiovascular", "atrial fibrillation", "2240206", "Coumadin", "Anticoagulants", ""),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "COZAAR", "Angiotensin II Receptor Antagonist", "979482"),
    t(1, "Lifestyle", "Pain", "", "DARVOCET-N", "Opioid", "849692"),
    t(1, "Lifestyle", "Osteoarthritis", "", "Darvocet-N 100", "Narcotic analgesic combinations", ""),
    t(1, "Orthopedic", "Osteoporosis", "", "DENOSUMAB", "RANK Ligand inhibitors", "993454"),
    t(1, "Lifestyle", "Osteoarthritis", "", "DEPO-MEDROL", "Synthetic Glucocorticoid", "22584"),
    t(1, "", "", "", "DERMASMOOTHE", "Corticosteroids, Topical", ""),
    t(2, "", "", "", "DETROL LA", "Antimuscarinic", "855191"),
    t(1, "", "", "2244613", "Detrol LA", "Anticholinergics", ""),
    t(1, "", "", "", "DEXILANT", "Proton-Pump Inhibitors", "902621"),
    t(1, "", "", "362158", "Diazepam", "Benzodiazepines", ""),
    t(1, "CAD", "atrial fibrillation", "2048264", "Digoxin", "cardiac glycosides", ""),
    t(1, "CAD/Cardiovascular", "Hypertension", "2243339", "Diltiazem", "calcium-channel blockers", ""),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "DILTIAZEM HYDROCHLORIDE", "Nondihydropyridine Derivative", "830877"),
    t(1, "", "", "", "Diovan", "Angiotensin receptor blockers", ""),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "DIOVAN", "Angiotensin-II Receptor Blockers (ARBS)", "216652"),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "DIOVAN", "Angiotensin-II Receptor Blockers (ARBS)", "351762"),
    t(1, "CAD/Cardiovascular", "Hypertension", "2244781", "Diovan", "Beta blockrs", ""),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "Dyazide", "Diuretics", ""),
    t(1, "", "", "", "ECONAZOLE", "Antifungal", "3743"),
    t(1, "Lifestyle", "Pain", "", "ECOTRIN", "NSAID", "1189781"),
    t(1, "", "", "", "ELAVIL", "Tricyclics And Other Norepinephrine-Reuptake Inhibitors", "42940"),
    t(1, "CAD/Cardiovascular", "atrial fibrillation", "", "ELIQUIS", "Anticoagulant", "1364447"),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "ENALAPRIL MALEATE", "Angiotensin-Converting Enzyme (Ace) Inhibitors", "858810"),
    t(1, "CAD/Cardiovascular", "", "", "ENOXAPARIN SODIUM", "Heparins", "854235"),
    t(1, "", "", "", "EXELON", "Parasympathomimetic (Cholinergic) Agents", "226665"),
    t(1, "", "", "", "Exelon patch", "Cholinesterase Inhibitors.", ""),
    t(1, "Gastrointestinal", "", "", "FAMOTIDINE", "Histamine H2-Antagonists", "4278"),
    t(1, "", "", "", "FAMVIR", "Purine Nucleosides", "206853"),
    t(1, "Blood Disorders", "Anemia", "", "FEOSOL", "Iron supplement", ""),
    t(1, "Gastrointestinal", "", "", "FIBERCON", "bulk-forming laxative", "210665"),
    t(1, "", "", "", "FISH OIL", "Omega-3 fatty acid supplements", "646470"),
    t(1, "", "", "", "FLAGYL", "Nitroimidazoles", "207290"),
    t(1, "", "", "", "FLEXERIL", "Muscle relaxants", "224954"),
    t(1, "", "", "", "FLOMAX", "Alpha Blockers", "190283"),
    t(1, "", "", "2270102", "Flomax", "Alpha 1 Blockers", ""),
    t(1, "", "", "2270102", "Flomax", "Alpha 1 blockers", ""),
    t(1, "", "BPH", "", "FLOMAX", "Alpha Blockers", "190283"),
    t(2, "", "BPH", "", "FLOMAX", "Alpha Blockers", "863671"),
    t(1, "Lifestyle", "Bladder function", "", "FLOMAX", "Alpha Blockers", "190283"),
    t(3, "", "", "", "FLONASE", "Adrenals", "1797933"),
    t(1, "", "", "2248307", "Flonase", "Corticosteroids", ""),
    t(1, "", "", "", "FLUOROURACIL", "Pyrimidine Antagonist; Antimetabolite", "284191"),
    t(1, "", "", "", "FLUOROURACIL", "Pyrimidine Antagonist; Antimetabolite", "4492"),
    t(1, "", "", "", "FLUOXETINE", "SSRI", "1190110"),
    t(1, "Blood Disorders", "Anemia", "", "FOLIC ACID", "Water-Soluble, B Complex Vitamin.", "310410"),
    t(1, "Gastrointestinal", "", "", "FOLTX", "Cyanocobalamin", "261527"),
    t(1, "", "", "", "FOSAMAX", "Synthetic Bisphosphonate", "114265"),
    t(1, "Orthopedic", "Osteopenia", "", "FOSAMAX", "Synthetic Bisphosphonate", "904433"),
    t(1, "Orthopedic", "Osteoporosis", "", "FOSAMAX", "Synthetic Bisphosphonate", "904433"),
    t(1, "CAD/Cardiovascular", "Hypertension", "362166", "Furosemide", "diuretic", ""),
    t(1, "Neurological", "", "", "GABAPENTIN", "CNS Neurotransmitter GABA", "25480"),
    t(2, "Endocrine", "Diabetes", "", "GLIPIZIDE", "Thiazolidinediones", "310488"),
    t(1, "Endocrine", "Diabetes", "", "GLUCOPHAGE XR", "Biguanides", "860977"),
    t(1, "", "", "", "GLUCOSAMINE", "Nutraceutical products", "4845"),
    t(1, "Orthopedic", "", "", "Glucosamine", "Analgesics", ""),
    t(1, "Endocrine", "Diabetes", "", "HUMALOG MIX 75/25", "Insulins", "752388"),
    t(1, "", "", "2434725", "Humibid", "Expectorants", ""),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "HYDROCHLOROTHIAZIDE (HCTZ)", "Direct Vasodilators", "310798"),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "HYTRIN", "Quinazoline Derivative", "235224"),
    t(1, "Lifestyle", "Pain", "", "IBUPROFEN", "NSAIDS", "197803"),
    t(1, "Lifestyle", "Pain", "", "IBUPROFEN", "NSAIDS", "5640"),
    t(1, "", "", "", "IMIPRAMINE HCL", "Tricyclic antidepressants", "835564"),
    t(1, "Gastrointestinal", "", "", "IMODIUM", "Antidiarrheals", "978013"),
    t(1, "Lifestyle", "", "", "IMODIUM", "Antidiarrheals", "151889"),
    t(1, "Pulmonary", "COPD", "", "Ipratropium-Albuterol", "Bronchodilators", "1362214"),
    t(1, "Blood Disorders", "", "", "IRON", "Iron supplements", "90176"),
    t(1, "Endocrine", "Diabetes", "", "JANUVIA", "Gliptins (Dipeptidyl Peptidase-4 Inhibitors, DPP-4s)", "665036"),
    t(1, "Endocrine", "Diabetes", "", "JANUVIA", "Gliptins (Dipeptidyl Peptidase-4 Inhibitors, DPP-4s)", "665044"),
    t(1, "", "", "", "KAYEXALATE", "Potassium Binders", ""),
    t(2, "", "", "", "KEFLEX", "First generation cephalosporins", "203167"),
    t(1, "", "", "", "KEFLEX", "First generation cephalosporins", "212339"),
    t(3, "", "", "", "KENALOG", "Glucocorticoids", "202877"),
    t(1, "", "", "", "LASIX", "Loop Diuretics", "200801"),
    t(1, "", "", "", "LASIX", "Loop Diuretics", "200809"),
    t(1, "CAD/Cardiovascular", "Edema", "", "LASIX", "Loop Diuretics", "202991"),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "Lasix", "Diuretics", ""),
    t(1, "CAD/Cardiovascular", "Hypertension", "565040", "Lasix", "Diuretics", ""),
    t(1, "CAD/Cardiovascular", "Hyperlipidemia", "2250527", "Lescol", "statins", ""),
    t(1, "Cancer", "breast cancer", "", "LETROZOLE", "CDK 4/6 Inhibitor", "200064"),
    t(1, "", "", "", "LEVAQUIN", "Fluoroquinolone Antibiotics", "211815"),
    t(1, "", "", "", "LEVAQUIN", "Fluoroquinolone Antibiotics", "211816"),
    t(3, "", "", "", "LEVAQUIN", "Fluoroquinolone Antibiotics", "217992"),
    t(1, "", "", "", "LEVOQUIN", "Fluoroquinolones", ""),
    t(1, "Lifestyle", "Depression", "", "LEXAPRO", "Selective Serotonin-Reuptake Inhibitors", "352273"),
    t(1, "Lifestyle", "", "", "LIDODERM", "Local Anesthetics", "1011705"),
    t(1, "CAD/Cardiovascular", "Hyperlipidemia", "", "LIPITOR", "Fibric Acid Derivatives", "153165"),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "LISINOPRIL", "Angiotensin-Converting Enzyme (Ace) Inhibitors", "29046"),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "LISINOPRIL", "Angiotensin-Converting Enzyme (Ace) Inhibitors", "314077"),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "Lisinopril", "ACE inhibitors", ""),
    t(1, "CAD/Cardiovascular", "Hypertension", "2217538", "Lisinopril", "ACE inhibitors", ""),
    t(1, "", "", "", "LOPROX CREAM", "Antifungal", ""),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "LOSARTAN / HCTZ", "Angiotensin II Receptor Antagonist", "979468"),
    t(1, "", "", "", "MAGNESIUM", "Antacids; Electrolytes", "6574"),
    t(1, "", "", "", "Magnesium Oxide", "Supplement", ""),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "MAVIK", "Angiotensin-Converting Enzyme (Ace) Inhibitors", "210673"),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "MAXZIDE", "Direct Vasodilators", "52440"),
    t(1, "", "", "", "MECLIZINE", "Histamine H1- Antagonists", "330719"),
    t(1, "", "", "", "MEDROL DOSEPAK", "Synthetic Glucocorticoid", "834023"),
    t(1, "Pulmonary", "COPD", "", "MEDROL DOSEPAK", "Synthetic Glucocorticoid", "834023"),
    t(1, "", "", "", "MEPERIDINE HYDROCHLORIDE", "Synthetic Phenylpiperidine Derivative", "861467"),
    t(1, "Autoimmune Disorders", "Rheumatoid arthritis", "", "METHOTREXATE", "Folate AntAgonist", "105585"),
    t(1, "", "", "", "METHYLPHENIDATE", "CNS Stimulants", "753436"),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "METOPROLOL SUCCINATE", "beta-Adrenergic Blocking Agents", "866436"),
    t(1, "", "", "", "METROCREAM", "nitroimidazole", ""),
    t(1, "", "", "", "MEXITIL", "Class Ib Antiarrhythmics", ""),
    t(1, "", "", "", "MICRO-K", "Mineral Supplement", ""),
    t(1, "", "", "", "MIDAZOLAM", "Benzodiazepines", "6960"),
    t(1, "", "", "", "MIRALAX", "Osmotic Laxatives", "261575"),
    t(1, "", "", "", "Miralax", "osmotic laxatives", ""),
    t(1, "", "", "", "MOBIC", "Oxicam Derivative", "152697"),
    t(1, "Orthopedic", "", "", "MULTIVITAMIN WITH MINERALS", "Vitamins", "218488"),
    t(1, "", "", "", "MULTIVITAMINS", "Vitamins", "3788140"),
    t(1, "Lifestyle", "Nutrient deficiencies", "", "MULTIVITAMINS", "Vitamins", "3788140"),
    t(1, "", "", "", "NAMENDA", "N--Methyl-d-aspartate (NMDA) Receptor antAgonist", "996563"),
    t(1, "", "", "", "NAPROSYN", "Nsaids", "203012"),
    t(1, "", "", "", "NASACORT", "Corticosteroids", "153239"),
    t(1, "", "", "", "NASONEX", "Topical Steroid", "1797870"),
    t(1, "", "", "666246", "Neomycin-Polymyxin-Hydrocortisone", "Corticosteroids", ""),
    t(1, "", "", "", "NEXIUM", "Proton-Pump Inhibitors", "284799"),
    t(1, "Gastrointestinal", "GERD", "", "NEXIUM", "Proton-Pump Inhibitors", "284799"),
    t(1, "Cancer", "prostate cancer", "", "NILANDRON", "Nonsteroidal Antiandrogen", "218741"),
    t(1, "CAD/Cardiovascular", "", "", "NITROGLYCERIN", "Antianginal Agents, Vasodilators", "486145"),
    t(1, "CAD/Cardiovascular", "CAD", "2393433", "Nitroglycerin", "vasodilators", ""),
    t(1, "", "", "", "Nobar", "Histamine-2 Receptor Antagonist", ""),
    t(1, "CAD/Cardiovascular", "Hyperlipidemia", "", "NORVASC", "Calcium-Channel Blocking Agent", "212575"),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "NORVASC", "Calcium-Channel Blocking Agent", "212549"),
    t(2, "CAD/Cardiovascular", "Hypertension", "", "NORVASC", "Calcium-Channel Blocking Agent", "58927"),
    t(1, "CAD/Cardiovascular", "Hyperlipidemia", "", "OMEGA-3", "Triglyceride-lowering", "4301"),
    t(1, "", "", "", "OXYBUTYNIN", "Antispasmodic", "32675"),
    t(1, "", "", "", "PAXIL", "SSRI", "114228"),
    t(1, "", "", "", "PAXIL", "SSRI", "207349"),
    t(1, "", "", "", "PLAVIX", "Anti-Platelet", "174742"),
    t(1, "Cerebrovascular", "CVA", "", "PLAVIX", "Anti-Platelet", "213169"),
    t(1, "Cerebrovascular", "Stroke", "", "PLAVIX", "Anti-Platelet", "213169"),
    t(1, "", "", "", "Potassium", "Electrolytes", ""),
    t(1, "Lifestyle", "", "", "POTASSIUM CHLORIDE", "Mineral Supplement", "8591"),
    t(1, "", "", "", "PRADAXA", "Direct Thrombin Inhibitor", "1037046"),
    t(1, "Endocrine", "Diabetes", "", "PRANDIN", "Meglitinides (Glinides)", "219335"),
    t(1, "Autoimmune Disorders", "Rheumatoid arthritis", "", "PREDNISOLONE", "Corticosteroids", "198142"),
    t(1, "", "", "", "PREDNISONE", "Corticosteroids", "8640"),
    t(1, "Autoimmune", "Osteoarthritis", "", "PREDNISONE", "Corticosteroids", "312615"),
    t(1, "Gastrointestinal", "GERD", "", "PREVACID", "PPI", "83156"),
    t(1, "Gastrointestinal", "", "", "PRILOSEC", "PPI", "203345"),
    t(1, "Gastrointestinal", "GERD", "", "PRILOSEC", "PPI", "203345"),
    t(2, "Gastrointestinal", "GERD", "", "PRILOSEC", "PPI", "207212"),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "Prinivil", "angiotensin converting enzyme", ""),
    t(1, "Blood Disorders", "Anemia", "", "PROCRIT", "Hematopoietic Growth Factors", "227303"),
    t(1, "", "", "", "PROMETHAZINE", "Opioid", "8745"),
    t(1, "", "", "", "PROPRANOLOL HYDROCHLORIDE", "Beta Blocker", "856519"),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "PROPRANOLOL HYDROCHLORIDE", "Beta Blocker", "856460"),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "PROPRANOLOL HYDROCHLORIDE", "Beta Blocker", "856556"),
    t(2, "", "", "", "PROSCAR", "5-Alpha-Reductase Inhibitor", "196476"),
    t(1, "", "BPH", "", "PROSCAR", "5-Alpha-Reductase Inhibitor", "196476"),
    t(1, "", "", "", "PROTONIX", "PPI", "261624"),
    t(1, "", "", "", "PROTONIX", "PPI", "352125"),
    t(1, "Gastrointestinal", "GERD", "2299585", "Protonix", "Proton-pump inhibitors", ""),
    t(1, "Lifestyle", "", "", "PSYLLIUM", "Bulk-forming fiber laxative", "824586"),
    t(1, "CAD/Cardiovascular", "Hypertension", "2310538", "Ramipril", "ACE inhibitor", ""),
    t(1, "CAD/Cardiovascular", "CAD", "", "RANEXA", "Long Acting Nitrates", "860738"),
    t(1, "Neurological", "Alzheimer's", "2244300", "Reminyl", "Acetylcholinesterase Inhibitors", ""),
    t(1, "Lifestyle", "Sleep hygiene", "", "RESTORIL", "Benzodiazepines", "208464"),
    t(1, "", "", "", "SANCTURA", "Muscarinic antagonist", "857568"),
    t(1, "", "", "2247390", "Senna", "stimulant laxatives", ""),
    t(1, "", "", "", "SILVADENE", "Topical antibiotics", "208186"),
    t(1, "", "", "", "SIMVASTATIN", "HMG CoA-Reductase Inhibitors (Statins)", "36567"),
    t(1, "CAD/Cardiovascular", "Hyperlipidemia", "", "SIMVASTATIN", "HMG CoA-Reductase Inhibitors (Statins)", "312961"),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "SIMVASTATIN", "HMG CoA-Reductase Inhibitors (Statins)", "314231"),
    t(1, "", "", "", "SODIUM CHLORIDE", "Crystalloid Fluid", "707251"),
    t(1, "Pulmonary", "COPD", "", "SPIRIVA", "Anticholinergic Bronchodilator", "580261"),
    t(1, "", "", "550086", "Sulfamethoxazole-Trimethoprim", "Sulfonamide antibiotic", ""),
    t(1, "Endocrine", "hypothyroidism", "", "SYNTHROID", "Hormone", "966201"),
    t(3, "Endocrine", "hypothyroidism", "", "SYNTHROID", "Hormone", "966218"),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "TEKTURNA", "Antihypertensive", "1011738"),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "TENORMIN", "Selective Beta-1 Blockers", "152413"),
    t(1, "", "", "", "TETRACYCLINE HYDROCHLORIDE", "Antimicrobial Combinations", "198252"),
    t(1, "", "", "", "TOPICORT", "Topical Steroids", "220345"),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "TOPROL-XL", "beta-Adrenergic Blocking Agents", "866429"),
    t(1, "", "", "2336790", "Tramadol", "Opioid", ""),
    t(1, "", "", "", "TRANSDERM SCOP", "Antimuscarinics/Antispasmodics", "351875"),
    t(1, "", "", "", "TRIAMCINOLONE", "Corticosteroids", ""),
    t(1, "", "", "", "TUSSIONEX", "Upper Respiratory Combinations", "544165"),
    t(1, "", "", "2017377", "Tyenol", "Analgesic", ""),
    t(4, "", "", "", "TYLENOL", "Analgesics", "209387"),
    t(1, "", "", "", "VALACYCLOVIR HYDROCHLORIDE", "Nucleosides and Nucleotides", "212448"),
    t(1, "", "", "13285", "Vallium", "Antianxiety agents", ""),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "VALTURNA", "Antihypertensive Combinations", "1011724"),
    t(1, "", "", "", "VANICREAM", "Corticosteroids", "1543708"),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "VASOTEC", "Angiotensin-Converting Enzyme (Ace) Inhibitors", "224921"),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "VASOTEC", "Angiotensin-Converting Enzyme (Ace) Inhibitors", "858819"),
    t(1, "", "", "", "VESICARE", "Antimuscarinic", "539815"),
    t(1, "Lifestyle", "", "", "VESICARE", "Antimuscarinic", "539812"),
    t(1, "", "", "", "VIAGRA", "PDE Inhibitors", "213270"),
    t(1, "", "", "", "VICODIN", "Opioid analgesics", "128793"),
    t(1, "", "", "", "VICODIN", "Opioid analgesics", "1310202"),
    t(2, "Lifestyle", "Pain", "", "VICODIN", "Opioid analgesics", "128793"),
    t(1, "", "", "", "VITAMIN B COMPLEX", "Vitamins", "11251"),
    t(1, "", "", "80003328", "Vitamin C", "Antioxidants", ""),
    t(1, "", "", "", "Vitamin D", "Vitamin", ""),
    t(1, "Lifestyle", "", "", "VITAMIN D", "Vitamins", "11253"),
    t(1, "Orthopedic", "Osteopenia", "", "VITAMIN D", "Vitamins", "11253"),
    t(1, "Orthopedic", "Osteopenia", "", "Vitamin D", "Vitamins", ""),
    t(1, "", "", "", "VITAMIN D3", "Vitamins", "801663"),
    t(1, "", "", "", "VITAMIN E", "Vitamins, Fat soluble", "11256"),
    t(1, "", "", "", "VOLTAREN", "NSAIDS", "855635"),
    t(1, "", "", "", "VYTORIN", "Cholesterol Absorption Inhibitors", "1245430"),
    t(1, "CAD/Cardiovascular", "Hyperlipidemia", "", "VYTORIN", "Cholesterol Absorption Inhibitors", "1245430"),
    t(1, "CAD/Cardiovascular", "Hyperlipidemia", "", "VYTORIN", "Cholesterol Absorption Inhibitors", "1245441"),
    t(1, "CAD/Cardiovascular", "Hyperlipidemia", "", "VYTORIN", "Cholesterol Absorption Inhibitors", "495215"),
    t(1, "CAD/Cardiovascular", "Hyperlipidemia", "", "Vytorin", "HMG-CoA reductase inhibitors", ""),
    t(1, "CAD/Cardiovascular", "atrial fibrillation", "2242697", "Warfarin", "Anticoagulants", ""),
    t(1, "", "", "", "WELLBUTRIN SR", "Aminoketone Derivative", "993537"),
    t(1, "", "", "", "WESTCORT", "corticosteroid", ""),
    t(1, "", "", "", "XALATAN", "Prostaglandin analogs", "542527"),
    t(1, "Lifestyle", "", "", "XANAX", "Benzodiazepines", "202363"),
    t(1, "", "", "", "ZANTAC", "H2 blockers", "827180"),
    t(1, "CAD/Cardiovascular", "Hypertension", "", "ZESTRIL", "Angiotensin-Converting Enzyme (Ace) Inhibitors", "104377"),
    t(1, "CAD/Cardiovascular", "Hyperlipidemia", "", "ZETIA", "Cholesterol absorption Inhibitors", "352304"),
    t(1, "CAD/Cardiovascular", "Hyperlipidemia", "2429659", "Zetia", "Lipid-Lowering Agents", ""),
    t(1, "Pulmonary", "COPD", "", "ZITHROMAX", "Macrolide Antibiotics", "212446"),
    t(2, "", "", "", "ZOCOR", "HMG CoA-Reductase Inhibitors (Statins)", "196503"),
    t(1, "CAD/Cardiovascular", "Hyperlipidemia", "", "ZOCOR", "HMG CoA-Reductase Inhibitors (Statins)", "104491"),
    t(1, "CAD/Cardiovascular", "Hyperlipidemia", "", "ZOCOR", "HMG CoA-Reductase Inhibitors (Statins)", "152923"),
    t(1, "", "", "", "ZOFRAN", "5-HT3 antagonist", "66981"),
    t(1, "", "", "", "Zoloft", "SSRIs", ""),
    t(1, "", "", "", "ZYRTEC", "Antihistamines", "1020026"),
];

/// The rx end date is the only MM/DD/YYYY column, and it escaped the data set's date shift:
/// it lies 318 months before the calendar of the other columns (DATA_NOTES 3).
const END_DATE_SHIFT_MONTHS: u32 = 318;

pub struct Rx {
    /// Drugs other than the BPH ones, indexed by `Person::rx_din`.
    general: [Weighted; 2],
    alpha_blockers: [Weighted; 2],
    proscar: Weighted,
}

impl Rx {
    pub fn new() -> Rx {
        let table = |keep: &dyn Fn(&Template) -> bool| {
            Weighted::new(
                TEMPLATES
                    .iter()
                    .map(|t| if keep(t) { u32::from(t.weight) } else { 0 }),
            )
        };
        let general =
            |din: bool| table(&|t| t.fits(din) && !t.is_alpha_blocker() && !t.is_proscar());
        let alpha = |din: bool| table(&|t| t.fits(din) && t.is_alpha_blocker());
        Rx {
            general: [general(false), general(true)],
            alpha_blockers: [alpha(false), alpha(true)],
            proscar: table(&|t| t.fits(false) && t.is_proscar()),
        }
    }

    fn template(&self, p: &Person, rng: &mut Rng, e: Elem) -> &'static Template {
        let system = usize::from(p.rx_din);
        let base = e.date.is_none();
        let weights = if p.bph && base && e.index == 0 {
            &self.alpha_blockers[system]
        } else if p.bph && base && e.index == 1 && !p.rx_din && rng.chance(0.5) {
            &self.proscar
        } else {
            &self.general[system]
        };
        &TEMPLATES[weights.sample(rng).expect("every system has drugs")]
    }
}

enum End {
    None,
    Date(Day),
    Placeholder,
}

fn push_code(out: &mut Fields, code: &str) {
    if code.is_empty() {
        out.push("");
    } else {
        out.push_with(|b| {
            b.push_str(code);
            b.push_str(".0");
        });
    }
}

impl TableGen for Rx {
    const TABLE: Table = Table::Rx;
    const LAYOUT: Layout = Layout {
        columns: &[
            "impairment_category",
            "impairment",
            "din",
            "rx_name",
            "rx_type",
            "start_date",
            "end_date",
            "rx_date",
            "rx_norm",
            "person_id",
        ],
        person_id: 9,
        required: 3,
        id: None,
        text: 4,
    };
    const EXTRA: (i32, i32) = (0, 1);

    fn element(&self, p: &Person, rng: &mut Rng, e: Elem, out: &mut Fields) {
        let t = self.template(p, rng, e);
        // rx_date is the document that mentions the drug; the drug usually started that day,
        // otherwise months or years before (and now and then a few days after: planned).
        let rx_day = e.date.unwrap_or_else(|| p.visit(Self::TABLE, rng));
        let x = rng.unit();
        let start_day: Day = if e.date.is_some() || x < 0.55 {
            rx_day
        } else if x < 0.58 {
            rx_day + rng.range(1, 40)
        } else {
            let years = *rng.pick(&[(1, 60), (5, 30), (12, 10)]);
            rx_day - rng.range(1, years * 365)
        };
        // About 1% of starts and of document dates are placeholders (DATA_NOTES 3).
        let placeholder = |rng: &mut Rng| e.date.is_none() && rng.chance(0.009);
        let start_placeholder = placeholder(rng);
        let rx_placeholder = if placeholder(rng) {
            Some(rng.chance(0.4))
        } else {
            None
        };
        let end = match p.rx_end {
            EndDates::Dated if e.date.is_none() && rng.chance(0.4) => End::Date(minus_months(
                start_day + rng.range(3, 700),
                END_DATE_SHIFT_MONTHS,
            )),
            EndDates::Placeholder if e.date.is_none() && rng.chance(0.5) => End::Placeholder,
            _ => End::None,
        };
        out.push(t.impairment_category);
        out.push(t.impairment);
        push_code(out, t.din);
        out.push(t.rx_name);
        out.push(t.rx_type);
        if start_placeholder {
            out.push(PLACEHOLDER_1926);
        } else {
            out.push_with(|b| write_iso(b, start_day));
        }
        match end {
            End::None => out.push(""),
            End::Placeholder => out.push(PLACEHOLDER_US_1900),
            End::Date(day) => out.push_with(|b| write_us(b, day)),
        }
        match rx_placeholder {
            Some(true) => out.push(PLACEHOLDER_1926),
            Some(false) => out.push(PLACEHOLDER_1976),
            None => out.push_with(|b| write_iso(b, rx_day)),
        }
        push_code(out, t.rx_norm);
        out.push_with(|b| push_int64(b, p.id));
    }
}
