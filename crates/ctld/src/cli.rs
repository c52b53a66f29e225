//! `tessera ctl`: the command-line client of ctld's HTTP API. Commands are
//! kebab-case; Vitess's command names (and the flags people pass to them)
//! are accepted too, so runbooks written for vtctldclient keep working.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tessera_tablet::api::SchemaDefinition;
use tessera_topo::{Tablet, TabletAlias, TabletType};

use crate::events::Event;
use crate::reparent::ReparentOutcome;

use crate::listing::tablet_line;
use crate::ops::{ShardResult, TabletInfo};

#[derive(Debug, Clone, PartialEq, Subcommand)]
pub enum CtlCommand {
    /// Print every tablet, one line each: alias keyspace shard type agent mysql tags term-start.
    #[command(visible_aliases = ["ListAllTablets", "GetTablets"])]
    ListTablets {
        /// Only tablets of this keyspace.
        #[arg(long)]
        keyspace: Option<String>,
        /// Only tablets of this shard.
        #[arg(long)]
        shard: Option<String>,
        /// Only tablets of this type (primary, replica, rdonly, spare, drained).
        #[arg(long = "tablet-type", alias = "tablet_type", value_parser = parse_tablet_type)]
        tablet_type: Option<TabletType>,
        /// Only tablets of these cells (repeatable; also as positional arguments).
        #[arg(long = "cell")]
        cell_flags: Vec<String>,
        #[arg(value_name = "CELL")]
        cells: Vec<String>,
    },
    /// Make ALIAS the primary of KEYSPACE/SHARD and point the shard's other tablets at it.
    #[command(visible_alias = "InitShardPrimary")]
    InitShardPrimary {
        /// KEYSPACE/SHARD, such as commerce/0 or customer/-80.
        #[arg(value_name = "KEYSPACE/SHARD")]
        keyspace_shard: String,
        /// The tablet to promote, such as zone1-100 or zone1-0000000100.
        #[arg(value_name = "ALIAS")]
        alias: String,
        /// Accepted for Vitess compatibility; the change is always forced.
        #[arg(long)]
        force: bool,
        /// Accepted for Vitess compatibility; ignored.
        #[arg(
            long = "wait-replicas-timeout",
            alias = "wait_replicas_timeout",
            hide = true
        )]
        wait_replicas_timeout: Option<String>,
    },
    /// Run SQL (usually DDL) on the primary of every shard of KEYSPACE.
    #[command(visible_alias = "ApplySchema")]
    ApplySchema {
        /// SQL to run; `;` separates statements; repeatable.
        #[arg(
            long,
            required_unless_present = "sql_file",
            conflicts_with = "sql_file"
        )]
        sql: Vec<String>,
        /// File holding the SQL to run.
        #[arg(long = "sql-file", alias = "sql_file")]
        sql_file: Option<PathBuf>,
        /// Only `direct` is supported; accepted for Vitess compatibility.
        #[arg(long = "ddl-strategy", alias = "ddl_strategy")]
        ddl_strategy: Option<String>,
        #[arg(value_name = "KEYSPACE")]
        keyspace: String,
    },
    /// Print the tables of a tablet's database and their CREATE statements, as JSON.
    #[command(visible_alias = "GetSchema")]
    GetSchema {
        /// Only these tables (repeatable or comma-separated).
        #[arg(long, value_delimiter = ',')]
        tables: Vec<String>,
        /// Print only the table names, one a line.
        #[arg(long = "table-names-only", alias = "table_names_only")]
        table_names_only: bool,
        #[arg(value_name = "ALIAS")]
        alias: String,
    },
    /// Check and store KEYSPACE's VSchema (Vitess JSON format); prints what was stored.
    #[command(visible_alias = "ApplyVSchema")]
    ApplyVschema {
        /// The VSchema JSON text.
        #[arg(
            long,
            required_unless_present = "vschema_file",
            conflicts_with = "vschema_file"
        )]
        vschema: Option<String>,
        /// File holding the VSchema JSON.
        #[arg(long = "vschema-file", alias = "vschema_file")]
        vschema_file: Option<PathBuf>,
        #[arg(value_name = "KEYSPACE")]
        keyspace: String,
    },
    /// Check and store the cluster's routing rules (Vitess JSON:
    /// {"rules": [{"from_table": "t", "to_tables": ["ks.t"]}]}); prints what was stored.
    #[command(visible_alias = "ApplyRoutingRules")]
    ApplyRoutingRules {
        /// The routing rules JSON text.
        #[arg(
            long,
            required_unless_present = "rules_file",
            conflicts_with = "rules_file"
        )]
        rules: Option<String>,
        /// File holding the routing rules JSON.
        #[arg(long = "rules-file", alias = "rules_file")]
        rules_file: Option<PathBuf>,
    },
    /// Print the cluster's routing rules.
    #[command(visible_alias = "GetRoutingRules")]
    GetRoutingRules,
    /// Print KEYSPACE's VSchema.
    #[command(visible_alias = "GetVSchema")]
    GetVschema {
        #[arg(value_name = "KEYSPACE")]
        keyspace: String,
    },
    /// Print ctld's status: cell, keyspaces, tablet count, uptime.
    Status,
    /// Move the primary role of KEYSPACE/SHARD to a caught-up replica without losing writes.
    #[command(visible_alias = "PlannedReparentShard")]
    PlannedReparentShard {
        #[arg(value_name = "KEYSPACE/SHARD")]
        keyspace_shard: String,
        /// The replica to promote; by default the most caught-up one.
        #[arg(long = "new-primary", alias = "new_primary")]
        new_primary: Option<String>,
        /// Reparent only if this tablet is the primary, and never to it.
        #[arg(long = "avoid-primary", alias = "avoid_primary")]
        avoid_primary: Option<String>,
        /// How long the candidate may take to catch up, such as 30s or 2m.
        #[arg(long = "wait-replicas-timeout", alias = "wait_replicas_timeout", value_parser = parse_duration)]
        wait_replicas_timeout: Option<Duration>,
    },
    /// Replace a dead primary of KEYSPACE/SHARD by the replica that received the most.
    #[command(visible_alias = "EmergencyReparentShard")]
    EmergencyReparentShard {
        #[arg(value_name = "KEYSPACE/SHARD")]
        keyspace_shard: String,
        /// The replica to promote if it received everything the others did.
        #[arg(long = "new-primary", alias = "new_primary")]
        new_primary: Option<String>,
        /// How long the candidate may take to apply its relay log, such as 30s.
        #[arg(long = "wait-replicas-timeout", alias = "wait_replicas_timeout", value_parser = parse_duration)]
        wait_replicas_timeout: Option<Duration>,
        /// Act only if this tablet is still the shard's primary (with --expected-term).
        #[arg(long = "expected-primary", requires = "expected_term")]
        expected_primary: Option<String>,
        /// Act only if the shard's primary term is still this (with --expected-primary).
        #[arg(long = "expected-term", requires = "expected_primary")]
        expected_term: Option<u64>,
    },
    /// Record that ALIAS was made primary outside ctld; repoint the shard at it.
    #[command(visible_alias = "TabletExternallyReparented")]
    TabletExternallyReparented {
        #[arg(value_name = "ALIAS")]
        alias: String,
    },
    /// Change a non-primary tablet's type (replica, rdonly, spare, drained).
    #[command(visible_alias = "ChangeTabletType")]
    ChangeTabletType {
        #[arg(value_name = "ALIAS")]
        alias: String,
        #[arg(value_name = "TYPE", value_parser = parse_tablet_type)]
        tablet_type: TabletType,
        /// Accepted for Vitess compatibility; the change is always made.
        #[arg(long = "dry-run", alias = "dry_run", hide = true)]
        dry_run: bool,
    },
    /// Take ALIAS out of serving (reparenting away first if it is primary).
    Drain {
        #[arg(value_name = "ALIAS")]
        alias: String,
    },
    /// Put a drained ALIAS back into serving as a replica.
    Undrain {
        #[arg(value_name = "ALIAS")]
        alias: String,
    },
    /// Print the event log, oldest first: time shard action detail.
    Events,
}

/// `30s`, `2m`, `1500ms` or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, unit) = match t.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = number
        .parse()
        .map_err(|_| format!("bad duration {text:?}: expected such as 30s, 2m or 1500ms"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("bad duration {text:?}: unit must be ms, s, m or h")),
    };
    if !secs.is_finite() || secs <= 0.0 || secs > 86_400.0 {
        return Err(format!(
            "bad duration {text:?}: must be positive and at most a day"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_tablet_type(s: &str) -> Result<TabletType, String> {
    s.parse()
}

/// Runs one command against the ctld at `server` (`host:port` or an
/// `http://` URL) and prints its output on stdout.
pub async fn run_ctl(server: &str, cmd: CtlCommand) -> anyhow::Result<()> {
    let out = run_ctl_output(server, cmd).await?;
    print!("{out}");
    Ok(())
}

/// Like `run_ctl`, but returns what would be printed.
pub async fn run_ctl_output(server: &str, cmd: CtlCommand) -> anyhow::Result<String> {
    let client = CtlClient::new(server)?;
    match cmd {
        CtlCommand::ListTablets {
            keyspace,
            shard,
            tablet_type,
            cell_flags,
            cells,
        } => {
            let cells: Vec<String> = cell_flags.into_iter().chain(cells).collect();
            let tablets: Vec<TabletInfo> = client.get_json("/api/tablets").await?;
            let mut out = String::new();
            for info in tablets.iter().filter(|i| {
                let t = &i.tablet;
                keyspace.as_ref().is_none_or(|k| &t.keyspace == k)
                    && shard.as_ref().is_none_or(|s| &t.shard == s)
                    && tablet_type.is_none_or(|ty| t.tablet_type == ty)
                    && (cells.is_empty() || cells.contains(&t.alias.cell))
            }) {
                out.push_str(&tablet_line(&info.tablet, info.primary_term_start_ms));
                out.push('\n');
            }
            Ok(out)
        }
        CtlCommand::InitShardPrimary {
            keyspace_shard,
            alias,
            ..
        } => {
            let (keyspace, shard) = parse_keyspace_shard(&keyspace_shard)?;
            let alias = parse_alias(&alias)?;
            let shard_record: Value = client
                .send_json(
                    reqwest::Method::POST,
                    &format!("/api/shards/{keyspace}/{shard}/init-primary"),
                    json!({ "alias": alias.to_string() }),
                )
                .await?;
            let term = shard_record["primary_term"].as_u64().unwrap_or_default();
            Ok(format!(
                "{alias} is primary of {keyspace}/{shard} (term {term})\n"
            ))
        }
        CtlCommand::ApplySchema {
            sql,
            sql_file,
            ddl_strategy,
            keyspace,
        } => {
            if let Some(strategy) = ddl_strategy.filter(|s| !s.eq_ignore_ascii_case("direct")) {
                bail!("ddl strategy {strategy:?} is not supported; only \"direct\" is");
            }
            check_name("keyspace", &keyspace)?;
            let sql = match sql_file {
                Some(path) => read_file(&path, "SQL")?,
                None => sql.join(";\n"),
            };
            let results: Vec<ShardResult> = client
                .send_json(
                    reqwest::Method::POST,
                    &format!("/api/keyspaces/{keyspace}/schema"),
                    json!({ "sql": sql }),
                )
                .await?;
            // Vitess's ApplySchema answer, so scripts reading it keep working.
            let by_shard: BTreeMap<String, u64> = results
                .into_iter()
                .map(|r| (r.shard, r.rows_affected))
                .collect();
            pretty(&json!({ "uuid_list": [], "rows_affected_by_shard": by_shard }))
        }
        CtlCommand::GetSchema {
            tables,
            table_names_only,
            alias,
        } => {
            let alias = parse_alias(&alias)?;
            let mut schema: SchemaDefinition = client
                .get_json(&format!("/api/tablets/{alias}/schema"))
                .await?;
            if !tables.is_empty() {
                schema.tables.retain(|t| tables.contains(&t.name));
            }
            if table_names_only {
                Ok(schema
                    .tables
                    .iter()
                    .map(|t| format!("{}\n", t.name))
                    .collect())
            } else {
                pretty(&schema)
            }
        }
        CtlCommand::ApplyVschema {
            vschema,
            vschema_file,
            keyspace,
        } => {
            check_name("keyspace", &keyspace)?;
            let text = match vschema_file {
                Some(path) => read_file(&path, "vschema")?,
                None => vschema.unwrap_or_default(),
            };
            let stored: Value = client
                .send_text(
                    reqwest::Method::PUT,
                    &format!("/api/keyspaces/{keyspace}/vschema"),
                    text,
                )
                .await?;
            pretty(&stored)
        }
        CtlCommand::ApplyRoutingRules { rules, rules_file } => {
            let text = match rules_file {
                Some(path) => read_file(&path, "routing rules")?,
                None => rules.unwrap_or_default(),
            };
            let stored: Value = client
                .send_text(reqwest::Method::PUT, "/api/routing-rules", text)
                .await?;
            pretty(&stored)
        }
        CtlCommand::GetRoutingRules => {
            let rules: Value = client.get_json("/api/routing-rules").await?;
            pretty(&rules)
        }
        CtlCommand::GetVschema { keyspace } => {
            check_name("keyspace", &keyspace)?;
            let vschema: Value = client
                .get_json(&format!("/api/keyspaces/{keyspace}/vschema"))
                .await?;
            pretty(&vschema)
        }
        CtlCommand::Status => {
            let status: Value = client.get_json("/api/status").await?;
            pretty(&status)
        }
        CtlCommand::PlannedReparentShard {
            keyspace_shard,
            new_primary,
            avoid_primary,
            wait_replicas_timeout,
        } => {
            let (keyspace, shard) = parse_keyspace_shard(&keyspace_shard)?;
            let body = json!({
                "new_primary": new_primary.as_deref().map(parse_alias).transpose()?.map(|a| a.to_string()),
                "avoid_primary": avoid_primary.as_deref().map(parse_alias).transpose()?.map(|a| a.to_string()),
                "wait_timeout_ms": wait_replicas_timeout.map(|d| d.as_millis() as u64),
            });
            let outcome: ReparentOutcome = client
                .send_json(
                    reqwest::Method::POST,
                    &format!("/api/shards/{keyspace}/{shard}/planned-reparent"),
                    body,
                )
                .await?;
            Ok(outcome_text(&outcome))
        }
        CtlCommand::EmergencyReparentShard {
            keyspace_shard,
            new_primary,
            wait_replicas_timeout,
            expected_primary,
            expected_term,
        } => {
            let (keyspace, shard) = parse_keyspace_shard(&keyspace_shard)?;
            let body = json!({
                "new_primary": new_primary.as_deref().map(parse_alias).transpose()?.map(|a| a.to_string()),
                "wait_timeout_ms": wait_replicas_timeout.map(|d| d.as_millis() as u64),
                "expected_primary": expected_primary.as_deref().map(parse_alias).transpose()?.map(|a| a.to_string()),
                "expected_term": expected_term,
            });
            let outcome: ReparentOutcome = client
                .send_json(
                    reqwest::Method::POST,
                    &format!("/api/shards/{keyspace}/{shard}/emergency-reparent"),
                    body,
                )
                .await?;
            Ok(outcome_text(&outcome))
        }
        CtlCommand::TabletExternallyReparented { alias } => {
            let alias = parse_alias(&alias)?;
            let outcome: ReparentOutcome = client
                .send_json(
                    reqwest::Method::POST,
                    &format!("/api/tablets/{alias}/externally-reparented"),
                    json!({}),
                )
                .await?;
            Ok(outcome_text(&outcome))
        }
        CtlCommand::ChangeTabletType {
            alias, tablet_type, ..
        } => {
            let alias = parse_alias(&alias)?;
            let tablet: Tablet = client
                .send_json(
                    reqwest::Method::POST,
                    &format!("/api/tablets/{alias}/type"),
                    json!({ "tablet_type": tablet_type.to_string() }),
                )
                .await?;
            Ok(format!("{} is {}\n", tablet.alias, tablet.tablet_type))
        }
        CtlCommand::Drain { alias } => drain_action(&client, &alias, "drain").await,
        CtlCommand::Undrain { alias } => drain_action(&client, &alias, "undrain").await,
        CtlCommand::Events => {
            let events: Vec<Event> = client.get_json("/api/events").await?;
            Ok(events.iter().map(|e| format!("{}\n", e.line())).collect())
        }
    }
}

async fn drain_action(client: &CtlClient, alias: &str, action: &str) -> anyhow::Result<String> {
    let alias = parse_alias(alias)?;
    let tablet: Tablet = client
        .send_json(
            reqwest::Method::POST,
            &format!("/api/tablets/{alias}/{action}"),
            json!({}),
        )
        .await?;
    Ok(format!("{} is {}\n", tablet.alias, tablet.tablet_type))
}

fn outcome_text(o: &ReparentOutcome) -> String {
    let mut out = if o.changed {
        format!(
            "{} is primary of {}/{} (term {})",
            o.new_primary, o.keyspace, o.shard, o.primary_term
        )
    } else {
        format!(
            "{} stays primary of {}/{} (term {}); nothing to do",
            o.new_primary, o.keyspace, o.shard, o.primary_term
        )
    };
    if let Some(ms) = o.write_pause_ms {
        out.push_str(&format!(", writes paused {ms} ms"));
    }
    out.push('\n');
    for f in &o.repoint_failures {
        out.push_str(&format!("warning: not repointed: {f}\n"));
    }
    out
}

fn pretty<T: serde::Serialize>(value: &T) -> anyhow::Result<String> {
    Ok(format!("{}\n", serde_json::to_string_pretty(value)?))
}

fn read_file(path: &PathBuf, what: &str) -> anyhow::Result<String> {
    std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the {what} file {}", path.display()))
}

fn parse_alias(text: &str) -> anyhow::Result<TabletAlias> {
    text.parse::<TabletAlias>().map_err(anyhow::Error::msg)
}

/// `commerce/0` -> (`commerce`, `0`).
pub fn parse_keyspace_shard(text: &str) -> anyhow::Result<(String, String)> {
    let Some((keyspace, shard)) = text.split_once('/') else {
        bail!("bad shard {text:?}: expected KEYSPACE/SHARD such as commerce/0 or customer/-80");
    };
    check_name("keyspace", keyspace)?;
    check_name("shard", shard)?;
    Ok((keyspace.to_string(), shard.to_string()))
}

/// Names travel in URL paths; refuse what would change the path's meaning.
fn check_name(what: &str, name: &str) -> anyhow::Result<()> {
    if name.is_empty() {
        bail!("empty {what} name");
    }
    if name.contains(['/', '?', '#', '%']) || name.chars().any(char::is_whitespace) {
        bail!("bad {what} name {name:?}: it may not contain /, ?, #, % or spaces");
    }
    Ok(())
}

/// HTTP client of one ctld, turning transport failures into messages a
/// person at a terminal can act on.
struct CtlClient {
    server: String,
    base: String,
    http: reqwest::Client,
}

impl CtlClient {
    fn new(server: &str) -> anyhow::Result<Self> {
        let server = server.trim().trim_end_matches('/');
        if server.is_empty() {
            bail!("no ctld address given (--server HOST:PORT)");
        }
        let base = if server.starts_with("http://") || server.starts_with("https://") {
            server.to_string()
        } else {
            format!("http://{server}")
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            // A forced reparent waits up to 30 s for catch-up, a schema change longer.
            .timeout(Duration::from_secs(3600))
            .build()?;
        Ok(Self {
            server: server.to_string(),
            base,
            http,
        })
    }

    async fn get_json<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.call(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    async fn send_json<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<T> {
        self.call(
            self.http
                .request(method, format!("{}{path}", self.base))
                .json(&body),
        )
        .await
    }

    async fn send_text<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: String,
    ) -> anyhow::Result<T> {
        self.call(
            self.http
                .request(method, format!("{}{path}", self.base))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body),
        )
        .await
    }

    async fn call<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> anyhow::Result<T> {
        let resp = req.send().await.map_err(|e| self.transport_error(e))?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| self.transport_error(e))?;
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| format!("ctld answered {status}: {}", text.trim()));
            bail!("{message}");
        }
        serde_json::from_str(&text).with_context(|| {
            format!(
                "ctld at {} sent an answer this client does not understand (version mismatch?)",
                self.server
            )
        })
    }

    fn transport_error(&self, e: reqwest::Error) -> anyhow::Error {
        let root = root_cause(&e);
        if e.is_connect() {
            anyhow::anyhow!(
                "cannot reach ctld at {}: {root}; is `tessera local up` (or `tessera ctld`) running?",
                self.server
            )
        } else if e.is_timeout() {
            anyhow::anyhow!("ctld at {} did not answer in time: {root}", self.server)
        } else {
            anyhow::anyhow!("request to ctld at {} failed: {root}", self.server)
        }
    }
}

/// The innermost error's text: reqwest's own message ("error sending
/// request") says less than the OS error beneath it.
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Ctl {
        #[arg(long, default_value = "127.0.0.1:15000")]
        server: String,
        #[command(subcommand)]
        command: CtlCommand,
    }

    fn parse(args: &[&str]) -> CtlCommand {
        let mut argv = vec!["ctl"];
        argv.extend_from_slice(args);
        Ctl::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
            .command
    }

    fn parse_err(args: &[&str]) -> String {
        let mut argv = vec!["ctl"];
        argv.extend_from_slice(args);
        Ctl::try_parse_from(argv)
            .expect_err("should fail")
            .to_string()
    }

    #[test]
    fn kebab_case_and_vitess_names_parse_alike() {
        let kebab = parse(&["list-tablets"]);
        assert_eq!(parse(&["ListAllTablets"]), kebab);
        assert_eq!(parse(&["GetTablets"]), kebab);
        assert!(matches!(
            parse(&["ListAllTablets", "zone1"]),
            CtlCommand::ListTablets { cells, .. } if cells == ["zone1"]
        ));
        assert!(matches!(
            parse(&["GetTablets", "--keyspace", "commerce", "--tablet-type", "PRIMARY"]),
            CtlCommand::ListTablets { keyspace: Some(k), tablet_type: Some(TabletType::Primary), .. } if k == "commerce"
        ));

        let init = parse(&["init-shard-primary", "commerce/0", "zone1-100"]);
        assert_eq!(
            parse(&["InitShardPrimary", "--force", "commerce/0", "zone1-100"]),
            CtlCommand::InitShardPrimary {
                keyspace_shard: "commerce/0".into(),
                alias: "zone1-100".into(),
                force: true,
                wait_replicas_timeout: None,
            }
        );
        assert!(
            matches!(init, CtlCommand::InitShardPrimary { keyspace_shard, alias, force: false, .. }
            if keyspace_shard == "commerce/0" && alias == "zone1-100")
        );

        assert!(matches!(
            parse(&["ApplySchema", "--sql", "create table t (id int)", "commerce"]),
            CtlCommand::ApplySchema { sql, keyspace, sql_file: None, .. }
                if sql == ["create table t (id int)"] && keyspace == "commerce"
        ));
        assert!(matches!(
            parse(&["apply-schema", "--sql-file", "/tmp/x.sql", "commerce"]),
            CtlCommand::ApplySchema { sql_file: Some(p), .. } if p == std::path::Path::new("/tmp/x.sql")
        ));
        assert!(matches!(
            parse(&["ApplySchema", "--sql_file=/tmp/x.sql", "commerce"]),
            CtlCommand::ApplySchema {
                sql_file: Some(_),
                ..
            }
        ));
        assert!(matches!(
            parse(&["GetSchema", "zone1-0000000100"]),
            CtlCommand::GetSchema { alias, .. } if alias == "zone1-0000000100"
        ));
        assert!(matches!(
            parse(&["ApplyVSchema", "--vschema-file", "v.json", "commerce"]),
            CtlCommand::ApplyVschema {
                vschema_file: Some(_),
                vschema: None,
                ..
            }
        ));
        assert!(matches!(
            parse(&["apply-vschema", "--vschema", "{}", "commerce"]),
            CtlCommand::ApplyVschema { vschema: Some(v), .. } if v == "{}"
        ));
        assert_eq!(
            parse(&["GetVSchema", "commerce"]),
            parse(&["get-vschema", "commerce"])
        );
        assert_eq!(parse(&["status"]), CtlCommand::Status);
    }

    #[test]
    fn missing_or_conflicting_arguments_are_refused() {
        assert!(parse_err(&["apply-schema", "commerce"]).contains("--sql"));
        assert!(
            parse_err(&["apply-schema", "--sql", "x", "--sql-file", "f", "commerce"])
                .contains("cannot be used with")
        );
        assert!(parse_err(&["apply-vschema", "commerce"]).contains("--vschema"));
        assert!(parse_err(&["init-shard-primary", "commerce/0"]).contains("ALIAS"));
        assert!(
            parse_err(&["list-tablets", "--tablet-type", "boss"]).contains("unknown tablet type")
        );
        assert!(parse_err(&["no-such-command"]).contains("unrecognized subcommand"));
    }

    #[test]
    fn keyspace_shard_and_names() {
        assert_eq!(
            parse_keyspace_shard("customer/-80").unwrap(),
            ("customer".to_string(), "-80".to_string())
        );
        assert!(
            parse_keyspace_shard("commerce")
                .unwrap_err()
                .to_string()
                .contains("KEYSPACE/SHARD")
        );
        assert!(parse_keyspace_shard("/0").is_err());
        assert!(
            parse_keyspace_shard("a/b/c")
                .unwrap_err()
                .to_string()
                .contains("may not contain")
        );
    }

    #[tokio::test]
    async fn unreachable_ctld_is_named() {
        // Bind then drop a listener so the port is very likely closed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = format!("127.0.0.1:{port}");
        let err = run_ctl_output(&server, CtlCommand::Status)
            .await
            .expect_err("nothing listens there");
        let msg = format!("{err:#}");
        assert!(
            msg.contains(&format!("cannot reach ctld at {server}")),
            "{msg}"
        );
        assert!(msg.contains("tessera local up"), "{msg}");
    }

    #[test]
    fn reparent_commands_accept_vitess_names_and_flags() {
        assert_eq!(
            parse(&[
                "PlannedReparentShard",
                "--new_primary",
                "zone1-101",
                "--wait_replicas_timeout",
                "45s",
                "commerce/0",
            ]),
            CtlCommand::PlannedReparentShard {
                keyspace_shard: "commerce/0".into(),
                new_primary: Some("zone1-101".into()),
                avoid_primary: None,
                wait_replicas_timeout: Some(Duration::from_secs(45)),
            }
        );
        assert_eq!(
            parse(&[
                "planned-reparent-shard",
                "--avoid-primary",
                "zone1-100",
                "commerce/0"
            ]),
            CtlCommand::PlannedReparentShard {
                keyspace_shard: "commerce/0".into(),
                new_primary: None,
                avoid_primary: Some("zone1-100".into()),
                wait_replicas_timeout: None,
            }
        );
        assert!(matches!(
            parse(&["EmergencyReparentShard", "commerce/0"]),
            CtlCommand::EmergencyReparentShard {
                new_primary: None,
                ..
            }
        ));
        assert!(matches!(
            parse(&[
                "emergency-reparent-shard",
                "commerce/0",
                "--expected-primary",
                "zone1-100",
                "--expected-term",
                "3"
            ]),
            CtlCommand::EmergencyReparentShard {
                expected_primary: Some(_),
                expected_term: Some(3),
                ..
            }
        ));
        assert!(
            parse_err(&[
                "emergency-reparent-shard",
                "commerce/0",
                "--expected-primary",
                "zone1-100"
            ])
            .contains("--expected-term")
        );
        assert_eq!(
            parse(&["ChangeTabletType", "zone1-101", "rdonly"]),
            CtlCommand::ChangeTabletType {
                alias: "zone1-101".into(),
                tablet_type: TabletType::Rdonly,
                dry_run: false,
            }
        );
        assert!(matches!(
            parse(&["TabletExternallyReparented", "zone1-101"]),
            CtlCommand::TabletExternallyReparented { .. }
        ));
        assert_eq!(parse(&["events"]), CtlCommand::Events);
        assert!(parse_err(&["ChangeTabletType", "zone1-101", "boss"]).contains("boss"));
        assert!(
            parse_err(&[
                "PlannedReparentShard",
                "--wait_replicas_timeout",
                "5y",
                "commerce/0"
            ])
            .contains("unit")
        );
        assert_eq!(parse_duration("1500ms"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("").is_err());
    }
}
