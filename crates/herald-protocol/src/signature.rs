//! HMAC-SHA256 signatures: the ones an app's SDK makes for channel subscriptions and sign-in, and the one
//! that signs every Pusher HTTP API request. Checks compare in constant time.

use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use sha2::Sha256;
use std::borrow::Cow;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Hex HMAC-SHA256 of `message` with `secret`.
pub fn hmac_hex(secret: &str, message: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// The string signed for a channel subscription: `socket_id:channel`, plus `:channel_data` on presence.
pub fn channel_string_to_sign(socket_id: &str, channel: &str, channel_data: Option<&str>) -> String {
    match channel_data {
        Some(data) => format!("{socket_id}:{channel}:{data}"),
        None => format!("{socket_id}:{channel}"),
    }
}

/// The `auth` value an app returns for a subscription: `key:hex(hmac)`.
pub fn sign_channel(key: &str, secret: &str, socket_id: &str, channel: &str, channel_data: Option<&str>) -> String {
    let sig = hmac_hex(
        secret,
        channel_string_to_sign(socket_id, channel, channel_data).as_bytes(),
    );
    format!("{key}:{sig}")
}

/// Checks a subscription's `auth` (`key:signature`) in constant time. `channel_data` is signed byte for
/// byte as the client sent it.
pub fn verify_channel(
    key: &str,
    secret: &str,
    socket_id: &str,
    channel: &str,
    channel_data: Option<&str>,
    auth: &str,
) -> bool {
    verify_keyed(
        key,
        secret,
        channel_string_to_sign(socket_id, channel, channel_data).as_bytes(),
        auth,
    )
}

/// The `auth` value for `pusher:signin`: `key:hex(hmac(socket_id::user::user_data))`.
pub fn sign_user(key: &str, secret: &str, socket_id: &str, user_data: &str) -> String {
    format!(
        "{key}:{}",
        hmac_hex(secret, format!("{socket_id}::user::{user_data}").as_bytes())
    )
}

/// Checks a `pusher:signin` `auth` over `socket_id::user::user_data`.
pub fn verify_user(key: &str, secret: &str, socket_id: &str, user_data: &str, auth: &str) -> bool {
    verify_keyed(key, secret, format!("{socket_id}::user::{user_data}").as_bytes(), auth)
}

fn verify_keyed(key: &str, secret: &str, message: &[u8], auth: &str) -> bool {
    let Some((given_key, given_sig)) = auth.split_once(':') else {
        return false;
    };
    let key_ok = given_key.as_bytes().ct_eq(key.as_bytes());
    let expected = hmac_hex(secret, message);
    let sig_ok = given_sig.as_bytes().ct_eq(expected.as_bytes());
    bool::from(key_ok & sig_ok)
}

/// Hex MD5 of a request body, the `body_md5` query parameter of the HTTP API.
pub fn body_md5(body: &[u8]) -> String {
    hex::encode(Md5::digest(body))
}

/// The body's hex MD5 is `given` (what `body_md5` says), checked without building a string.
pub fn body_md5_is(body: &[u8], given: &str) -> bool {
    let mut hex = [0u8; 32];
    hex::encode_to_slice(Md5::digest(body), &mut hex).expect("an MD5 is 16 bytes, 32 hex digits");
    hex == given.as_bytes()
}

/// Feeds the HTTP API string to sign to `out`, piece by piece: `METHOD\nPATH\nsorted_query`, where the
/// query is every parameter except `auth_signature`, keys lower-cased and sorted, values as decoded, joined
/// with `&`. Pieces, so that a request's check builds no string.
fn feed_api_string<'a>(
    method: &str,
    path: &str,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    mut out: impl FnMut(&[u8]),
) {
    let lower = |s: &'a str| -> Cow<'a, str> {
        if s.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(s.to_ascii_lowercase())
        } else {
            Cow::Borrowed(s)
        }
    };
    let mut pairs: Vec<(Cow<'a, str>, &'a str)> = params
        .into_iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("auth_signature"))
        .map(|(k, v)| (lower(k), v))
        .collect();
    pairs.sort_unstable();
    if method.bytes().any(|b| b.is_ascii_lowercase()) {
        out(method.to_ascii_uppercase().as_bytes());
    } else {
        out(method.as_bytes());
    }
    out(b"\n");
    out(path.as_bytes());
    out(b"\n");
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out(b"&");
        }
        out(k.as_bytes());
        out(b"=");
        out(v.as_bytes());
    }
}

/// The HTTP API string to sign (see `feed_api_string`).
pub fn api_string_to_sign<'a>(
    method: &str,
    path: &str,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    let mut bytes = Vec::new();
    feed_api_string(method, path, params, |piece| bytes.extend_from_slice(piece));
    String::from_utf8(bytes).expect("pieces of strings joined with ASCII are UTF-8")
}

/// Signs an HTTP API request (what the SDKs do; used by tests and the load generator).
pub fn sign_api<'a>(
    secret: &str,
    method: &str,
    path: &str,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> String {
    hmac_hex(secret, api_string_to_sign(method, path, params).as_bytes())
}

/// Checks an HTTP API `auth_signature` in constant time.
pub fn verify_api<'a>(
    secret: &str,
    method: &str,
    path: &str,
    params: impl IntoIterator<Item = (&'a str, &'a str)>,
    signature: &str,
) -> bool {
    SigningKey::new(secret).verify_api(method, path, params, signature)
}

/// An app secret made ready to check HTTP API signatures: HMAC hashes a key's two padded blocks before any
/// message, so an app keeps them hashed once instead of on every request.
#[derive(Clone)]
pub struct SigningKey(HmacSha256);

impl SigningKey {
    pub fn new(secret: &str) -> Self {
        SigningKey(HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length"))
    }

    /// Checks an HTTP API `auth_signature` made with this secret, in constant time.
    pub fn verify_api<'a>(
        &self,
        method: &str,
        path: &str,
        params: impl IntoIterator<Item = (&'a str, &'a str)>,
        signature: &str,
    ) -> bool {
        // The given signature is the caller's own: decoding it needs no constant time. Only the comparison
        // with the expected MAC does. An upper-case hex signature is refused, as before the decode.
        let mut given = [0u8; 32];
        if signature.bytes().any(|b| b.is_ascii_uppercase()) || hex::decode_to_slice(signature, &mut given).is_err() {
            return false;
        }
        let mut mac = self.0.clone();
        feed_api_string(method, path, params, |piece| mac.update(piece));
        bool::from(mac.finalize().into_bytes().as_slice().ct_eq(&given))
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Pusher's documented HTTP API example.
    const KEY: &str = "278d425bdf160c739803";
    const SECRET: &str = "7ad3773142a6692b25b8";
    const BODY: &str = r#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;

    #[test]
    fn pusher_http_api_vector() {
        let md5 = body_md5(BODY.as_bytes());
        assert_eq!(md5, "ec365a775a4cd0599faeb73354201b6f");
        let params = [
            ("auth_key", KEY),
            ("auth_timestamp", "1353088179"),
            ("auth_version", "1.0"),
            ("body_md5", md5.as_str()),
        ];
        let sig = sign_api(SECRET, "POST", "/apps/3/events", params);
        assert_eq!(sig, "da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c");
        let mut with_sig = params.to_vec();
        with_sig.push(("auth_signature", sig.as_str()));
        assert!(verify_api(SECRET, "POST", "/apps/3/events", with_sig.clone(), &sig));
        let key = SigningKey::new(SECRET);
        assert!(key.verify_api("POST", "/apps/3/events", with_sig.clone(), &sig));
        assert!(
            key.verify_api("POST", "/apps/3/events", with_sig.clone(), &sig),
            "a kept key checks again, unchanged by the first check"
        );
        assert!(!SigningKey::new("wrong").verify_api("POST", "/apps/3/events", with_sig.clone(), &sig));
        assert!(!verify_api("wrong", "POST", "/apps/3/events", with_sig.clone(), &sig));
        let upper = sig.to_ascii_uppercase();
        assert!(!verify_api(SECRET, "POST", "/apps/3/events", with_sig.clone(), &upper));
        assert!(!verify_api(
            SECRET,
            "POST",
            "/apps/3/events",
            with_sig.clone(),
            &sig[..62]
        ));
        assert!(!verify_api(SECRET, "POST", "/apps/3/events", with_sig, "zz"));
    }

    #[test]
    fn query_order_and_case_do_not_matter() {
        let a = api_string_to_sign("get", "/p", [("B", "2"), ("a", "1")]);
        assert_eq!(a, "GET\n/p\na=1&b=2");
    }

    // Pusher's documented private-channel example.
    #[test]
    fn private_channel_vector() {
        let auth = sign_channel(KEY, SECRET, "1234.1234", "private-foobar", None);
        assert_eq!(
            auth,
            "278d425bdf160c739803:58df8b0c36d6982b82c3ecf6b4662e34fe8c25bba48f5369f135bf843651c3a4"
        );
        assert!(verify_channel(KEY, SECRET, "1234.1234", "private-foobar", None, &auth));
        assert!(!verify_channel(KEY, SECRET, "1234.1235", "private-foobar", None, &auth));
        assert!(!verify_channel(
            KEY,
            SECRET,
            "1234.1234",
            "private-foobar",
            None,
            "nokey"
        ));
        assert!(!verify_channel(
            "otherkey",
            SECRET,
            "1234.1234",
            "private-foobar",
            None,
            &auth
        ));
    }

    // Pusher's documented presence-channel example.
    #[test]
    fn presence_channel_vector() {
        let data = r#"{"user_id":10,"user_info":{"name":"Mr. Channels"}}"#;
        let auth = sign_channel(KEY, SECRET, "1234.1234", "presence-foobar", Some(data));
        assert_eq!(
            auth,
            "278d425bdf160c739803:31935e7d86dba64c2a90aed31fdc61869f9b22ba9d8863bba239c03ca481bc80"
        );
        assert!(verify_channel(
            KEY,
            SECRET,
            "1234.1234",
            "presence-foobar",
            Some(data),
            &auth
        ));
        let reserialised = r#"{"user_id":10, "user_info":{"name":"Mr. Channels"}}"#;
        assert!(!verify_channel(
            KEY,
            SECRET,
            "1234.1234",
            "presence-foobar",
            Some(reserialised),
            &auth
        ));
    }

    #[test]
    fn user_signin() {
        let data = r#"{"id":"42"}"#;
        let sig = hmac_hex(SECRET, format!("1.2::user::{data}").as_bytes());
        assert!(verify_user(KEY, SECRET, "1.2", data, &format!("{KEY}:{sig}")));
        assert!(!verify_user(KEY, SECRET, "1.3", data, &format!("{KEY}:{sig}")));
    }
}
