//! RFC 6455 5.1: every frame a client sends must be masked, and a server must close the connection when one
//! is not. fastwebsockets unmasks what it reads without saying whether a frame was masked, so this reader
//! sits under it: it follows the frame boundaries in the bytes as they pass (2-byte header, extended length,
//! mask key, payload) and records the first frame whose mask bit is clear. The socket task checks the flag
//! after each frame and closes with 1002. Costs a few comparisons per read, nothing per payload byte.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, ReadBuf};

/// Where the reader is within the frame stream.
#[derive(Debug, Clone, Copy)]
enum State {
    /// At the fixed 2-byte header, `have` bytes of it read so far (0 or 1).
    Header { have: u8 },
    /// Collecting the rest of the header: extended length and mask key, `left` bytes to go.
    Extended {
        left: u8,
        len_bytes: u8,
        len: u64,
        masked: bool,
    },
    /// Inside a payload, `left` bytes to go.
    Payload { left: u64 },
}

/// A reader that records whether the peer sent an unmasked frame.
pub struct MaskCheck<R> {
    inner: R,
    state: State,
    unmasked: Arc<AtomicBool>,
}

impl<R> MaskCheck<R> {
    /// Wraps `inner`; `unmasked` turns true at the first unmasked frame.
    pub fn new(inner: R, unmasked: Arc<AtomicBool>) -> Self {
        MaskCheck {
            inner,
            state: State::Header { have: 0 },
            unmasked,
        }
    }

    /// Follows the frame boundaries through `bytes`.
    fn observe(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            self.state = match self.state {
                State::Header { have: 0 } => {
                    bytes = &bytes[1..];
                    State::Header { have: 1 }
                }
                State::Header { .. } => {
                    let second = bytes[0];
                    bytes = &bytes[1..];
                    let masked = second & 0x80 != 0;
                    if !masked {
                        self.unmasked.store(true, Ordering::Release);
                    }
                    let (len_bytes, len) = match second & 0x7f {
                        126 => (2, 0),
                        127 => (8, 0),
                        n => (0, u64::from(n)),
                    };
                    self.after_length(len_bytes, len, masked)
                }
                State::Extended {
                    left,
                    len_bytes,
                    mut len,
                    masked,
                } => {
                    let byte = bytes[0];
                    bytes = &bytes[1..];
                    let mask_bytes = if masked { 4 } else { 0 };
                    if left > mask_bytes {
                        len = (len << 8) | u64::from(byte);
                    }
                    match left - 1 {
                        0 => State::Payload { left: len },
                        left => State::Extended {
                            left,
                            len_bytes,
                            len,
                            masked,
                        },
                    }
                }
                State::Payload { left } => {
                    let take = left.min(bytes.len() as u64);
                    bytes = &bytes[take as usize..];
                    State::Payload { left: left - take }
                }
            };
            if let State::Payload { left: 0 } = self.state {
                self.state = State::Header { have: 0 };
            }
        }
    }

    /// The state once the 2-byte header is in.
    fn after_length(&self, len_bytes: u8, len: u64, masked: bool) -> State {
        let left = len_bytes + if masked { 4 } else { 0 };
        if left == 0 {
            State::Payload { left: len }
        } else {
            State::Extended {
                left,
                len_bytes,
                len,
                masked,
            }
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for MaskCheck<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            self.as_mut().get_mut().observe(&buf.filled()[before..]);
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(masked: bool, len: usize) -> Vec<u8> {
        let mut out = vec![0x81];
        let bit = if masked { 0x80 } else { 0 };
        match len {
            0..=125 => out.push(bit | len as u8),
            126..=65535 => {
                out.push(bit | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                out.push(bit | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        if masked {
            out.extend_from_slice(&[1, 2, 3, 4]);
        }
        out.extend(std::iter::repeat_n(0x80, len));
        out
    }

    fn check(stream: &[u8], chunk: usize) -> bool {
        let flag = Arc::new(AtomicBool::new(false));
        let mut reader = MaskCheck::new(tokio::io::empty(), flag.clone());
        for part in stream.chunks(chunk) {
            reader.observe(part);
        }
        flag.load(Ordering::Acquire)
    }

    #[test]
    fn masked_frames_of_every_length_form_pass_in_any_chunking() {
        let mut stream = Vec::new();
        for len in [0, 1, 125, 126, 300, 65535, 65536, 70000] {
            stream.extend(frame(true, len));
        }
        for chunk in [1, 2, 3, 7, 4096, stream.len()] {
            assert!(!check(&stream, chunk), "chunk {chunk}");
        }
    }

    #[test]
    fn an_unmasked_frame_is_seen_wherever_it_is() {
        for len in [0, 5, 126, 70000] {
            let mut stream = frame(true, 300);
            stream.extend(frame(false, len));
            stream.extend(frame(true, 3));
            for chunk in [1, 5, 4096] {
                assert!(check(&stream, chunk), "len {len} chunk {chunk}");
            }
        }
    }
}
