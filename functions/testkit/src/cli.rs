//! The `medrec` command, run as the tests' child process.

use std::process::{Command, Output};

use crate::TestDb;

/// Runs the built `medrec` binary. Only a crate's own tests know where cargo put it
/// (`env!("CARGO_BIN_EXE_medrec")`), so they give the path: `Medrec::new(env!(...))`.
///
/// Every run has `MEDREC_LOG` removed, and `DATABASE_URL` set to the database given with
/// [`Medrec::on`].
#[derive(Clone, Copy)]
pub struct Medrec<'a> {
    bin: &'a str,
    db: Option<&'a TestDb>,
}

impl<'a> Medrec<'a> {
    pub fn new(bin: &'a str) -> Self {
        Medrec { bin, db: None }
    }

    /// The same command on `db`.
    pub fn on(self, db: &'a TestDb) -> Self {
        Medrec {
            db: Some(db),
            ..self
        }
    }

    /// The command with its environment and no arguments, to add to, spawn or run.
    pub fn command(&self) -> Command {
        let mut command = Command::new(self.bin);
        command.env_remove("MEDREC_LOG");
        if let Some(db) = self.db {
            command.env("DATABASE_URL", db.config.expose_url());
        }
        command
    }

    /// Runs `medrec ARGS` to its end (blocking the thread).
    pub fn run_blocking(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("running medrec")
    }

    /// Runs `medrec ARGS` to its end without blocking the async runtime.
    pub async fn run(&self, args: &[&str]) -> Output {
        tokio::process::Command::from(self.command())
            .args(args)
            .output()
            .await
            .expect("running medrec")
    }

    /// [`Medrec::run`], asserting that it succeeds; returns its stdout.
    pub async fn run_ok(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        assert!(
            output.status.success(),
            "medrec {args:?} failed: {}",
            describe(&output)
        );
        String::from_utf8(output.stdout).expect("UTF-8 stdout")
    }

    /// [`Medrec::run_blocking`], asserting that it succeeds; returns its stdout.
    pub fn run_ok_blocking(&self, args: &[&str]) -> String {
        let output = self.run_blocking(args);
        assert!(
            output.status.success(),
            "medrec {args:?} failed: {}",
            describe(&output)
        );
        String::from_utf8(output.stdout).expect("UTF-8 stdout")
    }
}

/// A child's exit status, stdout and stderr, for an assertion's message.
pub fn describe(output: &Output) -> String {
    format!(
        "{}\n--- stdout\n{}--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
