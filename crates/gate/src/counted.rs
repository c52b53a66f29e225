//! A stream wrapper that counts the bytes written to the client, so the gate
//! knows exactly whether any part of a response already left the process
//! (only then is a transparent retry on another backend connection unsafe).
//! It can also hold back a lone "read-only" error packet, so that a statement
//! refused by a primary being demoted can wait for the new one unseen.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub struct Counted<S> {
    inner: S,
    written: u64,
    hold_read_only: bool,
    held: Option<Vec<u8>>,
}

/// ER_OPTION_PREVENTS_STATEMENT: the server runs with --read-only.
pub const ER_READ_ONLY: u16 = 1290;

/// The bytes are exactly one ERR packet saying the server is read-only (the
/// same code also refuses e.g. files outside secure_file_priv).
fn is_read_only_error(buf: &[u8]) -> bool {
    buf.len() >= 7
        && usize::from(buf[0]) | usize::from(buf[1]) << 8 | usize::from(buf[2]) << 16
            == buf.len() - 4
        && buf[4] == 0xFF
        && u16::from_le_bytes([buf[5], buf[6]]) == ER_READ_ONLY
        && buf[7..].windows(9).any(|w| w == b"read-only")
}

impl<S> Counted<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            written: 0,
            hold_read_only: false,
            held: None,
        }
    }

    /// While set, a write that is exactly one read-only ERR packet is kept
    /// back (not counted as written) for `take_held`.
    pub fn hold_read_only_error(&mut self, hold: bool) {
        self.hold_read_only = hold;
    }

    /// The ERR packet held back since the last call, if any.
    pub fn take_held(&mut self) -> Option<Vec<u8>> {
        self.held.take()
    }

    /// Bytes handed to the stream so far.
    pub fn written(&self) -> u64 {
        self.written
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.hold_read_only && this.held.is_none() && is_read_only_error(buf) {
            this.held = Some(buf.to_vec());
            return Poll::Ready(Ok(buf.len()));
        }
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(Ok(n)) => {
                this.written += n as u64;
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.hold_read_only {
            // One slice at a time so a lone ERR packet is seen whole.
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map_or(&[][..], |b| &b[..]);
            return self.poll_write(cx, first);
        }
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(Ok(n)) => {
                this.written += n as u64;
                Poll::Ready(Ok(n))
            }
            other => other,
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::is_read_only_error;

    fn err_packet(code: u16, message: &str) -> Vec<u8> {
        let mut payload = vec![0xFF];
        payload.extend_from_slice(&code.to_le_bytes());
        payload.extend_from_slice(b"#HY000");
        payload.extend_from_slice(message.as_bytes());
        let len = payload.len();
        let mut packet = vec![len as u8, (len >> 8) as u8, (len >> 16) as u8, 1];
        packet.extend_from_slice(&payload);
        packet
    }

    #[test]
    fn only_a_lone_read_only_error_is_recognised() {
        let read_only = err_packet(
            1290,
            "The MariaDB server is running with the --read-only option so it cannot execute this statement",
        );
        assert!(is_read_only_error(&read_only));
        let secure_file = err_packet(
            1290,
            "The MariaDB server is running with the --secure-file-priv option so it cannot execute this statement",
        );
        assert!(!is_read_only_error(&secure_file));
        assert!(!is_read_only_error(&err_packet(
            1062,
            "Duplicate entry 'read-only'"
        )));
        // Followed by more bytes (another packet): not a lone error.
        let mut two = read_only.clone();
        two.extend_from_slice(&read_only);
        assert!(!is_read_only_error(&two));
        assert!(!is_read_only_error(&read_only[..read_only.len() - 1]));
        assert!(!is_read_only_error(&[]));
    }
}
