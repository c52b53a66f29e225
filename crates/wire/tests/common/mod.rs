//! Test support: a real mariadbd in a temporary directory on a free loopback port, shared by
//! the tests of one binary that run at the same time and killed when the last one is done.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tessera_wire::{BackendConfig, BackendConn, CapabilityFlags};

/// Password of the `app` user every server gets.
pub const APP_PASSWORD: &str = "s3cret-app";

pub struct MariaDb {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

#[allow(unused_imports)] // not every test binary starts servers itself
pub use tessera_topo::testutil::free_port;

fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl MariaDb {
    /// The server shared by concurrently running tests of this binary (started if needed).
    pub fn shared() -> Arc<MariaDb> {
        static SHARED: Mutex<Weak<MariaDb>> = Mutex::new(Weak::new());
        let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(server) = slot.upgrade() {
            return server;
        }
        let server = Arc::new(MariaDb::start());
        *slot = Arc::downgrade(&server);
        server
    }

    /// Installs and starts a fresh mariadbd and creates the `app` user; blocks until ready.
    pub fn start() -> MariaDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        run(Command::new("mariadb-install-db")
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg("--user=root")
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()));
        let port = free_port();
        let child = Command::new("mariadbd")
            .arg("--no-defaults")
            .arg("--user=root")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg("--bind-address=127.0.0.1")
            .arg("--skip-name-resolve")
            .arg("--innodb-buffer-pool-size=32M")
            .arg("--max-allowed-packet=64M")
            .arg(format!(
                "--log-error={}",
                dir.path().join("err.log").display()
            ))
            .arg(format!("--pid-file={}", dir.path().join("pid").display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn mariadbd");
        let mut server = MariaDb { port, child, dir };
        server.wait_ready();
        server.sql(&format!(
            "CREATE USER 'app'@'%' IDENTIFIED BY '{APP_PASSWORD}'; \
             GRANT ALL ON *.* TO 'app'@'%'; CREATE DATABASE IF NOT EXISTS test;"
        ));
        server
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("mariadbd exited with {status}: {}", self.error_log());
            }
            let probe = Command::new("mariadb")
                .args(["--no-defaults", "-uroot", "-h127.0.0.1"])
                .arg(format!("-P{}", self.port))
                .args(["-e", "SELECT 1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            if probe.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "mariadbd not ready after 120s: {}",
                self.error_log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("err.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Runs SQL as root with the mariadb command-line client and returns its batch output.
    pub fn sql(&self, sql: &str) -> String {
        let out = Command::new("mariadb")
            .args([
                "--no-defaults",
                "-uroot",
                "-h127.0.0.1",
                "--batch",
                "--skip-column-names",
            ])
            .arg(format!("-P{}", self.port))
            .args(["-e", sql])
            .output()
            .expect("run mariadb client");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Backend settings for the `app` user with the given response-shaping flags.
    pub fn app_config(&self, capabilities: CapabilityFlags) -> BackendConfig {
        BackendConfig {
            addr: self.addr(),
            user: "app".into(),
            password: APP_PASSWORD.into(),
            database: Some("test".into()),
            capabilities,
        }
    }

    pub async fn connect(&self, capabilities: CapabilityFlags) -> BackendConn {
        BackendConn::connect(&self.app_config(capabilities))
            .await
            .expect("connect as app")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("sock")
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Flags a typical modern client negotiates: multi-results and DEPRECATE_EOF.
pub fn modern_flags() -> CapabilityFlags {
    CapabilityFlags::CLIENT_MULTI_STATEMENTS
        | CapabilityFlags::CLIENT_MULTI_RESULTS
        | CapabilityFlags::CLIENT_PS_MULTI_RESULTS
        | CapabilityFlags::CLIENT_DEPRECATE_EOF
        | CapabilityFlags::CLIENT_SESSION_TRACK
}

/// Flags of an older client: classic EOF packets.
pub fn classic_flags() -> CapabilityFlags {
    CapabilityFlags::CLIENT_MULTI_STATEMENTS
        | CapabilityFlags::CLIENT_MULTI_RESULTS
        | CapabilityFlags::CLIENT_PS_MULTI_RESULTS
}
