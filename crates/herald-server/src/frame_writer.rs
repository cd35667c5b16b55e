//! Writes server frames to a socket, coalescing: every frame already queued for the connection goes out in
//! one write (one syscall) instead of one each. Server frames are unmasked, so encoding is a 2-10 byte
//! header before the shared payload. A frame that is alone in the queue (the usual case for a connection
//! that gets a broadcast now and then) goes out with its header in one write: a small one copied next to its
//! header in a buffer of the worker thread's, a large one vectored straight from the shared bytes. A batch
//! buffer exists only while a burst is written, so an idle connection holds none.

use std::io::IoSlice;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// A batch stops growing past this many bytes.
pub const BATCH_BYTES: usize = 64 * 1024;

/// A lone frame up to this size (header included) is copied into the thread's buffer and written with `send`.
const INLINE_FRAME: usize = 2048;

thread_local! {
    /// Where a small lone frame is put together with its header, one per worker thread rather than one per
    /// connection: it is filled and offered to the socket within one poll, never held across an await. A
    /// stack array would be zeroed (2 KiB) for every frame.
    static INLINE: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(Vec::with_capacity(INLINE_FRAME));
}

/// Offers `head` and `payload` to `io` as one plain write, copied together into the thread's buffer.
fn poll_write_joined<W: AsyncWrite + Unpin>(
    io: &mut W,
    cx: &mut std::task::Context<'_>,
    head: &[u8],
    payload: &[u8],
) -> std::task::Poll<std::io::Result<usize>> {
    INLINE.with(|cell| {
        // A frame written from inside another's write (never, today) gets a buffer of its own.
        let mut spare = Vec::new();
        let mut mine = cell.try_borrow_mut();
        let frame = match mine.as_deref_mut() {
            Ok(frame) => frame,
            Err(_) => &mut spare,
        };
        frame.clear();
        frame.extend_from_slice(head);
        frame.extend_from_slice(payload);
        std::pin::Pin::new(io).poll_write(cx, frame)
    })
}

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
        let (head, n) = header(opcode, len);
        self.buf.extend_from_slice(&head[..n]);
    }

    /// Writes one text frame at once, with nothing batched before it. A small frame is copied with its header
    /// into the worker thread's buffer while the socket is offered it, and goes out in one plain write
    /// (`send`, which the kernel takes for less than `writev`); no heap buffer is held. A large frame goes
    /// out in one vectored write straight from its shared bytes where the socket takes those. Whatever the
    /// socket does not take at once goes through the batch.
    pub async fn text_alone(&mut self, payload: &[u8]) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            self.text(payload);
            return self.flush().await;
        }
        let (head, h) = header(TEXT, payload.len());
        let total = h + payload.len();
        if total <= INLINE_FRAME {
            let io = &mut self.io;
            let written = std::future::poll_fn(|cx| {
                match poll_write_joined(&mut *io, cx, &head[..h], payload) {
                    std::task::Poll::Ready(result) => std::task::Poll::Ready(result),
                    // Not writable now: the rest goes through the batch, which waits for the socket.
                    std::task::Poll::Pending => std::task::Poll::Ready(Ok(0)),
                }
            })
            .await?;
            if written == total {
                return Ok(());
            }
            self.buf.extend_from_slice(&head[written.min(h)..h]);
            self.buf.extend_from_slice(&payload[written.saturating_sub(h)..]);
            return self.flush().await;
        }
        if !self.io.is_write_vectored() {
            self.text(payload);
            return self.flush().await;
        }
        let mut written = 0;
        while written < total {
            let n = if written < h {
                let parts = [IoSlice::new(&head[written..h]), IoSlice::new(payload)];
                self.io.write_vectored(&parts).await?
            } else {
                self.io.write(&payload[written - h..]).await?
            };
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            written += n;
        }
        Ok(())
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
        self.buf = Vec::new();
        result
    }
}

/// A frame's header (FIN set, unmasked) and its length.
fn header(opcode: u8, len: usize) -> ([u8; 10], usize) {
    let mut head = [0u8; 10];
    head[0] = 0x80 | opcode;
    if len < 126 {
        head[1] = len as u8;
        (head, 2)
    } else if len <= u16::MAX as usize {
        head[1] = 126;
        head[2..4].copy_from_slice(&(len as u16).to_be_bytes());
        (head, 4)
    } else {
        head[1] = 127;
        head[2..10].copy_from_slice(&(len as u64).to_be_bytes());
        (head, 10)
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

    #[tokio::test]
    async fn a_lone_frame_is_written_whole_through_partial_vectored_writes() {
        // A peer that reads 7 bytes at a time: the vectored write goes out in many short pieces.
        let (client, mut server) = tokio::io::duplex(7);
        let payload: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
        let expected = [&[0x81u8, 126, 1, 44][..], &payload].concat();
        let reading = tokio::spawn(async move {
            let mut got = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut server, &mut got)
                .await
                .unwrap();
            got
        });
        let mut w = FrameWriter::new(client);
        w.text_alone(&payload).await.unwrap();
        w.text_alone(b"ok").await.unwrap();
        drop(w);
        let got = reading.await.unwrap();
        assert_eq!(&got[..304], expected.as_slice());
        assert_eq!(&got[304..], &[0x81, 2, b'o', b'k']);
    }

    /// Writes `payloads` one by one as lone frames into a pipe that holds 4 + `room` bytes and already has
    /// 4 in it (an `ab` frame), while a peer reads it: what the peer got.
    async fn written_through_a_full_pipe(room: usize, payloads: &[&[u8]]) -> Vec<u8> {
        let (client, mut server) = tokio::io::duplex(4 + room);
        let mut w = FrameWriter::new(client);
        w.text_alone(b"ab").await.unwrap();
        let writing = async {
            for payload in payloads {
                w.text_alone(payload).await.unwrap();
            }
            drop(w);
        };
        let mut got = Vec::new();
        let reading = tokio::io::AsyncReadExt::read_to_end(&mut server, &mut got);
        let ((), read) = tokio::join!(writing, reading);
        read.unwrap();
        got
    }

    #[tokio::test]
    async fn a_lone_frame_the_socket_cannot_take_yet_is_written_when_it_can() {
        // The pipe is full: the first offer of the next frame is refused (pending), and the frame goes out
        // whole once the peer reads; then a frame too large for the stack copy.
        let small: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
        let large = vec![b'z'; 5000];
        let got = written_through_a_full_pipe(0, &[&small, &large]).await;
        let expected = [
            &[0x81u8, 2, b'a', b'b'][..],
            &[0x81, 126, 1, 44],
            &small,
            &[0x81, 126, 0x13, 0x88],
            &large,
        ]
        .concat();
        assert_eq!(got, expected);
    }

    #[tokio::test]
    async fn a_lone_frame_the_socket_takes_in_part_is_finished_from_where_it_stopped() {
        // The pipe has room for 2 bytes (inside the 4-byte header), then for 7 (past it): the rest of the
        // frame follows from where the socket stopped, once the peer reads.
        let payload: Vec<u8> = (0..300u32).map(|i| (i % 251) as u8).collect();
        for room in [2usize, 7] {
            let got = written_through_a_full_pipe(room, &[&payload]).await;
            let expected = [&[0x81u8, 2, b'a', b'b'][..], &[0x81, 126, 1, 44], &payload].concat();
            assert_eq!(got, expected, "room for {room} bytes");
        }
    }
}
