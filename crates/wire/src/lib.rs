//! MySQL/MariaDB wire protocol for Tessera: framing, generic packets, the backend (client)
//! side, the zero-decode response relay, prepared statements and the server-side handshake.

pub mod auth;
pub mod backend;
pub mod binary_row;
pub mod handshake;
pub mod packet;
pub mod prepared;
pub mod protocol;
pub mod relay;

pub use backend::{BackendConfig, BackendConn, BackendError, QueryResult};
pub use binary_row::{put_binary_row, write_resultset};
pub use handshake::{
    AuthMethod, ClientHandshake, HandshakeError, ServerAuthConfig, UserCredential, UserStore,
    self_signed_tls_config, server_capabilities, server_change_user, server_handshake,
    tls_config_from_pem,
};
pub use packet::{ClientStream, Frame, MAX_FRAME, PacketConn};
pub use prepared::{
    ExecuteHeader, PrepareOk, parse_execute, prepare_on_backend, rewrite_execute, write_prepare_ok,
};
pub use protocol::{
    ColumnSpec, ErrInfo, OkInfo, clear_final_status, eof_or_ok_end, err_packet, ok_packet,
    parse_err, parse_ok, write_text_resultset,
};
pub use relay::{
    RelayError, ResponseSummary, discard_response, hold_response, relay_field_list, relay_response,
};

pub use mysql_common::constants::{CapabilityFlags, ColumnType, StatusFlags};
