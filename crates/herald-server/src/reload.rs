//! Apps that change without a restart. The configuration is read again on SIGHUP and whenever the config
//! file's contents change (looked at every two seconds, which also catches Kubernetes replacing a mounted
//! ConfigMap in place); with apps kept in Redis (`HERALD_REDIS_APPS`), their version is looked at
//! twice a second. Either way the node applies the file's apps plus the stored ones ([`Node::reload`]). A
//! file that does not load keeps the running apps and the log says exactly what is wrong; a stored app that
//! does not pass is left out (and named); Redis being unreachable changes nothing, so a blip never makes a
//! known app unknown, and a Redis that restarted without its data (their version is gone) gets the
//! apps this node knew put back. Only apps reload; the other settings (port, Redis, TLS, timers) take a restart.

use herald_core::metrics::metrics;
use herald_core::{AppConfig, Node};
use herald_redis::AppStore;
use herald_server::config::Config;
use std::ffi::OsString;
use std::sync::Arc;
use std::time::Duration;

const FILE_EVERY: Duration = Duration::from_secs(2);
const STORE_EVERY: Duration = Duration::from_millis(500);

/// What the running apps were made from.
struct Sources {
    /// The last configuration that loaded (its apps: the file's and the environment's).
    config: Config,
    /// The last apps read from Redis; the version is in `stored_version`.
    stored: Vec<AppConfig>,
    /// None until read once; then the version read (itself None when Redis had no apps).
    stored_version: Option<Option<String>>,
    /// The records as read, to put back into a Redis that lost them.
    records: Vec<(String, String)>,
}

/// Starts the reload task: `args` are the process's own, so a reload reads what a restart would.
pub fn spawn(node: Arc<Node>, args: Vec<OsString>, config: Config, shutdown: crate::shutdown::Shutdown) {
    let store = config
        .redis_settings()
        .filter(|_| config.redis_apps)
        .and_then(|settings| AppStore::new(&settings).ok());
    tokio::spawn(async move {
        let mut hangups = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "SIGHUP cannot be caught; the config file is still watched");
                None
            }
        };
        let file = config.file.clone();
        let mut seen = file.as_deref().map(contents);
        // New bytes are applied once they stayed the same for one look: a file caught while it is being
        // written (truncated, half there) is never loaded.
        let mut settling: Option<Vec<u8>> = None;
        let mut file_tick = tokio::time::interval(FILE_EVERY);
        file_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut store_tick = tokio::time::interval(STORE_EVERY);
        store_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut sources = Sources {
            config,
            stored: Vec::new(),
            stored_version: None,
            records: Vec::new(),
        };
        loop {
            tokio::select! {
                Some(()) = async { hangups.as_mut()?.recv().await } => reload_file(&mut sources, &args, "SIGHUP"),
                _ = file_tick.tick() => {
                    let Some(path) = &file else { continue };
                    let now = contents(path);
                    if Some(&now) == seen.as_ref() {
                        settling = None;
                        continue;
                    }
                    if settling.as_ref() != Some(&now) {
                        settling = Some(now);
                        continue;
                    }
                    settling = None;
                    seen = Some(now);
                    reload_file(&mut sources, &args, "the config file changed");
                }
                _ = store_tick.tick(), if store.is_some() => {
                    let store = store.as_ref().expect("checked by the guard");
                    if !read_store(&mut sources, store).await {
                        continue;
                    }
                }
            }
            apply(&node, &sources, &shutdown);
        }
    });
}

/// The file's bytes (empty when it cannot be read: a change back to readable counts as a change).
fn contents(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_default()
}

fn reload_file(sources: &mut Sources, args: &[OsString], why: &str) {
    match Config::load_from(args.to_vec()) {
        // A file with no app left would close every app's clients (for good: pusher-js does not come back
        // after 4003) and could let the development app in: only on purpose, with SIGHUP.
        Ok(config) if why != "SIGHUP" && sources.config.file_apps > 0 && (config.file_apps == 0 || config.dev_app) => {
            metrics().config_reloads.with_label_values(&["error"]).inc();
            tracing::error!(
                trigger = why,
                "configuration not reloaded, the running apps are kept: the config file has no app left; send SIGHUP to apply it anyway"
            );
        }
        Ok(config) if config.dev_app && !sources.config.dev_app => {
            metrics().config_reloads.with_label_values(&["error"]).inc();
            tracing::error!(
                trigger = why,
                "configuration not reloaded, the running apps are kept: no app would be left but the development app (app-key / app-secret)"
            );
        }
        Ok(config) => {
            tracing::info!(trigger = why, "configuration read again");
            sources.config = config;
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

/// Reads the stored apps when their version changed; true when there is something new to apply.
async fn read_store(sources: &mut Sources, store: &AppStore) -> bool {
    match store.version().await {
        Ok(v) if sources.stored_version.as_ref() == Some(&v) => return false,
        Ok(None) if !sources.records.is_empty() => {
            // The version is gone but this node knew apps: Redis restarted without its data (a delete of the
            // last app still leaves a version). Put back what this node knew.
            tracing::warn!(
                apps = sources.records.len(),
                "Redis lost the apps kept in it; putting back the ones this node knew"
            );
            for (id, json) in &sources.records {
                if let Err(e) = store.put(id, json).await {
                    tracing::warn!(error = %e, "apps not put back yet; the known ones are kept");
                    return false;
                }
            }
        }
        Ok(_) => {}
        Err(e) => {
            tracing::debug!(error = %e, "apps in Redis not looked at; the known ones are kept");
            return false;
        }
    }
    let (version, records) = match store.all().await {
        Ok(read) => read,
        Err(e) => {
            tracing::warn!(error = %e, "apps in Redis not read; the known ones are kept");
            return false;
        }
    };
    let (apps, errors) = sources.config.apps_from_store(&records);
    sources.records = records;
    for e in errors {
        metrics().config_reloads.with_label_values(&["error"]).inc();
        tracing::error!("an app kept in Redis is left out: {e}; fix it with herald apps update");
    }
    sources.stored = apps;
    sources.stored_version = Some(version);
    true
}

fn apply(node: &Node, sources: &Sources, shutdown: &crate::shutdown::Shutdown) {
    let apps = match sources.config.with_stored_apps(sources.stored.clone()) {
        Ok(apps) => apps,
        Err(e) => {
            metrics().config_reloads.with_label_values(&["error"]).inc();
            tracing::error!("apps not reloaded, the running apps are kept: {e}");
            return;
        }
    };
    let report = node.reload(apps, sources.config.secret_overlap);
    metrics().config_reloads.with_label_values(&["ok"]).inc();
    if !report.removed.is_empty() || !report.changed.is_empty() {
        // Connections of an app disabled or removed look at their app again (and close with 4003).
        shutdown.poke();
    }
    if !report.prefix_kept.is_empty() {
        tracing::warn!(
            apps = ?report.prefix_kept,
            "a changed redis_prefix takes a restart of the node; the running prefix is kept until then"
        );
    }
    if !report.is_empty() || !report.rotated.is_empty() {
        tracing::info!(
            added = ?report.added,
            changed = ?report.changed,
            removed = ?report.removed,
            secret_rotated = ?report.rotated,
            overlap_secs = sources.config.secret_overlap.as_secs(),
            "apps reloaded"
        );
    }
}
