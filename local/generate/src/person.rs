//! One generated person: everything that keeps their rows coherent across the five tables.
//!
//! A person is a pure function of (seed, index), so each table's writer rebuilds the same
//! person independently and no state is shared between threads.

use medrec_core::Table;

use super::rng::{Purpose, Rng};
use super::vocab::{ymd, Day};
use super::Vocab;

/// Every person present in a table has exactly this many raw rows there, drawn with
/// replacement from their distinct facts (the sample's shape: DATA_NOTES section 0).
pub const ROWS_PER_PERSON: u32 = 10;

const MAX_VISITS: usize = 20;

/// How a person appears in one table.
#[derive(Debug, Clone, Copy, Default)]
pub struct Plan {
    pub present: bool,
    /// How many distinct facts the person's rows are drawn from.
    pub pool: u32,
    first_visit: u32,
    visits: u32,
}

/// The shape of each table, calibrated on the sample: how many persons appear in it
/// (DATA_NOTES overview: 46-50 of 50), and the size of the pool of distinct facts that ten
/// rows are drawn from, which sets the share of exact duplicates (49% in conditions, 42% in
/// labs, 23% in lifestyle, 32% in rx, 10% in tests).
struct Shape {
    present: f64,
    /// Some persons repeat one fact ten times (the sample has four such person-tables).
    single_fact: f64,
    pool: (u32, u32),
    /// How many of the person's visit dates this table's events fall on.
    visits: u32,
}

fn shape(table: Table) -> Shape {
    match table {
        Table::Lifestyle => Shape {
            present: 1.0,
            single_fact: 0.04,
            pool: (9, 34),
            visits: 7,
        },
        Table::Rx => Shape {
            present: 0.96,
            single_fact: 0.02,
            pool: (6, 20),
            visits: 6,
        },
        Table::Conditions => Shape {
            present: 0.92,
            single_fact: 0.03,
            pool: (3, 11),
            visits: 5,
        },
        Table::Labs => Shape {
            present: 0.92,
            single_fact: 0.0,
            pool: (4, 13),
            visits: 4,
        },
        Table::Tests => Shape {
            present: 1.0,
            single_fact: 0.0,
            pool: (20, 70),
            visits: 10,
        },
    }
}

/// Where a person's rx end dates come from (DATA_NOTES 3: most rows have none; a few persons
/// have them, in the unshifted MM/DD/YYYY calendar or as the 01/01/1900 placeholder).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndDates {
    None,
    Dated,
    Placeholder,
}

#[derive(Debug, Clone)]
pub struct Person {
    pub index: u64,
    pub id: i64,
    seed: u64,
    pub male: bool,
    /// The person's latest event date; everything else falls in the few years before it.
    pub latest: Day,
    visits: [Day; MAX_VISITS],
    nvisits: u32,
    plans: [Plan; 5],
    pub hypertensive: bool,
    /// Benign prostatic hyperplasia: the persons who take alpha blockers (and some PROSCAR).
    pub bph: bool,
    /// The person's prescriptions come from the DIN system (mixed-case names, DIN codes)
    /// rather than the RxNorm one (upper-case names, RxNorm codes): DATA_NOTES 7.1.
    pub rx_din: bool,
    pub rx_end: EndDates,
    /// The person's lab reports white-cell counts in cells/uL rather than 10^3/uL.
    pub cells_per_ul: bool,
    /// Condition groups (indices into the conditions vocabulary) the person has.
    pub conditions: [u16; 3],
    pub nconditions: usize,
    pub systolic: i32,
    pub diastolic: i32,
    pub pulse: i32,
    /// Pounds and inches, as the source writes them.
    pub weight: f64,
    pub height: f64,
}

/// The shifted calendar of the source: latest dates run from mid-2027 to late 2045.
fn latest_bounds() -> (Day, Day) {
    (ymd(2027, 6, 1), ymd(2045, 9, 30))
}

impl Person {
    pub fn new(seed: u64, index: u64, id: i64, vocab: &Vocab) -> Person {
        let mut rng = Rng::stream(seed, Purpose::Person, &[index]);
        let male = rng.chance(0.5);
        let (lo, hi) = latest_bounds();
        let latest = rng.range(lo, hi);
        // Years of history before the latest date: median about 5, up to 13 (DATA_NOTES 3).
        let span = ((1.0 + 12.0 * rng.unit().powf(1.7)) * 365.25) as i32;
        let nvisits = rng.range(6, MAX_VISITS as i32) as u32;
        let mut visits = [latest; MAX_VISITS];
        for v in visits.iter_mut().take(nvisits as usize).skip(1) {
            *v = latest - rng.range(0, span);
        }
        visits[..nvisits as usize].sort_unstable();
        let mut plans = [Plan::default(); 5];
        for table in Table::ALL {
            let s = shape(table);
            let present = rng.chance(s.present);
            let pool = if rng.chance(s.single_fact) {
                1
            } else {
                rng.range(s.pool.0 as i32, s.pool.1 as i32) as u32
            };
            let first_visit = rng.below(nvisits);
            let visits = rng.range(1, s.visits.min(nvisits) as i32) as u32;
            plans[table_index(table)] = Plan {
                present,
                pool,
                first_visit,
                visits,
            };
        }
        let hypertensive = rng.chance(0.5);
        let bph = male && rng.chance(0.45);
        let rx_din = rng.chance(0.19);
        let rx_end = *rng.pick(&[
            (EndDates::None, 87),
            (EndDates::Dated, 11),
            (EndDates::Placeholder, 2),
        ]);
        let cells_per_ul = rng.chance(0.15);
        let mut conditions = [0u16; 3];
        let nconditions = rng.range(1, 3) as usize;
        for c in conditions.iter_mut().take(nconditions) {
            *c = vocab.conditions.pick_group(&mut rng, male);
        }
        let height = if male {
            (rng.range(132, 148) as f64) / 2.0
        } else {
            (rng.range(118, 136) as f64) / 2.0
        };
        // Weight from a BMI between about 19 and 36, in pounds for the height in inches.
        let bmi = 27.0 + 3.5 * rng.normal();
        let weight = (bmi * height * height / 703.0).clamp(100.0, 280.0);
        let (systolic, diastolic) = if hypertensive {
            (rng.range(135, 165), rng.range(68, 90))
        } else {
            (rng.range(112, 134), rng.range(62, 82))
        };
        Person {
            index,
            id,
            seed,
            male,
            latest,
            visits,
            nvisits,
            plans,
            hypertensive,
            bph,
            rx_din,
            rx_end,
            cells_per_ul,
            conditions,
            nconditions,
            systolic,
            diastolic,
            pulse: rng.range(55, 88),
            weight,
            height,
        }
    }

    /// The stream of one fact: the same fact index always renders the same fact.
    pub fn element_rng(&self, table: Table, index: u32) -> Rng {
        Rng::stream(
            self.seed,
            Purpose::Element,
            &[self.index, table_index(table) as u64, u64::from(index)],
        )
    }

    pub fn plan(&self, table: Table) -> &Plan {
        &self.plans[table_index(table)]
    }

    /// A date of one of the visits this table's events fall on.
    pub fn visit(&self, table: Table, rng: &mut Rng) -> Day {
        let plan = self.plan(table);
        let i = (plan.first_visit + rng.below(plan.visits)) % self.nvisits;
        self.visits[i as usize]
    }

    /// The date of the visit that version `version` of the person's record adds: a month or so
    /// after the previous one (version 1 is the latest date of the base record).
    pub fn version_date(&self, version: u32) -> Day {
        if version <= 1 {
            return self.latest;
        }
        let jitter = Rng::stream(self.seed, Purpose::Extra, &[self.index, u64::from(version)])
            .range(-10, 10);
        self.latest + 30 * (version as i32 - 1) + jitter
    }
}

pub fn table_index(table: Table) -> usize {
    match table {
        Table::Lifestyle => 0,
        Table::Rx => 1,
        Table::Conditions => 2,
        Table::Labs => 3,
        Table::Tests => 4,
    }
}
