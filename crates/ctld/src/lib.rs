//! ctld, the control plane: an HTTP API over the topology and the tablet
//! agents (`tessera ctld`), the operations behind it (`ops`), and its
//! command-line client (`tessera ctl`, in `cli`).

pub mod cli;
pub mod error;
pub mod events;
pub mod gtid;
mod http;
pub mod listing;
pub mod ops;
pub mod orc;
pub mod reparent;
pub mod statements;
pub mod vschema;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use tessera_topo::Topo;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use error::CtldError;
pub use http::{ApplySchemaRequest, InitPrimaryRequest, OPENAPI_JSON};
pub use ops::{KeyspaceInfo, ShardResult, StatusInfo, TabletInfo};

#[derive(Debug, Clone)]
pub struct CtldConfig {
    /// Where the HTTP API listens (127.0.0.1:15000 by default; port 0 picks one).
    pub http_listen: SocketAddr,
    /// The cell this ctld reports as its own.
    pub cell: String,
    /// Serve reads only: every mutating endpoint answers 403.
    pub read_only: bool,
}

/// A running ctld. Dropping it without `shutdown` leaves the server running
/// until the runtime stops.
pub struct Ctld {
    http_addr: SocketAddr,
    stop: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

impl Ctld {
    pub async fn start(cfg: CtldConfig, topo: Topo) -> anyhow::Result<Ctld> {
        let listener = tokio::net::TcpListener::bind(cfg.http_listen)
            .await
            .with_context(|| format!("ctld cannot listen on {}", cfg.http_listen))?;
        let http_addr = listener.local_addr()?;
        let state = Arc::new(http::AppState {
            topo,
            cell: cfg.cell,
            read_only: cfg.read_only,
            started: Instant::now(),
        });
        let app = http::router(state);
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "ctld HTTP server failed");
            }
        });
        tracing::info!(%http_addr, read_only = cfg.read_only, "ctld listening");
        Ok(Ctld {
            http_addr,
            stop,
            server,
        })
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Stops accepting requests and waits for those in flight to finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        if let Err(e) = self.server.await {
            tracing::warn!(error = %e, "ctld server task ended abnormally");
        }
    }
}
