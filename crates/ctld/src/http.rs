//! ctld's HTTP API (JSON under /api): thin handlers over `ops`, the mapping
//! of errors to status codes with a `{"error": "..."}` body, and the
//! read-only guard on mutating endpoints.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tessera_topo::{TabletAlias, Topo, TopoError};

use crate::error::{CtldError, bad_request};
use crate::ops;
use crate::reparent::{self, DEFAULT_WAIT_TIMEOUT};

/// The API description served at GET /api/openapi.json.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

pub(crate) struct AppState {
    pub topo: Topo,
    pub cell: String,
    pub read_only: bool,
    pub started: Instant,
}

type Shared = Arc<AppState>;

pub(crate) fn router(state: Shared) -> Router {
    Router::new()
        .route("/api/status", get(status))
        .route("/api/openapi.json", get(openapi))
        .route("/api/tablets", get(list_tablets))
        .route("/api/tablets/{alias}/schema", get(get_schema))
        .route("/api/keyspaces", get(list_keyspaces))
        .route(
            "/api/shards/{keyspace}/{shard}/init-primary",
            post(init_primary),
        )
        .route(
            "/api/shards/{keyspace}/{shard}/planned-reparent",
            post(planned_reparent),
        )
        .route(
            "/api/shards/{keyspace}/{shard}/emergency-reparent",
            post(emergency_reparent),
        )
        .route(
            "/api/tablets/{alias}/externally-reparented",
            post(externally_reparented),
        )
        .route("/api/tablets/{alias}/type", post(change_type))
        .route("/api/tablets/{alias}/drain", post(drain))
        .route("/api/tablets/{alias}/undrain", post(undrain))
        .route("/api/events", get(events))
        .route("/api/keyspaces/{keyspace}/schema", post(apply_schema))
        .route(
            "/api/keyspaces/{keyspace}/vschema",
            get(get_vschema).put(apply_vschema),
        )
        .route(
            "/api/routing-rules",
            get(get_routing_rules).put(apply_routing_rules),
        )
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// An error on its way to the client.
pub(crate) struct ApiFailure(anyhow::Error);

impl From<anyhow::Error> for ApiFailure {
    fn from(e: anyhow::Error) -> Self {
        Self(e)
    }
}

impl From<TopoError> for ApiFailure {
    fn from(e: TopoError) -> Self {
        Self(e.into())
    }
}

fn status_of(err: &anyhow::Error) -> StatusCode {
    if let Some(e) = err.downcast_ref::<CtldError>() {
        return match e {
            CtldError::BadRequest(_) => StatusCode::BAD_REQUEST,
            CtldError::NotFound(_) => StatusCode::NOT_FOUND,
            CtldError::Conflict(_) => StatusCode::CONFLICT,
            CtldError::Tablet(_) => StatusCode::BAD_GATEWAY,
            CtldError::Forbidden(_) => StatusCode::FORBIDDEN,
        };
    }
    match err.downcast_ref::<TopoError>() {
        Some(TopoError::NotFound(_)) => StatusCode::NOT_FOUND,
        Some(TopoError::LockTimeout(_) | TopoError::BadVersion { .. }) => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        let status = status_of(&self.0);
        let message = format!("{:#}", self.0);
        if status.is_server_error() {
            tracing::warn!(%status, error = %message, "ctld request failed");
        }
        (status, axum::Json(json!({ "error": message }))).into_response()
    }
}

type ApiResult<T> = Result<T, ApiFailure>;

fn json_ok<T: Serialize>(value: &T) -> Response {
    axum::Json(value).into_response()
}

fn ensure_writable(state: &AppState) -> ApiResult<()> {
    if state.read_only {
        return Err(ApiFailure(
            CtldError::Forbidden(
                "this ctld was started read-only; mutating actions are disabled".into(),
            )
            .into(),
        ));
    }
    Ok(())
}

fn parse_alias(text: &str) -> ApiResult<TabletAlias> {
    text.parse::<TabletAlias>()
        .map_err(|e| ApiFailure(bad_request(e)))
}

fn parse_body<T: for<'de> Deserialize<'de>>(body: &Bytes, example: &str) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        ApiFailure(bad_request(format!(
            "bad request body ({e}); expected JSON such as {example}"
        )))
    })
}

async fn not_found() -> ApiFailure {
    ApiFailure(crate::error::not_found(
        "no such endpoint; see GET /api/openapi.json",
    ))
}

async fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(
            json!({ "error": "method not allowed on this endpoint; see GET /api/openapi.json" }),
        ),
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

async fn status(State(state): State<Shared>) -> ApiResult<Response> {
    let info = ops::status(
        &state.topo,
        &state.cell,
        state.read_only,
        state.started.elapsed(),
    )
    .await?;
    Ok(json_ok(&info))
}

async fn list_tablets(State(state): State<Shared>) -> ApiResult<Response> {
    Ok(json_ok(&ops::list_tablets(&state.topo).await?))
}

async fn list_keyspaces(State(state): State<Shared>) -> ApiResult<Response> {
    Ok(json_ok(&ops::list_keyspaces(&state.topo).await?))
}

async fn get_schema(State(state): State<Shared>, Path(alias): Path<String>) -> ApiResult<Response> {
    let alias = parse_alias(&alias)?;
    Ok(json_ok(&ops::get_schema(&state.topo, &alias).await?))
}

/// Body of POST /api/shards/{ks}/{shard}/init-primary.
#[derive(Debug, Serialize, Deserialize)]
pub struct InitPrimaryRequest {
    pub alias: String,
}

async fn init_primary(
    State(state): State<Shared>,
    Path((keyspace, shard)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    ensure_writable(&state)?;
    let req: InitPrimaryRequest = parse_body(&body, r#"{"alias": "zone1-100"}"#)?;
    let alias = parse_alias(&req.alias)?;
    ops::init_shard_primary(&state.topo, &keyspace, &shard, &alias).await?;
    let shard_record = state
        .topo
        .get_shard(&keyspace, &shard)
        .await?
        .map(|(s, _)| s);
    Ok(json_ok(&shard_record))
}

/// Body of POST /api/keyspaces/{ks}/schema.
#[derive(Debug, Serialize, Deserialize)]
pub struct ApplySchemaRequest {
    pub sql: String,
}

async fn apply_schema(
    State(state): State<Shared>,
    Path(keyspace): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    ensure_writable(&state)?;
    let req: ApplySchemaRequest =
        parse_body(&body, r#"{"sql": "CREATE TABLE t (id INT PRIMARY KEY)"}"#)?;
    Ok(json_ok(
        &ops::apply_schema(&state.topo, &keyspace, &req.sql).await?,
    ))
}

async fn apply_vschema(
    State(state): State<Shared>,
    Path(keyspace): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    ensure_writable(&state)?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiFailure(bad_request("vschema is not UTF-8 text")))?;
    ops::apply_vschema(&state.topo, &keyspace, text).await?;
    vschema_response(ops::get_vschema(&state.topo, &keyspace).await?)
}

async fn apply_routing_rules(State(state): State<Shared>, body: Bytes) -> ApiResult<Response> {
    ensure_writable(&state)?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiFailure(bad_request("routing rules are not UTF-8 text")))?;
    ops::apply_routing_rules(&state.topo, text).await?;
    vschema_response(ops::get_routing_rules(&state.topo).await?)
}

async fn get_routing_rules(State(state): State<Shared>) -> ApiResult<Response> {
    vschema_response(ops::get_routing_rules(&state.topo).await?)
}

async fn get_vschema(
    State(state): State<Shared>,
    Path(keyspace): Path<String>,
) -> ApiResult<Response> {
    vschema_response(ops::get_vschema(&state.topo, &keyspace).await?)
}

fn vschema_response(text: String) -> ApiResult<Response> {
    Ok(([(header::CONTENT_TYPE, "application/json")], text).into_response())
}

/// Body of POST /api/shards/{ks}/{shard}/planned-reparent and
/// emergency-reparent; every field optional.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReparentRequest {
    #[serde(default)]
    pub new_primary: Option<String>,
    /// Planned reparent only.
    #[serde(default)]
    pub avoid_primary: Option<String>,
    #[serde(default)]
    pub wait_timeout_ms: Option<u64>,
    /// Emergency reparent only: act only if the shard's primary is still
    /// this tablet, in `expected_term` (both or neither).
    #[serde(default)]
    pub expected_primary: Option<String>,
    #[serde(default)]
    pub expected_term: Option<u64>,
}

fn parse_reparent(body: &Bytes) -> ApiResult<ReparentRequest> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ReparentRequest::default());
    }
    parse_body(
        body,
        r#"{"new_primary": "zone1-101", "avoid_primary": "zone1-100", "wait_timeout_ms": 30000}"#,
    )
}

fn optional_alias(text: &Option<String>) -> ApiResult<Option<TabletAlias>> {
    text.as_deref().map(parse_alias).transpose()
}

fn wait_timeout(req: &ReparentRequest) -> std::time::Duration {
    req.wait_timeout_ms
        .map_or(DEFAULT_WAIT_TIMEOUT, std::time::Duration::from_millis)
}

async fn planned_reparent(
    State(state): State<Shared>,
    Path((keyspace, shard)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    ensure_writable(&state)?;
    let req = parse_reparent(&body)?;
    if req.expected_primary.is_some() || req.expected_term.is_some() {
        return Err(ApiFailure(bad_request(
            "expected_primary and expected_term apply to emergency reparents only",
        )));
    }
    let new_primary = optional_alias(&req.new_primary)?;
    let avoid = optional_alias(&req.avoid_primary)?;
    Ok(json_ok(
        &reparent::planned_reparent_shard(
            &state.topo,
            &keyspace,
            &shard,
            new_primary.as_ref(),
            avoid.as_ref(),
            wait_timeout(&req),
        )
        .await?,
    ))
}

async fn emergency_reparent(
    State(state): State<Shared>,
    Path((keyspace, shard)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult<Response> {
    ensure_writable(&state)?;
    let req = parse_reparent(&body)?;
    if req.avoid_primary.is_some() {
        return Err(ApiFailure(bad_request(
            "avoid_primary applies to planned reparents only",
        )));
    }
    let new_primary = optional_alias(&req.new_primary)?;
    let expected = match (optional_alias(&req.expected_primary)?, req.expected_term) {
        (Some(alias), Some(term)) => Some(reparent::ExpectedPrimary { alias, term }),
        (None, None) => None,
        _ => {
            return Err(ApiFailure(bad_request(
                "expected_primary and expected_term go together",
            )));
        }
    };
    Ok(json_ok(
        &reparent::emergency_reparent_shard(
            &state.topo,
            &keyspace,
            &shard,
            new_primary.as_ref(),
            expected.as_ref(),
            wait_timeout(&req),
        )
        .await?,
    ))
}

async fn externally_reparented(
    State(state): State<Shared>,
    Path(alias): Path<String>,
) -> ApiResult<Response> {
    ensure_writable(&state)?;
    let alias = parse_alias(&alias)?;
    Ok(json_ok(
        &reparent::tablet_externally_reparented(&state.topo, &alias).await?,
    ))
}

/// Body of POST /api/tablets/{alias}/type.
#[derive(Debug, Serialize, Deserialize)]
pub struct ChangeTypeRequest {
    pub tablet_type: String,
}

async fn change_type(
    State(state): State<Shared>,
    Path(alias): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    ensure_writable(&state)?;
    let alias = parse_alias(&alias)?;
    let req: ChangeTypeRequest = parse_body(&body, r#"{"tablet_type": "rdonly"}"#)?;
    let tablet_type = req
        .tablet_type
        .parse()
        .map_err(|e: String| ApiFailure(bad_request(e)))?;
    Ok(json_ok(
        &reparent::change_tablet_type(&state.topo, &alias, tablet_type).await?,
    ))
}

async fn drain(State(state): State<Shared>, Path(alias): Path<String>) -> ApiResult<Response> {
    ensure_writable(&state)?;
    let alias = parse_alias(&alias)?;
    Ok(json_ok(
        &reparent::drain(&state.topo, &alias, DEFAULT_WAIT_TIMEOUT).await?,
    ))
}

async fn undrain(State(state): State<Shared>, Path(alias): Path<String>) -> ApiResult<Response> {
    ensure_writable(&state)?;
    let alias = parse_alias(&alias)?;
    Ok(json_ok(&reparent::undrain(&state.topo, &alias).await?))
}

async fn events(State(state): State<Shared>) -> ApiResult<Response> {
    Ok(json_ok(&crate::events::list_events(&state.topo).await?))
}
