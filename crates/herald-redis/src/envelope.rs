//! The envelope of a Herald broadcast on Redis (MessagePack): the Pusher frame exactly as recipients get
//! it, and the socket id to skip. Receivers forward the bytes without re-encoding them.

use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Envelope<'a> {
    #[serde(borrow)]
    pub except: Option<&'a str>,
    #[serde(with = "serde_bytes", borrow)]
    pub frame: &'a [u8],
}

impl<'a> Envelope<'a> {
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
        };
        let bytes = e.encode();
        assert!(bytes.len() < 30, "compact: {} bytes", bytes.len());
        assert_eq!(Envelope::decode(&bytes), Some(e));
        assert_eq!(Envelope::decode(b"\xff\x00"), None);
    }
}
