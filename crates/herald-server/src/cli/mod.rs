//! The `herald` subcommands for a terminal: `send` (an event through the HTTP API with the configured
//! credentials), `tail` (the dashboard's console, filtered, in the terminal), `check` (the configuration,
//! Redis, and optionally the app's auth endpoint) and `apps` (the apps kept in Redis). Each reads the configuration exactly as the server does
//! (flags, `HERALD_*`, the file, Laravel's names), so what they report is what a node would use.

mod apps;
mod check;
mod send;
mod tail;

use herald_server::config::Config;
use std::ffi::OsString;
use std::path::PathBuf;

/// The subcommands, by the name typed after `herald`.
pub const NAMES: [&str; 4] = ["send", "tail", "check", "apps"];

/// Options every subcommand takes.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// The config file, as for the server [env: HERALD_CONFIG]
    #[arg(long)]
    config: Option<PathBuf>,
    /// Which app, by id (needed when the configuration has more than one)
    #[arg(long)]
    app: Option<String>,
    /// Where a node answers [default: this configuration's host and port on this machine]
    #[arg(long, env = "HERALD_URL")]
    url: Option<String>,
}

impl Common {
    fn config(&self) -> Result<Config, String> {
        let mut args: Vec<OsString> = vec!["herald".into()];
        if let Some(path) = &self.config {
            args.push("--config".into());
            args.push(path.into());
        }
        Config::load_from(args)
    }

    fn app<'c>(&self, config: &'c Config) -> Result<&'c herald_core::AppConfig, String> {
        match &self.app {
            Some(id) => config.apps.iter().find(|a| &a.id == id).ok_or_else(|| {
                let known: Vec<&str> = config.apps.iter().map(|a| a.id.as_str()).collect();
                format!("--app {id:?} is not configured (apps: {})", known.join(", "))
            }),
            None if config.apps.len() == 1 => Ok(&config.apps[0]),
            None => {
                let known: Vec<&str> = config.apps.iter().map(|a| a.id.as_str()).collect();
                Err(format!(
                    "more than one app is configured; pick one with --app ({})",
                    known.join(", ")
                ))
            }
        }
    }

    fn url(&self, config: &Config) -> String {
        match &self.url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => config.local_url(),
        }
    }
}

/// Runs `herald <subcommand> ...`; returns the exit code.
pub fn run(args: Vec<OsString>) -> i32 {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let _ = rustls::crypto::ring::default_provider().install_default();
    let name = args[1].to_string_lossy().into_owned();
    let rest = || std::iter::once(OsString::from(format!("herald {name}"))).chain(args[2..].iter().cloned());
    let result = match name.as_str() {
        "send" => runtime.block_on(send::run(parse(rest()))),
        "tail" => runtime.block_on(tail::run(parse(rest()))),
        "apps" => runtime.block_on(apps::run(parse(rest()))),
        _ => runtime.block_on(check::run(parse(rest()))),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("herald {name}: {e}");
            2
        }
    }
}

fn parse<T: clap::Parser>(args: impl Iterator<Item = OsString>) -> T {
    T::parse_from(args)
}

/// Reads a whole response body as text.
async fn text(response: hyper::Response<hyper::body::Incoming>) -> String {
    use http_body_util::BodyExt;
    match response.into_body().collect().await {
        Ok(body) => String::from_utf8_lossy(&body.to_bytes()).into_owned(),
        Err(e) => format!("(body not read: {e})"),
    }
}
