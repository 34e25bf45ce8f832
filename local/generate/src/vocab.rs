//! What the tables' vocabularies are made of: value specifications, dates, specialties.
//!
//! The vocabularies themselves (one per table module) are derived from the sample's
//! vocabulary (`../shared/data/sample`, catalogued in its DATA_NOTES.md): the names, codes,
//! categories and values it uses, weighted by how many distinct sample rows use them. No
//! sample row is reproduced: persons, dates, measurements and the combination of facts are all
//! generated, and the few long free-text values are the generator's own.

use chrono::{Datelike, NaiveDate};

use super::fields::Fields;
use super::person::Person;
use super::rng::Rng;

/// A date as days from 0001-01-01 (chrono's `num_days_from_ce`).
pub type Day = i32;

pub fn ymd(y: i32, m: u32, d: u32) -> Day {
    NaiveDate::from_ymd_opt(y, m, d)
        .expect("a valid calendar date")
        .num_days_from_ce()
}

fn date(day: Day) -> NaiveDate {
    // Generated dates stay within 1900..2100: persons' dates are bounded by construction.
    NaiveDate::from_num_days_from_ce_opt(day).expect("generated dates are in range")
}

fn push_digits(buf: &mut String, value: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let mut v = value;
    let mut n = 0;
    while v > 0 || n < width {
        digits[n] = b'0' + (v % 10) as u8;
        v /= 10;
        n += 1;
    }
    for &d in digits[..n].iter().rev() {
        buf.push(d as char);
    }
}

/// `YYYY-MM-DD`, the format of every date column but rx.end_date.
pub fn write_iso(buf: &mut String, day: Day) {
    let d = date(day);
    push_digits(buf, d.year() as u32, 4);
    buf.push('-');
    push_digits(buf, d.month(), 2);
    buf.push('-');
    push_digits(buf, d.day(), 2);
}

/// `MM/DD/YYYY`, the format of rx.end_date.
pub fn write_us(buf: &mut String, day: Day) {
    let d = date(day);
    push_digits(buf, d.month(), 2);
    buf.push('/');
    push_digits(buf, d.day(), 2);
    buf.push('/');
    push_digits(buf, d.year() as u32, 4);
}

/// `day` moved back by whole months (chrono's month arithmetic: the 31st becomes the last day
/// of a shorter month).
pub fn minus_months(day: Day, months: u32) -> Day {
    date(day)
        .checked_sub_months(chrono::Months::new(months))
        .expect("generated dates are in range")
        .num_days_from_ce()
}

/// The source's "date unknown" placeholders (1900-01-01 and 1950-01-01 moved by the data
/// set's de-identification shift).
pub const PLACEHOLDER_1926: &str = "1926-07-01";
pub const PLACEHOLDER_1976: &str = "1976-07-01";
/// The unshifted 1900-01-01 placeholder of rx.end_date.
pub const PLACEHOLDER_US_1900: &str = "01/01/1900";

/// How often a distinct fact's date is a placeholder, and how often that placeholder is
/// 1926-07-01 rather than 1976-07-01 (per table, DATA_NOTES section 3).
#[derive(Debug, Clone, Copy)]
pub struct Placeholders {
    pub rate: f64,
    pub share_1926: f64,
}

/// Writes an event's date: the drawn day, or sometimes a placeholder.
pub fn push_event_date(
    out: &mut Fields,
    rng: &mut Rng,
    day: Day,
    placeholders: Placeholders,
    forced: bool,
) {
    if !forced && rng.chance(placeholders.rate) {
        out.push(if rng.chance(placeholders.share_1926) {
            PLACEHOLDER_1926
        } else {
            PLACEHOLDER_1976
        });
    } else {
        out.push_with(|b| write_iso(b, day));
    }
}

/// Which persons a vocabulary entry can apply to (prostate findings, mammograms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    Any,
    Male,
    Female,
}

impl Sex {
    pub fn fits(self, male: bool) -> bool {
        match self {
            Sex::Any => true,
            Sex::Male => male,
            Sex::Female => !male,
        }
    }
}

/// A measurement taken from the person's own baseline, so one person's weights or blood
/// pressures are close to each other across visits.
#[derive(Debug, Clone, Copy)]
pub enum Vital {
    BloodPressure,
    Pulse,
    Weight,
    Height,
    Bmi,
    Temperature,
}

/// How a value is generated.
#[derive(Debug, Clone, Copy)]
pub enum V {
    /// One of these texts, by weight ("" is an empty field).
    List(&'static [(&'static str, u16)]),
    /// An integer in `lo..=hi`.
    Int(i32, i32),
    Vital(Vital),
}

pub fn push_value(out: &mut Fields, value: &V, rng: &mut Rng, person: &Person) {
    match *value {
        V::List(items) => out.push(rng.pick::<&str>(items)),
        V::Int(lo, hi) => {
            let v = rng.range(lo, hi);
            out.push_with(|b| push_int(b, v));
        }
        V::Vital(vital) => push_vital(out, vital, rng, person),
    }
}

pub fn push_int(buf: &mut String, v: i32) {
    if v < 0 {
        buf.push('-');
    }
    push_digits(buf, v.unsigned_abs(), 1);
}

pub fn push_int64(buf: &mut String, v: i64) {
    use std::fmt::Write;
    let _ = write!(buf, "{v}");
}

/// `v` with `decimals` digits after the point (`decimals` 0 writes an integer).
pub fn push_decimal(buf: &mut String, v: f64, decimals: u32) {
    use std::fmt::Write;
    let _ = write!(buf, "{:.*}", decimals as usize, v);
}

fn push_vital(out: &mut Fields, vital: Vital, rng: &mut Rng, p: &Person) {
    match vital {
        Vital::BloodPressure => {
            let sys = (p.systolic as f64 + 8.0 * rng.normal()).round() as i32;
            let dia = (p.diastolic as f64 + 6.0 * rng.normal()).round() as i32;
            // Values are rounded to even numbers more often than not in office readings.
            let even = |v: i32, rng: &mut Rng| if rng.chance(0.7) { v & !1 } else { v };
            let sys = even(sys.clamp(95, 200), rng);
            let dia = even(dia.clamp(45, 110).min(sys - 25), rng);
            out.push_with(|b| {
                push_int(b, sys);
                b.push('/');
                push_int(b, dia);
            });
        }
        Vital::Pulse => {
            let v = (p.pulse as f64 + 6.0 * rng.normal()).round() as i32;
            out.push_with(|b| push_int(b, v.clamp(40, 130)));
        }
        Vital::Weight => {
            let w = (p.weight + 3.0 * rng.normal()).max(90.0);
            // Mostly whole pounds; some with a decimal, a few float-encoded ("210.0").
            let x = rng.unit();
            out.push_with(|b| {
                if x < 0.8 {
                    push_int(b, w.round() as i32);
                } else if x < 0.95 {
                    push_decimal(b, w, 1);
                } else {
                    push_int(b, w.round() as i32);
                    b.push_str(".0");
                }
            });
        }
        Vital::Height => {
            let h = p.height;
            out.push_with(|b| {
                if h.fract() == 0.0 {
                    push_int(b, h as i32);
                } else {
                    push_decimal(b, h, 1);
                }
            });
        }
        Vital::Bmi => {
            let bmi = 703.0 * p.weight / (p.height * p.height) + 0.3 * rng.normal();
            let decimals = *rng.pick(&[(2u32, 6), (1, 2), (0, 2)]);
            out.push_with(|b| push_decimal(b, bmi, decimals));
        }
        Vital::Temperature => {
            let t = rng.uniform(95.6, 98.8);
            out.push_with(|b| push_decimal(b, t, 1));
        }
    }
}

/// Stands for a clinician's name in a specialty list: the source sometimes has a person where
/// the specialty belongs (DATA_NOTES 4.4); the cleaner must remove it.
pub const CLINICIAN_NAME: &str = "<clinician name>";

/// Made-up clinicians (no real person's name).
const FIRST_NAMES: &[&str] = &[
    "Alan", "Maria", "Peter", "Grace", "Omar", "Helen", "Victor", "Nina",
];
const LAST_NAMES: &[&str] = &[
    "Marsh",
    "Okafor",
    "Lindqvist",
    "Baptiste",
    "Novak",
    "Castellano",
    "Whitfield",
    "Arima",
];

pub fn push_specialty(out: &mut Fields, items: &'static [(&'static str, u16)], rng: &mut Rng) {
    let specialty = *rng.pick(items);
    if specialty != CLINICIAN_NAME {
        return out.push(specialty);
    }
    let first = FIRST_NAMES[rng.below(FIRST_NAMES.len() as u32) as usize];
    let last = LAST_NAMES[rng.below(LAST_NAMES.len() as u32) as usize];
    let initial = (b'A' + rng.below(26) as u8) as char;
    out.push_with(|b| {
        b.push_str(first);
        b.push(' ');
        b.push(initial);
        b.push_str(". ");
        b.push_str(last);
        b.push_str(", MD");
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_written_like_the_source() {
        let mut b = String::new();
        write_iso(&mut b, ymd(2032, 2, 29));
        b.push(' ');
        write_us(&mut b, ymd(2008, 5, 7));
        b.push(' ');
        write_iso(&mut b, ymd(1926, 7, 1));
        assert_eq!(b, "2032-02-29 05/07/2008 1926-07-01");
    }

    #[test]
    fn numbers_are_written_plainly() {
        let mut b = String::new();
        push_int(&mut b, 0);
        b.push(' ');
        push_int(&mut b, -42);
        b.push(' ');
        push_decimal(&mut b, 23.8, 2);
        assert_eq!(b, "0 -42 23.80");
    }
}
