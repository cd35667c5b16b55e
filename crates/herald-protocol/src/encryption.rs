//! End-to-end encrypted channels (`private-encrypted-`): the per-channel shared secret that the app's auth
//! response hands to pusher-js, derived from the app's 32-byte master key, and the encryption of an event's
//! data (NaCl secretbox) for publishers that cannot do it themselves, like Laravel's RedisBroadcaster.

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
    base64::engine::general_purpose::STANDARD.encode(shared_key(channel, master_key))
}

fn shared_key(channel: &str, master_key: &[u8; 32]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(channel.as_bytes());
    hasher.update(master_key);
    hasher.finalize().into()
}

/// The encrypted form of an event's `data` on `channel`: `{"nonce": b64, "ciphertext": b64}`, which pusher-js
/// opens with the shared secret. `nonce` must be fresh random bytes for every event.
pub fn encrypt(channel: &str, master_key: &[u8; 32], plaintext: &[u8], nonce: [u8; 24]) -> String {
    use crypto_secretbox::aead::{Aead, KeyInit};
    let key = shared_key(channel, master_key);
    let cipher = crypto_secretbox::XSalsa20Poly1305::new(&key.into());
    let sealed = cipher
        .encrypt(&nonce.into(), plaintext)
        .expect("secretbox encryption of a slice cannot fail");
    let b64 = &base64::engine::general_purpose::STANDARD;
    serde_json::json!({ "nonce": b64.encode(nonce), "ciphertext": b64.encode(sealed) }).to_string()
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

    #[test]
    fn encrypted_data_opens_with_the_shared_secret() {
        use crypto_secretbox::aead::{Aead, KeyInit};
        let master = [7u8; 32];
        let data = encrypt("private-encrypted-a", &master, br#"{"code":42}"#, [3u8; 24]);
        let v: serde_json::Value = serde_json::from_str(&data).unwrap();
        let b64 = &base64::engine::general_purpose::STANDARD;
        let secret: [u8; 32] = b64
            .decode(shared_secret("private-encrypted-a", &master))
            .unwrap()
            .try_into()
            .unwrap();
        let nonce: [u8; 24] = b64.decode(v["nonce"].as_str().unwrap()).unwrap().try_into().unwrap();
        let sealed = b64.decode(v["ciphertext"].as_str().unwrap()).unwrap();
        let cipher = crypto_secretbox::XSalsa20Poly1305::new(&secret.into());
        assert_eq!(cipher.decrypt(&nonce.into(), &sealed[..]).unwrap(), br#"{"code":42}"#);
    }
}
