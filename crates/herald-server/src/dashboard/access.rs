//! Who may open the dashboard: the tokens (one for every app, or one per app), the signed session cookie a
//! login sets, the `Authorization: Bearer` header `herald tail` sends, and the cap on wrong tokens per
//! client address (logins and bearer tokens alike: ten a minute, then the address waits out the minute;
//! other addresses are not held up). Behind a load balancer every client shares its address, so guessing
//! there delays everyone's login by at most a minute. Nothing about any app is served before one of these
//! checks passes.

use herald_protocol::signature::hmac_hex;
use herald_server::config::DashboardConfig;
use hyper::HeaderMap;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "herald_dashboard";

/// How long a login lasts.
pub const SESSION: Duration = Duration::from_secs(12 * 3600);

/// Wrong tokens one client address may send a node in [`FAILURE_WINDOW`]; then it waits for the window to end.
const FAILURES_ALLOWED: u32 = 10;
const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most (the table is emptied when full, so it never grows past this).
const FAILURE_TABLE: usize = 10_000;

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

/// How a request proved itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// The session cookie of a login (a browser: cross-site checks apply).
    Cookie,
    /// `Authorization: Bearer` with a right token (a tool: no cookie, so no cross-site request can carry it).
    Bearer,
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// No cookie or token, or a wrong one.
    Unauthenticated,
    /// Too many wrong tokens from this address lately: wait.
    TooMany,
}

pub struct Access {
    token: Option<String>,
    app_tokens: Vec<(String, String)>,
    failures: Mutex<HashMap<Option<IpAddr>, (u32, Instant)>>,
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
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// False while `peer` is over its wrong tokens for the window (the caller answers 429).
    pub fn may_try(&self, peer: Option<IpAddr>) -> bool {
        let Ok(failures) = self.failures.lock() else {
            return false;
        };
        match failures.get(&peer) {
            Some((n, since)) if since.elapsed() < FAILURE_WINDOW => *n < FAILURES_ALLOWED,
            _ => true,
        }
    }

    /// Counts a wrong token from `peer`.
    pub fn failed(&self, peer: Option<IpAddr>) {
        let Ok(mut failures) = self.failures.lock() else { return };
        if failures.len() >= FAILURE_TABLE {
            failures.clear();
        }
        let entry = failures.entry(peer).or_insert((0, Instant::now()));
        if entry.1.elapsed() >= FAILURE_WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
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

    /// What the request may see and how it proved it: `Authorization: Bearer <token>` (a wrong one counts
    /// against `peer`), or the session cookie.
    pub fn check(&self, headers: &HeaderMap, peer: Option<IpAddr>) -> Result<(Scope, Proof), Refused> {
        if let Some(bearer) = headers
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        {
            if !self.may_try(peer) {
                return Err(Refused::TooMany);
            }
            return match self.scope_of_token(bearer.trim()) {
                Some(scope) => Ok((scope, Proof::Bearer)),
                None => {
                    self.failed(peer);
                    Err(Refused::Unauthenticated)
                }
            };
        }
        headers
            .get_all(hyper::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
            .find_map(|value| self.scope_of_cookie(value))
            .map(|scope| (scope, Proof::Cookie))
            .ok_or(Refused::Unauthenticated)
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
        let scope = |h: &HeaderMap| a.check(h, None).ok().map(|(s, _)| s);
        assert_eq!(scope(&with_cookie(&value)), Some(shop));
        // Claiming another scope with the same signature fails.
        let forged = value.replacen("~shop~", "~*~", 1);
        assert_eq!(scope(&with_cookie(&forged)), None);
        let expired = format!("1~*~{}", Access::signature("all-apps-token-0123456789", 1, &Scope::All));
        assert_eq!(scope(&with_cookie(&expired)), None);
        assert_eq!(scope(&HeaderMap::new()), None);
        let mut bearer = HeaderMap::new();
        bearer.insert("authorization", "Bearer all-apps-token-0123456789".parse().unwrap());
        assert_eq!(a.check(&bearer, None), Ok((Scope::All, Proof::Bearer)));
        let mut basic = with_cookie(&a.cookie_value(&Scope::All));
        basic.insert("authorization", "Basic eDp5".parse().unwrap());
        assert_eq!(
            a.check(&basic, None),
            Ok((Scope::All, Proof::Cookie)),
            "only Bearer counts as a tool"
        );
    }

    #[test]
    fn wrong_tokens_are_capped_per_address_and_right_ones_from_elsewhere_still_pass() {
        let a = access();
        let guesser: Option<IpAddr> = Some("10.0.0.9".parse().unwrap());
        let mut wrong = HeaderMap::new();
        wrong.insert("authorization", "Bearer guess-guess-guess-guess".parse().unwrap());
        let refused: Vec<_> = (0..12).map(|_| a.check(&wrong, guesser).unwrap_err()).collect();
        assert_eq!(refused.iter().filter(|r| **r == Refused::Unauthenticated).count(), 10);
        assert_eq!(refused.last(), Some(&Refused::TooMany));
        let mut right = HeaderMap::new();
        right.insert("authorization", "Bearer all-apps-token-0123456789".parse().unwrap());
        assert!(a.check(&right, Some("10.0.0.10".parse().unwrap())).is_ok());
        assert!(a.may_try(None) && !a.may_try(guesser));
    }
}
