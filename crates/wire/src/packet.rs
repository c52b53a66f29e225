//! MySQL packet framing over any async byte stream: buffered reads, buffered writes,
//! splitting and joining of logical packets larger than one frame.
//!
//! The codec is hand-written rather than built on a generic `Decoder`: the gate relays
//! backend frames to clients byte for byte, so it needs borrowed access to whole raw
//! frames (header included) inside one reusable read buffer, and a write buffer it flushes
//! once per response. That keeps the relay path free of per-packet allocations and extra
//! syscalls.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// Largest payload one frame can carry; a logical packet of this length or more continues
/// in the next frame.
pub const MAX_FRAME: usize = 0xFF_FFFF;

/// Bytes the read buffer asks the socket for at least, so small frames are read in batches.
const READ_CHUNK: usize = 16 * 1024;

/// Buffers that grew past this for one big packet are replaced once empty.
const SHRINK_ABOVE: usize = 1024 * 1024;

/// One raw frame as it arrived: valid until the next read call on its connection.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    pub seq: u8,
    pub payload: &'a [u8],
    /// Header and payload, ready to be written unchanged to another connection.
    pub raw: &'a [u8],
}

/// A packet connection: a buffered read side and a write buffer over one stream.
pub struct PacketConn<S> {
    stream: S,
    read_buf: BytesMut,
    /// Bytes at the front of `read_buf` that belong to the frame last returned by
    /// `read_frame`; dropped at the start of the next read.
    consumed: usize,
    write_buf: BytesMut,
}

impl<S> PacketConn<S> {
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Gives back the stream and any bytes read from it but not yet consumed (for example the
    /// start of a TLS ClientHello), so the stream can be wrapped in another layer.
    pub fn into_parts(mut self) -> (S, BytesMut) {
        self.read_buf.advance(self.consumed);
        (self.stream, self.read_buf)
    }

    pub fn write_buffer_len(&self) -> usize {
        self.write_buf.len()
    }

    /// Appends bytes that are already framed (for example a relayed frame).
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.write_buf.extend_from_slice(bytes);
    }

    /// Frames `payload` into the write buffer, splitting it into MAX_FRAME pieces; `seq` is
    /// the id of the first frame and is advanced past the last one.
    pub fn write_packet(&mut self, seq: &mut u8, payload: &[u8]) {
        self.write_packet_parts(seq, &[payload]);
    }

    /// Like `write_packet` for a payload given as consecutive pieces (e.g. a command byte
    /// and its body), without first joining them.
    pub fn write_packet_parts(&mut self, seq: &mut u8, parts: &[&[u8]]) {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        self.write_buf.reserve(total + 4 * (total / MAX_FRAME + 1));
        let mut part_index = 0;
        let mut part_offset = 0;
        let mut remaining = total;
        loop {
            let frame_len = remaining.min(MAX_FRAME);
            self.write_buf
                .extend_from_slice(&(frame_len as u32).to_le_bytes()[..3]);
            self.write_buf.extend_from_slice(&[*seq]);
            *seq = seq.wrapping_add(1);
            let mut left = frame_len;
            while left > 0 {
                let part = parts[part_index];
                let take = (part.len() - part_offset).min(left);
                self.write_buf
                    .extend_from_slice(&part[part_offset..part_offset + take]);
                part_offset += take;
                left -= take;
                if part_offset == part.len() {
                    part_index += 1;
                    part_offset = 0;
                }
            }
            remaining -= frame_len;
            // A frame of exactly MAX_FRAME bytes promises a continuation, even an empty one.
            if frame_len < MAX_FRAME {
                break;
            }
            while part_index < parts.len() && parts[part_index].is_empty() {
                part_index += 1;
            }
        }
    }

    #[cfg(test)]
    pub(crate) fn take_write_buffer_for_test(&mut self) -> BytesMut {
        self.write_buf.split()
    }

    /// The bytes written into the buffer but not flushed, to amend or cut.
    pub fn write_buffer_mut(&mut self) -> &mut BytesMut {
        &mut self.write_buf
    }

    /// Drops whatever was written into the buffer but not flushed.
    pub fn clear_write_buffer(&mut self) {
        self.write_buf.clear();
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> PacketConn<S> {
    pub fn new(stream: S) -> Self {
        Self::with_read_buffer(stream, BytesMut::with_capacity(READ_CHUNK * 2))
    }

    /// Builds a connection whose read side starts with bytes already taken from the stream.
    pub fn with_read_buffer(stream: S, read_buf: BytesMut) -> Self {
        PacketConn {
            stream,
            read_buf,
            consumed: 0,
            write_buf: BytesMut::with_capacity(READ_CHUNK),
        }
    }

    /// Makes sure `n` unconsumed bytes are buffered. Ok(false) means the stream ended before
    /// any byte of them arrived; an end in the middle is an UnexpectedEof error.
    async fn fill(&mut self, n: usize) -> io::Result<bool> {
        while self.read_buf.len() < n {
            let want = (n - self.read_buf.len()).max(READ_CHUNK);
            self.read_buf.reserve(want);
            let read = self.stream.read_buf(&mut self.read_buf).await?;
            if read == 0 {
                if self.read_buf.is_empty() {
                    return Ok(false);
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed in the middle of a packet",
                ));
            }
        }
        Ok(true)
    }

    fn release_consumed(&mut self) {
        if self.consumed > 0 {
            self.read_buf.advance(self.consumed);
            self.consumed = 0;
        }
        // One huge packet must not pin its buffer for the rest of the connection.
        if self.read_buf.is_empty() && self.read_buf.capacity() > SHRINK_ABOVE {
            self.read_buf = BytesMut::with_capacity(READ_CHUNK * 2);
        }
    }

    /// Reads one whole frame and returns its length and seq, leaving it at the front of the
    /// read buffer. None on a clean end of stream between frames.
    async fn next_frame_header(&mut self) -> io::Result<Option<(usize, u8)>> {
        self.release_consumed();
        if !self.fill(4).await? {
            return Ok(None);
        }
        let len =
            u32::from_le_bytes([self.read_buf[0], self.read_buf[1], self.read_buf[2], 0]) as usize;
        let seq = self.read_buf[3];
        if !self.fill(4 + len).await? {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(Some((len, seq)))
    }

    /// Reads one raw frame without joining continuations (for relaying).
    pub async fn read_frame(&mut self) -> io::Result<Option<Frame<'_>>> {
        let Some((len, seq)) = self.next_frame_header().await? else {
            return Ok(None);
        };
        self.consumed = 4 + len;
        let raw = &self.read_buf[..4 + len];
        Ok(Some(Frame {
            seq,
            payload: &raw[4..],
            raw,
        }))
    }

    /// Reads one logical packet, joining frames; returns the seq of its first frame.
    /// None on a clean end of stream.
    pub async fn read_packet(&mut self) -> io::Result<Option<(u8, Bytes)>> {
        let Some((len, seq)) = self.next_frame_header().await? else {
            return Ok(None);
        };
        if len < MAX_FRAME {
            // Copied out rather than split off, so the read buffer stays uniquely owned and
            // is reused instead of reallocated while the caller holds the packet.
            let payload = Bytes::copy_from_slice(&self.read_buf[4..4 + len]);
            self.read_buf.advance(4 + len);
            return Ok(Some((seq, payload)));
        }
        let mut joined = BytesMut::with_capacity(len * 2);
        let mut frame_len = len;
        loop {
            joined.extend_from_slice(&self.read_buf[4..4 + frame_len]);
            self.read_buf.advance(4 + frame_len);
            if frame_len < MAX_FRAME {
                break;
            }
            match self.next_frame_header().await? {
                Some((next_len, _)) => frame_len = next_len,
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "connection closed before the last frame of a large packet",
                    ));
                }
            }
        }
        Ok(Some((seq, joined.freeze())))
    }

    /// Writes the buffered bytes to the stream and flushes it.
    pub async fn flush(&mut self) -> io::Result<()> {
        if !self.write_buf.is_empty() {
            let result = self.stream.write_all(&self.write_buf).await;
            self.write_buf.clear();
            if self.write_buf.capacity() > SHRINK_ABOVE {
                self.write_buf = BytesMut::with_capacity(READ_CHUNK);
            }
            result?;
        }
        self.stream.flush().await
    }

    /// Flushes the buffer, then writes `bytes` straight to the stream: used for big frames so
    /// they are not copied into the write buffer first.
    pub async fn write_through(&mut self, bytes: &[u8]) -> io::Result<()> {
        if !self.write_buf.is_empty() {
            let result = self.stream.write_all(&self.write_buf).await;
            self.write_buf.clear();
            result?;
        }
        self.stream.write_all(bytes).await
    }
}

/// Any stream the gate serves: plain TCP or TLS over TCP (server side).
pub enum ClientStream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl ClientStream {
    pub fn is_tls(&self) -> bool {
        matches!(self, ClientStream::Tls(_))
    }

    /// The TCP socket under the stream (for peer addresses, keepalive, nodelay).
    pub fn tcp(&self) -> &TcpStream {
        match self {
            ClientStream::Plain(s) => s,
            ClientStream::Tls(s) => s.get_ref().0,
        }
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            ClientStream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ClientStream::Plain(s) => s.is_write_vectored(),
            ClientStream::Tls(s) => s.is_write_vectored(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames_of(bytes: &[u8]) -> Vec<(usize, u8)> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            let len = u32::from_le_bytes([rest[0], rest[1], rest[2], 0]) as usize;
            out.push((len, rest[3]));
            rest = &rest[4 + len..];
        }
        out
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    /// Writes `payload` through one PacketConn and reads it back through another over an
    /// in-memory pipe; returns the frame layout seen on the wire.
    async fn round_trip(payload: &[u8], first_seq: u8) -> Vec<(usize, u8)> {
        let (a, b) = tokio::io::duplex(1 << 20);
        let mut writer = PacketConn::new(a);
        let mut reader = PacketConn::new(b);
        let mut seq = first_seq;
        writer.write_packet(&mut seq, payload);
        let layout = frames_of(&writer.write_buf);
        let expected_frames = payload.len() / MAX_FRAME + 1;
        assert_eq!(layout.len(), expected_frames);
        assert_eq!(seq, first_seq.wrapping_add(expected_frames as u8));
        let write = tokio::spawn(async move {
            writer.flush().await.unwrap();
            writer
        });
        let (read_seq, got) = reader.read_packet().await.unwrap().unwrap();
        assert_eq!(read_seq, first_seq);
        assert_eq!(got.len(), payload.len());
        assert!(got[..] == payload[..], "payload changed in transit");
        drop(write.await.unwrap());
        assert!(reader.read_packet().await.unwrap().is_none(), "clean EOF");
        layout
    }

    #[tokio::test]
    async fn small_and_empty_packets() {
        assert_eq!(round_trip(b"", 0).await, vec![(0, 0)]);
        assert_eq!(round_trip(b"\x03select 1", 0).await, vec![(9, 0)]);
    }

    #[tokio::test]
    async fn split_just_below_one_frame() {
        let layout = round_trip(&pattern(MAX_FRAME - 1), 0).await;
        assert_eq!(layout, vec![(MAX_FRAME - 1, 0)]);
    }

    #[tokio::test]
    async fn exact_frame_gets_empty_trailing_frame() {
        let layout = round_trip(&pattern(MAX_FRAME), 5).await;
        assert_eq!(layout, vec![(MAX_FRAME, 5), (0, 6)]);
    }

    #[tokio::test]
    async fn sixteen_mib_splits_in_two() {
        let layout = round_trip(&pattern(16 * 1024 * 1024), 0).await;
        assert_eq!(layout, vec![(MAX_FRAME, 0), (1, 1)]);
    }

    #[tokio::test]
    async fn twenty_mib_with_wrapping_seq() {
        let layout = round_trip(&pattern(20 * 1024 * 1024), 255).await;
        assert_eq!(
            layout,
            vec![(MAX_FRAME, 255), (20 * 1024 * 1024 - MAX_FRAME, 0)]
        );
    }

    #[tokio::test]
    async fn two_exact_frames_and_parts() {
        let payload = pattern(2 * MAX_FRAME);
        let (a, _b) = tokio::io::duplex(64);
        let mut conn = PacketConn::new(a);
        let mut seq = 0;
        // The same payload given as uneven pieces frames identically.
        conn.write_packet_parts(
            &mut seq,
            &[
                &payload[..1],
                &payload[1..MAX_FRAME + 7],
                &[],
                &payload[MAX_FRAME + 7..],
            ],
        );
        assert_eq!(
            frames_of(&conn.write_buf),
            vec![(MAX_FRAME, 0), (MAX_FRAME, 1), (0, 2)]
        );
        let mut joined = Vec::new();
        let mut rest = &conn.write_buf[..];
        while !rest.is_empty() {
            let len = u32::from_le_bytes([rest[0], rest[1], rest[2], 0]) as usize;
            joined.extend_from_slice(&rest[4..4 + len]);
            rest = &rest[4 + len..];
        }
        assert!(joined == payload);
    }

    #[tokio::test]
    async fn read_frame_returns_raw_frames_without_joining() {
        let (a, b) = tokio::io::duplex(1 << 20);
        let mut writer = PacketConn::new(a);
        let mut reader = PacketConn::new(b);
        let mut seq = 0;
        writer.write_packet(&mut seq, &pattern(MAX_FRAME + 10));
        writer.write_packet(&mut seq, b"next");
        let write = tokio::spawn(async move {
            writer.flush().await.unwrap();
        });
        let first = reader.read_frame().await.unwrap().unwrap();
        assert_eq!(
            (first.seq, first.payload.len(), first.raw.len()),
            (0, MAX_FRAME, MAX_FRAME + 4)
        );
        assert_eq!(&first.raw[..4], &[0xFF, 0xFF, 0xFF, 0]);
        let second = reader.read_frame().await.unwrap().unwrap();
        assert_eq!((second.seq, second.payload.len()), (1, 10));
        let third = reader.read_frame().await.unwrap().unwrap();
        assert_eq!((third.seq, third.payload), (2, &b"next"[..]));
        assert_eq!(third.raw, b"\x04\x00\x00\x02next");
        write.await.unwrap();
        assert!(reader.read_frame().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn truncated_packet_is_an_error_not_a_panic() {
        let (mut a, b) = tokio::io::duplex(64);
        let mut reader = PacketConn::new(b);
        a.write_all(&[10, 0, 0, 0, b'a', b'b']).await.unwrap();
        drop(a);
        let err = reader.read_packet().await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn into_parts_keeps_unread_bytes() {
        let (mut a, b) = tokio::io::duplex(64);
        let mut reader = PacketConn::new(b);
        a.write_all(&[1, 0, 0, 0, b'x', 0x16, 0x03, 0x01])
            .await
            .unwrap();
        let (_, packet) = reader.read_packet().await.unwrap().unwrap();
        assert_eq!(&packet[..], b"x");
        let (_, rest) = reader.into_parts();
        assert_eq!(&rest[..], &[0x16, 0x03, 0x01]);
    }
}
