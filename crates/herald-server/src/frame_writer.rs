//! Writes server frames to a socket, coalescing: every frame already queued for the connection goes out in
//! one write (one syscall) instead of one each. Server frames are unmasked, so encoding is a 2-10 byte
//! header before the shared payload; the batch buffer is kept between writes and trimmed when a burst made
//! it large, so an idle connection holds no big buffer.

use tokio::io::{AsyncWrite, AsyncWriteExt};

/// A batch stops growing past this many bytes.
pub const BATCH_BYTES: usize = 64 * 1024;
/// A buffer grown past this is released after the write.
const KEEP_BYTES: usize = 16 * 1024;

const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PONG: u8 = 0xA;

pub struct FrameWriter<W> {
    io: W,
    buf: Vec<u8>,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub fn new(io: W) -> Self {
        FrameWriter { io, buf: Vec::new() }
    }

    fn header(&mut self, opcode: u8, len: usize) {
        self.buf.push(0x80 | opcode);
        if len < 126 {
            self.buf.push(len as u8);
        } else if len <= u16::MAX as usize {
            self.buf.push(126);
            self.buf.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.buf.push(127);
            self.buf.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }

    /// Adds a text frame to the batch.
    pub fn text(&mut self, payload: &[u8]) {
        self.header(TEXT, payload.len());
        self.buf.extend_from_slice(payload);
    }

    /// Adds an empty pong to the batch.
    /// Adds a pong echoing the ping's payload (RFC 6455 5.5.3).
    pub fn pong(&mut self, payload: &[u8]) {
        self.header(PONG, payload.len());
        self.buf.extend_from_slice(payload);
    }

    /// Adds a close frame (code and a reason cut to fit a control frame).
    pub fn close(&mut self, code: u16, reason: &str) {
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        self.header(CLOSE, 2 + end);
        self.buf.extend_from_slice(&code.to_be_bytes());
        self.buf.extend_from_slice(&reason.as_bytes()[..end]);
    }

    pub fn batch_len(&self) -> usize {
        self.buf.len()
    }

    /// Writes the batch in one go.
    pub async fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = self.io.write_all(&self.buf).await;
        self.buf.clear();
        if self.buf.capacity() > KEEP_BYTES {
            self.buf = Vec::new();
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn frames_are_encoded_and_batched() {
        let mut out = Vec::new();
        {
            let mut w = FrameWriter::new(&mut out);
            w.text(b"hi");
            w.text(&[b'x'; 300]);
            w.pong(b"p1");
            w.close(4100, "slow");
            w.flush().await.unwrap();
        }
        assert_eq!(&out[..4], &[0x81, 2, b'h', b'i']);
        assert_eq!(&out[4..8], &[0x81, 126, 1, 44]);
        let rest = &out[8 + 300..];
        assert_eq!(&rest[..4], &[0x8A, 2, b'p', b'1'], "the pong echoes the ping's payload");
        assert_eq!(&rest[4..8], &[0x88, 6, 0x10, 0x04]);
        assert_eq!(&rest[8..], b"slow");
        let mut big = Vec::new();
        let mut w = FrameWriter::new(&mut big);
        w.text(&vec![b'y'; 70_000]);
        w.flush().await.unwrap();
        assert_eq!(&big[..2], &[0x81, 127]);
        assert_eq!(u64::from_be_bytes(big[2..10].try_into().unwrap()), 70_000);
    }
}
