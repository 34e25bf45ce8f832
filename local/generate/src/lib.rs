//! The generator behind `medrec generate`: synthetic raw tables with the sample's layout,
//! vocabulary and defects, at any size.
//!
//! Each person is a pure function of (seed, person index); each table's rows for that person
//! come from their own random streams (see `rng.rs`). The five CSV files are written by five
//! threads that each walk all persons, in flat memory: nothing is kept between persons but
//! reusable buffers. Vendor JSON files (one per person) hold exactly the rows the CSV files
//! would, so both formats describe the same records.
//!
//! A person present in a table has ten raw rows there, drawn with replacement from a small
//! pool of distinct facts (the sample's shape, which is where its exact duplicates come from).
//! The other defects are properties of the facts themselves, at the sample's rates.

mod conditions;
mod fields;
mod labs;
mod lifestyle;
mod person;
mod rng;
mod rx;
mod test_results;
mod vocab;

use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use medrec_core::Table;

use fields::{Bad, Fields, Layout};
use person::{table_index, Person, ROWS_PER_PERSON};
use rng::{Purpose, Rng};
use vocab::Day;

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// How many persons (the id space `--only` draws from).
    #[arg(long)]
    persons: u64,
    /// The same seed and options always write byte-identical files.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Output directory (created if missing; existing files of the same names are replaced).
    #[arg(long)]
    out: PathBuf,
    /// Person ids are FIRST_PERSON_ID + index (the default keeps them clear of the sample's
    /// 3579-3628).
    #[arg(long, default_value_t = 1_000_000)]
    first_person_id: i64,
    /// csv: the five raw tables (lifestyle.csv, rx.csv, conditions.csv, labs.csv, tests.csv);
    /// json: one vendor file per person, OUT/<person_id>.json.
    #[arg(long, value_enum, default_value_t = Format::Csv)]
    format: Format,
    /// Share of raw rows deliberately broken so that the loader quarantines them (missing or
    /// invalid person id, missing feature/rx_name, invalid conditions id, wrong field count,
    /// NUL byte, invalid UTF-8; in JSON files only the missing value and the invalid id).
    #[arg(long, default_value_t = 0.0)]
    bad_row_rate: f64,
    /// The vendor named in JSON files (json only) [default: vendor-a].
    #[arg(long)]
    vendor_id: Option<String>,
    /// Record version: version V adds, for every V' in 2..=V, a visit about a month after the
    /// previous one with a few new events. JSON files carry it and an updated_at derived from it.
    #[arg(long, default_value_t = 1)]
    version: u32,
    /// Write only K persons, drawn deterministically (from the seed and the version) from the
    /// N-person id space: the persons updated in a given version.
    #[arg(long, value_name = "K")]
    only: Option<u64>,
    /// No progress on stderr (the summary is printed all the same).
    #[arg(long)]
    pub quiet: bool,
}

/// How far a run has got, for a progress display: `done` of `total` units (a person in one
/// table's file, or one person's JSON file) for `persons` persons.
#[derive(Debug, Default)]
pub struct Counter {
    pub done: AtomicU64,
    pub total: AtomicU64,
    pub persons: AtomicU64,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
}

/// Conditions ids are person id * this + fact index, unique per distinct fact.
const IDS_PER_PERSON: i64 = 1000;
/// Fact indices of version events start here (base pools are smaller).
const EXTRA_BASE: u32 = 100;
/// At most this many events per table per version (every table's `EXTRA.1` is below it).
const EXTRA_MAX: u32 = 4;
/// Keeps every conditions id below `IDS_PER_PERSON` per person.
const MAX_VERSION: u32 = 200;
/// Keeps person id * `IDS_PER_PERSON` within a signed 64-bit integer with room to spare.
const MAX_PERSON_ID: i64 = 9_000_000_000_000;

/// Validated options.
#[derive(Debug, Clone)]
pub struct Config {
    persons: u64,
    seed: u64,
    out: PathBuf,
    first_id: i64,
    format: Format,
    bad_row_rate: f64,
    vendor_id: String,
    version: u32,
    only: Option<u64>,
    /// Units written so far, summed over the writers (each CSV writer counts every person).
    progress: Arc<Counter>,
}

impl TryFrom<GenerateArgs> for Config {
    type Error = anyhow::Error;

    fn try_from(a: GenerateArgs) -> anyhow::Result<Config> {
        if a.persons == 0 {
            bail!("--persons must be at least 1");
        }
        if a.first_person_id < 1 {
            bail!("--first-person-id must be a positive integer");
        }
        let last = i64::try_from(a.persons)
            .ok()
            .and_then(|n| a.first_person_id.checked_add(n - 1))
            .filter(|&last| last <= MAX_PERSON_ID);
        if last.is_none() {
            bail!("--first-person-id + --persons must stay at or below {MAX_PERSON_ID}");
        }
        if !(0.0..=1.0).contains(&a.bad_row_rate) {
            bail!("--bad-row-rate must be between 0 and 1");
        }
        if !(1..=MAX_VERSION).contains(&a.version) {
            bail!("--version must be between 1 and {MAX_VERSION}");
        }
        if let Some(k) = a.only {
            if k == 0 || k > a.persons {
                bail!("--only must be between 1 and --persons ({})", a.persons);
            }
        }
        let vendor_id = match (a.format, a.vendor_id) {
            (Format::Csv, Some(_)) => bail!("--vendor-id applies to --format json only"),
            (_, Some(v)) if v.trim().is_empty() => bail!("--vendor-id must not be empty"),
            (_, v) => v.unwrap_or_else(|| "vendor-a".to_owned()),
        };
        Ok(Config {
            persons: a.persons,
            progress: Arc::default(),
            seed: a.seed,
            out: a.out,
            first_id: a.first_person_id,
            format: a.format,
            bad_row_rate: a.bad_row_rate,
            vendor_id,
            version: a.version,
            only: a.only,
        })
    }
}

impl Config {
    /// The indices of the persons to write, ascending: all of them, or a uniform sample of
    /// `--only` of them (selection sampling, so memory stays flat whatever N is).
    fn selection(&self) -> impl Iterator<Item = u64> + '_ {
        let n = self.persons;
        let mut left = self.only.unwrap_or(n);
        let mut rng = Rng::stream(self.seed, Purpose::Only, &[u64::from(self.version)]);
        let all = self.only.is_none();
        (0..n).filter(move |&i| {
            if all {
                return true;
            }
            let take = left > 0 && rng.unit() * ((n - i) as f64) < left as f64;
            left -= u64::from(take);
            take
        })
    }

    fn person(&self, vocab: &Vocab, index: u64) -> Person {
        Person::new(self.seed, index, self.first_id + index as i64, vocab)
    }
}

/// The five tables' vocabularies with their weighted choices, built once and shared.
pub struct Vocab {
    lifestyle: lifestyle::Lifestyle,
    rx: rx::Rx,
    conditions: conditions::Conditions,
    labs: labs::Labs,
    tests: test_results::Tests,
}

impl Vocab {
    fn new() -> Vocab {
        Vocab {
            lifestyle: lifestyle::Lifestyle::new(),
            rx: rx::Rx::new(),
            conditions: conditions::Conditions::new(),
            labs: labs::Labs::new(),
            tests: test_results::Tests::new(),
        }
    }
}

/// One fact to render: its index in the person's pool, and the date of a version event.
#[derive(Debug, Clone, Copy)]
pub struct Elem {
    pub index: u32,
    pub date: Option<Day>,
}

/// A table's generator: renders one distinct fact of a person as the table's raw fields.
pub trait TableGen: Sync {
    const TABLE: Table;
    const LAYOUT: Layout;
    /// How many events (min, max) a version step adds for a person present in the table.
    const EXTRA: (i32, i32);
    fn element(&self, p: &Person, rng: &mut Rng, e: Elem, out: &mut Fields);
}

/// Buffers reused from person to person.
#[derive(Default)]
struct Scratch {
    slots: Vec<Fields>,
    slot_index: Vec<u32>,
    extra: Fields,
}

/// Emits one person's raw rows of one table (`emit` writes a row, possibly broken); returns
/// how many rows it emitted.
fn person_rows<G: TableGen>(
    g: &G,
    cfg: &Config,
    p: &Person,
    scratch: &mut Scratch,
    mut emit: impl FnMut(&Fields, Option<Bad>) -> io::Result<()>,
) -> io::Result<u64> {
    let plan = *p.plan(G::TABLE);
    if !plan.present {
        return Ok(0);
    }
    let t = table_index(G::TABLE) as u64;
    let mut draws = Rng::stream(cfg.seed, Purpose::Draws, &[p.index, t]);
    let mut bad_rows =
        (cfg.bad_row_rate > 0.0).then(|| Rng::stream(cfg.seed, Purpose::BadRows, &[p.index, t]));
    let kinds: &[Bad] = match cfg.format {
        Format::Csv => &Bad::CSV,
        Format::Json => &Bad::JSON,
    };
    scratch.slot_index.clear();
    for _ in 0..ROWS_PER_PERSON {
        let index = draws.below(plan.pool);
        let slot = match scratch.slot_index.iter().position(|&i| i == index) {
            Some(slot) => slot,
            None => {
                let slot = scratch.slot_index.len();
                scratch.slot_index.push(index);
                if scratch.slots.len() <= slot {
                    scratch.slots.push(Fields::default());
                }
                let fields = &mut scratch.slots[slot];
                fields.clear();
                let mut rng = p.element_rng(G::TABLE, index);
                g.element(p, &mut rng, Elem { index, date: None }, fields);
                slot
            }
        };
        let bad = bad_rows.as_mut().and_then(|rng| {
            if !rng.chance(cfg.bad_row_rate) {
                return None;
            }
            // Kinds that need a column the table lacks (an id) fall back to the first kind.
            let kind = kinds[rng.below(kinds.len() as u32) as usize];
            Some(if kind == Bad::InvalidId && G::LAYOUT.id.is_none() {
                kinds[0]
            } else {
                kind
            })
        });
        emit(&scratch.slots[slot], bad)?;
    }
    let mut rows = u64::from(ROWS_PER_PERSON);
    for version in 2..=cfg.version {
        let mut rng = Rng::stream(cfg.seed, Purpose::Extra, &[p.index, t, u64::from(version)]);
        let date = p.version_date(version);
        let n = rng.range(G::EXTRA.0, G::EXTRA.1) as u32;
        for j in 0..n {
            let index = EXTRA_BASE + (version - 2) * EXTRA_MAX + j;
            scratch.extra.clear();
            g.element(
                p,
                &mut rng,
                Elem {
                    index,
                    date: Some(date),
                },
                &mut scratch.extra,
            );
            emit(&scratch.extra, None)?;
            rows += 1;
        }
    }
    Ok(rows)
}

/// What was written for one table (CSV) or in all (JSON).
#[derive(Debug, Default, Clone)]
struct Written {
    name: String,
    persons: u64,
    rows: u64,
    bytes: u64,
}

fn write_table<G: TableGen>(g: &G, cfg: &Config, vocab: &Vocab) -> anyhow::Result<Written> {
    let path = cfg.out.join(format!("{}.csv", G::TABLE.name()));
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut written = Written {
        name: G::TABLE.name().to_owned(),
        ..Written::default()
    };
    let mut scratch = Scratch::default();
    let result = (|| -> io::Result<()> {
        fields::write_csv_header(&mut out, G::LAYOUT.columns)?;
        for index in cfg.selection() {
            let p = cfg.person(vocab, index);
            let rows = person_rows(g, cfg, &p, &mut scratch, |row, bad| {
                fields::write_csv_row(&mut out, &G::LAYOUT, row, bad)
            })?;
            written.rows += rows;
            written.persons += u64::from(rows > 0);
            cfg.progress.done.fetch_add(1, Ordering::Relaxed);
        }
        out.flush()
    })();
    result.with_context(|| format!("writing {}", path.display()))?;
    written.bytes = out.get_ref().metadata()?.len();
    Ok(written)
}

fn write_csv(cfg: &Config, vocab: &Vocab) -> anyhow::Result<Vec<Written>> {
    std::thread::scope(|s| {
        let handles = [
            s.spawn(|| write_table(&vocab.lifestyle, cfg, vocab)),
            s.spawn(|| write_table(&vocab.rx, cfg, vocab)),
            s.spawn(|| write_table(&vocab.conditions, cfg, vocab)),
            s.spawn(|| write_table(&vocab.labs, cfg, vocab)),
            s.spawn(|| write_table(&vocab.tests, cfg, vocab)),
        ];
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| bail!("a table writer panicked"))
            })
            .collect()
    })
}

/// `updated_at` of a version: version 1 is 2026-11-21T08:30:00Z, each later version a day on.
fn updated_at(version: u32) -> String {
    let mut s = String::new();
    vocab::write_iso(&mut s, vocab::ymd(2026, 11, 21) + version as i32 - 1);
    s.push_str("T08:30:00Z");
    s
}

/// Renders one person's vendor file into `buf`; returns the rows per table.
fn person_json(
    cfg: &Config,
    vocab: &Vocab,
    p: &Person,
    scratch: &mut Scratch,
    buf: &mut Vec<u8>,
) -> [u64; 5] {
    buf.clear();
    buf.extend_from_slice(b"{\"schema\":");
    fields::json_string(buf, medrec_core::vendor::SCHEMA_ID);
    buf.extend_from_slice(b",\"vendor_id\":");
    fields::json_string(buf, &cfg.vendor_id);
    buf.extend_from_slice(
        format!(",\"person_id\":\"{}\",\"version\":{}", p.id, cfg.version).as_bytes(),
    );
    buf.extend_from_slice(b",\"updated_at\":");
    fields::json_string(buf, &updated_at(cfg.version));
    let mut rows = [0u64; 5];
    fn table<G: TableGen>(
        g: &G,
        cfg: &Config,
        p: &Person,
        scratch: &mut Scratch,
        buf: &mut Vec<u8>,
    ) -> u64 {
        buf.extend_from_slice(b",\"");
        buf.extend_from_slice(G::TABLE.name().as_bytes());
        buf.extend_from_slice(b"\":[");
        let mut first = true;
        let rows = person_rows(g, cfg, p, scratch, |row, bad| {
            if !first {
                buf.push(b',');
            }
            first = false;
            fields::write_json_row(buf, &G::LAYOUT, row, bad);
            Ok(())
        })
        .expect("rendering into memory cannot fail");
        buf.push(b']');
        rows
    }
    rows[0] = table(&vocab.lifestyle, cfg, p, scratch, buf);
    rows[1] = table(&vocab.rx, cfg, p, scratch, buf);
    rows[2] = table(&vocab.conditions, cfg, p, scratch, buf);
    rows[3] = table(&vocab.labs, cfg, p, scratch, buf);
    rows[4] = table(&vocab.tests, cfg, p, scratch, buf);
    buf.extend_from_slice(b"}\n");
    rows
}

fn write_json(cfg: &Config, vocab: &Vocab) -> anyhow::Result<Vec<Written>> {
    let workers = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 8);
    let parts: Vec<anyhow::Result<Written>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                s.spawn(move || -> anyhow::Result<Written> {
                    let mut written = Written::default();
                    let mut scratch = Scratch::default();
                    let mut buf = Vec::with_capacity(16 << 10);
                    for (k, index) in cfg.selection().enumerate() {
                        if k % workers != w {
                            continue;
                        }
                        let p = cfg.person(vocab, index);
                        let rows = person_json(cfg, vocab, &p, &mut scratch, &mut buf);
                        let path = cfg.out.join(format!("{}.json", p.id));
                        fs::write(&path, &buf)
                            .with_context(|| format!("writing {}", path.display()))?;
                        written.persons += 1;
                        cfg.progress.done.fetch_add(1, Ordering::Relaxed);
                        written.rows += rows.iter().sum::<u64>();
                        written.bytes += buf.len() as u64;
                    }
                    Ok(written)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| bail!("a JSON writer panicked")))
            .collect()
    });
    let mut total = Written {
        name: "json".to_owned(),
        ..Written::default()
    };
    for part in parts {
        let part = part?;
        total.persons += part.persons;
        total.rows += part.rows;
        total.bytes += part.bytes;
    }
    Ok(vec![total])
}

/// Writes the files `args` asks for; `counter` follows how far it has got.
pub fn run(args: GenerateArgs, counter: Arc<Counter>) -> anyhow::Result<()> {
    let mut cfg = Config::try_from(args)?;
    fs::create_dir_all(&cfg.out).with_context(|| format!("creating {}", cfg.out.display()))?;
    let started = Instant::now();
    let vocab = Vocab::new();
    let persons = cfg.only.unwrap_or(cfg.persons);
    let per_person = match cfg.format {
        Format::Csv => Table::ALL.len() as u64,
        Format::Json => 1,
    };
    counter.persons.store(persons, Ordering::Relaxed);
    counter.total.store(persons * per_person, Ordering::Relaxed);
    cfg.progress = counter;
    let written = match cfg.format {
        Format::Csv => write_csv(&cfg, &vocab)?,
        Format::Json => write_json(&cfg, &vocab)?,
    };
    report(
        &cfg.out,
        cfg.format,
        &written,
        started.elapsed().as_secs_f64(),
    );
    Ok(())
}

fn report(out: &Path, format: Format, written: &[Written], seconds: f64) {
    let (rows, bytes) = written
        .iter()
        .fold((0, 0), |(r, b), w| (r + w.rows, b + w.bytes));
    let mb = bytes as f64 / 1e6;
    match format {
        Format::Csv => {
            println!(
                "{:<12}{:>10}{:>12}{:>14}  file",
                "table", "persons", "rows", "bytes"
            );
            for w in written {
                let file = out.join(format!("{}.csv", w.name));
                println!(
                    "{:<12}{:>10}{:>12}{:>14}  {}",
                    w.name,
                    w.persons,
                    w.rows,
                    w.bytes,
                    file.display()
                );
            }
        }
        Format::Json => {
            let persons = written.first().map_or(0, |w| w.persons);
            println!("wrote {persons} person file(s) to {}", out.display());
        }
    }
    println!(
        "{rows} rows, {mb:.1} MB in {seconds:.2} s ({:.0} rows/s, {:.1} MB/s)",
        rows as f64 / seconds.max(1e-9),
        mb / seconds.max(1e-9)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(persons: u64, only: Option<u64>, version: u32) -> Config {
        Config {
            persons,
            seed: 9,
            out: PathBuf::from("unused"),
            first_id: 1_000_000,
            format: Format::Csv,
            bad_row_rate: 0.0,
            vendor_id: "vendor-a".to_owned(),
            version,
            only,
            progress: Arc::default(),
        }
    }

    #[test]
    fn version_events_stay_in_their_id_block() {
        for (min, max) in [
            lifestyle::Lifestyle::EXTRA,
            rx::Rx::EXTRA,
            conditions::Conditions::EXTRA,
            labs::Labs::EXTRA,
            test_results::Tests::EXTRA,
        ] {
            assert!(0 <= min && min <= max && max as u32 <= EXTRA_MAX);
        }
        let last = EXTRA_BASE + (MAX_VERSION - 2) * EXTRA_MAX + EXTRA_MAX - 1;
        assert!(i64::from(last) < IDS_PER_PERSON);
        assert!(MAX_PERSON_ID.checked_mul(IDS_PER_PERSON).is_some());
    }

    #[test]
    fn only_selects_exactly_k_ascending_persons() {
        for (n, k) in [(1, 1), (10, 10), (1000, 1), (1000, 25), (1000, 999)] {
            let picked: Vec<u64> = config(n, Some(k), 1).selection().collect();
            assert_eq!(picked.len() as u64, k, "{n} {k}");
            assert!(picked.windows(2).all(|w| w[0] < w[1]));
            assert!(picked.iter().all(|&i| i < n));
        }
        let a: Vec<u64> = config(1000, Some(25), 2).selection().collect();
        let b: Vec<u64> = config(1000, Some(25), 3).selection().collect();
        assert_ne!(a, b, "each version updates other persons");
        assert_eq!(config(7, None, 1).selection().count(), 7);
    }

    #[test]
    fn updated_at_follows_the_version() {
        assert_eq!(updated_at(1), "2026-11-21T08:30:00Z");
        assert_eq!(updated_at(11), "2026-12-01T08:30:00Z");
    }
}
