//! Lifecycle of one tablet's mariadbd: initialise its datadir, write its
//! my.cnf, start it as a child process, wait until it answers, stop it, and
//! hand out dba connections to it.
//!
//! Layout of a tablet's `root_dir`: `data/` (datadir), `my.cnf`,
//! `mysqld.sock`, `mysqld.pid`, `error.log`, `tmp/` (mariadbd's tmpdir), and
//! `init.done` once the first-boot SQL has run.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use mysql_async::prelude::Queryable;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

/// The default first-boot SQL; see `MysqldConfig::init_sql` to replace it.
pub const DEFAULT_INIT_SQL: &str = include_str!("init.sql");

/// How long `start` waits for a fresh mariadbd to answer.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `stop` waits after SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(30);
/// Unix socket paths longer than this do not fit `sockaddr_un`.
const MAX_SOCKET_PATH: usize = 107;

/// The accounts every tablet's mysqld gets at first boot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub dba_user: String,
    pub dba_password: String,
    pub repl_user: String,
    pub repl_password: String,
    pub app_user: String,
    pub app_password: String,
}

impl Default for Credentials {
    fn default() -> Self {
        Self {
            dba_user: "tessera_dba".into(),
            dba_password: "tessera_dba_pw".into(),
            repl_user: "tessera_repl".into(),
            repl_password: "tessera_repl_pw".into(),
            app_user: "tessera_app".into(),
            app_password: "tessera_app_pw".into(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct MysqldConfig {
    /// The tablet's directory; see the module docs for its layout.
    pub root_dir: PathBuf,
    pub port: u16,
    pub bind_address: String,
    pub server_id: u32,
    pub buffer_pool_mb: u32,
    /// A my.cnf fragment appended last, so its settings win.
    pub extra_cnf: Option<PathBuf>,
    /// First-boot SQL replacing the default template; the same `{{...}}`
    /// placeholders are filled in.
    pub init_sql: Option<PathBuf>,
    /// Database created at first boot (the keyspace's).
    pub database: String,
    pub credentials: Credentials,
}

impl MysqldConfig {
    /// A config with the defaults: bind 127.0.0.1, 32 MB buffer pool, the
    /// default credentials and init SQL, no extra my.cnf.
    pub fn new(
        root_dir: impl Into<PathBuf>,
        port: u16,
        server_id: u32,
        database: impl Into<String>,
    ) -> Self {
        Self {
            root_dir: root_dir.into(),
            port,
            bind_address: "127.0.0.1".into(),
            server_id,
            buffer_pool_mb: 32,
            extra_cnf: None,
            init_sql: None,
            database: database.into(),
            credentials: Credentials::default(),
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root_dir.join("data")
    }
    pub fn cnf_path(&self) -> PathBuf {
        self.root_dir.join("my.cnf")
    }
    pub fn socket_path(&self) -> PathBuf {
        self.root_dir.join("mysqld.sock")
    }
    pub fn pid_path(&self) -> PathBuf {
        self.root_dir.join("mysqld.pid")
    }
    pub fn error_log_path(&self) -> PathBuf {
        self.root_dir.join("error.log")
    }
    /// mariadbd's own tmpdir: a shared /tmp lets servers in other pid
    /// namespaces collide on the pid-derived names of internal temp tables.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root_dir.join("tmp")
    }
    fn init_marker_path(&self) -> PathBuf {
        self.root_dir.join("init.done")
    }

    /// The address the agent reaches its own mysqld at: the bind address
    /// when mysqld listens on one address only (a tablet advertising a LAN
    /// address binds there, not on loopback), else 127.0.0.1.
    pub fn local_host(&self) -> &str {
        match self.bind_address.as_str() {
            "" | "*" | "0.0.0.0" | "::" => "127.0.0.1",
            one => one,
        }
    }

    /// Options to connect as the dba user over TCP to this mysqld (see
    /// `local_host`), optionally into database `db`.
    pub fn dba_opts(&self, db: Option<&str>) -> mysql_async::OptsBuilder {
        let c = &self.credentials;
        mysql_async::OptsBuilder::default()
            .ip_or_hostname(self.local_host())
            .tcp_port(self.port)
            .user(Some(c.dba_user.clone()))
            .pass(Some(c.dba_password.clone()))
            .db_name(db.map(str::to_string))
            .prefer_socket(false)
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.port == 0 {
            bail!("mysqld port must not be 0");
        }
        if self.server_id == 0 {
            bail!("mysqld server_id must not be 0 (replication refuses it)");
        }
        if self.database.is_empty() {
            bail!("mysqld database name must not be empty");
        }
        if self.buffer_pool_mb < 5 {
            bail!(
                "innodb buffer pool of {} MB is too small",
                self.buffer_pool_mb
            );
        }
        for (what, v) in [
            ("bind_address", &self.bind_address),
            ("database", &self.database),
        ] {
            if v.chars().any(|c| c.is_control()) {
                bail!("mysqld {what} {v:?} contains control characters");
            }
        }
        let sock = self.socket_path();
        if sock.as_os_str().len() > MAX_SOCKET_PATH {
            bail!(
                "socket path {} is longer than {MAX_SOCKET_PATH} bytes; use a shorter tablet root_dir",
                sock.display()
            );
        }
        Ok(())
    }
}

/// One mariadbd child process and its directory.
pub struct Mysqld {
    cfg: MysqldConfig,
    child: Option<Child>,
}

impl Mysqld {
    pub fn new(cfg: MysqldConfig) -> Self {
        Self { cfg, child: None }
    }

    pub fn config(&self) -> &MysqldConfig {
        &self.cfg
    }

    pub fn port(&self) -> u16 {
        self.cfg.port
    }

    pub fn socket_path(&self) -> PathBuf {
        self.cfg.socket_path()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(|c| c.id())
    }

    /// Whether the child we started is still alive.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// The exit status of a child that died, reaping it; None while it runs
    /// or when none was started.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// Creates and fills the datadir when it is empty, then starts mysqld
    /// and runs the first-boot SQL with binary logging off. An initialised
    /// datadir is left alone. mysqld is left running when this returns Ok.
    pub async fn init_if_needed(&mut self) -> anyhow::Result<()> {
        self.cfg.validate()?;
        let data = self.cfg.data_dir();
        std::fs::create_dir_all(&self.cfg.root_dir)
            .with_context(|| format!("creating {}", self.cfg.root_dir.display()))?;
        if dir_is_empty(&data)? {
            self.install_db().await?;
        }
        if self.cfg.init_marker_path().exists() {
            return Ok(());
        }
        let sql = self.render_init_sql()?;
        self.start().await?;
        self.run_init_sql(&sql).await?;
        std::fs::write(self.cfg.init_marker_path(), b"ok\n").context("writing the init marker")?;
        tracing::info!(root = %self.cfg.root_dir.display(), "mysqld initialised");
        Ok(())
    }

    async fn install_db(&self) -> anyhow::Result<()> {
        let data = self.cfg.data_dir();
        std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
        let tmp = self.cfg.tmp_dir();
        std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut cmd = Command::new(find_binary("mariadb-install-db")?);
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .env("TMPDIR", &tmp)
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        if running_as_root() {
            cmd.arg("--user=root");
        }
        tracing::info!(datadir = %data.display(), "running mariadb-install-db");
        let out = cmd.output().await.context("running mariadb-install-db")?;
        if !out.status.success() {
            // The cause is in the bootstrap server's lines; the rest is a
            // long generic advice text.
            let text = format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let cause: Vec<&str> = text
                .lines()
                .filter(|l| {
                    let l = l.to_ascii_lowercase();
                    l.contains("error") || l.contains("failed") || l.contains("warning")
                })
                .take(20)
                .collect();
            bail!(
                "mariadb-install-db into {} failed ({}): {}",
                data.display(),
                out.status,
                cause.join("\n")
            );
        }
        Ok(())
    }

    fn render_init_sql(&self) -> anyhow::Result<String> {
        let template = match &self.cfg.init_sql {
            Some(p) => std::fs::read_to_string(p)
                .with_context(|| format!("reading init SQL {}", p.display()))?,
            None => DEFAULT_INIT_SQL.to_string(),
        };
        let c = &self.cfg.credentials;
        Ok(template
            .replace("{{DBA_USER}}", &escape_string(&c.dba_user))
            .replace("{{DBA_PASSWORD}}", &escape_string(&c.dba_password))
            .replace("{{REPL_USER}}", &escape_string(&c.repl_user))
            .replace("{{REPL_PASSWORD}}", &escape_string(&c.repl_password))
            .replace("{{APP_USER}}", &escape_string(&c.app_user))
            .replace("{{APP_PASSWORD}}", &escape_string(&c.app_password))
            .replace("{{DATABASE}}", &escape_ident(&self.cfg.database)))
    }

    async fn run_init_sql(&self, sql: &str) -> anyhow::Result<()> {
        // Before the init SQL there is only root, passwordless over the socket.
        let opts = mysql_async::OptsBuilder::default()
            .socket(Some(self.socket_path().to_string_lossy().into_owned()))
            .user(Some("root"))
            .pass(Some(""));
        let mut conn = mysql_async::Conn::new(opts)
            .await
            .context("connecting as root over the unix socket to run the init SQL")?;
        conn.query_drop("SET SESSION sql_log_bin=0")
            .await
            .context("disabling the binlog for the init SQL")?;
        conn.query_drop(sql).await.context("running the init SQL")?;
        let _ = conn.disconnect().await;
        Ok(())
    }

    /// Writes `my.cnf`. mysqld boots read-only and without replication
    /// threads: the agent decides the role once it is up.
    pub fn write_config(&self) -> anyhow::Result<()> {
        self.cfg.validate()?;
        let c = &self.cfg;
        let mut cnf = String::new();
        cnf.push_str("# Written by the tessera tablet agent; rewritten on every start.\n");
        cnf.push_str("[mysqld]\n");
        if running_as_root() {
            cnf.push_str("user = root\n");
        }
        let lines: Vec<(&str, String)> = vec![
            ("datadir", c.data_dir().display().to_string()),
            ("socket", c.socket_path().display().to_string()),
            ("pid-file", c.pid_path().display().to_string()),
            ("log-error", c.error_log_path().display().to_string()),
            ("tmpdir", c.tmp_dir().display().to_string()),
            ("port", c.port.to_string()),
            ("bind-address", c.bind_address.clone()),
            ("server_id", c.server_id.to_string()),
            // Fixed names so the binlog survives a hostname change.
            ("log-bin", "tessera-bin".into()),
            ("relay-log", "tessera-relay-bin".into()),
            ("binlog_format", "ROW".into()),
            ("gtid_strict_mode", "1".into()),
            ("log_slave_updates", "1".into()),
            ("read_only", "1".into()),
            ("skip-slave-start", "1".into()),
            // A replica notices a silently dead source this fast (heartbeats
            // come every 2 s, see replication.rs); a --mysqld-cnf fragment
            // may lower it.
            ("slave_net_timeout", "10".into()),
            // Semi-sync boots off on every role: a primary waiting for acks
            // with no replica attached blocks every write, so the agent turns
            // it on at runtime. Once on, a commit is acknowledged only after
            // a replica has it (AFTER_SYNC), and it never falls back to
            // asynchronous replication (the timeout is a day).
            ("rpl_semi_sync_master_enabled", "0".into()),
            ("rpl_semi_sync_slave_enabled", "0".into()),
            ("rpl_semi_sync_master_wait_point", "AFTER_SYNC".into()),
            ("rpl_semi_sync_master_timeout", "86400000".into()),
            // A semi-sync replica's IO thread, when stopped, first dials its
            // source to kill its own dump session; STOP SLAVE waits for that.
            // With the source cut off the network the dial can only time
            // out, and the default 5 s of it would be 5 s of an emergency
            // reparent. The IO thread has already stopped receiving by then.
            ("rpl_semi_sync_slave_kill_conn_timeout", "1".into()),
            ("innodb_buffer_pool_size", format!("{}M", c.buffer_pool_mb)),
            ("max_allowed_packet", "64M".into()),
            ("skip-name-resolve", "1".into()),
            // Failure detectors read the greeting and hang up, which mysqld
            // counts as a failed connection from that host; the default
            // limit (100) would soon lock the probing host out entirely.
            ("max_connect_errors", "4294967295".into()),
            ("log_bin_trust_function_creators", "1".into()),
            ("character-set-server", "utf8mb4".into()),
            ("collation-server", "utf8mb4_general_ci".into()),
        ];
        for (k, v) in lines {
            cnf.push_str(&format!("{k} = {v}\n"));
        }
        if let Some(extra) = &c.extra_cnf {
            let text = std::fs::read_to_string(extra)
                .with_context(|| format!("reading extra my.cnf {}", extra.display()))?;
            cnf.push_str(&format!("\n# From {}\n", extra.display()));
            // The fragment may or may not open its own section.
            if !text.trim_start().starts_with('[') {
                cnf.push_str("[mysqld]\n");
            }
            cnf.push_str(&text);
            cnf.push('\n');
        }
        std::fs::write(c.cnf_path(), cnf)
            .with_context(|| format!("writing {}", c.cnf_path().display()))?;
        Ok(())
    }

    /// Writes my.cnf, spawns mariadbd and waits until it answers. A no-op
    /// when our child already runs.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        if self.is_running() {
            return Ok(());
        }
        self.child = None;
        self.write_config()?;
        let tmp = self.cfg.tmp_dir();
        std::fs::create_dir_all(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        self.stop_orphan().await;
        let log_offset = std::fs::metadata(self.cfg.error_log_path())
            .map(|m| m.len())
            .unwrap_or(0);
        let child = Command::new(find_binary("mariadbd")?)
            .arg(format!("--defaults-file={}", self.cfg.cnf_path().display()))
            .env("TMPDIR", &tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("spawning mariadbd")?;
        tracing::info!(pid = child.id(), port = self.cfg.port, "mariadbd spawned");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.exit_status() {
                bail!(
                    "mariadbd exited during start-up ({status}); error.log:\n{}",
                    self.error_log_tail(log_offset)
                );
            }
            if self.answers().await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = self.stop().await;
                bail!(
                    "mariadbd on port {} did not answer within {}s; error.log:\n{}",
                    self.cfg.port,
                    START_TIMEOUT.as_secs(),
                    self.error_log_tail(log_offset)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Whether our mysqld accepts a connection. Asked over the unix socket,
    /// which only our server creates, so another server squatting on the TCP
    /// port cannot pass for ours. A refused login counts: the server is up,
    /// which is all this asks (before the init SQL there is no dba user).
    async fn answers(&self) -> bool {
        let c = &self.cfg.credentials;
        let opts = mysql_async::OptsBuilder::default()
            .socket(Some(self.socket_path().to_string_lossy().into_owned()))
            .user(Some(c.dba_user.clone()))
            .pass(Some(c.dba_password.clone()));
        let attempt =
            tokio::time::timeout(Duration::from_secs(5), mysql_async::Conn::new(opts)).await;
        match attempt {
            Ok(Ok(conn)) => {
                let _ = conn.disconnect().await;
                true
            }
            Ok(Err(mysql_async::Error::Server(_))) => true,
            _ => false,
        }
    }

    /// A mariadbd left behind by an agent that died without stopping it holds
    /// the datadir's locks; stop it so ours can start. Only a process whose
    /// command line names this tablet's my.cnf is touched.
    async fn stop_orphan(&self) {
        let Ok(text) = std::fs::read_to_string(self.cfg.pid_path()) else {
            return;
        };
        let Ok(pid) = text.trim().parse::<i32>() else {
            return;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            return;
        };
        let cnf = self.cfg.cnf_path().display().to_string();
        if !String::from_utf8_lossy(&cmdline).contains(&cnf) {
            return;
        }
        tracing::warn!(pid, "stopping a mariadbd left running by an earlier agent");
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
        let mut deadline = Instant::now() + STOP_TIMEOUT;
        let mut killed = false;
        while process_alive(pid) {
            if Instant::now() >= deadline {
                if killed {
                    tracing::error!(pid, "an earlier agent's mariadbd survives SIGKILL");
                    return;
                }
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                killed = true;
                deadline = Instant::now() + Duration::from_secs(10);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, wait up to 30s, then SIGKILL. A no-op when not running.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            return Ok(());
        };
        if let Some(pid) = child.id() {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
            Ok(status) => {
                let status = status.context("waiting for mariadbd to exit")?;
                tracing::info!(%status, port = self.cfg.port, "mariadbd stopped");
            }
            Err(_) => {
                tracing::warn!(port = self.cfg.port, "mariadbd ignored SIGTERM; killing it");
                child.kill().await.context("killing mariadbd")?;
            }
        }
        Ok(())
    }

    async fn dba_conn_raw(&self) -> Result<mysql_async::Conn, mysql_async::Error> {
        mysql_async::Conn::new(self.cfg.dba_opts(None)).await
    }

    /// A connection as the dba user over TCP (see `MysqldConfig::local_host`).
    pub async fn dba_conn(&self) -> anyhow::Result<mysql_async::Conn> {
        self.dba_conn_raw()
            .await
            .with_context(|| format!("connecting as dba to mysqld on port {}", self.cfg.port))
    }

    /// A pool of dba connections over TCP (see `MysqldConfig::local_host`).
    pub fn dba_pool(&self) -> mysql_async::Pool {
        mysql_async::Pool::new(self.cfg.dba_opts(None))
    }

    /// The last lines error.log gained since `offset`, or its last lines when
    /// it shrank.
    pub fn error_log_tail(&self, offset: u64) -> String {
        let path = self.cfg.error_log_path();
        let Ok(mut f) = std::fs::File::open(&path) else {
            return format!("({} is missing)", path.display());
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let start = if offset <= len { offset } else { 0 };
        let start = start.max(len.saturating_sub(64 * 1024));
        let mut buf = Vec::new();
        if f.seek(SeekFrom::Start(start)).is_err() || f.read_to_end(&mut buf).is_err() {
            return format!("(cannot read {})", path.display());
        }
        tail_lines(&String::from_utf8_lossy(&buf), 20)
    }
}

fn dir_is_empty(dir: &Path) -> anyhow::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(anyhow::Error::new(e).context(format!("reading {}", dir.display()))),
    }
}

/// Whether `pid` is a live process: a zombie (dead, not yet reaped by its
/// parent) holds no locks and counts as gone.
fn process_alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

fn running_as_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn tail_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Finds a MariaDB program on PATH or in the usual sbin directories (root's
/// PATH on some systems lacks /usr/sbin, where Debian puts mariadbd).
fn find_binary(name: &str) -> anyhow::Result<PathBuf> {
    let path_dirs = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    let fallback = ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"]
        .into_iter()
        .map(PathBuf::from);
    path_dirs
        .into_iter()
        .chain(fallback)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .with_context(|| {
            format!("{name} not found on PATH or in /usr/sbin; is mariadb-server installed?")
        })
}

/// Escapes a value for use inside a single-quoted SQL string.
pub fn escape_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a name for use inside backticks.
pub fn escape_ident(s: &str) -> String {
    s.replace('`', "``")
}

/// A backtick-quoted identifier.
pub fn quote_ident(s: &str) -> String {
    format!("`{}`", escape_ident(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(escape_string(r"a'b\c"), r"a''b\\c");
        assert_eq!(quote_ident("we`ird"), "`we``ird`");
    }

    #[test]
    fn the_agent_reaches_mysqld_where_it_listens() {
        let mut c = MysqldConfig::new("/tmp/x", 3306, 1, "db");
        assert_eq!(c.local_host(), "127.0.0.1");
        c.bind_address = "10.1.2.3".into();
        assert_eq!(c.local_host(), "10.1.2.3");
        c.bind_address = "0.0.0.0".into();
        assert_eq!(c.local_host(), "127.0.0.1");
    }

    #[test]
    fn config_validation_is_clear() {
        let mut cfg = MysqldConfig::new("/tmp/x", 3307, 1, "ks");
        assert!(cfg.validate().is_ok());
        cfg.server_id = 0;
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("server_id")
        );
        cfg.server_id = 1;
        cfg.root_dir = PathBuf::from(format!("/tmp/{}", "d".repeat(120)));
        assert!(
            cfg.validate()
                .unwrap_err()
                .to_string()
                .contains("socket path")
        );
    }

    #[test]
    fn default_init_sql_fills_every_placeholder() {
        let m = Mysqld::new(MysqldConfig::new("/tmp/x", 3307, 1, "commerce"));
        let sql = m.render_init_sql().unwrap();
        assert!(!sql.contains("{{"), "{sql}");
        assert!(sql.contains("CREATE DATABASE IF NOT EXISTS `commerce`"));
        assert!(sql.contains("'tessera_app'@'%'"));
    }
}
