//! The one route table of the HTTP port: every path Herald answers, the name it has in metrics (a bounded
//! set: never ids or channel names), and whether it belongs to clients or to probes. The dashboard lives
//! under a path the operator picks (`HERALD_DASHBOARD_PATH`), so `http.rs` hands it everything under that
//! path first (metrics name `dashboard`), and its own pages are routed in `dashboard/mod.rs`.

use std::sync::OnceLock;

/// An endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Livez,
    Readyz,
    Metrics,
    Root,
    /// `/app/{key}`: the WebSocket endpoint pusher-js connects to.
    WebSocket,
    /// `/herald/auth/{key}`: channel auth for apps on the redis driver.
    Auth,
    /// `/herald/user-auth/{key}`: sign-in auth for apps on the redis driver.
    UserAuth,
    ApiEvents,
    ApiBatchEvents,
    ApiChannels,
    ApiChannel,
    ApiChannelUsers,
    ApiTerminate,
    /// `/apps/{app_id}/status`: laravel-echo-server's API only.
    ApiStatus,
    /// `/herald/admin/apps`: list (GET) or create (POST) apps kept in Redis.
    AdminApps,
    /// `/herald/admin/apps/{app_id}`: show (GET), change (PATCH) or delete (DELETE) one.
    AdminApp,
    /// `/herald/admin/apps/{app_id}/rotate-secret` (POST). Last: [`Route::COUNT`] counts from it.
    AdminRotate,
}

impl Route {
    /// How many routes there are (the last one, `AdminRotate`, plus one): a table indexed by `route as usize`
    /// has this many entries.
    pub const COUNT: usize = Route::AdminRotate as usize + 1;

    /// The `endpoint` label of the HTTP metrics.
    pub fn label(self) -> &'static str {
        match self {
            Route::Livez => "livez",
            Route::Readyz => "readyz",
            Route::Metrics => "metrics",
            Route::Root => "root",
            Route::WebSocket => "websocket",
            Route::Auth => "auth",
            Route::UserAuth => "user_auth",
            Route::ApiEvents => "api_events",
            Route::ApiBatchEvents => "api_batch_events",
            Route::ApiChannels => "api_channels",
            Route::ApiChannel => "api_channel",
            Route::ApiChannelUsers => "api_channel_users",
            Route::ApiTerminate => "api_users",
            Route::ApiStatus => "api_status",
            Route::AdminApps | Route::AdminApp | Route::AdminRotate => "admin_apps",
        }
    }

    /// Served on the probe listener (the metrics port when one is set) rather than the clients' one.
    pub fn is_probe(self) -> bool {
        matches!(self, Route::Livez | Route::Readyz | Route::Metrics)
    }

    /// Part of the Pusher HTTP API (`/apps/{app_id}/...`).
    pub fn is_api(self) -> bool {
        matches!(
            self,
            Route::ApiEvents
                | Route::ApiBatchEvents
                | Route::ApiChannels
                | Route::ApiChannel
                | Route::ApiChannelUsers
                | Route::ApiTerminate
                | Route::ApiStatus
        )
    }
}

/// A matched route and its path parameters, percent-decoded (`+` stays a plus in a path).
#[derive(Debug, PartialEq, Eq)]
pub struct Matched {
    pub route: Route,
    params: Vec<(&'static str, String)>,
}

impl Matched {
    /// A path parameter ("" when the route has none of that name).
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(k, _)| *k == name)
            .map_or("", |(_, v)| v.as_str())
    }
}

const TABLE: &[(&str, Route)] = &[
    ("/livez", Route::Livez),
    ("/readyz", Route::Readyz),
    ("/metrics", Route::Metrics),
    ("/", Route::Root),
    ("/app/{key}", Route::WebSocket),
    ("/app/{key}/", Route::WebSocket),
    ("/herald/auth/{key}", Route::Auth),
    ("/herald/user-auth/{key}", Route::UserAuth),
    ("/apps/{app_id}/events", Route::ApiEvents),
    ("/apps/{app_id}/batch_events", Route::ApiBatchEvents),
    ("/apps/{app_id}/channels", Route::ApiChannels),
    ("/apps/{app_id}/status", Route::ApiStatus),
    ("/apps/{app_id}/channels/{channel}", Route::ApiChannel),
    ("/apps/{app_id}/channels/{channel}/users", Route::ApiChannelUsers),
    (
        "/apps/{app_id}/users/{user_id}/terminate_connections",
        Route::ApiTerminate,
    ),
    ("/herald/admin/apps", Route::AdminApps),
    ("/herald/admin/apps/{app_id}", Route::AdminApp),
    ("/herald/admin/apps/{app_id}/rotate-secret", Route::AdminRotate),
];

const PARAMS: &[&str] = &["key", "app_id", "channel", "user_id"];

fn router() -> &'static matchit::Router<Route> {
    static ROUTER: OnceLock<matchit::Router<Route>> = OnceLock::new();
    ROUTER.get_or_init(|| {
        let mut router = matchit::Router::new();
        for (path, route) in TABLE {
            router.insert(*path, *route).expect("the route table has no conflicts");
        }
        router
    })
}

/// The route of `path`, if Herald has one.
pub fn find(path: &str) -> Option<Matched> {
    let found = router().at(path).ok()?;
    let mut params = Vec::with_capacity(found.params.len());
    for name in PARAMS {
        if let Some(raw) = found.params.get(*name) {
            let value = match raw.contains('%') {
                true => percent_encoding::percent_decode_str(raw)
                    .decode_utf8_lossy()
                    .into_owned(),
                false => raw.to_owned(),
            };
            params.push((*name, value));
        }
    }
    Some(Matched {
        route: *found.value,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_fits_a_table_of_route_count() {
        for (_, route) in TABLE {
            assert!(
                (*route as usize) < Route::COUNT,
                "{route:?} is past Route::COUNT: keep AdminRotate last"
            );
        }
    }

    #[test]
    fn paths_find_their_routes_and_decode_params() {
        let m = find("/apps/1/channels/presence-room%201/users").unwrap();
        assert_eq!(
            (m.route, m.param("app_id"), m.param("channel")),
            (Route::ApiChannelUsers, "1", "presence-room 1")
        );
        assert_eq!(
            find("/apps/1/channels/a+b").unwrap().param("channel"),
            "a+b",
            "a plus is a plus in a path"
        );
        assert_eq!(find("/app/key/").unwrap().route, Route::WebSocket);
        assert_eq!(find("/app/key").unwrap().param("key"), "key");
        assert_eq!(
            find("/apps/1/users/7/terminate_connections").unwrap().param("user_id"),
            "7"
        );
        assert!(find("/apps/1/nope").is_none() && find("/nope").is_none());
        assert!(Route::Readyz.is_probe() && Route::ApiEvents.is_api() && !Route::Auth.is_api());
    }
}
