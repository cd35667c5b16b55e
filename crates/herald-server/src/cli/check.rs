//! `herald check`: what a developer asks first when nothing arrives. Is the configuration valid (and what
//! is it), does Redis answer as a primary, is a node up at the expected address, and, with `--auth`, what
//! the app's auth endpoint answers a subscription request (the usual 403/404/419 causes, explained).

use super::{text, Common};
use bytes::Bytes;
use http_body_util::Full;
use std::time::Duration;

/// Check the configuration, Redis, a running node and (with --auth) the app's auth endpoint
#[derive(Debug, clap::Parser)]
pub struct Args {
    /// Also call each app's auth URL (auth_url / HERALD_AUTH_URL) the way a node forwards a subscription
    #[arg(long)]
    auth: bool,
    /// The channel the auth request asks for
    #[arg(long, default_value = "private-herald-check")]
    channel: String,
    /// A Cookie header to send with the auth request (a logged-in browser session), to see a real answer
    #[arg(long)]
    cookie: Option<String>,
    #[command(flatten)]
    common: Common,
}

struct Report {
    failed: bool,
}

impl Report {
    fn ok(&self, what: &str, detail: impl std::fmt::Display) {
        println!("ok    {what}: {detail}");
    }

    fn fail(&mut self, what: &str, detail: impl std::fmt::Display) {
        self.failed = true;
        println!("FAIL  {what}: {detail}");
    }
}

pub async fn run(args: Args) -> Result<i32, String> {
    let mut report = Report { failed: false };
    let config = match args.common.config() {
        Ok(config) => config,
        Err(e) => {
            report.fail("configuration", e);
            return Ok(1);
        }
    };
    let apps: Vec<String> = config
        .apps
        .iter()
        .map(|a| format!("{} (key {})", a.id, a.key))
        .collect();
    report.ok("configuration", format!("valid; apps {}", apps.join(", ")));
    for source in &config.sources {
        report.ok("from Laravel's settings", source);
    }
    match config.redis_settings() {
        None => report.ok("Redis", "not used (embedded mode: one node, everything in memory)"),
        Some(settings) => {
            match herald_redis::probe(&settings, Duration::from_secs(3)).await {
                Ok(answer) => report.ok("Redis", answer),
                Err(e) => report.fail("Redis", e),
            }
            for app in &config.apps {
                let prefixes = app.redis_prefixes.join(", ");
                report.ok(
                    &format!("app {}", app.id),
                    format!("reads Laravel's broadcasts on Redis channels prefixed {prefixes}"),
                );
            }
        }
    }
    let client = crate::tls::app_client(config.app_ca_file.as_deref()).map_err(|e| e.to_string())?;
    let base = args.common.url(&config);
    // The probes live on their own port when HERALD_METRICS_PORT is set.
    let probes = match (config.metrics_port, &args.common.url) {
        (Some(port), None) => format!("http://{}:{port}", config.local_host()),
        _ => base.clone(),
    };
    let readyz = hyper::Request::get(format!("{probes}/readyz")).body(Full::new(Bytes::new()));
    let readyz = readyz.map_err(|e| e.to_string())?;
    match tokio::time::timeout(Duration::from_secs(3), client.request(readyz)).await {
        Ok(Ok(r)) if r.status().is_success() => report.ok("node", format!("{base} is up and ready")),
        Ok(Ok(r)) => {
            let status = r.status().as_u16();
            report.fail(
                "node",
                format!("{base}/readyz answered {status}: {}", text(r).await.trim()),
            )
        }
        Ok(Err(e)) => report.fail(
            "node",
            format!(
                "nothing answers at {base} ({}); is herald running? (--url for another address)",
                crate::tls::cause(&e)
            ),
        ),
        Err(_) => report.fail("node", format!("{base} did not answer within 3 s")),
    }
    if config.dashboard.enabled() {
        report.ok("dashboard", format!("{base}{}/", config.dashboard.path));
    }
    if args.auth {
        for app in &config.apps {
            check_auth(&mut report, &client, app, &args).await;
        }
    }
    Ok(if report.failed { 1 } else { 0 })
}

async fn check_auth(
    report: &mut Report,
    client: &crate::auth_proxy::AppClient,
    app: &herald_core::AppConfig,
    args: &Args,
) {
    let what = format!("auth URL of app {}", app.id);
    let Some(url) = &app.auth_url else {
        return report.ok(
            &what,
            "none configured (pusher-js signs through Laravel's /broadcasting/auth directly; set auth_url for the redis driver)",
        );
    };
    let body: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("socket_id", "1234.5678")
        .append_pair("channel_name", &args.channel)
        .finish();
    let mut request = hyper::Request::post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .header("x-requested-with", "XMLHttpRequest");
    if let Some(cookie) = &args.cookie {
        request = request.header("cookie", cookie);
    }
    let Ok(request) = request.body(Full::new(Bytes::from(body))) else {
        return report.fail(&what, format!("{url} is not a valid URL"));
    };
    let response = match tokio::time::timeout(Duration::from_secs(5), client.request(request)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return report.fail(&what, format!("{url}: {}", crate::tls::cause(&e))),
        Err(_) => return report.fail(&what, format!("{url} did not answer within 5 s")),
    };
    let status = response.status().as_u16();
    let answer = herald_core::console::preview(&text(response).await);
    let channel = &args.channel;
    match status {
        // Under the redis driver Laravel answers `true` (or the member's data) and Herald signs it.
        200 if answer.trim() == "true" => report.ok(&what, format!("{url} allows {channel} (answered 200 true; Herald signs the subscription)")),
        200 => report.ok(&what, format!("{url} answered 200 for {channel}: {answer}")),
        401 | 403 if args.cookie.is_none() => report.ok(
            &what,
            format!("{url} answered {status} for {channel} without a session, as it should; pass --cookie from a logged-in browser to see it sign"),
        ),
        401 | 403 => report.fail(&what, format!("{url} refused {channel} ({status}) even with the session cookie: check the channel's callback in routes/channels.php")),
        404 => report.fail(&what, format!("{url} answered 404: Laravel serves /broadcasting/auth only with broadcasting enabled (BroadcastServiceProvider, or withBroadcasting() in bootstrap/app.php)")),
        419 => report.fail(&what, format!("{url} answered 419 (CSRF token mismatch): the browser's X-CSRF-TOKEN is not forwarded; add it to auth_headers, or exclude broadcasting/auth from CSRF")),
        _ => report.fail(&what, format!("{url} answered {status}: {answer}")),
    }
}
