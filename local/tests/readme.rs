//! README.md as a script: every shell block (a fence opened with ```sh or ```bash) runs, in the
//! order written, in one bash session from the repo root, so a block sees what the blocks before
//! it did (`source .local/env`, files they wrote). A command that fails fails the test with the
//! block, where it is in the README and its output.
//!
//! A block that must not run is preceded by an HTML comment `<!-- not run: REASON -->` (blank
//! lines and other comments may stand between them). Use it sparingly, for what cannot run
//! here: `make test` (this test is part of the suite), a cloud deploy.
//!
//! The session is a user's shell: `set -eo pipefail`, no stack variables inherited (no
//! DATABASE_URL, AWS_*, ...), and `curl` fails on an HTTP error (`--fail-with-body`), so that
//! an example answering 404 does not pass. After the last block it checks that the README
//! left no new file at the repo root that git does not ignore (its outputs go under target/ and
//! .local/) and nothing in /tmp/localstack-s3-storage, and it runs
//! `make local-down` whatever happened.
//!
//! The README's commands use the default ports (4566, 9000) and the repo's `.local`, so the
//! test runs only when asked (`make test-readme`, CI: MEDREC_README_TEST=1) and refuses to run
//! while a stack is up there: its `make local-down` would stop that stack.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap()
}

/// One fenced shell block of the README.
#[derive(Debug, Clone, PartialEq)]
struct Block {
    /// The README line of the opening fence (1-based).
    line: usize,
    text: String,
    /// `Some(reason)` for a block marked `<!-- not run: reason -->`.
    not_run: Option<String>,
}

/// The shell blocks of a Markdown text, in order.
fn shell_blocks(markdown: &str) -> Vec<Block> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(info) = lines[i].strip_prefix("```") else {
            i += 1;
            continue;
        };
        let language = info.split_whitespace().next().unwrap_or("");
        let start = i;
        let mut end = i + 1;
        while end < lines.len() && !lines[end].starts_with("```") {
            end += 1;
        }
        assert!(
            end < lines.len(),
            "README line {}: unclosed fence",
            start + 1
        );
        if language == "sh" || language == "bash" {
            blocks.push(Block {
                line: start + 1,
                text: lines[start + 1..end].join("\n"),
                not_run: not_run_marker(&lines[..start]),
            });
        }
        i = end + 1;
    }
    blocks
}

/// The reason of a `<!-- not run: reason -->` among the comments and blank lines right above.
fn not_run_marker(above: &[&str]) -> Option<String> {
    for line in above.iter().rev().map(|l| l.trim()) {
        if line.is_empty() {
            continue;
        }
        let comment = line
            .strip_prefix("<!--")
            .and_then(|l| l.strip_suffix("-->"))?;
        if let Some(reason) = comment.trim().strip_prefix("not run:") {
            let reason = reason.trim();
            assert!(
                !reason.is_empty(),
                "a not-run marker needs a reason: {line}"
            );
            return Some(reason.to_owned());
        }
    }
    None
}

#[test]
fn the_blocks_and_markers_are_found() {
    let markdown = "text\n\n```sh\nmake demo\n```\n\n<!-- not run: needs AWS -->\n\
                    <!-- deploy -->\n\n```bash\nsam deploy\n```\n```\nplain\n```\n\
                    <!-- api-examples -->\n```sh\ncurl -s x\ncurl -s y\n```\n";
    let blocks = shell_blocks(markdown);
    assert_eq!(
        blocks,
        vec![
            Block {
                line: 3,
                text: "make demo".into(),
                not_run: None
            },
            Block {
                line: 10,
                text: "sam deploy".into(),
                not_run: Some("needs AWS".into())
            },
            Block {
                line: 17,
                text: "curl -s x\ncurl -s y".into(),
                not_run: None
            },
        ]
    );
}

#[test]
fn the_readme_marks_few_blocks_not_run() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let blocks = shell_blocks(&readme);
    let skipped: Vec<_> = blocks.iter().filter(|b| b.not_run.is_some()).collect();
    assert!(blocks.len() >= 8, "{blocks:?}");
    assert!(
        skipped.len() <= 2,
        "blocks not run (keep them few): {skipped:?}"
    );
}

/// Entries at the repo root (what a README command could litter).
fn root_entries() -> BTreeSet<String> {
    std::fs::read_dir(root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Whether the repo's .gitignore covers `name` at the repo root.
fn git_ignores(name: &str) -> bool {
    Command::new("git")
        .args(["check-ignore", "--quiet", "--", name])
        .current_dir(root())
        .status()
        .is_ok_and(|s| s.success())
}

fn port_in_use(port: u16) -> bool {
    std::net::TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_millis(300),
    )
    .is_ok()
}

/// Marks in the session's output: `@@readme <index> start|ok`.
const MARK: &str = "@@readme ";

#[test]
fn every_readme_command_runs_as_typed() {
    if std::env::var("MEDREC_README_TEST").as_deref() != Ok("1") {
        eprintln!(
            "skipped: the README's commands use the default ports and .local; \
             `make test-readme` (MEDREC_README_TEST=1) runs them"
        );
        return;
    }
    let root = root();
    let busy: Vec<String> = [4566u16, 9000]
        .into_iter()
        .filter(|p| port_in_use(*p))
        .map(|p| format!("127.0.0.1:{p} is in use"))
        .chain(
            root.join(".local/env")
                .exists()
                .then(|| ".local/env exists (a stack is up)".to_owned()),
        )
        .collect();
    assert!(
        busy.is_empty(),
        "the README's commands would act on a stack that is not this test's ({}): \
         `make local-down` first",
        busy.join(", ")
    );

    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let blocks = shell_blocks(&readme);
    let scripts = tempfile::tempdir().unwrap();
    let mut session = String::from(
        "set -eo pipefail\n\
         curl() { command curl --fail-with-body \"$@\"; }\n",
    );
    for (index, block) in blocks.iter().enumerate() {
        match &block.not_run {
            Some(reason) => eprintln!(
                "README line {}: not run ({reason}):\n{}",
                block.line, block.text
            ),
            None => {
                let file = scripts.path().join(format!("block-{index}.sh"));
                std::fs::write(&file, format!("{}\n", block.text)).unwrap();
                session.push_str(&format!(
                    "echo '{MARK}{index} start'\nsource '{}'\necho '{MARK}{index} ok'\n",
                    file.display()
                ));
            }
        }
    }

    let entries_before = root_entries();
    let s3_litter = Path::new("/tmp/localstack-s3-storage");
    let s3_litter_before = s3_litter.exists();

    use std::os::unix::process::CommandExt;
    let mut command = Command::new("bash");
    command
        .arg("-c")
        .arg(&session)
        .current_dir(&root)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    // A user's shell: none of the variables a stack or cargo would have set.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().into_owned();
        let cargo = name.starts_with("CARGO_") && name != "CARGO_HOME";
        let stack = [
            "DATABASE_URL",
            "API_URL",
            "BUCKET",
            "MEDREC_API_KEY",
            "FEATURES_QUEUE_URL",
            "MEDREC_STATE_DIR",
            "LOCALSTACK_PORT",
            "LAMBDA_PORT",
            "ESM_RETRY_AFTER",
            "MEDREC_README_TEST",
            "KEEP",
            "DATA",
        ]
        .contains(&name.as_str());
        let make = ["MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES"].contains(&name.as_str());
        if cargo || stack || make || name.starts_with("AWS_") || name.starts_with("RUST_TEST") {
            command.env_remove(&name);
        }
    }
    let started = Instant::now();
    let mut child = command.spawn().unwrap();
    let group = child.id() as i32;

    // Both streams, in one transcript, echoed as they come (the build's progress too).
    let (sender, receiver) = std::sync::mpsc::channel::<String>();
    let readers: Vec<_> = [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ]
    .into_iter()
    .map(|stream| {
        let sender = sender.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if sender.send(line).is_err() {
                    break;
                }
            }
        })
    })
    .collect();
    drop(sender);

    let limit = Duration::from_secs(
        std::env::var("README_TEST_TIMEOUT")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(45 * 60),
    );
    let mut transcript: Vec<String> = Vec::new();
    let mut current: Option<usize> = None;
    let mut block_started = Instant::now();
    let mut timed_out = false;
    let stderr = std::io::stderr();
    loop {
        match receiver.recv_timeout(Duration::from_secs(1)) {
            Ok(mut line) => {
                // A command's last line may lack its newline: the mark then ends that line.
                if let Some(at) = line.find(MARK).filter(|at| *at > 0) {
                    let mark = line.split_off(at);
                    writeln!(stderr.lock(), "{line}").unwrap();
                    transcript.push(line);
                    line = mark;
                }
                if let Some(mark) = line.strip_prefix(MARK) {
                    let (index, what) = mark.split_once(' ').unwrap();
                    let index: usize = index.parse().unwrap();
                    if what == "start" {
                        current = Some(index);
                        block_started = Instant::now();
                        writeln!(
                            stderr.lock(),
                            "--- README line {}:\n{}",
                            blocks[index].line,
                            blocks[index].text
                        )
                        .unwrap();
                    } else {
                        writeln!(
                            stderr.lock(),
                            "--- ok in {:.1} s",
                            block_started.elapsed().as_secs_f64()
                        )
                        .unwrap();
                        current = None;
                    }
                    transcript.push(line);
                    continue;
                }
                writeln!(stderr.lock(), "{line}").unwrap();
                transcript.push(line);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                if started.elapsed() > limit {
                    timed_out = true;
                    // SAFETY: signalling the process group this test created.
                    unsafe { libc::kill(-group, libc::SIGKILL) };
                    break;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child.wait().unwrap();
    for reader in readers {
        let _ = reader.join();
    }

    // Whatever happened, nothing of the stack stays up.
    let down = Command::new("make")
        .args(["--no-print-directory", "local-down"])
        .current_dir(&root)
        .output()
        .unwrap();

    if timed_out || !status.success() {
        let failed = current.expect("the session failed outside any block");
        let block = &blocks[failed];
        let start = transcript
            .iter()
            .rposition(|l| l == &format!("{MARK}{failed} start"))
            .unwrap();
        panic!(
            "README line {}: {} after {:.0} s; the block:\n{}\n\nits output:\n{}",
            block.line,
            if timed_out {
                format!("timed out ({} s in all)", limit.as_secs())
            } else {
                format!("failed ({status})")
            },
            block_started.elapsed().as_secs_f64(),
            block.text,
            transcript[start + 1..].join("\n")
        );
    }
    assert!(
        down.status.success(),
        "make local-down after the README: {}",
        String::from_utf8_lossy(&down.stderr)
    );
    // The state and output places (.local, target, .venv) are gitignored: what must not appear
    // is anything git would show as a new file.
    let new: Vec<String> = root_entries()
        .difference(&entries_before)
        .filter(|name| !git_ignores(name))
        .cloned()
        .collect();
    assert!(
        new.is_empty(),
        "the README's commands left these at the repo root: {new:?}"
    );
    assert!(
        s3_litter_before || !s3_litter.exists(),
        "LocalStack wrote {} outside the repo",
        s3_litter.display()
    );
    eprintln!(
        "README: {} block(s) ran in {:.0} s",
        blocks.iter().filter(|b| b.not_run.is_none()).count(),
        started.elapsed().as_secs_f64()
    );
}
