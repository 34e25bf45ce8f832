//! Progress of long work on stderr: a load (`medrec ingest`, `ingest-json`: files done, bytes and
//! lines read, lines per second and the time left, from a counter every file read goes through)
//! and `medrec generate` (persons written). On a terminal a live line (indicatif); elsewhere (CI
//! logs, pipes) a plain line every [`PLAIN_EVERY`]; nothing with `--quiet`. What the commands
//! print on stdout is unchanged.

use std::io::{IsTerminal, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the plain line is printed when stderr is not a terminal
/// (`MEDREC_PROGRESS_EVERY_MS` overrides it).
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// What has been read so far, shared by every file's reader.
#[derive(Debug)]
pub struct Progress {
    files: u64,
    total_bytes: u64,
    files_done: AtomicU64,
    bytes: AtomicU64,
    lines: AtomicU64,
    started: Instant,
}

impl Progress {
    pub fn new(files: u64, total_bytes: u64) -> Arc<Progress> {
        Arc::new(Progress {
            files,
            total_bytes,
            files_done: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            lines: AtomicU64::new(0),
            started: Instant::now(),
        })
    }

    /// `reader`, counted: its bytes and lines, and the file as done at its end.
    pub fn counted(self: &Arc<Self>, reader: Box<dyn Read + Send>) -> Box<dyn Read + Send> {
        Box::new(Counted {
            inner: reader,
            progress: Arc::clone(self),
            ended: false,
        })
    }

    /// "3/5 files, 1.2 GiB of 3.4 GiB (35 %), 12,345,678 lines, 55,000 lines/s, 1m05s left".
    pub fn line(&self) -> String {
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        let bytes = self.bytes.load(Ordering::Relaxed);
        let lines = self.lines.load(Ordering::Relaxed);
        let share = if self.total_bytes > 0 {
            bytes as f64 / self.total_bytes as f64
        } else {
            0.0
        };
        let left = if bytes > 0 && self.total_bytes > bytes {
            let seconds = elapsed * (self.total_bytes - bytes) as f64 / bytes as f64;
            format!(", {} left", duration(seconds))
        } else {
            String::new()
        };
        format!(
            "{}/{} files, {} of {} ({:.0} %), {} lines, {} lines/s{left}",
            self.files_done.load(Ordering::Relaxed),
            self.files,
            size(bytes),
            size(self.total_bytes),
            share * 100.0,
            grouped(lines),
            grouped((lines as f64 / elapsed) as u64),
        )
    }

    /// Shows the progress until the returned guard is dropped.
    pub fn show(self: &Arc<Self>, quiet: bool) -> Shown {
        show(Arc::clone(self) as Arc<dyn Status>, quiet)
    }
}

/// What a progress display shows: a line, until the work is done.
pub trait Status: Send + Sync + 'static {
    fn line(&self) -> String;
    fn is_done(&self) -> bool;
}

impl Status for Progress {
    fn line(&self) -> String {
        Progress::line(self)
    }

    fn is_done(&self) -> bool {
        self.files_done.load(Ordering::Relaxed) >= self.files
    }
}

/// `medrec generate`'s progress: persons written, persons/s and the time left.
pub struct Generating {
    pub counter: Arc<medrec_generate::Counter>,
    pub started: Instant,
}

impl Status for Generating {
    fn line(&self) -> String {
        let c = &self.counter;
        let (done, total) = (
            c.done.load(Ordering::Relaxed),
            c.total.load(Ordering::Relaxed),
        );
        let persons = c.persons.load(Ordering::Relaxed);
        let share = done.min(total) as f64 / total.max(1) as f64;
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        let left = if done > 0 && total > done {
            format!(
                ", {} left",
                duration(elapsed * (total - done) as f64 / done as f64)
            )
        } else {
            String::new()
        };
        format!(
            "{:.0} % of {persons} persons, {} persons/s{left}",
            share * 100.0,
            grouped((share * persons as f64 / elapsed) as u64)
        )
    }

    fn is_done(&self) -> bool {
        let c = &self.counter;
        let total = c.total.load(Ordering::Relaxed);
        total > 0 && c.done.load(Ordering::Relaxed) >= total
    }
}

/// A training set's progress: the spine sent, then the features computed, then written.
impl Status for medrec_pipeline::training::TrainingProgress {
    fn line(&self) -> String {
        use medrec_pipeline::training::Phase;
        let sent = self.sent();
        let elapsed = duration(self.started.elapsed().as_secs_f64());
        match self.phase() {
            Phase::Sending => format!("sending the spine: {} rows ({elapsed})", grouped(sent)),
            Phase::Computing => format!(
                "computing the features of {} rows ({elapsed})",
                grouped(sent)
            ),
            Phase::Writing | Phase::Done => {
                let written = self.written();
                format!(
                    "{:.0} % written: {} of {} rows ({elapsed})",
                    written as f64 * 100.0 / sent.max(1) as f64,
                    grouped(written),
                    grouped(sent)
                )
            }
        }
    }

    fn is_done(&self) -> bool {
        self.phase() == medrec_pipeline::training::Phase::Done
    }
}

fn plain_every() -> Duration {
    std::env::var("MEDREC_PROGRESS_EVERY_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map_or(PLAIN_EVERY, Duration::from_millis)
}

/// Shows `status` on stderr until the returned guard is dropped (or the work is done).
pub fn show(status: Arc<dyn Status>, quiet: bool) -> Shown {
    if quiet {
        return Shown {
            task: None,
            bar: None,
        };
    }
    if std::io::stderr().is_terminal() {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("template"));
        let ticking = bar.clone();
        let task = tokio::spawn(async move {
            while !status.is_done() {
                ticking.set_message(status.line());
                ticking.tick();
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        return Shown {
            task: Some(task),
            bar: Some(bar),
        };
    }
    let every = plain_every();
    let task = tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            if status.is_done() {
                break;
            }
            eprintln!("progress: {}", status.line());
        }
    });
    Shown {
        task: Some(task),
        bar: None,
    }
}

/// Stops the progress display when dropped; the live line is cleared.
pub struct Shown {
    task: Option<tokio::task::JoinHandle<()>>,
    bar: Option<ProgressBar>,
}

impl Drop for Shown {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

struct Counted {
    inner: Box<dyn Read + Send>,
    progress: Arc<Progress>,
    ended: bool,
}

impl Read for Counted {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() && !self.ended {
            self.ended = true;
            self.progress.files_done.fetch_add(1, Ordering::Relaxed);
        }
        self.progress.bytes.fetch_add(n as u64, Ordering::Relaxed);
        let lines = buf[..n].iter().filter(|&&b| b == b'\n').count();
        self.progress
            .lines
            .fetch_add(lines as u64, Ordering::Relaxed);
        Ok(n)
    }
}

pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    out
}

fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

pub fn duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reading_counts_bytes_lines_and_the_file_at_its_end() {
        let progress = Progress::new(2, 12);
        let mut reader = progress.counted(Box::new(&b"a,b\n1,2\n"[..]));
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "a,b\n1,2\n");
        let line = progress.line();
        assert!(
            line.starts_with("1/2 files, 8 B of 12 B (67 %), 2 lines"),
            "{line}"
        );
        assert!(line.ends_with(" left"), "{line}");
        assert!(!progress.is_done());
    }

    #[test]
    fn sizes_durations_and_counts_read_well() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(3 * 1024 * 1024 / 2), "1.5 MiB");
        assert_eq!(duration(65.0), "1m05s");
        assert_eq!(duration(3700.0), "1h01m");
        assert_eq!(grouped(12_345_678), "12,345,678");
    }
}
