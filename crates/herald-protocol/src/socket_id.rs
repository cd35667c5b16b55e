//! Socket ids: `<digits>.<digits>`, the only form the Pusher SDKs accept. Herald builds them from a random
//! per-process number and a per-process counter, so ids are unique across nodes without any coordination.

use std::fmt;

/// A connection's socket id, kept as the text clients and SDKs exchange.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SocketId(Box<str>);

impl SocketId {
    /// The id of the `seq`-th connection of the process whose random part is `node`.
    pub fn new(node: u32, seq: u64) -> Self {
        // Written digit by digit rather than through `format!`, whose machinery cost more than the rest of
        // making a connection's id (one is made for every connection).
        let (mut a, mut b) = (itoa::Buffer::new(), itoa::Buffer::new());
        let (a, b) = (a.format(node), b.format(seq));
        let mut id = String::with_capacity(a.len() + 1 + b.len());
        id.push_str(a);
        id.push('.');
        id.push_str(b);
        SocketId(id.into_boxed_str())
    }

    /// Accepts text of the form `^\d+\.\d+$` (at most 40 characters), as the Pusher SDKs require.
    pub fn parse(text: &str) -> Option<Self> {
        is_valid(text).then(|| SocketId(text.into()))
    }

    /// A socket.io client's id (Echo's `socketId()` on the `socket.io` broadcaster, which Laravel passes on
    /// as the broadcast's `socket`): 1 to 40 of `A-Z a-z 0-9 - _`, as Engine.IO makes them.
    pub fn socketio(text: &str) -> Option<Self> {
        let valid = !text.is_empty()
            && text.len() <= 40
            && text
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_');
        valid.then(|| SocketId(text.into()))
    }

    /// Either form: what a broadcast may name as the connection that must not hear it back.
    pub fn parse_any(text: &str) -> Option<Self> {
        Self::parse(text).or_else(|| Self::socketio(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// True when `text` has the `\d+\.\d+` form of a socket id.
pub fn is_valid(text: &str) -> bool {
    if text.len() > 40 {
        return false;
    }
    match text.split_once('.') {
        Some((a, b)) => {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_digit())
                && b.bytes().all(|c| c.is_ascii_digit())
        }
        None => false,
    }
}

impl fmt::Display for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SocketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_the_pusher_form() {
        let id = SocketId::new(123456789, 42);
        assert_eq!(id.as_str(), "123456789.42");
        assert!(is_valid(id.as_str()));
        assert_eq!(
            SocketId::new(u32::MAX, u64::MAX).as_str(),
            format!("{}.{}", u32::MAX, u64::MAX)
        );
        assert_eq!(SocketId::new(1, 0).as_str(), "1.0");
    }

    #[test]
    fn rejects_other_forms() {
        for bad in ["", "1", "1.", ".1", "a.1", "1.2.3", "1.2 ", "-1.2"] {
            assert!(SocketId::parse(bad).is_none(), "{bad:?}");
        }
        assert!(SocketId::parse("1234.5678").is_some());
    }
}
