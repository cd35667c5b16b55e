//! Reads a client's WebSocket messages (RFC 6455 framing) with no buffer held while the client is quiet.
//! fastwebsockets, which does the upgrade, keeps a fixed 8 KiB read buffer for every connection it reads,
//! two thirds of what an idle connection cost; here the buffer exists only while a frame is arriving and
//! is released once it has been read, so an idle connection holds no read memory at all.
//!
//! A frame's length is checked against the message limit before room is made for it: at most a message's
//! first bytes (256, or the limit and a header's 14 if that is less) are read before its header is.
//! Fragmented messages are put back together here; the caller gets whole messages.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt};

/// A whole message from the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Message {
    /// A text message, checked to be UTF-8.
    Text(String),
    /// A binary message (Pusher clients send none).
    Binary,
    /// A ping, with its payload to echo.
    Ping(Vec<u8>),
    Pong,
    /// The client closes, with its close code when it gave one.
    Close(Option<u16>),
}

/// Why reading stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The message is larger than the limit (Pusher's message-too-large close code).
    #[error("message larger than {0} bytes")]
    TooLarge(usize),
    /// A text message that is not UTF-8 (RFC 6455: close with 1007).
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
    /// The client broke the framing rules (RFC 6455: close with 1002).
    #[error("{0}")]
    Protocol(&'static str),
    /// The connection ended or failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// Room made once a frame starts arriving: its header and a small message without growing.
const FIRST_READ: usize = 256;

thread_local! {
    /// Where a message's first bytes are read, one per worker thread rather than one per connection: filled
    /// and copied out within one poll, never held across an await. It lets a quiet connection wait for its
    /// client with no buffer of its own and still take a whole small message in one read (a few bytes of
    /// the connection's own cost a second read, a system call, for every message).
    static FIRST: std::cell::RefCell<[u8; FIRST_READ]> = const { std::cell::RefCell::new([0; FIRST_READ]) };
}

/// Offers the client's next bytes, at most `room` of them, to `buf` (empty): read into the thread's buffer,
/// then copied into `buf` with room for `room` made at once. How many were read; 0 at the end of the stream.
fn poll_read_first<R: AsyncRead + Unpin>(
    io: &mut R,
    cx: &mut std::task::Context<'_>,
    buf: &mut Vec<u8>,
    room: usize,
) -> std::task::Poll<std::io::Result<usize>> {
    FIRST.with(|cell| {
        // A read from inside another's (never, today) gets a few bytes of its own.
        let mut spare = [0u8; 16];
        let mut mine = cell.try_borrow_mut();
        let scratch: &mut [u8] = match mine.as_deref_mut() {
            Ok(first) => first,
            Err(_) => &mut spare,
        };
        let len = scratch.len().min(room);
        let mut read = tokio::io::ReadBuf::new(&mut scratch[..len]);
        std::task::ready!(std::pin::Pin::new(io).poll_read(cx, &mut read))?;
        let got = read.filled();
        if !got.is_empty() {
            buf.reserve_exact(room.max(got.len()));
            buf.extend_from_slice(got);
        }
        std::task::Poll::Ready(Ok(got.len()))
    })
}

pub struct FrameReader {
    /// Bytes read and not yet used; no allocation while empty.
    buf: Vec<u8>,
    /// The largest message accepted, in bytes.
    max: usize,
    /// A fragmented message being put together: whether it is text, and its bytes so far.
    partial: Option<(bool, Vec<u8>)>,
    /// Bytes the client sent before the reader took over (with its handshake), taken before the stream's, as
    /// reads would take them: a piece at a time, so many small frames cost the same as from the socket. The
    /// `Bytes` keeps hyper's whole read buffer (8 KiB or more) alive until its last byte is taken; it is
    /// gone once empty. Only a client that sends before its handshake is answered has it.
    early: Option<Box<Bytes>>,
}

impl FrameReader {
    pub fn new(max_message_size: usize) -> Self {
        FrameReader {
            buf: Vec::new(),
            max: max_message_size,
            partial: None,
            early: None,
        }
    }

    /// A reader that first takes `already_read`: what the client sent before the connection was handed over
    /// (right after its handshake, read with it).
    pub fn after(max_message_size: usize, already_read: Bytes) -> Self {
        FrameReader {
            early: (!already_read.is_empty()).then(|| Box::new(already_read)),
            ..Self::new(max_message_size)
        }
    }

    /// Reads until `buf` holds at least `need` bytes. While nothing is buffered, the client's next bytes are
    /// read into the worker thread's buffer and only then copied into a buffer of the connection's, so a
    /// quiet connection holds no read buffer, and a small message arrives in one read.
    async fn fill<R: AsyncRead + Unpin>(&mut self, io: &mut R, need: usize) -> std::io::Result<()> {
        // A message's first read: its first bytes, no more than the largest message and a header could be.
        let first_read = FIRST_READ.min(self.max.saturating_add(14));
        while self.buf.len() < need {
            if let Some(early) = self.early.as_deref_mut() {
                let take = need.saturating_sub(self.buf.len()).max(first_read).min(early.len());
                self.buf.extend_from_slice(&early.split_to(take));
                if early.is_empty() {
                    self.early = None;
                }
                continue;
            }
            if self.buf.is_empty() {
                let room = need.max(first_read);
                let buf = &mut self.buf;
                let n = std::future::poll_fn(|cx| poll_read_first(&mut *io, cx, buf, room)).await?;
                if n == 0 {
                    return Err(std::io::ErrorKind::UnexpectedEof.into());
                }
                continue;
            }
            self.buf.reserve(need.saturating_sub(self.buf.len()));
            if io.read_buf(&mut self.buf).await? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(())
    }

    /// Drops the first `n` bytes; releases the buffer when nothing is left in it, and shrinks it when a large
    /// frame is done and only the start of the next is left.
    fn consume(&mut self, n: usize) {
        if n >= self.buf.len() {
            self.buf = Vec::new();
        } else {
            self.buf.drain(..n);
            if self.buf.capacity() > 2 * FIRST_READ && self.buf.len() <= FIRST_READ {
                self.buf.shrink_to(FIRST_READ);
            }
        }
    }

    /// The next whole message. Cancel-safe: everything read is kept in the reader (`buf`, `partial`, `early`)
    /// before any await, so a call dropped part way (the connection's other wake-ups do that) loses nothing.
    /// Keep it so: no await after bytes are taken out of `buf` or `early`.
    pub async fn next<R: AsyncRead + Unpin>(&mut self, io: &mut R) -> Result<Message, ReadError> {
        loop {
            self.fill(io, 2).await?;
            let (b0, b1) = (self.buf[0], self.buf[1]);
            let fin = b0 & 0x80 != 0;
            if b0 & 0x70 != 0 {
                return Err(ReadError::Protocol("Reserved bits are not zero"));
            }
            let opcode = b0 & 0x0F;
            if b1 & 0x80 == 0 {
                return Err(ReadError::Protocol("Client frames must be masked"));
            }
            let (extra, short) = match b1 & 0x7F {
                126 => (2, None),
                127 => (8, None),
                n => (0, Some(n as u64)),
            };
            let header = 2 + extra + 4;
            self.fill(io, header).await?;
            let len = match short {
                Some(n) => n,
                None if extra == 2 => u16::from_be_bytes([self.buf[2], self.buf[3]]) as u64,
                None => u64::from_be_bytes(self.buf[2..10].try_into().expect("8 bytes")),
            };
            if len >> 63 != 0 {
                return Err(ReadError::Protocol("Frame length with its most significant bit set"));
            }
            let control = opcode & 0x8 != 0;
            match opcode {
                CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG => {}
                _ => return Err(ReadError::Protocol("Reserved opcode")),
            }
            if control && (!fin || len > 125) {
                return Err(ReadError::Protocol(if fin {
                    "Control frame over 125 bytes"
                } else {
                    "Fragmented control frame"
                }));
            }
            let so_far = self.partial.as_ref().map_or(0, |(_, b)| b.len()) as u64;
            if !control && so_far.saturating_add(len) > self.max as u64 {
                return Err(ReadError::TooLarge(self.max));
            }
            let len = len as usize;
            self.fill(io, header + len).await?;
            let mask: [u8; 4] = self.buf[header - 4..header].try_into().expect("4 bytes");
            let mut payload = self.buf[header..header + len].to_vec();
            self.consume(header + len);
            for (i, b) in payload.iter_mut().enumerate() {
                *b ^= mask[i & 3];
            }
            let (text, whole) = match opcode {
                CLOSE => return close(&payload),
                PING => return Ok(Message::Ping(payload)),
                PONG => return Ok(Message::Pong),
                CONTINUATION => {
                    let Some((text, mut bytes)) = self.partial.take() else {
                        return Err(ReadError::Protocol("Continuation frame without a message to continue"));
                    };
                    bytes.extend_from_slice(&payload);
                    if !fin {
                        self.partial = Some((text, bytes));
                        continue;
                    }
                    (text, bytes)
                }
                _ => {
                    if self.partial.is_some() {
                        return Err(ReadError::Protocol("New message before the fragmented one ended"));
                    }
                    if !fin {
                        self.partial = Some((opcode == TEXT, payload));
                        continue;
                    }
                    (opcode == TEXT, payload)
                }
            };
            return match (text, String::from_utf8(whole)) {
                (true, Ok(text)) => Ok(Message::Text(text)),
                (true, Err(_)) => Err(ReadError::InvalidUtf8),
                (false, _) => Ok(Message::Binary),
            };
        }
    }

    /// True while no read memory is held.
    #[cfg(test)]
    fn holds_nothing(&self) -> bool {
        self.buf.capacity() == 0 && self.partial.is_none() && self.early.is_none()
    }
}

/// A close frame's payload: nothing, or a code the RFC allows on the wire and a UTF-8 reason.
fn close(payload: &[u8]) -> Result<Message, ReadError> {
    match payload {
        [] => Ok(Message::Close(None)),
        [_] => Err(ReadError::Protocol("Close frame with a one-byte payload")),
        [a, b, reason @ ..] => {
            let code = u16::from_be_bytes([*a, *b]);
            let allowed = matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999);
            if !allowed {
                return Err(ReadError::Protocol("Close code not allowed on the wire"));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err(ReadError::InvalidUtf8);
            }
            Ok(Message::Close(Some(code)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(opcode: u8, payload: &[u8], fin: bool) -> Vec<u8> {
        let mask = [0x11, 0x22, 0x33, 0x44];
        let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    async fn read_all(bytes: Vec<u8>, max: usize) -> Vec<Result<Message, String>> {
        let mut reader = FrameReader::new(max);
        let mut io = bytes.as_slice();
        let mut out = Vec::new();
        loop {
            match reader.next(&mut io).await {
                Err(ReadError::Io(_)) => return out,
                Err(e) => {
                    out.push(Err(e.to_string()));
                    return out;
                }
                Ok(m) => out.push(Ok(m)),
            }
        }
    }

    /// Counts the reads a reader asks of the stream.
    struct Counted<'a> {
        bytes: &'a [u8],
        reads: usize,
    }

    impl AsyncRead for Counted<'_> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            self.reads += 1;
            std::pin::Pin::new(&mut self.bytes).poll_read(cx, buf)
        }
    }

    /// A subscribe, as pusher-js sends it (a private channel's, 149 bytes), is taken in one read, not one for
    /// its first bytes and another for the rest: a read is a system call, for every message a client sends.
    /// A large message still arrives whole, in as many reads as it needs.
    #[tokio::test]
    async fn a_small_message_is_taken_in_one_read() {
        let subscribe = r#"{"event":"pusher:subscribe","data":{"auth":"app-key:0f4c2a8e9b1d3f5a7c9e0b2d4f6a8c0e1f3b5d7a9c2e4f6b8d0a1c3e5f7b9d1a","channel":"private-orders.42"}}"#;
        let bytes = frame(TEXT, subscribe.as_bytes(), true);
        let mut io = Counted {
            bytes: &bytes,
            reads: 0,
        };
        let mut reader = FrameReader::new(10_000);
        assert_eq!(reader.next(&mut io).await.unwrap(), Message::Text(subscribe.into()));
        assert_eq!(io.reads, 1, "a {}-byte frame in one read", bytes.len());
        assert!(reader.holds_nothing());

        let big = "z".repeat(5000);
        let bytes = frame(TEXT, big.as_bytes(), true);
        let mut io = Counted {
            bytes: &bytes,
            reads: 0,
        };
        assert_eq!(reader.next(&mut io).await.unwrap(), Message::Text(big));
        assert!(reader.holds_nothing());
    }

    /// Bytes read before the reader was made (with the handshake) come first, a frame split across them and
    /// the stream included.
    #[tokio::test]
    async fn bytes_read_before_come_first() {
        let mut bytes = frame(PING, b"early", true);
        bytes.extend(frame(TEXT, b"{\"split\":true}", true));
        let (before, after) = bytes.split_at(bytes.len() - 5);
        let mut reader = FrameReader::after(1_000, Bytes::copy_from_slice(before));
        let mut io = after;
        assert_eq!(reader.next(&mut io).await.unwrap(), Message::Ping(b"early".to_vec()));
        assert_eq!(
            reader.next(&mut io).await.unwrap(),
            Message::Text("{\"split\":true}".into())
        );
        assert!(reader.holds_nothing());
    }

    /// A client that sends a great many small frames with its handshake: the reader takes them a read's worth
    /// at a time, as from the socket, not all at once (each frame used would move the rest of the buffer,
    /// which grows as the square of what was sent).
    #[tokio::test]
    async fn bytes_read_before_are_taken_a_read_at_a_time() {
        let pong = frame(PONG, b"", true);
        let early: Vec<u8> = pong.iter().copied().cycle().take(pong.len() * 20_000).collect();
        let mut reader = FrameReader::after(1_000, Bytes::from(early));
        let mut io: &[u8] = &[];
        for _ in 0..20_000 {
            assert_eq!(reader.next(&mut io).await.unwrap(), Message::Pong);
            assert!(reader.buf.len() <= FIRST_READ, "held {} bytes", reader.buf.len());
        }
        assert!(reader.holds_nothing());
    }

    #[tokio::test]
    async fn whole_and_fragmented_messages_with_every_length_form() {
        let big = "x".repeat(70_000);
        let mid = "y".repeat(300);
        let mut bytes = frame(TEXT, b"{\"a\":1}", true);
        bytes.extend(frame(PING, b"p", true));
        bytes.extend(frame(TEXT, b"{\"b\":", false));
        bytes.extend(frame(PONG, b"", true)); // control frames may sit between fragments
        bytes.extend(frame(CONTINUATION, b"2}", true));
        bytes.extend(frame(TEXT, mid.as_bytes(), true));
        bytes.extend(frame(TEXT, big.as_bytes(), true));
        bytes.extend(frame(BINARY, b"\x00\x01", true));
        bytes.extend(frame(CLOSE, b"\x03\xe8", true));
        let got = read_all(bytes, 100_000).await;
        assert_eq!(
            got,
            vec![
                Ok(Message::Text("{\"a\":1}".into())),
                Ok(Message::Ping(b"p".to_vec())),
                Ok(Message::Pong),
                Ok(Message::Text("{\"b\":2}".into())),
                Ok(Message::Text(mid)),
                Ok(Message::Text(big)),
                Ok(Message::Binary),
                Ok(Message::Close(Some(1000))),
            ]
        );
    }

    #[tokio::test]
    async fn broken_frames_are_refused_with_their_reason() {
        let unmasked = {
            let mut f = frame(TEXT, b"{}", true);
            f[1] &= 0x7F;
            f.drain(2..6);
            f
        };
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (frame(0x41, b"{}", true), "Reserved bits are not zero"),
            (frame(0x3, b"x", true), "Reserved opcode"),
            (unmasked, "Client frames must be masked"),
            (frame(PING, &[b'p'; 126], true), "Control frame over 125 bytes"),
            (frame(PING, b"p", false), "Fragmented control frame"),
            (
                frame(CONTINUATION, b"x", true),
                "Continuation frame without a message to continue",
            ),
            (
                [frame(TEXT, b"{", false), frame(TEXT, b"{}", true)].concat(),
                "New message before the fragmented one ended",
            ),
            (
                frame(TEXT, &[0x7b, 0xff, 0x7d], true),
                "text message is not valid UTF-8",
            ),
            (
                [
                    frame(TEXT, &[0x7b, 0xe2, 0x82], false),
                    frame(CONTINUATION, &[0x28, 0x7d], true),
                ]
                .concat(),
                "text message is not valid UTF-8",
            ),
        ];
        for (bytes, reason) in cases {
            let got = read_all(bytes, 1000).await;
            assert_eq!(got.last(), Some(&Err(reason.to_string())), "{reason}");
        }
    }

    #[tokio::test]
    async fn the_limit_is_checked_before_the_payload_is_read() {
        // A header announcing 2^62 bytes and nothing after it: refused at once, nothing reserved.
        let mut header = vec![0x81, 0x80 | 127];
        header.extend_from_slice(&(1u64 << 62).to_be_bytes());
        header.extend_from_slice(&[1, 2, 3, 4]);
        assert_eq!(
            read_all(header, 1000).await,
            vec![Err("message larger than 1000 bytes".into())]
        );
        // Exactly the limit is accepted; one more byte over fragments is not.
        let at = "z".repeat(1000);
        assert_eq!(
            read_all(frame(TEXT, at.as_bytes(), true), 1000).await,
            vec![Ok(Message::Text(at))]
        );
        let over = [
            frame(TEXT, &[b'z'; 600], false),
            frame(CONTINUATION, &[b'z'; 401], true),
        ]
        .concat();
        assert_eq!(
            read_all(over, 1000).await,
            vec![Err("message larger than 1000 bytes".into())]
        );
        // A continuation announcing a huge length after a started message: refused, never wrapped around
        // (a length with its top bit set breaks the framing rules).
        for (len, why) in [
            (u64::MAX, "Frame length with its most significant bit set"),
            (u64::MAX >> 1, "message larger than 1000 bytes"),
        ] {
            let mut wrap = frame(TEXT, b"z", false);
            wrap.extend_from_slice(&[0x80, 0x80 | 127]);
            wrap.extend_from_slice(&len.to_be_bytes());
            wrap.extend_from_slice(&[1, 2, 3, 4]);
            assert_eq!(read_all(wrap, 1000).await, vec![Err(why.into())]);
        }
    }

    #[tokio::test]
    async fn nothing_is_held_between_messages() {
        let (mut client, mut server) = tokio::io::duplex(64 * 1024);
        let mut reader = FrameReader::new(100_000);
        use tokio::io::AsyncWriteExt;
        client
            .write_all(&frame(TEXT, "q".repeat(5000).as_bytes(), true))
            .await
            .unwrap();
        assert!(matches!(reader.next(&mut server).await, Ok(Message::Text(t)) if t.len() == 5000));
        assert!(reader.holds_nothing());
        // Two frames in one read: the second stays buffered until asked for, then the buffer goes.
        let two = [frame(TEXT, b"1", true), frame(TEXT, b"2", true)].concat();
        client.write_all(&two).await.unwrap();
        assert_eq!(reader.next(&mut server).await.unwrap(), Message::Text("1".into()));
        assert_eq!(reader.next(&mut server).await.unwrap(), Message::Text("2".into()));
        assert!(reader.holds_nothing());
    }
}
