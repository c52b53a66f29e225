//! Mysqld lifecycle against a real mariadbd: first-boot initialisation,
//! restarts keeping data, read-only fencing of the app user, and init SQL
//! staying out of the binlog.

mod common;

use std::time::Duration;

use mysql_async::prelude::Queryable;
use tessera_tablet::mysqld::{Mysqld, MysqldConfig};

fn app_opts(port: u16, db: &str) -> mysql_async::OptsBuilder {
    mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(port)
        .user(Some("tessera_app"))
        .pass(Some("tessera_app_pw"))
        .db_name(Some(db))
        .prefer_socket(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_start_stop_restart_keeps_data_and_fences_app_user() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let cfg = MysqldConfig::new(dir.path().join("t1"), port, 101, "commerce");
    let mut mysqld = Mysqld::new(cfg.clone());

    mysqld.init_if_needed().await.expect("init");
    assert!(mysqld.is_running());
    assert!(mysqld.pid().is_some());
    assert!(cfg.data_dir().join("mysql").is_dir());

    let mut dba = mysqld.dba_conn().await.expect("dba conn");
    // Users and database were created without writing the binlog.
    let binlog_pos: String = dba
        .query_first("SELECT @@gtid_binlog_pos")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(binlog_pos, "", "init SQL must not be binlogged");
    let ro: i64 = dba
        .query_first("SELECT @@read_only")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ro, 1, "mysqld boots read-only");
    let server_id: i64 = dba
        .query_first("SELECT @@server_id")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(server_id, 101);
    let strict: i64 = dba
        .query_first("SELECT @@gtid_strict_mode")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(strict, 1);
    let dbs: Vec<String> = dba.query("SHOW DATABASES LIKE 'commerce'").await.unwrap();
    assert_eq!(dbs, vec!["commerce".to_string()]);

    // The app user is fenced by read_only=1 (ER_OPTION_PREVENTS_STATEMENT).
    dba.query_drop("CREATE TABLE commerce.t (id INT PRIMARY KEY, v VARCHAR(20))")
        .await
        .unwrap();
    let mut app = mysql_async::Conn::new(app_opts(port, "commerce"))
        .await
        .unwrap();
    let err = app
        .query_drop("INSERT INTO t VALUES (1, 'x')")
        .await
        .expect_err("read_only must refuse the app user");
    match err {
        mysql_async::Error::Server(e) => assert_eq!(e.code, 1290, "{e:?}"),
        other => panic!("unexpected error {other:?}"),
    }
    dba.query_drop("SET GLOBAL read_only = 0").await.unwrap();
    app.query_drop("INSERT INTO t VALUES (1, 'kept')")
        .await
        .unwrap();
    drop(app);
    drop(dba);

    // Restart: data survives, init is not re-run, read_only comes back.
    mysqld.stop().await.expect("stop");
    assert!(!mysqld.is_running());
    assert!(mysqld.pid().is_none());
    mysqld
        .init_if_needed()
        .await
        .expect("second init is a no-op");
    assert!(!mysqld.is_running(), "an initialised datadir is left alone");
    mysqld.start().await.expect("restart");
    let mut dba = mysqld.dba_conn().await.unwrap();
    let v: String = dba
        .query_first("SELECT v FROM commerce.t WHERE id = 1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(v, "kept");
    let ro: i64 = dba
        .query_first("SELECT @@read_only")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ro, 1);
    drop(dba);

    // A fresh Mysqld over the same dir (as after an agent restart) also works.
    mysqld.stop().await.unwrap();
    let mut again = Mysqld::new(cfg.clone());
    again.init_if_needed().await.unwrap();
    again.start().await.unwrap();
    let mut dba = again.dba_conn().await.unwrap();
    let n: i64 = dba
        .query_first("SELECT COUNT(*) FROM commerce.t")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 1);
    drop(dba);
    again.stop().await.unwrap();
    assert!(!again.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_failure_reports_error_log() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let extra = dir.path().join("bad.cnf");
    std::fs::write(&extra, "[mysqld]\nno-such-option-at-all = 1\n").unwrap();
    let mut cfg = MysqldConfig::new(dir.path().join("t2"), common::free_port(), 7, "ks");
    let mut mysqld = Mysqld::new(cfg.clone());
    mysqld.init_if_needed().await.unwrap();
    mysqld.stop().await.unwrap();

    cfg.extra_cnf = Some(extra);
    let mut broken = Mysqld::new(cfg);
    let err = tokio::time::timeout(Duration::from_secs(90), broken.start())
        .await
        .expect("start gives up in time")
        .expect_err("an unknown option must stop mariadbd");
    let msg = format!("{err:#}");
    assert!(msg.contains("no-such-option-at-all"), "{msg}");
    assert!(!broken.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_init_sql_replaces_template() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let init = dir.path().join("init.sql");
    std::fs::write(
        &init,
        "CREATE USER '{{DBA_USER}}'@'%' IDENTIFIED BY '{{DBA_PASSWORD}}';\n\
         GRANT ALL ON *.* TO '{{DBA_USER}}'@'%';\n\
         CREATE DATABASE `{{DATABASE}}_custom`;\n",
    )
    .unwrap();
    let mut cfg = MysqldConfig::new(dir.path().join("t3"), common::free_port(), 9, "shop");
    cfg.init_sql = Some(init);
    cfg.credentials.dba_password = "it's \\ tricky".into();
    let mut mysqld = Mysqld::new(cfg);
    mysqld.init_if_needed().await.unwrap();
    let mut dba = mysqld
        .dba_conn()
        .await
        .expect("dba with an escaped password");
    let dbs: Vec<String> = dba.query("SHOW DATABASES LIKE 'shop%'").await.unwrap();
    assert_eq!(dbs, vec!["shop_custom".to_string()]);
    let app: Option<String> = dba
        .query_first("SELECT user FROM mysql.user WHERE user = 'tessera_app'")
        .await
        .unwrap();
    assert_eq!(app, None, "the custom file replaced the default template");
    drop(dba);
    mysqld.stop().await.unwrap();
}

#[tokio::test]
async fn bad_config_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut mysqld = Mysqld::new(MysqldConfig::new(dir.path(), 0, 1, "ks"));
    let err = mysqld.init_if_needed().await.unwrap_err();
    assert!(err.to_string().contains("port"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_from_a_dead_agent_is_replaced_and_port_squatter_is_detected() {
    common::init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let cfg = MysqldConfig::new(dir.path().join("t4"), common::free_port(), 11, "ks");
    let mut first = Mysqld::new(cfg.clone());
    first.init_if_needed().await.unwrap();
    first.stop().await.unwrap();

    // A mariadbd on this datadir that no Mysqld owns, as an agent killed
    // with -9 leaves behind.
    let mut orphan = std::process::Command::new("/usr/sbin/mariadbd")
        .arg(format!("--defaults-file={}", cfg.cnf_path().display()))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let orphan_pid = orphan.id();
    common::wait_for("orphan up", Duration::from_secs(60), || async {
        std::fs::read_to_string(cfg.pid_path())
            .ok()
            .filter(|p| p.trim() == orphan_pid.to_string())
            .map(|_| ())
    })
    .await;

    let mut second = Mysqld::new(cfg.clone());
    second.start().await.expect("start replaces the orphan");
    assert_ne!(second.pid(), Some(orphan_pid));
    assert!(
        orphan.try_wait().unwrap().is_some(),
        "the orphan was stopped before ours started"
    );
    let mut dba = second.dba_conn().await.unwrap();
    let pid_file: String = dba.query_first("SELECT @@pid_file").await.unwrap().unwrap();
    assert_eq!(pid_file, cfg.pid_path().display().to_string());
    drop(dba);

    // Another server on our TCP port must not pass for ours.
    let mut squatter_cfg = cfg.clone();
    squatter_cfg.root_dir = dir.path().join("t5");
    squatter_cfg.server_id = 12;
    squatter_cfg.port = common::free_port();
    let mut other = Mysqld::new(squatter_cfg);
    other.init_if_needed().await.unwrap();
    let mut clash = cfg.clone();
    clash.root_dir = dir.path().join("t6");
    clash.port = second.port();
    let mut clashing = Mysqld::new(clash);
    let err = clashing
        .init_if_needed()
        .await
        .expect_err("the port is taken by t4's server");
    assert!(format!("{err:#}").contains("exited"), "{err:#}");
    assert!(!clashing.is_running());
    second.stop().await.unwrap();
    other.stop().await.unwrap();
}
