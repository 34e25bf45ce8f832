//! Peak memory of `vendor::parse` against the file's size, for hostile shapes: a counting
//! global allocator (this test binary's own) measures the bytes allocated at once.
//!
//! Before the rows carried only their own keys, every row carried every key of its array: a
//! 0.3 MB file of rows with distinct keys allocated 1.65 GB and took 23 s.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use medrec_core::vendor::{self, SCHEMA_ID};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        ptr
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            // Counted as the old block and the new one at once (a moving realloc's peak).
            let live = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(live, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The tests share the counters: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// The most allocated at once while parsing `file` (beyond what was live before), and the time.
fn peak_of(file: &[u8]) -> (usize, Duration) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let started = Instant::now();
    let parsed = vendor::parse(file);
    let elapsed = started.elapsed();
    let peak = PEAK.load(Ordering::Relaxed) - base;
    drop(parsed);
    (peak, elapsed)
}

fn file(rows: &str) -> Vec<u8> {
    format!(
        r#"{{"schema":"{SCHEMA_ID}","vendor_id":"vendor-a","person_id":42,"version":2,
        "updated_at":"2026-11-21T08:30:00Z","lifestyle":[{rows}],"rx":[],"conditions":[],
        "labs":[],"tests":[]}}"#
    )
    .into_bytes()
}

fn rows(n: usize, row: impl Fn(usize) -> String) -> String {
    (0..n).map(row).collect::<Vec<_>>().join(",")
}

/// Peak allocation stays under this many times the file (the file itself not counted: the
/// caller holds it), plus a constant for the fixed costs of a small file.
const MAX_RATIO: usize = 40;
const FIXED: usize = 256 << 10;
/// What a row costs whatever its text (its outcome, its tree node): `{}` is two bytes of file.
/// `vendor::MAX_ROWS` caps the rows, so this term is bounded too (at about 400 MB).
const PER_ROW: usize = 400;

fn assert_bounded(shape: &str, file: &[u8]) {
    assert_bounded_by(shape, file, MAX_RATIO * file.len() + FIXED);
}

fn assert_bounded_by(shape: &str, file: &[u8], bound: usize) {
    let (peak, elapsed) = peak_of(file);
    let ratio = peak as f64 / file.len() as f64;
    eprintln!(
        "{shape}: {} bytes, peak {} bytes ({ratio:.1}x), {} ms",
        file.len(),
        peak,
        elapsed.as_millis()
    );
    assert!(
        peak <= bound,
        "{shape}: peak {peak} bytes for a {} byte file ({ratio:.1}x)",
        file.len()
    );
    assert!(elapsed < Duration::from_secs(10), "{shape}: {elapsed:?}");
}

/// The reported file: many rows, each with distinct unknown keys (0.3 MB and 0.6 MB).
#[test]
fn wide_rows_of_distinct_keys_stay_within_a_multiple_of_the_file() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for n in [3_000, 6_000] {
        let body = rows(n, |r| {
            let keys = rows(5, |k| format!(r#""x{r}_{k}":{k}"#));
            format!(r#"{{"feature":"Smoking","value":"never",{keys}}}"#)
        });
        let file = file(&body);
        // Measured at 13x (it was about 5,700x).
        assert_bounded_by(
            &format!("{n} rows of 5 distinct keys"),
            &file,
            20 * file.len(),
        );
    }
}

#[test]
fn other_hostile_shapes_stay_within_a_multiple_of_the_file() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // One row of 100,000 keys.
    let keys = rows(100_000, |k| format!(r#""k{k}":null"#));
    assert_bounded("one row of 100000 keys", &file(&format!("{{{keys}}}")));
    // Many tiny clean rows, many empty rows.
    assert_bounded(
        "tiny clean rows",
        &file(&rows(50_000, |_| r#"{"feature":"S"}"#.into())),
    );
    let empty = file(&rows(100_000, |_| "{}".into()));
    let bound = MAX_RATIO * empty.len() + PER_ROW * 100_000;
    assert_bounded_by("empty rows", &empty, bound);
    // Typical rows with a few keys, some unknown.
    assert_bounded(
        "typical rows",
        &file(&rows(5_000, |r| {
            format!(
                r#"{{"feature":"Smoking","value":"never","report_date":"2030-01-02","feature_type":"Lifestyle","note{}":"x"}}"#,
                r % 3
            )
        })),
    );
    // Deep nesting in an ignored key, long strings.
    let deep = format!("{}1{}", "[".repeat(120), "]".repeat(120));
    let mut deep_file = file("");
    deep_file.truncate(deep_file.len() - 1);
    deep_file.extend_from_slice(format!(r#","note":{deep}}}"#).as_bytes());
    assert_bounded("deep nesting", &deep_file);
    assert_bounded(
        "long values",
        &file(&rows(20, |_| {
            format!(r#"{{"feature":"{}","value":"never"}}"#, "x".repeat(20_000))
        })),
    );
}
