//! The envelope of a Herald broadcast on Redis (MessagePack): the Pusher frame exactly as recipients get
//! it, the socket id to skip, and for member events who joined or left. Receivers forward the frame's bytes
//! without re-encoding them.

use bytes::Bytes;
use herald_core::member_event::MemberEvent;
use herald_core::Broadcast;
use herald_protocol::SocketId;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Envelope<'a> {
    #[serde(borrow)]
    pub except: Option<&'a str>,
    #[serde(with = "serde_bytes", borrow)]
    pub frame: &'a [u8],
    /// Member events: (joined, user id, member-set version).
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    pub member: Option<(bool, &'a str, u64)>,
}

impl<'a> Envelope<'a> {
    /// The envelope of a broadcast about to be published.
    pub fn of(broadcast: &'a Broadcast) -> Self {
        Envelope {
            except: broadcast.except.as_ref().map(|s| s.as_str()),
            frame: &broadcast.frame,
            member: broadcast.member.as_ref().map(|m| (m.joined, &*m.user_id, m.version)),
        }
    }

    /// The broadcast a received envelope carries.
    pub fn into_broadcast(self) -> Broadcast {
        let mut broadcast = Broadcast::new(
            Bytes::copy_from_slice(self.frame),
            self.except.and_then(SocketId::parse_any),
        );
        broadcast.member = self.member.map(|(joined, user, version)| MemberEvent {
            user_id: std::sync::Arc::from(user),
            joined,
            version,
        });
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
            member: None,
        };
        let bytes = e.encode();
        assert!(bytes.len() < 30, "compact: {} bytes", bytes.len());
        assert_eq!(Envelope::decode(&bytes), Some(e));
        assert_eq!(Envelope::decode(b"\xff\x00"), None);
        let member = Envelope {
            member: Some((false, "42", 7)),
            ..Envelope::decode(&bytes).unwrap()
        };
        let back = Envelope::decode(&member.encode()).unwrap().into_broadcast();
        let member = back.member.unwrap();
        assert_eq!((&*member.user_id, member.joined, member.version), ("42", false, 7));
        assert_eq!(back.except.map(|s| s.to_string()).as_deref(), Some("1.2"));
    }
}
