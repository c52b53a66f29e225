//! Starts `tessera local up` as a child process on free loopback ports and
//! talks to it with real clients.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const APP_USER: &str = "tessera_app";
pub const APP_PASSWORD: &str = "tessera_app_pw";

pub struct LocalCluster {
    pub child: Option<Child>,
    pub data_dir: PathBuf,
    pub ports: Ports,
    pub ready_line: String,
    pub startup: Duration,
}

#[derive(Clone, Copy, Debug)]
pub struct Ports {
    pub gate: u16,
    pub gate_http: u16,
    pub ctld: u16,
    pub tablet_base: u16,
    pub mysqld_base: u16,
}

impl Ports {
    /// Nine consecutive free ports: gate, gate http, ctld, three agents, three mysqlds
    /// (tablet uids 100-102).
    pub fn pick() -> Ports {
        Self::pick_for(3)
    }

    /// Free ports for gate, gate http, ctld and `tablets` tablets of uids 100, 101, ….
    pub fn pick_for(tablets: u16) -> Ports {
        let base = tessera_topo::testutil::free_ports_on("127.0.0.1", 3 + 2 * tablets);
        Ports {
            gate: base,
            gate_http: base + 1,
            ctld: base + 2,
            tablet_base: base + 3 - 100,
            mysqld_base: base + 3 + tablets - 100,
        }
    }

    pub fn mysqld(&self, uid: u16) -> u16 {
        self.mysqld_base + uid
    }
}

pub fn tessera_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tessera")
}

impl LocalCluster {
    pub fn start(data_dir: &Path) -> LocalCluster {
        Self::start_with(data_dir, Ports::pick(), &[])
    }

    pub fn start_with(data_dir: &Path, ports: Ports, extra: &[&str]) -> LocalCluster {
        let began = Instant::now();
        let mut child = Command::new(tessera_bin())
            .args(["local", "up", "--data-dir"])
            .arg(data_dir)
            .args(["--gate-port", &ports.gate.to_string()])
            .args(["--gate-http-port", &ports.gate_http.to_string()])
            .args(["--ctld-port", &ports.ctld.to_string()])
            .args(["--tablet-port-base", &ports.tablet_base.to_string()])
            .args(["--mysqld-port-base", &ports.mysqld_base.to_string()])
            .args(extra)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".to_string()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("tessera binary starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                println!("[local up] {line}");
                if line.contains("ready") {
                    let _ = tx.send(line);
                }
            }
        });
        let ready_line = match rx.recv_timeout(Duration::from_secs(180)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("local up printed no ready line within 180 s");
            }
        };
        LocalCluster {
            child: Some(child),
            data_dir: data_dir.to_path_buf(),
            ports,
            ready_line,
            startup: began.elapsed(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("running");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("local up did not stop within 120 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn url(&self, db: &str) -> String {
        format!("mysql://user@127.0.0.1:{}/{db}", self.ports.gate)
    }

    /// Runs SQL through the gate with the `mariadb` command-line client.
    pub fn mariadb(&self, db: &str, sql: &str) -> Output {
        mariadb_client(self.ports.gate, "user", "", db, sql)
    }

    /// Runs SQL and returns stdout, panicking with stderr on failure.
    pub fn mariadb_ok(&self, db: &str, sql: &str) -> String {
        let out = self.mariadb(db, sql);
        assert!(
            out.status.success(),
            "mariadb failed on {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Pids of mariadbd processes whose command line names this data dir.
    pub fn mariadbd_pids(&self) -> Vec<u32> {
        mariadbd_pids_under(&self.data_dir)
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(child.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        // Never leave a mysqld behind, even when the test failed half way.
        for pid in mariadbd_pids_under(&self.data_dir) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

pub fn mariadbd_pids_under(dir: &Path) -> Vec<u32> {
    let needle = dir.to_string_lossy().to_string();
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains("mariadbd") && cmdline.contains(&needle) {
            pids.push(pid);
        }
    }
    pids
}

pub fn mariadb_client(port: u16, user: &str, password: &str, db: &str, sql: &str) -> Output {
    let mut cmd = Command::new("mariadb");
    cmd.args(["-h", "127.0.0.1", "-P", &port.to_string(), "-u", user])
        .args(["--batch", "--skip-column-names", "--connect-timeout=10"]);
    if !password.is_empty() {
        cmd.arg(format!("-p{password}"));
    }
    if !db.is_empty() {
        cmd.arg(db);
    }
    cmd.args(["-e", sql]).output().expect("mariadb client runs")
}

/// Polls `f` until it returns Some, or panics after `timeout`.
pub fn eventually<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        if Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Resident set size of a process, in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS present")
}

/// A `tessera` child process, stopped with SIGTERM (then SIGKILL) when dropped.
pub struct Process {
    pub name: &'static str,
    child: Child,
}

impl Process {
    pub fn spawn(name: &'static str, args: &[String]) -> Process {
        let child = Command::new(tessera_bin())
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts: {e}"));
        Process { name, child }
    }

    /// Like `spawn`, inside network namespace `netns` (`ip netns exec`
    /// execs the binary in place, so signals reach tessera itself).
    pub fn spawn_in_netns(name: &'static str, netns: &str, args: &[String]) -> Process {
        let child = Command::new("ip")
            .args(["netns", "exec", netns, tessera_bin()])
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("{name} starts in netns {netns}: {e}"));
        Process { name, child }
    }

    /// SIGTERM, then waits; true when it exited successfully within 60 s.
    pub fn terminate(&mut self) -> bool {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }

    /// SIGKILL, as a crash.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

#[allow(unused_imports)] // not every test binary starts servers itself
pub use tessera_topo::testutil::free_port;

pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Arguments of `tessera tablet` for replica `zone1-{uid}` of commerce/0.
pub fn tablet_args(
    topo: &str,
    uid: u32,
    dir: &Path,
    mysql_port: u16,
    agent_port: u16,
) -> Vec<String> {
    strings(&[
        "tablet",
        "--topo",
        topo,
        "--alias",
        &format!("zone1-{uid}"),
        "--keyspace",
        "commerce",
        "--shard",
        "0",
        "--tablet-type",
        "replica",
        "--data-dir",
        &dir.join(uid.to_string()).to_string_lossy(),
        "--mysql-port",
        &mysql_port.to_string(),
        "--listen",
        &format!("127.0.0.1:{agent_port}"),
    ])
}

/// Runs `tessera ctl --server 127.0.0.1:<ctld_port> <args>`.
pub fn ctl(ctld_port: u16, args: &[&str]) -> Output {
    Command::new(tessera_bin())
        .args(["ctl", "--server", &format!("127.0.0.1:{ctld_port}")])
        .args(args)
        .output()
        .expect("tessera ctl runs")
}

/// Runs `tessera ctl` and returns stdout, panicking with stderr on failure.
pub fn ctl_ok(ctld_port: u16, args: &[&str]) -> String {
    let out = ctl(ctld_port, args);
    assert!(
        out.status.success(),
        "tessera ctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
