//! Who may open the dashboard: the tokens (one for every app, or one per app), the signed session cookie a
//! login sets, the `Authorization: Bearer` header `herald tail` sends, and the cap on login attempts.
//! Nothing about any app is served before one of these checks passes.

use herald_core::rate_limit::RateLimiter;
use herald_protocol::signature::hmac_hex;
use herald_server::config::DashboardConfig;
use hyper::HeaderMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "herald_dashboard";

/// How long a login lasts.
pub const SESSION: Duration = Duration::from_secs(12 * 3600);

/// Login attempts a node takes each second on average, and in a burst (wrong tokens included).
const ATTEMPTS_PER_SECOND: u32 = 1;
const ATTEMPTS_BURST: u32 = 10;

/// What a token or cookie opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every app (`HERALD_DASHBOARD_TOKEN`).
    All,
    /// One app, by id (its `dashboard_token`).
    App(String),
}

impl Scope {
    pub fn covers(&self, app_id: &str) -> bool {
        match self {
            Scope::All => true,
            Scope::App(id) => id == app_id,
        }
    }

    fn label(&self) -> &str {
        match self {
            Scope::All => "*",
            Scope::App(id) => id,
        }
    }
}

pub struct Access {
    token: Option<String>,
    app_tokens: Vec<(String, String)>,
    attempts: Mutex<RateLimiter>,
}

/// Equal in constant time, whatever the lengths: both sides are hashed to one length first.
fn same(given: &str, expected: &str) -> bool {
    let (a, b) = (
        hmac_hex("herald-dashboard-compare", given.as_bytes()),
        hmac_hex("herald-dashboard-compare", expected.as_bytes()),
    );
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Access {
    pub fn new(config: &DashboardConfig) -> Self {
        Access {
            token: config.token.clone(),
            app_tokens: config.app_tokens.clone(),
            attempts: Mutex::new(RateLimiter::new(ATTEMPTS_PER_SECOND, ATTEMPTS_BURST)),
        }
    }

    /// False when this node had too many login attempts lately (the caller answers 429).
    pub fn may_try(&self) -> bool {
        self.attempts.lock().map(|mut a| a.allow()).unwrap_or(false)
    }

    /// What `given` opens, checked against every token in constant time.
    pub fn scope_of_token(&self, given: &str) -> Option<Scope> {
        let mut found = None;
        if let Some(token) = &self.token {
            if same(given, token) {
                found = Some(Scope::All);
            }
        }
        for (app, token) in &self.app_tokens {
            if same(given, token) && found.is_none() {
                found = Some(Scope::App(app.clone()));
            }
        }
        found
    }

    fn token_of(&self, scope: &Scope) -> Option<&str> {
        match scope {
            Scope::All => self.token.as_deref(),
            Scope::App(id) => self.app_tokens.iter().find(|(a, _)| a == id).map(|(_, t)| t.as_str()),
        }
    }

    fn signature(token: &str, expires: u64, scope: &Scope) -> String {
        hmac_hex(
            token,
            format!("herald-dashboard|{expires}|{}", scope.label()).as_bytes(),
        )
    }

    /// The session cookie's value for `scope`: `expiry~scope~signature`, signed with the scope's token, so
    /// any node with the same token accepts it and rotating the token ends every session.
    pub fn cookie_value(&self, scope: &Scope) -> String {
        let expires = now_secs() + SESSION.as_secs();
        let token = self.token_of(scope).unwrap_or_default();
        format!("{expires}~{}~{}", scope.label(), Self::signature(token, expires, scope))
    }

    fn scope_of_cookie(&self, value: &str) -> Option<Scope> {
        let mut parts = value.splitn(3, '~');
        let (expires, scope, signature) = (parts.next()?, parts.next()?, parts.next()?);
        let expires: u64 = expires.parse().ok()?;
        if expires < now_secs() {
            return None;
        }
        let scope = if scope == "*" {
            Scope::All
        } else {
            Scope::App(scope.to_owned())
        };
        let token = self.token_of(&scope)?;
        let expected = Self::signature(token, expires, &scope);
        bool::from(signature.as_bytes().ct_eq(expected.as_bytes())).then_some(scope)
    }

    /// What the request may see: from `Authorization: Bearer <token>`, or from the session cookie.
    pub fn scope_of_request(&self, headers: &HeaderMap) -> Option<Scope> {
        if let Some(bearer) = headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            return self.scope_of_token(bearer.trim());
        }
        let cookies = headers.get_all(hyper::header::COOKIE);
        cookies
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
            .find_map(|value| self.scope_of_cookie(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access() -> Access {
        Access::new(&DashboardConfig {
            path: "/herald/dashboard".into(),
            token: Some("all-apps-token-0123456789".into()),
            app_tokens: vec![("shop".into(), "shop-only-token-0123456789".into())],
        })
    }

    fn with_cookie(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("cookie", format!("other=1; {COOKIE}={value}").parse().unwrap());
        h
    }

    #[test]
    fn tokens_open_their_scope_only() {
        let a = access();
        assert_eq!(a.scope_of_token("all-apps-token-0123456789"), Some(Scope::All));
        assert_eq!(
            a.scope_of_token("shop-only-token-0123456789"),
            Some(Scope::App("shop".into()))
        );
        assert_eq!(a.scope_of_token("all-apps-token-012345678"), None);
        assert!(!Scope::App("shop".into()).covers("blog") && Scope::All.covers("blog"));
    }

    #[test]
    fn cookies_are_signed_and_expire() {
        let a = access();
        let shop = Scope::App("shop".into());
        let value = a.cookie_value(&shop);
        assert_eq!(a.scope_of_request(&with_cookie(&value)), Some(shop));
        // Claiming another scope with the same signature fails.
        let forged = value.replacen("~shop~", "~*~", 1);
        assert_eq!(a.scope_of_request(&with_cookie(&forged)), None);
        let expired = format!("1~*~{}", Access::signature("all-apps-token-0123456789", 1, &Scope::All));
        assert_eq!(a.scope_of_request(&with_cookie(&expired)), None);
        assert_eq!(a.scope_of_request(&HeaderMap::new()), None);
        let mut bearer = HeaderMap::new();
        bearer.insert("authorization", "Bearer all-apps-token-0123456789".parse().unwrap());
        assert_eq!(a.scope_of_request(&bearer), Some(Scope::All));
    }

    #[test]
    fn login_attempts_are_capped() {
        let a = access();
        let allowed = (0..50).filter(|_| a.may_try()).count();
        assert!((10..=11).contains(&allowed), "{allowed}");
    }
}
