//! Apps that change without a restart: the configuration is read again on SIGHUP and whenever the config
//! file's contents change (looked at every two seconds, which also catches Kubernetes replacing a mounted
//! ConfigMap in place), and the node applies the new apps ([`Node::reload`]). A file that does not load
//! keeps the running apps, and the log says exactly what is wrong. Only apps reload; the other settings
//! (port, Redis, TLS, timers) take a restart.

use herald_core::metrics::metrics;
use herald_core::Node;
use herald_server::config::Config;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

const LOOK_EVERY: Duration = Duration::from_secs(2);

/// Starts the reload task: `args` are the process's own, so a reload reads what a restart would.
pub fn spawn(node: Arc<Node>, args: Vec<OsString>, file: Option<PathBuf>, overlap: Duration) {
    tokio::spawn(async move {
        let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "SIGHUP cannot be caught; the config file is still watched");
                None
            }
        };
        let mut seen = file.as_deref().map(contents);
        let mut tick = tokio::time::interval(LOOK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let why = tokio::select! {
                Some(()) = async { hangups.as_mut()?.recv().await } => "SIGHUP",
                _ = tick.tick() => {
                    let Some(path) = &file else { continue };
                    let now = contents(path);
                    if Some(&now) == seen.as_ref() {
                        continue;
                    }
                    seen = Some(now);
                    "the config file changed"
                }
            };
            apply(&node, &args, overlap, why);
        }
    });
}

/// The file's bytes (empty when it cannot be read: a change back to readable counts as a change).
fn contents(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

fn apply(node: &Node, args: &[OsString], overlap: Duration, why: &str) {
    match Config::load_from(args.to_vec()) {
        Ok(config) => {
            let report = node.reload(config.apps, overlap);
            metrics().config_reloads.with_label_values(&["ok"]).inc();
            tracing::info!(
                trigger = why,
                added = ?report.added,
                changed = ?report.changed,
                removed = ?report.removed,
                secret_rotated = ?report.rotated,
                overlap_secs = overlap.as_secs(),
                "apps reloaded"
            );
        }
        Err(e) => {
            metrics().config_reloads.with_label_values(&["error"]).inc();
            tracing::error!(
                trigger = why,
                "configuration not reloaded, the running apps are kept: {e}"
            );
        }
    }
}
