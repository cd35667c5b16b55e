//! End-to-end encrypted channels (`private-encrypted-`): the per-channel shared secret that the app's auth
//! response hands to pusher-js, derived from the app's 32-byte master key.

use base64::Engine;
use sha2::{Digest, Sha256};

/// Decodes a base64 master key; it must be exactly 32 bytes.
pub fn parse_master_key(base64_key: &str) -> Result<[u8; 32], String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(base64_key.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| format!("decodes to {} bytes; it must be 32", b.len()))
}

/// `base64(sha256(channel_name || master_key))`, what pusher-js uses as the channel's secretbox key.
pub fn shared_secret(channel: &str, master_key: &[u8; 32]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(channel.as_bytes());
    hasher.update(master_key);
    base64::engine::general_purpose::STANDARD.encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn master_keys() {
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert_eq!(parse_master_key(&key).unwrap(), [7u8; 32]);
        assert!(parse_master_key("c2hvcnQ=").is_err());
        assert!(parse_master_key("%%%").is_err());
    }

    #[test]
    fn shared_secret_is_stable_and_per_channel() {
        let key = [7u8; 32];
        let a = shared_secret("private-encrypted-a", &key);
        assert_eq!(a, shared_secret("private-encrypted-a", &key));
        assert_ne!(a, shared_secret("private-encrypted-b", &key));
        assert_eq!(base64::engine::general_purpose::STANDARD.decode(&a).unwrap().len(), 32);
    }
}
