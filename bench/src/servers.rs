//! The servers under test, as real release processes: started with their environment, watched
//! for resident memory, stopped at the end. The admin CLI is driven the same way.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// Where the release binaries are: beside this one (`target/release`).
pub fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let me = std::env::current_exe()?;
    let path = me
        .parent()
        .context("the bench binary has a directory")?
        .join(name);
    anyhow::ensure!(
        path.exists(),
        "{} is missing: run `cargo build --release --workspace` first (or use `cargo run --release -p bench`)",
        path.display()
    );
    Ok(path)
}

/// Builds the server binaries in release mode when run through cargo, so the numbers are for
/// the current sources.
pub fn build_servers() -> anyhow::Result<()> {
    let Ok(cargo) = std::env::var("CARGO") else {
        return Ok(());
    };
    eprintln!("building auth-server and resource-api (release)...");
    let mut command = Command::new(cargo);
    // `cargo run` gives this process the bench package's CARGO_MANIFEST_* and CARGO_PKG_*
    // variables. ring's build script declares those as inputs, so passed on they would make every
    // run rebuild ring and all above it twice (here, then again in the next `cargo run`).
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("CARGO_MANIFEST_") || text.starts_with("CARGO_PKG_") {
            command.env_remove(&name);
        }
    }
    let status = command
        .args([
            "build",
            "--release",
            "--locked",
            "-p",
            "auth-server",
            "-p",
            "resource-api",
        ])
        .status()?;
    anyhow::ensure!(status.success(), "cargo build failed");
    Ok(())
}

/// A free loopback port (bound, then released for the server to take).
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

pub struct Server {
    pub name: &'static str,
    pub addr: SocketAddr,
    child: Child,
    pub started: Instant,
}

impl Server {
    pub fn spawn(
        name: &'static str,
        args: &[&str],
        env: &HashMap<String, String>,
        addr: SocketAddr,
        log: &Path,
    ) -> anyhow::Result<Server> {
        Server::spawn_binary(&binary(name)?, name, args, env, addr, log)
    }

    /// [`spawn`](Self::spawn) of the program at `program` (another build's, say).
    pub fn spawn_binary(
        program: &Path,
        name: &'static str,
        args: &[&str],
        env: &HashMap<String, String>,
        addr: SocketAddr,
        log: &Path,
    ) -> anyhow::Result<Server> {
        let log = std::fs::File::create(log)?;
        let started = Instant::now();
        let child = Command::new(program)
            .args(args)
            .env_clear()
            .envs(env)
            // What a deployment logs without RUST_LOG (one `access` line per request included);
            // BENCH_SERVER_LOG (e.g. `info,access=off`) measures another filter.
            .env(
                "RUST_LOG",
                std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "info".to_owned()),
            )
            .envs(std::env::var("TOKIO_WORKER_THREADS").map(|v| ("TOKIO_WORKER_THREADS", v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Server {
            name,
            addr,
            child,
            started,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now, in MiB (VmRSS).
    pub fn rss_mib(&self) -> anyhow::Result<f64> {
        proc_status_kib(self.pid(), "VmRSS:").map(|kib| kib as f64 / 1024.0)
    }

    /// Peak resident memory since start, in MiB (VmHWM).
    pub fn peak_rss_mib(&self) -> anyhow::Result<f64> {
        proc_status_kib(self.pid(), "VmHWM:").map(|kib| kib as f64 / 1024.0)
    }

    /// Waits until `path` answers 200.
    pub async fn wait_ok(&mut self, path: &str, limit: Duration) -> anyhow::Result<Duration> {
        let http = http();
        let url = format!("http://{}{path}", self.addr);
        loop {
            if let Ok(response) = http.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(self.started.elapsed());
            }
            self.ensure_running()?;
            anyhow::ensure!(
                self.started.elapsed() < limit,
                "{} not ready after {limit:?}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// An error if the process has exited.
    pub fn ensure_running(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            anyhow::bail!("{} exited with {status}", self.name);
        }
        Ok(())
    }

    pub fn stop(mut self) {
        // SIGTERM for a graceful stop, then make sure.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server left behind by a failed section is killed, not left running after the harness.
impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// CPU time a process has used so far, user plus system, in seconds (`/proc/<pid>/stat`, whose
/// clock ticks are 1/100 s on Linux).
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// CPU time the calling thread has used so far, user plus system, in seconds.
pub fn thread_cpu_seconds() -> anyhow::Result<f64> {
    stat_cpu_seconds("/proc/thread-self/stat")
}

fn stat_cpu_seconds(path: &str) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(path)?;
    // The command name is in parentheses and may hold spaces: count fields after its end.
    let after = stat
        .rsplit_once(')')
        .context("a command name in /proc/<pid>/stat")?
        .1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of the file (utime, stime) are 11 and 12 after the name.
    let ticks: u64 = fields.get(11).context("utime")?.parse::<u64>()?
        + fields.get(12).context("stime")?.parse::<u64>()?;
    Ok(ticks as f64 / 100.0)
}

/// Time every core of the machine has spent idle so far (idle plus iowait), in seconds.
pub fn idle_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat
        .lines()
        .find(|l| l.starts_with("cpu "))
        .context("a cpu line in /proc/stat")?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let ticks = fields.get(3).context("idle")? + fields.get(4).context("iowait")?;
    Ok(ticks as f64 / 100.0)
}

fn proc_status_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("{field} not in /proc/{pid}/status"))?;
    let kib = line
        .split_whitespace()
        .nth(1)
        .context("a number")?
        .parse()?;
    Ok(kib)
}

/// Runs the admin CLI with the token service's environment; returns its JSON output.
pub fn cli(env: &HashMap<String, String>, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    cli_of(&binary("auth-server")?, env, args)
}

/// [`cli`] of the token service binary at `program`.
pub fn cli_of(
    program: &Path,
    env: &HashMap<String, String>,
    args: &[&str],
) -> anyhow::Result<serde_json::Value> {
    let output = Command::new(program)
        .args(args)
        .arg("--json")
        .env_clear()
        .envs(env)
        .env("RUST_LOG", "warn")
        .output()?;
    anyhow::ensure!(
        output.status.success(),
        "auth-server {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(serde_json::from_slice(&output.stdout)?)
}

/// The harness's one HTTP client: building one loads the system's root certificates, which the
/// JWKS proxy would otherwise pay on every fetch it forwards.
pub fn http() -> reqwest::Client {
    static CLIENT: std::sync::LazyLock<reqwest::Client> = std::sync::LazyLock::new(|| {
        edge::http_client(Duration::from_secs(10), Duration::from_secs(10))
            .build()
            .expect("an HTTP client")
    });
    CLIENT.clone()
}
