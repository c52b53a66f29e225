//! A throwaway etcd for tests (of this and other crates): a real `etcd`
//! process on free loopback ports with its data in a temporary directory,
//! killed when dropped.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// How long etcd may take to answer on a loaded machine.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Starts retried when etcd dies at once, which happens when another process
/// grabbed one of the ports we picked before etcd bound it.
const START_ATTEMPTS: usize = 3;

pub struct EtcdServer {
    child: Option<Child>,
    endpoint: String,
    dir: tempfile::TempDir,
}

impl EtcdServer {
    /// Starts etcd and waits until it reports itself healthy. Fails with a
    /// clear message when the `etcd` binary is not on PATH.
    pub fn start() -> anyhow::Result<EtcdServer> {
        let binary = find_on_path("etcd").context(
            "the `etcd` binary is not on PATH; install etcd (Debian: `apt-get install etcd-server`) to run tests that need it",
        )?;
        let mut last_error = None;
        for _ in 0..START_ATTEMPTS {
            match Self::start_once(&binary) {
                Ok(server) => return Ok(server),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("at least one attempt"))
    }

    /// `start` for async callers, off the runtime's threads.
    pub async fn start_async() -> anyhow::Result<EtcdServer> {
        tokio::task::spawn_blocking(Self::start)
            .await
            .context("etcd start task failed")?
    }

    fn start_once(binary: &Path) -> anyhow::Result<EtcdServer> {
        let dir = tempfile::Builder::new()
            .prefix("tessera-etcd-")
            .tempdir()
            .context("cannot create a directory for etcd")?;
        let client_port = free_port();
        let peer_port = free_port();
        let client_url = format!("http://127.0.0.1:{client_port}");
        let peer_url = format!("http://127.0.0.1:{peer_port}");
        let log_path = dir.path().join("etcd.log");
        let log = std::fs::File::create(&log_path).context("cannot create etcd's log")?;
        let child = Command::new(binary)
            .arg("--name=tessera-test")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=tessera-test={peer_url}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().context("cannot share etcd's log")?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut server = EtcdServer {
            child: Some(child),
            endpoint: client_url,
            dir,
        };
        let started = Instant::now();
        loop {
            if let Some(status) = server
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                server.child = None;
                bail!(
                    "etcd exited during startup ({status}); its log ends with:\n{}",
                    log_tail(&log_path)
                );
            }
            if is_healthy(client_port) {
                return Ok(server);
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "etcd did not become healthy within {}s; its log ends with:\n{}",
                    READY_TIMEOUT.as_secs(),
                    log_tail(&log_path)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The client URL, such as `http://127.0.0.1:34567`.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// The `--topo` spec that reaches this etcd under `root`.
    pub fn topo_spec(&self, root: &str) -> String {
        format!("etcd:{}?root={root}", self.endpoint)
    }

    /// Where etcd keeps its data and log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Kills etcd now, as an outage would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn find_on_path(name: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

/// [`free_port_on`] for 127.0.0.1.
pub fn free_port() -> u16 {
    free_ports_on("127.0.0.1", 1)
}

/// Returns a port on `ip` that nothing listens on, for a server the caller
/// starts next (mariadbd, etcd, a tablet agent, a gate).
pub fn free_port_on(ip: &str) -> u16 {
    free_ports_on(ip, 1)
}

/// Lowest and one-past-highest port handed out by [`free_ports_on`].
const TEST_PORTS: (u32, u32) = (20_000, 32_000);

/// Returns the first of `count` consecutive ports on `ip` that nothing
/// listens on.
///
/// Ports come from below the kernel's ephemeral range (32768 and up on
/// Linux) rather than from binding port 0: an ephemeral port that was free
/// when probed can be taken by any outgoing connection of a concurrent test
/// before the server binds it, which failed a CI run with mariadbd's
/// "Address already in use". A process-wide counter keeps one test process
/// from handing a port out twice; its start is spread by process id so test
/// processes running side by side rarely probe the same ports.
pub fn free_ports_on(ip: &str, count: u16) -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    let (low, high) = TEST_PORTS;
    let span = high - low - u32::from(count);
    let start = std::process::id().wrapping_mul(7919) % span;
    let _ = NEXT.compare_exchange(u32::MAX, start, Ordering::Relaxed, Ordering::Relaxed);
    for _ in 0..span {
        let base = (low + NEXT.fetch_add(u32::from(count), Ordering::Relaxed) % span) as u16;
        if (0..count).all(|i| TcpListener::bind((ip, base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no {count} free consecutive ports on {ip} in {low}..{high}");
}

/// etcd answers `GET /health` on its client port once it serves requests.
fn is_healthy(port: u16) -> bool {
    let check = || -> std::io::Result<String> {
        let mut conn =
            TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(2))?;
        conn.set_read_timeout(Some(Duration::from_secs(5)))?;
        conn.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
        let mut answer = String::new();
        conn.read_to_string(&mut answer)?;
        Ok(answer)
    };
    matches!(check(), Ok(answer) if answer.contains("\"health\":\"true\""))
}

fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
