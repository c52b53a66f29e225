//! The agent's HTTP API (paths and bodies in `api.rs`), served with axum.
//! Every failure answers with an `ApiError` JSON body: 400 for requests that
//! cannot be carried out as asked (including MariaDB's refusals of SQL sent
//! to /execute), 500 when the agent or mysqld failed.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tokio::sync::watch;

use crate::agent::{OpError, Shared};
use crate::api::{
    ApiError, ChangeType, ExecuteRequest, ExecuteResult, KillResult, MysqldProbe, Positions,
    ProbeMysqld, Promote, ReplicateFrom, SchemaDefinition, SetReadOnly, TabletHealth,
    WaitForPosition, WaitResult,
};
use crate::health::mysqld_answers_login;

/// A probe of another mysqld answers a failure detector in a hurry; a
/// longer wait is a request mistake.
const MAX_PROBE_TIMEOUT_MS: u64 = 10_000;

struct Failure(StatusCode, String);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (self.0, Json(ApiError { error: self.1 })).into_response()
    }
}

impl From<OpError> for Failure {
    fn from(e: OpError) -> Self {
        match e {
            OpError::BadRequest(m) => Failure(StatusCode::BAD_REQUEST, m),
            OpError::Failed(e) => Failure(StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")),
        }
    }
}

impl From<JsonRejection> for Failure {
    fn from(e: JsonRejection) -> Self {
        Failure(
            StatusCode::BAD_REQUEST,
            format!("bad request body: {}", e.body_text()),
        )
    }
}

impl From<QueryRejection> for Failure {
    fn from(e: QueryRejection) -> Self {
        Failure(
            StatusCode::BAD_REQUEST,
            format!("bad query string: {}", e.body_text()),
        )
    }
}

type Answer<T> = Result<Json<T>, Failure>;
type Body<T> = Result<Json<T>, JsonRejection>;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/set-read-only", post(set_read_only))
        .route("/replicate-from", post(replicate_from))
        .route("/promote", post(promote))
        .route("/change-type", post(change_type))
        .route("/execute", post(execute))
        .route("/schema", get(schema))
        .route("/positions", get(positions))
        .route("/stop-io-thread", post(stop_io_thread))
        .route("/wait-for-position", post(wait_for_position))
        .route("/kill-app-connections", post(kill_app_connections))
        .route("/probe-mysqld", post(probe_mysqld))
        .fallback(|| async { Failure(StatusCode::NOT_FOUND, "no such agent endpoint".into()) })
        .with_state(shared)
}

pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let app = router(shared);
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::error!(error = %e, "agent HTTP server failed");
    }
}

async fn health(State(s): State<Arc<Shared>>) -> Json<TabletHealth> {
    Json(s.health().await)
}

async fn set_read_only(
    State(s): State<Arc<Shared>>,
    body: Body<SetReadOnly>,
) -> Answer<TabletHealth> {
    let Json(req) = body?;
    Ok(Json(s.op_set_read_only(req.read_only).await?))
}

async fn replicate_from(
    State(s): State<Arc<Shared>>,
    body: Body<ReplicateFrom>,
) -> Answer<TabletHealth> {
    let Json(req) = body?;
    Ok(Json(s.op_replicate_from(req).await?))
}

async fn promote(State(s): State<Arc<Shared>>, body: Body<Promote>) -> Answer<TabletHealth> {
    let Json(req) = body?;
    Ok(Json(s.op_promote(req.primary_term).await?))
}

async fn change_type(State(s): State<Arc<Shared>>, body: Body<ChangeType>) -> Answer<TabletHealth> {
    let Json(req) = body?;
    Ok(Json(s.op_change_type(req.tablet_type).await?))
}

async fn execute(
    State(s): State<Arc<Shared>>,
    body: Body<ExecuteRequest>,
) -> Answer<ExecuteResult> {
    let Json(req) = body?;
    Ok(Json(s.op_execute(req).await?))
}

#[derive(Deserialize)]
struct SchemaQuery {
    db: Option<String>,
}

async fn schema(
    State(s): State<Arc<Shared>>,
    query: Result<Query<SchemaQuery>, QueryRejection>,
) -> Answer<SchemaDefinition> {
    let Query(q) = query?;
    Ok(Json(s.op_schema(q.db).await?))
}

async fn positions(State(s): State<Arc<Shared>>) -> Answer<Positions> {
    Ok(Json(s.op_positions().await?))
}

async fn stop_io_thread(State(s): State<Arc<Shared>>) -> Answer<Positions> {
    Ok(Json(s.op_stop_io_thread().await?))
}

async fn wait_for_position(
    State(s): State<Arc<Shared>>,
    body: Body<WaitForPosition>,
) -> Answer<WaitResult> {
    let Json(req) = body?;
    Ok(Json(s.op_wait_for_position(req).await?))
}

async fn kill_app_connections(State(s): State<Arc<Shared>>) -> Answer<KillResult> {
    Ok(Json(s.op_kill_app_connections().await?))
}

/// Logs in as the replication user, which every tablet of a shard has.
/// Needs neither mysqld of its own nor the op lock: it only dials out, so
/// it answers even while a role change is under way.
async fn probe_mysqld(
    State(s): State<Arc<Shared>>,
    body: Body<ProbeMysqld>,
) -> Answer<MysqldProbe> {
    let Json(req) = body?;
    if req.host.is_empty() || req.port == 0 {
        return Err(Failure(
            StatusCode::BAD_REQUEST,
            "probe-mysqld needs a host and a non-zero port".into(),
        ));
    }
    if req.timeout_ms == 0 || req.timeout_ms > MAX_PROBE_TIMEOUT_MS {
        return Err(Failure(
            StatusCode::BAD_REQUEST,
            format!("timeout_ms must be within 1..={MAX_PROBE_TIMEOUT_MS}"),
        ));
    }
    let creds = &s.cfg.mysqld.credentials;
    let outcome = mysqld_answers_login(
        &req.host,
        req.port,
        &creds.repl_user,
        &creds.repl_password,
        std::time::Duration::from_millis(req.timeout_ms),
    )
    .await;
    Ok(Json(match outcome {
        Ok(took) => MysqldProbe {
            reachable: true,
            elapsed_ms: Some(took.as_millis() as u64),
            error: None,
        },
        Err(e) => MysqldProbe {
            reachable: false,
            elapsed_ms: None,
            error: Some(e),
        },
    }))
}
