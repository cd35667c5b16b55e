//! The envelope of a Herald broadcast on Redis (MessagePack): the Pusher frame exactly as recipients get
//! it, the socket id to skip, and for member events the user whose own connections skip it. Receivers
//! forward the frame's bytes without re-encoding them.

use bytes::Bytes;
use herald_core::Broadcast;
use herald_protocol::SocketId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Envelope<'a> {
    #[serde(borrow)]
    pub except: Option<&'a str>,
    #[serde(with = "serde_bytes", borrow)]
    pub frame: &'a [u8],
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub skip_user: Option<&'a str>,
}

impl<'a> Envelope<'a> {
    /// The envelope of a broadcast about to be published.
    pub fn of(broadcast: &'a Broadcast) -> Self {
        Envelope {
            except: broadcast.except.as_ref().map(|s| s.as_str()),
            frame: &broadcast.frame,
            skip_user: broadcast.skip_user.as_deref(),
        }
    }

    /// The broadcast a received envelope carries.
    pub fn into_broadcast(self) -> Broadcast {
        let mut broadcast = Broadcast::new(
            Bytes::copy_from_slice(self.frame),
            self.except.and_then(SocketId::parse),
        );
        broadcast.skip_user = self.skip_user.map(std::sync::Arc::from);
        broadcast
    }

    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec(self).expect("an envelope always serialises")
    }

    pub fn decode(bytes: &'a [u8]) -> Option<Self> {
        rmp_serde::from_slice(bytes).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let e = Envelope {
            except: Some("1.2"),
            frame: br#"{"event":"x"}"#,
            skip_user: None,
        };
        let bytes = e.encode();
        assert!(bytes.len() < 30, "compact: {} bytes", bytes.len());
        assert_eq!(Envelope::decode(&bytes), Some(e));
        assert_eq!(Envelope::decode(b"\xff\x00"), None);
        let member = Envelope {
            skip_user: Some("42"),
            ..Envelope::decode(&bytes).unwrap()
        };
        let back = Envelope::decode(&member.encode()).unwrap().into_broadcast();
        assert_eq!(back.skip_user.as_deref(), Some("42"));
        assert_eq!(back.except.map(|s| s.to_string()).as_deref(), Some("1.2"));
    }
}
