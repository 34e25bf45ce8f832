//! A PostgreSQL cluster of our own: initdb into a temporary directory, a free port on
//! 127.0.0.1, stopped and deleted on drop unless kept.
//!
//! Only a throwaway cluster ([`Durability::Throwaway`]: gone when the command ends) runs with
//! fsync, synchronous_commit and full_page_writes off; a cluster that is kept (`medrec postgres
//! start`, `medrec ingest --keep`) keeps PostgreSQL's defaults, so a load reported as loaded
//! survives a crash of the server or the machine.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{bail, Context};

/// What a cluster may trade for speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// PostgreSQL's defaults: what a commit reports survives a crash.
    Durable,
    /// fsync, synchronous_commit and full_page_writes off: a crash may lose committed loads or
    /// corrupt the cluster. Only for a cluster deleted when the command ends.
    Throwaway,
}

impl Durability {
    /// The server options this durability adds.
    pub fn server_options(self) -> &'static str {
        match self {
            Durability::Durable => "",
            Durability::Throwaway => {
                " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            }
        }
    }
}

pub struct Cluster {
    dir: Option<tempfile::TempDir>,
    data: PathBuf,
    bin: PathBuf,
    run_as: Option<(u32, u32)>,
    pub port: u16,
    pub url: String,
    keep: bool,
}

impl Cluster {
    /// Starts a new cluster. As root, the server runs as the `postgres` system user (PostgreSQL
    /// refuses to run as root).
    pub fn start(durability: Durability) -> anyhow::Result<Cluster> {
        let bin = find_bin_dir()?;
        let dir = tempfile::Builder::new().prefix("medrec-pg-").tempdir()?;
        let data = dir.path().join("data");
        let run_as = if unsafe { libc::geteuid() } == 0 {
            Some(unprivileged_user()?)
        } else {
            None
        };
        if let Some((uid, gid)) = run_as {
            chown(dir.path(), uid, gid)?;
        }
        let port = free_port()?;
        let cluster = Cluster {
            dir: Some(dir),
            data,
            bin,
            run_as,
            port,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            keep: false,
        };
        let mut initdb: Vec<&std::ffi::OsStr> = vec![
            "-D".as_ref(),
            cluster.data.as_os_str(),
            "-U".as_ref(),
            "postgres".as_ref(),
            "--auth=trust".as_ref(),
            "-E".as_ref(),
            "UTF8".as_ref(),
            "--no-locale".as_ref(),
        ];
        if durability == Durability::Throwaway {
            initdb.push("--no-sync".as_ref());
        }
        cluster.run("initdb", &initdb)?;
        let socket_dir = cluster.dir_path().to_owned();
        let log = cluster.dir_path().join("server.log");
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1{}",
            socket_dir.display(),
            durability.server_options()
        );
        cluster
            .run(
                "pg_ctl",
                &[
                    "-D".as_ref(),
                    cluster.data.as_os_str(),
                    "-l".as_ref(),
                    log.as_os_str(),
                    "-o".as_ref(),
                    options.as_ref(),
                    "-w".as_ref(),
                    "start".as_ref(),
                ],
            )
            .with_context(|| format!("starting PostgreSQL (log: {})", log.display()))?;
        Ok(cluster)
    }

    fn dir_path(&self) -> &Path {
        self.dir.as_ref().expect("cluster dir").path()
    }

    /// Leaves the server running and its directory in place after this process exits.
    pub fn keep(&mut self) -> PathBuf {
        self.keep = true;
        self.dir.take().expect("cluster dir").keep()
    }

    fn run(&self, program: &str, args: &[&std::ffi::OsStr]) -> anyhow::Result<()> {
        let mut command = Command::new(self.bin.join(program));
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        let output = command
            .output()
            .with_context(|| format!("running {program}"))?;
        if !output.status.success() {
            bail!(
                "{program} failed: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    fn stop(&self) -> anyhow::Result<()> {
        self.run(
            "pg_ctl",
            &[
                "-D".as_ref(),
                self.data.as_os_str(),
                "-m".as_ref(),
                "immediate".as_ref(),
                "-w".as_ref(),
                "stop".as_ref(),
            ],
        )
    }

    /// Stops a cluster that `keep` left in `dir` and deletes the directory. A directory whose
    /// server is already down is only deleted.
    pub fn stop_kept(dir: &Path) -> anyhow::Result<()> {
        let data = dir.join("data");
        anyhow::ensure!(
            data.join("PG_VERSION").exists(),
            "{} holds no PostgreSQL cluster",
            dir.display()
        );
        let cluster = Cluster {
            dir: None,
            data,
            bin: find_bin_dir()?,
            run_as: if unsafe { libc::geteuid() } == 0 {
                Some(unprivileged_user()?)
            } else {
                None
            },
            port: 0,
            url: String::new(),
            keep: true,
        };
        if cluster.data.join("postmaster.pid").exists() {
            cluster.stop()?;
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if !self.keep {
            if let Err(error) = self.stop() {
                tracing::warn!(%error, "could not stop the throwaway PostgreSQL");
            }
        }
    }
}

/// The directory holding `initdb` and `pg_ctl`: `PG_BIN`, else `pg_config --bindir`, else the
/// newest `/usr/lib/postgresql/*/bin`, else `PATH`.
fn find_bin_dir() -> anyhow::Result<PathBuf> {
    if let Ok(dir) = std::env::var("PG_BIN") {
        return Ok(PathBuf::from(dir));
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && dir.join("initdb").exists() {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        if dir.join("initdb").exists() && dir.join("pg_ctl").exists() {
            return Ok(dir);
        }
    }
    bail!("PostgreSQL server binaries (initdb, pg_ctl) not found: install PostgreSQL or set PG_BIN or DATABASE_URL")
}

fn unprivileged_user() -> anyhow::Result<(u32, u32)> {
    for name in [c"postgres", c"nobody"] {
        let entry = unsafe { libc::getpwnam(name.as_ptr()) };
        if !entry.is_null() {
            let entry = unsafe { &*entry };
            return Ok((entry.pw_uid, entry.pw_gid));
        }
    }
    bail!("running as root, but neither a postgres nor a nobody user exists to run PostgreSQL")
}

fn chown(path: &Path, uid: u32, gid: u32) -> anyhow::Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(gid))
        .with_context(|| format!("chown {}", path.display()))
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
