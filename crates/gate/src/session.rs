//! One client session: authenticates the client, then serves its commands,
//! forwarding each to a backend connection of the tablet its target routes to
//! and relaying the response bytes unchanged. Keeps what a pooled connection
//! cannot carry: reserved ("pinned") connections, open transactions, the
//! session's prepared statements and the last insert id.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use tessera_sql::{Flags, StatementKind};
use tessera_topo::TabletType;
use tessera_wire::protocol::command::*;
use tessera_wire::{
    BackendError, CapabilityFlags, ClientHandshake, ClientStream, ColumnSpec, ErrInfo,
    HandshakeError, PacketConn, RelayError, ResponseSummary, ServerAuthConfig, StatusFlags,
};
use tokio::net::TcpStream;

mod lookups;
mod marked;
mod settings;
mod sharded;

use crate::Shared;
use crate::buffer::{FAST_REFRESH, FailedPrimary};
use crate::counted::Counted;
use crate::metrics::CommandKind;
use crate::pool::{Flavour, Lease, PoolError, PooledConn, backend_error_text};
use crate::target::Target;
use crate::topology::RouteError;

type ClientConn = PacketConn<Counted<ClientStream>>;

/// Statement traits that leave state on the connection a pool cannot carry
/// to another session, so the session keeps the connection to itself.
fn needs_reservation(flags: Flags) -> bool {
    flags.intersects(
        Flags::USER_VARIABLES
            | Flags::SESSION_SET
            | Flags::TEMPORARY_TABLE
            | Flags::GET_LOCK
            | Flags::LOCK_TABLES
            | Flags::SQL_PREPARE
            | Flags::FOUND_ROWS
            | Flags::SESSION_STATE,
    )
}

/// Statements only the gate understands (SHOW VSCHEMA, VEXPLAIN): planned
/// even on an unsharded keyspace. A cheap prefix test, on Show/Other only.
fn gate_statement(kind: StatementKind, sql: &str) -> bool {
    if !matches!(kind, StatementKind::Show | StatementKind::Other) {
        return false;
    }
    let head = sql.trim_start().as_bytes();
    let starts = |word: &str| {
        head.len() >= word.len() && head[..word.len()].eq_ignore_ascii_case(word.as_bytes())
    };
    starts("vexplain")
        || (starts("show") && {
            let rest = String::from_utf8_lossy(&head[4..]);
            rest.trim_start()
                .to_ascii_lowercase()
                .starts_with("vschema")
        })
}

/// A backend connection the session keeps across statements.
struct PinnedConn {
    keyspace: Arc<str>,
    shard: Arc<str>,
    tablet_type: TabletType,
    lease: Lease,
    /// The last response left a transaction open (or autocommit off).
    in_tx: bool,
    /// Session state lives on the connection until the session resets.
    reserved: bool,
    /// The open transaction ran a statement that may have written.
    wrote: bool,
}

/// Which connection a command runs on.
enum Slot {
    Pinned(usize),
    Lent {
        lease: Lease,
        keyspace: Arc<str>,
        shard: Arc<str>,
        tablet_type: TabletType,
    },
}

/// A statement prepared by the client, under the gate's own id.
struct PreparedStmt {
    sql: Arc<str>,
    num_params: u16,
    flags: Flags,
    kind: StatementKind,
    /// Two bytes per parameter, as last bound by the client.
    param_types: Vec<u8>,
    /// COM_STMT_SEND_LONG_DATA chunks waiting for the next execute.
    long_data: Vec<(u16, Vec<u8>)>,
    /// The plan of a statement prepared for a sharded keyspace.
    plan: Option<Arc<crate::plan::Plan>>,
    /// The VSchema epoch the plan was made under: a later one (a new
    /// VSchema or routing rules) plans the statement again.
    plan_epoch: u64,
}

/// What a command sends to the backend.
enum Request<'a> {
    /// A whole command payload (command byte first), forwarded as is.
    Raw(&'a [u8]),
    /// A COM_QUERY whose text the gate rewrote.
    Query(&'a [u8]),
    /// COM_STMT_EXECUTE of one of the session's statements (payload after
    /// the command byte).
    Execute { stmt_id: u32, body: &'a [u8] },
    /// COM_FIELD_LIST (payload after the command byte).
    FieldList(&'a [u8]),
}

/// Why one attempt at a command failed.
enum AttemptError {
    /// The backend connection broke; it must be discarded.
    Backend(String),
    /// The tablet stopped being the shard's primary while the statement
    /// ran there: it was abandoned and the connection must be discarded.
    Deposed(String),
    /// The client went away; the backend connection is still usable.
    Client(io::Error),
    /// The backend or client spoke nonsense; both connections are suspect.
    Protocol(String),
    /// Preparing the statement on this backend connection failed with a
    /// server error, which goes to the client as it is.
    Prepare(ErrInfo),
    /// The client's execute packet cannot be understood.
    BadExecute(String),
}

/// The session must end (client gone or unusable).
struct End;

/// What to do after a backend connection failed.
enum AfterFailure {
    /// Run the command again on this connection.
    Retry(Slot),
    /// The shard's primary seems to be changing: wait for it, then retry.
    Buffer {
        keyspace: Arc<str>,
        shard: Arc<str>,
        failed: FailedPrimary,
    },
    /// The client was told.
    Done,
}

/// One statement's buffering so far: it may wait, in total, one window.
#[derive(Default)]
struct BufferState {
    first_wait: Option<tokio::time::Instant>,
}

/// Why a statement in flight on a primary was abandoned.
const DEPOSED: &str = "the tablet stopped being the shard's primary while the statement ran there";

/// What a statement that was refused for a primary change inside a
/// transaction gets.
const TX_ABORTED: &str = "transaction aborted by a primary change; retry the transaction";

pub(crate) struct Session {
    shared: Arc<Shared>,
    client: ClientConn,
    peer: SocketAddr,
    auth: ServerAuthConfig,
    user: String,
    caps: CapabilityFlags,
    flavour: Flavour,
    scramble: [u8; 20],
    target: Option<Target>,
    /// A handshake database that names no keyspace: reported on use, since
    /// the handshake OK was already sent.
    bad_database: Option<String>,
    pinned: Vec<PinnedConn>,
    stmts: HashMap<u32, PreparedStmt>,
    next_stmt_id: u32,
    last_insert_id: u64,
    /// AUTOCOMMIT / IN_TRANS as last reported by a backend.
    status: StatusFlags,
    exec_buf: Vec<u8>,
    /// The statement that records a write marker (see `marked`).
    marker_sql: Vec<u8>,
    /// `SET` statements of a sharded session (session variables, user
    /// variables), run on every backend connection its statements use; those
    /// connections stay reserved to the session.
    shard_settings: Vec<Arc<str>>,
    /// The shard (and tablet type) the next checkout uses instead of the
    /// session's target: set by the sharded path around each shard's part.
    route_override: Option<(Arc<str>, Arc<str>, TabletType)>,
    /// A transaction opened on a sharded keyspace: every shard a statement
    /// reaches joins it (BEGIN is sent there first).
    sharded_tx: bool,
    /// `SET autocommit = 0` on a sharded session.
    autocommit_off: bool,
    /// Consistent-lookup entry deletes (keyspace, shard, statement) that run
    /// once the sharded transaction commits; dropped on rollback.
    post_commit: Vec<(Arc<str>, Arc<str>, String)>,
    /// The sharded path's last plans, checked before the shared cache.
    plan_cache: crate::plan::SessionPlans,
    /// Buffers reused by every sharded statement: its normalised text and
    /// its literal or parameter values.
    scratch: crate::plan::text::Normalized,
}

/// Serves one accepted client connection until it ends.
pub(crate) async fn serve(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    connection_id: u32,
) {
    let _ = stream.set_nodelay(true);
    let auth = ServerAuthConfig {
        server_version: shared.server_version.clone(),
        tls: shared.tls.clone(),
        connection_id,
    };
    let (conn, hs) =
        match tessera_wire::server_handshake(stream, peer, &auth, &GateUsers(&shared)).await {
            Ok(ok) => ok,
            Err(HandshakeError::AccessDenied { user, .. }) => {
                shared.metrics.handshake_failures.inc();
                tracing::info!(%peer, user, "access denied");
                return;
            }
            Err(HandshakeError::UnknownDatabase(db)) => {
                shared.metrics.handshake_failures.inc();
                tracing::info!(%peer, db, "unknown database at connect");
                return;
            }
            Err(e) => {
                shared.metrics.handshake_failures.inc();
                tracing::debug!(%peer, "handshake failed: {e:?}");
                return;
            }
        };
    let (stream, unread) = conn.into_parts();
    let client = PacketConn::with_read_buffer(Counted::new(stream), unread);
    shared.metrics.client_connections.inc();
    let _open = OpenGuard(shared.clone());
    let mut session = Session {
        flavour: Flavour::of_client(hs.capabilities, hs.charset),
        caps: hs.capabilities,
        scramble: hs.scramble,
        user: hs.user.clone(),
        shared,
        client,
        peer,
        auth,
        target: None,
        bad_database: None,
        pinned: Vec::new(),
        stmts: HashMap::new(),
        next_stmt_id: 1,
        last_insert_id: 0,
        status: StatusFlags::SERVER_STATUS_AUTOCOMMIT,
        exec_buf: Vec::with_capacity(256),
        marker_sql: Vec::new(),
        shard_settings: Vec::new(),
        route_override: None,
        sharded_tx: false,
        autocommit_off: false,
        post_commit: Vec::new(),
        plan_cache: Default::default(),
        scratch: Default::default(),
    };
    session.set_handshake_target(&hs);
    session.run().await;
    tracing::debug!(peer = %session.peer, user = session.user, "session ended");
}

/// The users file, plus the routing table to answer whether the database a
/// client names at connect is a keyspace target it can use.
struct GateUsers<'a>(&'a Shared);

impl tessera_wire::UserStore for GateUsers<'_> {
    fn lookup(&self, user: &str) -> Option<tessera_wire::UserCredential> {
        self.0.users.lookup(user)
    }

    fn default_auth_method(&self) -> tessera_wire::AuthMethod {
        self.0.users.default_auth_method()
    }

    fn database_exists(&self, database: &str) -> bool {
        Target::parse(database)
            .ok()
            .is_some_and(|t| self.0.routing.load().validate(&t).is_ok())
    }
}

/// Decrements the open-sessions gauge however the session ends.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.metrics.client_connections.dec();
    }
}

impl Session {
    fn set_handshake_target(&mut self, hs: &ClientHandshake) {
        self.target = None;
        self.bad_database = None;
        if let Some(db) = hs.database.as_deref().filter(|d| !d.is_empty()) {
            let table = self.shared.routing.load();
            match Target::parse(db)
                .map_err(|_| RouteError::UnknownDatabase(db.to_string()))
                .and_then(|t| table.validate(&t).map(|_| t))
            {
                Ok(t) => self.target = Some(t),
                Err(_) => self.bad_database = Some(db.to_string()),
            }
        }
    }

    async fn run(&mut self) {
        loop {
            let payload = match self.client.read_packet().await {
                Ok(Some((_, payload))) => payload,
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!(peer = %self.peer, "client read failed: {e}");
                    return;
                }
            };
            let Some(&command) = payload.first() else {
                tracing::debug!(peer = %self.peer, "empty command packet; closing");
                return;
            };
            let result = match command {
                COM_QUIT => return,
                COM_QUERY => {
                    self.shared.metrics.command(CommandKind::Query);
                    self.com_query(&payload).await
                }
                COM_STMT_EXECUTE => {
                    self.shared.metrics.command(CommandKind::Execute);
                    self.com_stmt_execute(&payload).await
                }
                COM_STMT_PREPARE => {
                    self.shared.metrics.command(CommandKind::Prepare);
                    self.com_stmt_prepare(&payload).await
                }
                COM_STMT_SEND_LONG_DATA => {
                    self.shared.metrics.command(CommandKind::LongData);
                    self.com_stmt_send_long_data(&payload);
                    Ok(())
                }
                COM_STMT_CLOSE => {
                    self.shared.metrics.command(CommandKind::Close);
                    if let Some(id) = read_u32(&payload[1..]) {
                        self.stmts.remove(&id);
                    }
                    Ok(())
                }
                COM_STMT_RESET => {
                    self.shared.metrics.command(CommandKind::Reset);
                    self.com_stmt_reset(&payload).await
                }
                COM_STMT_FETCH => {
                    self.shared.metrics.command(CommandKind::Other);
                    self.send_error(
                        1235,
                        "42000",
                        "This version of Tessera doesn't yet support 'COM_STMT_FETCH (server-side cursors)'",
                    )
                    .await
                }
                COM_PING => {
                    self.shared.metrics.command(CommandKind::Ping);
                    self.send_ok().await
                }
                COM_INIT_DB => {
                    self.shared.metrics.command(CommandKind::InitDb);
                    let name = String::from_utf8_lossy(&payload[1..]).into_owned();
                    self.use_target(&name).await
                }
                COM_FIELD_LIST => {
                    self.shared.metrics.command(CommandKind::FieldList);
                    self.route_override = self.sharded_any_shard();
                    let result = self
                        .forward(
                            Request::FieldList(&payload[1..]),
                            Flags::default(),
                            StatementKind::Other,
                        )
                        .await;
                    self.route_override = None;
                    result
                }
                COM_CHANGE_USER => {
                    self.shared.metrics.command(CommandKind::ChangeUser);
                    self.com_change_user(payload.slice(1..)).await
                }
                COM_RESET_CONNECTION => {
                    self.shared.metrics.command(CommandKind::ResetConnection);
                    self.reset_session();
                    self.send_ok().await
                }
                _ => {
                    self.shared.metrics.command(CommandKind::Other);
                    self.send_error(1047, "08S01", "Unknown command").await
                }
            };
            if result.is_err() {
                return;
            }
        }
    }

    // ------------------------------------------------------------ answers

    fn client_status(&self) -> StatusFlags {
        let mut status = self.status
            & (StatusFlags::SERVER_STATUS_AUTOCOMMIT | StatusFlags::SERVER_STATUS_IN_TRANS);
        let explicit_tx = self.sharded_tx && !self.autocommit_off;
        if explicit_tx || self.pinned.iter().any(|p| p.in_tx) {
            status |= StatusFlags::SERVER_STATUS_IN_TRANS;
        } else {
            status -= StatusFlags::SERVER_STATUS_IN_TRANS;
        }
        if self.autocommit_off {
            status -= StatusFlags::SERVER_STATUS_AUTOCOMMIT;
        }
        status
    }

    async fn send_ok(&mut self) -> Result<(), End> {
        let packet = tessera_wire::ok_packet(self.caps, 0, 0, self.client_status(), 0, "");
        let mut seq = 1;
        self.client.write_packet(&mut seq, &packet);
        self.flush_client().await
    }

    async fn send_error(&mut self, code: u16, sqlstate: &str, message: &str) -> Result<(), End> {
        self.shared.metrics.errors.inc();
        let packet = tessera_wire::err_packet(code, sqlstate, message);
        let mut seq = 1;
        self.client.write_packet(&mut seq, &packet);
        self.flush_client().await
    }

    async fn send_gate_error(
        &mut self,
        code: u16,
        sqlstate: &str,
        message: &str,
    ) -> Result<(), End> {
        self.shared.metrics.gate_errors.inc();
        self.send_error(code, sqlstate, message).await
    }

    async fn send_route_error(&mut self, e: RouteError) -> Result<(), End> {
        let (code, state, message) = e.to_mysql();
        self.send_gate_error(code, state, &message).await
    }

    async fn flush_client(&mut self) -> Result<(), End> {
        self.client.flush().await.map_err(|e| {
            tracing::debug!(peer = %self.peer, "client write failed: {e}");
            End
        })
    }

    // ------------------------------------------------------------ targets

    async fn use_target(&mut self, name: &str) -> Result<(), End> {
        let parsed = Target::parse(name).map_err(|_| RouteError::UnknownDatabase(name.to_string()));
        let checked = {
            let table = self.shared.routing.load();
            parsed.and_then(|t| table.validate(&t).map(|_| t))
        };
        match checked {
            Ok(t) => {
                self.target = Some(t);
                self.bad_database = None;
                self.send_ok().await
            }
            Err(e) => self.send_route_error(e).await,
        }
    }

    async fn show_databases(&mut self) -> Result<(), End> {
        let rows: Vec<Vec<Option<Vec<u8>>>> = {
            let table = self.shared.routing.load();
            table
                .keyspaces
                .keys()
                .map(|k| vec![Some(k.as_bytes().to_vec())])
                .collect()
        };
        let mut seq = 1;
        let status = self.client_status();
        tessera_wire::write_text_resultset(
            &mut self.client,
            &mut seq,
            self.caps,
            &[ColumnSpec::varchar("Database")],
            &rows,
            status,
        );
        self.flush_client().await
    }

    // ------------------------------------------------------------ commands

    async fn com_query(&mut self, payload: &Bytes) -> Result<(), End> {
        let sql: Cow<'_, str> = String::from_utf8_lossy(&payload[1..]);
        let classified = tessera_sql::classify(&sql);
        let multi = classified.flags.contains(Flags::MULTI);
        match classified.kind {
            StatementKind::Use if !multi => {
                return match tessera_sql::use_target(&sql) {
                    Some(name) => {
                        let name = name.to_string();
                        self.use_target(&name).await
                    }
                    None => {
                        self.send_gate_error(
                            1064,
                            "42000",
                            "You have an error in your SQL syntax near 'USE'",
                        )
                        .await
                    }
                };
            }
            StatementKind::Use => {
                return self
                    .send_gate_error(
                        1235,
                        "42000",
                        "This version of Tessera doesn't yet support 'USE inside a multi-statement'",
                    )
                    .await;
            }
            StatementKind::ShowDatabases if !multi => return self.show_databases().await,
            _ => {}
        }
        if self.is_sharded_session()
            || gate_statement(classified.kind, &sql)
            || self.routing_rules_apply(&sql)
        {
            return self.sharded_query(&sql, payload, classified).await;
        }
        if multi
            && tessera_sql::split_statements(&sql)
                .iter()
                .any(|stmt| tessera_sql::classify(stmt).kind == StatementKind::Use)
        {
            // It would change the default database of a pooled connection.
            return self
                .send_gate_error(
                    1235,
                    "42000",
                    "This version of Tessera doesn't yet support 'USE inside a multi-statement'",
                )
                .await;
        }
        if classified.flags.contains(Flags::LAST_INSERT_ID) && !self.current_is_pinned() {
            // A pooled connection's LAST_INSERT_ID() belongs to whoever used
            // it last; the session's own value is the one in its last OK.
            if let Some(rewritten) = tessera_sql::rewrite_last_insert_id(&sql, self.last_insert_id)
            {
                return self
                    .forward(
                        Request::Query(rewritten.as_bytes()),
                        classified.flags,
                        classified.kind,
                    )
                    .await;
            }
        }
        self.forward(Request::Raw(payload), classified.flags, classified.kind)
            .await
    }

    fn current_is_pinned(&self) -> bool {
        if self.pinned.is_empty() {
            return false;
        }
        let table = self.shared.routing.load();
        match table.shard_for(self.target.as_ref()) {
            Ok((shard, ty)) => self.pinned.iter().any(|p| {
                p.tablet_type == ty
                    && *p.keyspace == *shard.keyspace_name
                    && *p.shard == *shard.name
            }),
            Err(_) => false,
        }
    }

    async fn com_stmt_prepare(&mut self, payload: &Bytes) -> Result<(), End> {
        let sql: Arc<str> = Arc::from(String::from_utf8_lossy(&payload[1..]).as_ref());
        let classified = tessera_sql::classify(&sql);
        let mut plan = None;
        if self.is_sharded_session() || self.routing_rules_apply(&sql) {
            match self.sharded_prepare_plan(&sql) {
                Ok(p) => plan = Some(p),
                Err(e) => return self.send_error(e.code, e.sqlstate, &e.message).await,
            }
            // Any shard can describe the statement: they share one schema.
            self.route_override = self.sharded_any_shard();
        }
        let result = self.prepare_with_plan(sql, classified, plan).await;
        self.route_override = None;
        result
    }

    async fn prepare_with_plan(
        &mut self,
        sql: Arc<str>,
        classified: tessera_sql::Classified,
        plan: Option<Arc<crate::plan::Plan>>,
    ) -> Result<(), End> {
        let plan_epoch = self.shared.routing.load().vschema_epoch;
        let mut buffering = BufferState::default();
        let mut slot = match self.checkout(&mut buffering).await {
            Ok(slot) => slot,
            Err(()) => return Ok(()),
        };
        let mut retried = false;
        loop {
            let conn = slot_conn(&mut self.pinned, &mut slot);
            match tessera_wire::prepare_on_backend(&mut conn.backend, &sql).await {
                Ok(prepared) => {
                    if let Some(evicted) = conn.stmts.insert(sql.clone(), prepared.statement_id) {
                        conn.backend
                            .write_command(COM_STMT_CLOSE, &evicted.to_le_bytes());
                    }
                    let id = self.next_stmt_id;
                    self.next_stmt_id = self.next_stmt_id.wrapping_add(1).max(1);
                    self.stmts.insert(
                        id,
                        PreparedStmt {
                            sql: sql.clone(),
                            num_params: prepared.num_params,
                            flags: classified.flags,
                            kind: classified.kind,
                            param_types: Vec::new(),
                            long_data: Vec::new(),
                            plan,
                            plan_epoch,
                        },
                    );
                    tessera_wire::write_prepare_ok(&mut self.client, self.caps, id, &prepared);
                    self.settle(slot, false, None);
                    return self.flush_client().await;
                }
                Err(BackendError::Server(err)) => {
                    self.settle(slot, false, None);
                    return self.send_error(err.code, &err.sqlstate, &err.message).await;
                }
                Err(e) => {
                    let reason = backend_error_text(&e);
                    let next = self
                        .after_backend_failure(slot, retried, &reason, true, false)
                        .await?;
                    match self.resume(next, &mut buffering).await {
                        Some((next_slot, is_retry)) => (slot, retried) = (next_slot, is_retry),
                        None => return Ok(()),
                    }
                }
            }
        }
    }

    async fn com_stmt_execute(&mut self, payload: &Bytes) -> Result<(), End> {
        let body = &payload[1..];
        let Some(stmt_id) = read_u32(body) else {
            return self
                .send_gate_error(1210, "HY000", "Incorrect arguments to mysqld_stmt_execute")
                .await;
        };
        let Some(stmt) = self.stmts.get(&stmt_id) else {
            let message = format!(
                "Unknown prepared statement handler ({stmt_id}) given to mysqld_stmt_execute"
            );
            return self.send_gate_error(1243, "HY000", &message).await;
        };
        let (flags, kind) = (stmt.flags, stmt.kind);
        let result = match stmt.plan.clone() {
            Some(plan) => match self.current_plan(stmt_id, plan) {
                Ok(plan) => self.sharded_execute(stmt_id, body, plan).await,
                Err(e) => self.send_plan_error(e).await,
            },
            None => {
                self.forward(Request::Execute { stmt_id, body }, flags, kind)
                    .await
            }
        };
        // Long data belongs to one execution, as on a server.
        if let Some(stmt) = self.stmts.get_mut(&stmt_id) {
            stmt.long_data.clear();
        }
        result
    }

    /// A prepared statement's plan, made again when the VSchema or the
    /// routing rules changed since it was made.
    fn current_plan(
        &mut self,
        stmt_id: u32,
        plan: Arc<crate::plan::Plan>,
    ) -> Result<Arc<crate::plan::Plan>, crate::plan::PlanError> {
        let epoch = self.shared.routing.load().vschema_epoch;
        let Some(stmt) = self.stmts.get(&stmt_id) else {
            return Ok(plan);
        };
        if stmt.plan_epoch == epoch {
            return Ok(plan);
        }
        let sql = stmt.sql.clone();
        let plan = self.sharded_prepare_plan(&sql)?;
        if let Some(stmt) = self.stmts.get_mut(&stmt_id) {
            stmt.plan = Some(plan.clone());
            stmt.plan_epoch = epoch;
        }
        Ok(plan)
    }

    fn com_stmt_send_long_data(&mut self, payload: &Bytes) {
        let body = &payload[1..];
        let (Some(stmt_id), Some(param)) = (read_u32(body), body.get(4..6)) else {
            return;
        };
        let param = u16::from_le_bytes([param[0], param[1]]);
        let Some(stmt) = self.stmts.get_mut(&stmt_id) else {
            return;
        };
        if param >= stmt.num_params {
            return;
        }
        let data = &body[6..];
        match stmt.long_data.iter_mut().find(|(p, _)| *p == param) {
            Some((_, buf)) => buf.extend_from_slice(data),
            None => stmt.long_data.push((param, data.to_vec())),
        }
    }

    async fn com_stmt_reset(&mut self, payload: &Bytes) -> Result<(), End> {
        let id = read_u32(&payload[1..]).unwrap_or(0);
        match self.stmts.get_mut(&id) {
            Some(stmt) => {
                stmt.long_data.clear();
                self.send_ok().await
            }
            None => {
                let message =
                    format!("Unknown prepared statement handler ({id}) given to mysqld_stmt_reset");
                self.send_gate_error(1243, "HY000", &message).await
            }
        }
    }

    async fn com_change_user(&mut self, body: Bytes) -> Result<(), End> {
        let result = tessera_wire::server_change_user(
            &mut self.client,
            &body,
            self.caps,
            &self.auth,
            &GateUsers(&self.shared),
            self.peer,
            &mut self.scramble,
        )
        .await;
        match result {
            Ok(hs) => {
                self.reset_session();
                self.user = hs.user.clone();
                self.set_handshake_target(&hs);
                Ok(())
            }
            Err(HandshakeError::AccessDenied { user, .. }) => {
                // A server closes the connection after a failed change-user.
                tracing::info!(peer = %self.peer, user, "change user: access denied");
                Err(End)
            }
            Err(e) => {
                tracing::debug!(peer = %self.peer, "change user failed: {e:?}");
                Err(End)
            }
        }
    }

    /// Drops everything a session accumulated on the server side: reserved
    /// and in-transaction connections are closed (their state must not reach
    /// another session), statements forgotten.
    fn reset_session(&mut self) {
        for pinned in self.pinned.drain(..) {
            pinned.lease.discard();
        }
        self.stmts.clear();
        self.shard_settings.clear();
        self.sharded_tx = false;
        self.autocommit_off = false;
        self.last_insert_id = 0;
        self.status = StatusFlags::SERVER_STATUS_AUTOCOMMIT;
    }

    // ------------------------------------------------------------ backend path

    /// Finds the connection for the session's current target: the pinned one,
    /// or one lent by the tablet's pool. A primary that is changing makes it
    /// wait (buffer) for the new one. Errors are sent to the client.
    async fn checkout(&mut self, buffering: &mut BufferState) -> Result<Slot, ()> {
        enum Choice {
            Pinned(usize),
            /// A pinned connection to a tablet that is no longer the primary.
            Stranded(usize),
            Pool {
                pool: Arc<crate::pool::TabletPool>,
                keyspace: Arc<str>,
                shard: Arc<str>,
                tablet_type: TabletType,
                term: u64,
            },
            /// Another statement already waits for this shard's primary.
            Join(Arc<str>, Arc<str>),
            Fail(RouteError, Option<(Arc<str>, Arc<str>, FailedPrimary)>),
        }
        loop {
            let choice = {
                let table = self.shared.routing.load();
                if let Some(db) = &self.bad_database
                    && self.target.is_none()
                {
                    Choice::Fail(RouteError::UnknownDatabase(db.clone()), None)
                } else {
                    let destination = match &self.route_override {
                        Some((keyspace, shard, ty)) => table
                            .keyspaces
                            .get(&**keyspace)
                            .and_then(|k| k.shards.get(&**shard))
                            .map(|s| (s, *ty))
                            .ok_or_else(|| {
                                RouteError::NoTablet(format!(
                                    "shard {keyspace}/{shard} is not in the topology"
                                ))
                            }),
                        None => table.shard_for(self.target.as_ref()),
                    };
                    match destination {
                        Err(e) => Choice::Fail(e, None),
                        Ok((shard, ty)) => {
                            let pinned = self.pinned.iter().position(|p| {
                                p.tablet_type == ty
                                    && *p.keyspace == *shard.keyspace_name
                                    && *p.shard == *shard.name
                            });
                            let buffers = &self.shared.buffers;
                            if let Some(i) = pinned {
                                // One pointer comparison: the pool of a
                                // tablet lives as long as the tablet is known.
                                match &shard.primary {
                                    Some(primary)
                                        if ty == TabletType::Primary
                                            && !Arc::ptr_eq(
                                                self.pinned[i].lease.pool(),
                                                &primary.pool,
                                            ) =>
                                    {
                                        Choice::Stranded(i)
                                    }
                                    _ => Choice::Pinned(i),
                                }
                            } else if ty == TabletType::Primary
                                && buffering.first_wait.is_none()
                                && buffers.any_active()
                                && buffers.is_buffering(&shard.keyspace_name, &shard.name)
                            {
                                Choice::Join(shard.keyspace_name.clone(), shard.name.clone())
                            } else {
                                match shard.pick(ty) {
                                    Ok(tablet) => Choice::Pool {
                                        pool: tablet.pool.clone(),
                                        keyspace: shard.keyspace_name.clone(),
                                        shard: shard.name.clone(),
                                        tablet_type: ty,
                                        term: shard.shard.primary_term,
                                    },
                                    Err(e) => {
                                        let why = e.to_mysql().2;
                                        let changing = (ty == TabletType::Primary
                                            && shard.shard.primary_alias.is_some())
                                        .then(|| {
                                            (
                                                shard.keyspace_name.clone(),
                                                shard.name.clone(),
                                                FailedPrimary {
                                                    alias: shard.shard.primary_alias.clone(),
                                                    term: shard.shard.primary_term,
                                                    why,
                                                },
                                            )
                                        });
                                        Choice::Fail(e, changing)
                                    }
                                }
                            }
                        }
                    }
                }
            };
            match choice {
                Choice::Pinned(i) => return Ok(Slot::Pinned(i)),
                Choice::Stranded(i) => {
                    let pinned = self.pinned.swap_remove(i);
                    let message = if pinned.in_tx {
                        TX_ABORTED.to_string()
                    } else {
                        format!(
                            "primary of {}/{} changed; session state on the old primary (user variables, temporary tables, locks, prepared SQL) is lost; retry",
                            pinned.keyspace, pinned.shard
                        )
                    };
                    // Closing it rolls back whatever was open there.
                    pinned.lease.discard();
                    let _ = self.send_gate_error(1105, "HY000", &message).await;
                    return Err(());
                }
                Choice::Join(keyspace, shard) => {
                    if !self.buffer_wait(&keyspace, &shard, None, buffering).await {
                        return Err(());
                    }
                }
                Choice::Fail(_, Some((keyspace, shard, failed))) => {
                    if !self
                        .buffer_wait(&keyspace, &shard, Some(failed), buffering)
                        .await
                    {
                        return Err(());
                    }
                }
                Choice::Fail(e, None) => {
                    let _ = self.send_route_error(e).await;
                    return Err(());
                }
                Choice::Pool {
                    pool,
                    keyspace,
                    shard,
                    tablet_type,
                    term,
                } => match pool.get(self.flavour).await {
                    Ok(lease)
                        if self.route_override.is_some() && !self.shard_settings.is_empty() =>
                    {
                        return self
                            .reserve_with_settings(lease, keyspace, shard, tablet_type)
                            .await;
                    }
                    Ok(lease) => {
                        return Ok(Slot::Lent {
                            lease,
                            keyspace,
                            shard,
                            tablet_type,
                        });
                    }
                    Err(e @ PoolError::Connect { .. }) if tablet_type == TabletType::Primary => {
                        let failed = FailedPrimary {
                            alias: Some(pool.alias().clone()),
                            term,
                            why: e.to_string(),
                        };
                        if !self
                            .buffer_wait(&keyspace, &shard, Some(failed), buffering)
                            .await
                        {
                            return Err(());
                        }
                    }
                    Err(e) => {
                        let _ = self.send_pool_error(e).await;
                        return Err(());
                    }
                },
            }
        }
    }

    /// Swaps a dead lent connection for a new one (nothing was sent on it).
    /// None when the client was told why there is none.
    async fn replace_dead(&mut self, slot: Slot, buffering: &mut BufferState) -> Option<Slot> {
        let Slot::Lent {
            lease,
            keyspace,
            shard,
            tablet_type,
        } = slot
        else {
            return Some(slot);
        };
        let pool = lease.pool().clone();
        lease.discard();
        self.shared.metrics.backend_retries.inc();
        match pool.get_fresh(self.flavour).await {
            Ok(lease) => Some(Slot::Lent {
                lease,
                keyspace,
                shard,
                tablet_type,
            }),
            Err(e @ PoolError::Connect { .. }) if tablet_type == TabletType::Primary => {
                let failed = FailedPrimary {
                    alias: Some(pool.alias().clone()),
                    term: self.primary_term(&keyspace, &shard),
                    why: e.to_string(),
                };
                if !self
                    .buffer_wait(&keyspace, &shard, Some(failed), buffering)
                    .await
                {
                    return None;
                }
                self.checkout(buffering).await.ok()
            }
            Err(e) => {
                let _ = self.send_pool_error(e).await;
                None
            }
        }
    }

    /// Waits for the shard's primary change. True to try again; false when
    /// the window ended or the buffer is full (the client was told).
    async fn buffer_wait(
        &mut self,
        keyspace: &Arc<str>,
        shard: &Arc<str>,
        failed: Option<FailedPrimary>,
        buffering: &mut BufferState,
    ) -> bool {
        let buffers = self.shared.buffers.clone();
        match buffering.first_wait {
            Some(first) => {
                if first.elapsed() >= buffers.window() {
                    let why = failed.map(|f| f.why).unwrap_or_default();
                    let message =
                        crate::buffer::BufferError::WindowEnded(why).message(keyspace, shard);
                    let _ = self.send_gate_error(1105, "HY000", &message).await;
                    return false;
                }
                // A retry that failed again right after a wait: give the
                // topology a moment instead of spinning.
                tokio::time::sleep(FAST_REFRESH).await;
            }
            None => buffering.first_wait = Some(tokio::time::Instant::now()),
        }
        match buffers.wait(keyspace, shard, failed).await {
            Ok(()) => true,
            Err(e) => {
                let message = e.message(keyspace, shard);
                let _ = self.send_gate_error(1105, "HY000", &message).await;
                false
            }
        }
    }

    /// The shard's primary term in the current routing table.
    fn primary_term(&self, keyspace: &str, shard: &str) -> u64 {
        self.shared
            .routing
            .load()
            .keyspaces
            .get(keyspace)
            .and_then(|k| k.shards.get(shard))
            .map_or(0, |s| s.shard.primary_term)
    }

    async fn send_pool_error(&mut self, e: PoolError) -> Result<(), End> {
        let message = e.to_string();
        self.send_gate_error(1105, "HY000", &message).await
    }

    /// Where a retry loop goes after a failed attempt: the connection to try
    /// next and whether that try is a retry, or None when the session has
    /// already answered the client (an error, or the buffer window ended).
    async fn resume(
        &mut self,
        next: AfterFailure,
        buffering: &mut BufferState,
    ) -> Option<(Slot, bool)> {
        match next {
            AfterFailure::Retry(fresh) => Some((fresh, true)),
            AfterFailure::Buffer {
                keyspace,
                shard,
                failed,
            } => {
                if !self
                    .buffer_wait(&keyspace, &shard, Some(failed), buffering)
                    .await
                {
                    return None;
                }
                self.checkout(buffering)
                    .await
                    .ok()
                    .map(|slot| (slot, false))
            }
            AfterFailure::Done => None,
        }
    }

    /// After a backend connection failed before anything reached the client:
    /// discards it and, when allowed (once, on a lent connection that was
    /// reused from the pool), returns a freshly opened one to retry on.
    /// A primary whose connection failed may be changing: a command that is
    /// safe to run twice (`replayable`) then waits for the new primary. A
    /// statement that may have committed (`may_commit`) is never replayed and
    /// gets a connection-lost error. Otherwise the client is told.
    async fn after_backend_failure(
        &mut self,
        slot: Slot,
        retried: bool,
        reason: &str,
        replayable: bool,
        may_commit: bool,
    ) -> Result<AfterFailure, End> {
        match slot {
            Slot::Lent {
                lease,
                keyspace,
                shard,
                tablet_type,
            } if !retried && !lease.fresh && replayable => {
                let pool = lease.pool().clone();
                lease.discard();
                self.shared.metrics.backend_retries.inc();
                tracing::debug!(
                    tablet = pool.label(),
                    "pooled connection failed ({reason}); retrying on a new one"
                );
                match pool.get_fresh(self.flavour).await {
                    Ok(lease) => Ok(AfterFailure::Retry(Slot::Lent {
                        lease,
                        keyspace,
                        shard,
                        tablet_type,
                    })),
                    // The first connection may have carried the statement
                    // to a server that then died: only a statement that is
                    // safe to run twice waits for the primary to return.
                    Err(e @ PoolError::Connect { .. })
                        if replayable && tablet_type == TabletType::Primary =>
                    {
                        let term = self.primary_term(&keyspace, &shard);
                        Ok(AfterFailure::Buffer {
                            keyspace,
                            shard,
                            failed: FailedPrimary {
                                alias: Some(pool.alias().clone()),
                                term,
                                why: e.to_string(),
                            },
                        })
                    }
                    Err(e) => {
                        self.send_pool_error(e).await?;
                        Ok(AfterFailure::Done)
                    }
                }
            }
            Slot::Lent {
                lease,
                keyspace,
                shard,
                tablet_type,
            } if replayable && tablet_type == TabletType::Primary => {
                let alias = lease.pool().alias().clone();
                let why = format!(
                    "Lost connection to MySQL server of tablet {}: {reason}",
                    lease.pool().label()
                );
                lease.discard();
                let term = self.primary_term(&keyspace, &shard);
                Ok(AfterFailure::Buffer {
                    keyspace,
                    shard,
                    failed: FailedPrimary {
                        alias: Some(alias),
                        term,
                        why,
                    },
                })
            }
            Slot::Lent { lease, .. } => {
                let tablet = lease.pool().label().to_string();
                lease.discard();
                let message =
                    format!("Lost connection to MySQL server of tablet {tablet}: {reason}");
                self.send_gate_error(2013, "HY000", &message).await?;
                Ok(AfterFailure::Done)
            }
            Slot::Pinned(i) => {
                let pinned = self.pinned.swap_remove(i);
                let tablet = pinned.lease.pool().label().to_string();
                let lost_tx = pinned.in_tx;
                let on_primary = pinned.tablet_type == TabletType::Primary;
                pinned.lease.discard();
                // The transaction died with the connection, so its outcome
                // is known, unless the statement was the commit itself.
                if lost_tx && on_primary && !may_commit {
                    let message = format!("{TX_ABORTED} (tablet {tablet}: {reason})");
                    self.send_gate_error(1105, "HY000", &message).await?;
                    return Ok(AfterFailure::Done);
                }
                let message = format!(
                    "Lost connection to MySQL server of tablet {tablet}: {reason}{}",
                    if lost_tx {
                        "; the open transaction was rolled back"
                    } else {
                        "; session state on the connection is lost"
                    }
                );
                self.send_gate_error(2013, "HY000", &message).await?;
                Ok(AfterFailure::Done)
            }
        }
    }

    /// Keeps or returns the connection after a command: it stays with the
    /// session while reserved or inside a transaction.
    fn settle(&mut self, slot: Slot, reserve: bool, status: Option<StatusFlags>) {
        self.settle_after(slot, reserve, status, false);
    }

    /// [`settle`](Self::settle) after a statement that may have written
    /// (`wrote`): a transaction it leaves open then has something to lose.
    fn settle_after(
        &mut self,
        slot: Slot,
        reserve: bool,
        status: Option<StatusFlags>,
        wrote: bool,
    ) {
        let in_tx_now = status.map(|s| {
            s.contains(StatusFlags::SERVER_STATUS_IN_TRANS)
                || !s.contains(StatusFlags::SERVER_STATUS_AUTOCOMMIT)
        });
        if let Some(s) = status {
            self.status = s;
        }
        match slot {
            Slot::Pinned(i) => {
                let pinned = &mut self.pinned[i];
                pinned.reserved |= reserve;
                pinned.wrote |= wrote;
                if let Some(in_tx) = in_tx_now {
                    pinned.in_tx = in_tx;
                    pinned.wrote &= in_tx;
                }
                if !pinned.reserved && !pinned.in_tx {
                    self.pinned.swap_remove(i).lease.release();
                }
            }
            Slot::Lent {
                lease,
                keyspace,
                shard,
                tablet_type,
            } => {
                let in_tx = in_tx_now.unwrap_or(false);
                if reserve || in_tx {
                    self.pinned.push(PinnedConn {
                        keyspace,
                        shard,
                        tablet_type,
                        lease,
                        in_tx,
                        reserved: reserve,
                        wrote: wrote && in_tx,
                    });
                } else {
                    lease.release();
                }
            }
        }
    }

    /// Runs one command on the backend and relays its response.
    async fn forward(
        &mut self,
        request: Request<'_>,
        flags: Flags,
        kind: StatementKind,
    ) -> Result<(), End> {
        let mut buffering = BufferState::default();
        let mut slot = match self.checkout(&mut buffering).await {
            Ok(slot) => slot,
            Err(()) => return Ok(()),
        };
        // Statements that change nothing may run twice.
        let replayable = matches!(
            kind,
            StatementKind::Select
                | StatementKind::Show
                | StatementKind::Describe
                | StatementKind::Explain
        ) && !flags.contains(Flags::MULTI);
        let may_commit = kind == StatementKind::Commit || flags.contains(Flags::MULTI);
        let marking = marked::marking_for(kind, flags, &request);
        let mut retried = false;
        loop {
            if !replayable
                && let Slot::Lent { lease, .. } = &mut slot
                && !lease.fresh
                && !backend_looks_alive(lease.conn())
            {
                // A pooled connection the server already closed: replaced
                // before the statement is sent, since after that a failure
                // leaves its outcome unknown and it cannot be retried.
                slot = match self.replace_dead(slot, &mut buffering).await {
                    Some(fresh) => fresh,
                    None => return Ok(()),
                };
                continue;
            }
            // A statement on a primary ends the moment the gate learns that
            // another tablet is primary: on a host cut off the network it
            // would otherwise wait for an answer that may never come. The
            // watch is taken before the flag is read, so no change is missed.
            let on_primary = match &slot {
                Slot::Lent { tablet_type, .. } => *tablet_type == TabletType::Primary,
                Slot::Pinned(i) => self.pinned[*i].tablet_type == TabletType::Primary,
            };
            let mut deposed = on_primary.then(|| slot_pool(&self.pinned, &slot).deposed());
            let still_primary = !on_primary || slot_pool(&self.pinned, &slot).is_routed_primary();
            if !still_primary && let Slot::Lent { .. } = &slot {
                // Routed by a table that has since named another primary;
                // nothing was sent, so any statement may go to the new one.
                if let Slot::Lent { lease, .. } = slot {
                    lease.release();
                }
                slot = match self.checkout(&mut buffering).await {
                    Ok(slot) => slot,
                    Err(()) => return Ok(()),
                };
                continue;
            }
            let mark = match marking {
                Some(m) if self.marker_applies(m, &slot) => {
                    Some((m, slot_conn(&mut self.pinned, &mut slot).marker.next()))
                }
                _ => None,
            };
            let written_before = self.client.get_ref().written();
            // A read-only refusal from a primary (outside a transaction: to
            // buffer; inside one: to abort it clearly) is kept from the client.
            let hold = match &slot {
                Slot::Lent { tablet_type, .. } => *tablet_type == TabletType::Primary,
                Slot::Pinned(i) => {
                    let p = &self.pinned[*i];
                    p.tablet_type == TabletType::Primary && p.in_tx
                }
            };
            self.client.get_mut().hold_read_only_error(hold);
            let outcome = {
                let conn = slot_conn(&mut self.pinned, &mut slot);
                let running = attempt(
                    conn,
                    &mut self.client,
                    &request,
                    &mut self.stmts,
                    &mut self.exec_buf,
                    mark.map(|(marking, marker)| marked::MarkedSend {
                        marking,
                        marker,
                        sql: &mut self.marker_sql,
                    }),
                );
                match &mut deposed {
                    None => running.await,
                    // A transaction's connection to the old primary: its
                    // transaction is gone with the role.
                    Some(_) if !still_primary => Err(AttemptError::Deposed(DEPOSED.into())),
                    Some(deposed) => tokio::select! {
                        biased;
                        outcome = running => outcome,
                        _ = deposed.changed() => Err(AttemptError::Deposed(DEPOSED.into())),
                    },
                }
            };
            let held = if hold {
                let counted = self.client.get_mut();
                counted.hold_read_only_error(false);
                counted.take_held()
            } else {
                None
            };
            // Another failure after the held packet (it cannot reach the
            // client any more) is handled below as it would be without it.
            if held.is_some() && outcome.is_ok() {
                match slot {
                    Slot::Lent {
                        lease,
                        keyspace,
                        shard,
                        ..
                    } => {
                        let failed = FailedPrimary {
                            alias: Some(lease.pool().alias().clone()),
                            term: self.primary_term(&keyspace, &shard),
                            why: format!("tablet {} is read-only", lease.pool().label()),
                        };
                        lease.release();
                        if !self
                            .buffer_wait(&keyspace, &shard, Some(failed), &mut buffering)
                            .await
                        {
                            return Ok(());
                        }
                        slot = match self.checkout(&mut buffering).await {
                            Ok(slot) => slot,
                            Err(()) => return Ok(()),
                        };
                        retried = false;
                        continue;
                    }
                    Slot::Pinned(i) => {
                        // Closing rolls the transaction back: its writes can
                        // never land on the new primary.
                        self.pinned.swap_remove(i).lease.discard();
                        return self.send_gate_error(1105, "HY000", TX_ABORTED).await;
                    }
                }
            }
            match outcome {
                Ok(summary) => {
                    if summary.error.is_some() {
                        self.shared.metrics.errors.inc();
                    }
                    let status = match &summary.ok {
                        Some(ok) => {
                            if ok.last_insert_id != 0 {
                                self.last_insert_id = ok.last_insert_id;
                            }
                            Some(summary.status)
                        }
                        // An error ends the response without a status; a
                        // statement that may have opened a transaction keeps
                        // the connection until a later status says otherwise.
                        None if summary.error.is_some() => (kind == StatementKind::Begin
                            || flags.contains(Flags::MULTI))
                        .then_some(self.status | StatusFlags::SERVER_STATUS_IN_TRANS),
                        None => Some(summary.status),
                    };
                    self.settle_after(
                        slot,
                        needs_reservation(flags),
                        status,
                        marked::may_write(kind),
                    );
                    return Ok(());
                }
                Err(AttemptError::Prepare(err)) => {
                    self.settle(slot, false, None);
                    return self.send_error(err.code, &err.sqlstate, &err.message).await;
                }
                Err(AttemptError::BadExecute(why)) => {
                    self.settle(slot, false, None);
                    tracing::debug!(peer = %self.peer, "bad execute packet: {why}");
                    return self
                        .send_gate_error(
                            1210,
                            "HY000",
                            "Incorrect arguments to mysqld_stmt_execute",
                        )
                        .await;
                }
                Err(AttemptError::Client(e)) => {
                    // The response was drained, but its final status (say, an
                    // open transaction) is unknown: do not give it to others.
                    tracing::debug!(peer = %self.peer, "client write failed: {e}");
                    drop_slot(&mut self.pinned, slot);
                    return Err(End);
                }
                Err(AttemptError::Protocol(why)) => {
                    tracing::warn!(peer = %self.peer, "protocol error relaying a response: {why}");
                    let tablet = slot_label(&self.pinned, &slot);
                    drop_slot(&mut self.pinned, slot);
                    if self.client.get_ref().written() != written_before {
                        return Err(End);
                    }
                    // Nothing reached the client (e.g. a refused LOCAL INFILE
                    // request): it can still be told.
                    self.client.clear_write_buffer();
                    let message = format!("unsupported response from tablet {tablet}: {why}");
                    return self.send_gate_error(1105, "HY000", &message).await;
                }
                Err(e @ (AttemptError::Backend(_) | AttemptError::Deposed(_))) => {
                    let (reason, deposed) = match e {
                        AttemptError::Deposed(r) => (r, true),
                        AttemptError::Backend(r) => (r, false),
                        _ => unreachable!("matched above"),
                    };
                    if self.client.get_ref().written() != written_before {
                        // Part of the response already reached the client:
                        // nothing can be said that it would understand.
                        tracing::warn!(peer = %self.peer, "backend failed mid-response: {reason}");
                        drop_slot(&mut self.pinned, slot);
                        return Err(End);
                    }
                    self.client.clear_write_buffer();
                    if let Some((marking, marker)) = mark {
                        // The write may have committed: its marker tells.
                        match self
                            .settle_marked_outcome(slot, marking, marker, &reason, &mut buffering)
                            .await?
                        {
                            Some(next) => (slot, retried) = (next, false),
                            None => return Ok(()),
                        }
                        continue;
                    }
                    let next = self
                        .after_backend_failure(
                            slot,
                            retried || deposed,
                            &reason,
                            replayable,
                            may_commit,
                        )
                        .await?;
                    match self.resume(next, &mut buffering).await {
                        Some((next_slot, is_retry)) => (slot, retried) = (next_slot, is_retry),
                        None => return Ok(()),
                    }
                }
            }
        }
    }
}

/// An idle backend connection has nothing to say: pending bytes (say, a
/// "connection killed" error) or end-of-stream mean the server dropped it.
/// Reads no socket unless the reactor saw it become readable.
fn backend_looks_alive(conn: &mut PooledConn) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        conn.backend.conn.get_ref().try_read(&mut byte),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock
    )
}

fn slot_conn<'a>(pinned: &'a mut [PinnedConn], slot: &'a mut Slot) -> &'a mut PooledConn {
    match slot {
        Slot::Pinned(i) => pinned[*i].lease.conn(),
        Slot::Lent { lease, .. } => lease.conn(),
    }
}

fn slot_pool<'a>(pinned: &'a [PinnedConn], slot: &'a Slot) -> &'a Arc<crate::pool::TabletPool> {
    match slot {
        Slot::Pinned(i) => pinned[*i].lease.pool(),
        Slot::Lent { lease, .. } => lease.pool(),
    }
}

fn slot_label(pinned: &[PinnedConn], slot: &Slot) -> String {
    match slot {
        Slot::Pinned(i) => pinned[*i].lease.pool().label().to_string(),
        Slot::Lent { lease, .. } => lease.pool().label().to_string(),
    }
}

/// Closes the slot's connection.
fn drop_slot(pinned: &mut Vec<PinnedConn>, slot: Slot) {
    match slot {
        Slot::Pinned(i) => pinned.swap_remove(i).lease.discard(),
        Slot::Lent { lease, .. } => lease.discard(),
    }
}

fn read_u32(b: &[u8]) -> Option<u32> {
    b.get(..4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

fn relay_failure(e: RelayError) -> AttemptError {
    match e {
        RelayError::Backend(io) => AttemptError::Backend(io.to_string()),
        RelayError::Client(io) => AttemptError::Client(io),
        RelayError::Protocol(p) => AttemptError::Protocol(p),
    }
}

/// One try of a command on one backend connection.
async fn attempt(
    conn: &mut PooledConn,
    client: &mut ClientConn,
    request: &Request<'_>,
    stmts: &mut HashMap<u32, PreparedStmt>,
    exec_buf: &mut Vec<u8>,
    mut mark: Option<marked::MarkedSend<'_>>,
) -> Result<ResponseSummary, AttemptError> {
    let binary = match request {
        Request::Raw(payload) => {
            marked::write_opening(conn, mark.as_mut());
            let mut seq = 0;
            conn.backend.conn.write_packet(&mut seq, payload);
            false
        }
        Request::Query(sql) => {
            marked::write_opening(conn, mark.as_mut());
            conn.backend.write_command(COM_QUERY, sql);
            false
        }
        Request::FieldList(body) => {
            conn.backend.write_command(COM_FIELD_LIST, body);
            conn.backend
                .flush()
                .await
                .map_err(|e| AttemptError::Backend(e.to_string()))?;
            return tessera_wire::relay_field_list(&mut conn.backend, client)
                .await
                .map_err(relay_failure);
        }
        Request::Execute { stmt_id, body } => {
            let Some(stmt) = stmts.get_mut(stmt_id) else {
                return Err(AttemptError::BadExecute("statement vanished".to_string()));
            };
            let header = tessera_wire::parse_execute(body, stmt.num_params)
                .map_err(AttemptError::BadExecute)?;
            if let Some(types) = header.param_types {
                stmt.param_types.clear();
                stmt.param_types.extend_from_slice(types);
            }
            if stmt.num_params > 0 && stmt.param_types.len() < 2 * stmt.num_params as usize {
                return Err(AttemptError::BadExecute(
                    "parameters were never bound with their types".to_string(),
                ));
            }
            let backend_id = match conn.stmts.get(&stmt.sql) {
                Some(id) => id,
                None => {
                    let prepared = match tessera_wire::prepare_on_backend(
                        &mut conn.backend,
                        &stmt.sql,
                    )
                    .await
                    {
                        Ok(p) => p,
                        Err(BackendError::Server(err)) => return Err(AttemptError::Prepare(err)),
                        Err(e) => return Err(AttemptError::Backend(backend_error_text(&e))),
                    };
                    if let Some(evicted) =
                        conn.stmts.insert(stmt.sql.clone(), prepared.statement_id)
                    {
                        conn.backend
                            .write_command(COM_STMT_CLOSE, &evicted.to_le_bytes());
                    }
                    prepared.statement_id
                }
            };
            // After the prepare: its answer is read at once, the rest later.
            marked::write_opening(conn, mark.as_mut());
            for (param, data) in &stmt.long_data {
                let mut seq = 0;
                conn.backend.conn.write_packet_parts(
                    &mut seq,
                    &[
                        &[COM_STMT_SEND_LONG_DATA],
                        &backend_id.to_le_bytes(),
                        &param.to_le_bytes(),
                        data,
                    ],
                );
            }
            exec_buf.clear();
            tessera_wire::rewrite_execute(
                exec_buf,
                backend_id,
                &header,
                &stmt.param_types,
                stmt.num_params,
            );
            conn.backend.write_command(COM_STMT_EXECUTE, exec_buf);
            true
        }
    };
    if let Some(mut mark) = mark {
        marked::write_closing(conn, &mut mark);
        conn.backend
            .flush()
            .await
            .map_err(|e| AttemptError::Backend(e.to_string()))?;
        return marked::read_answers(conn, client, mark.marking).await;
    }
    conn.backend
        .flush()
        .await
        .map_err(|e| AttemptError::Backend(e.to_string()))?;
    tessera_wire::relay_response(&mut conn.backend, client, binary)
        .await
        .map_err(relay_failure)
}
