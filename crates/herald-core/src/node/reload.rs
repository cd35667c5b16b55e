//! Apps that change while the node runs: the node takes a new list of app settings (a reloaded config
//! file) and applies it without dropping anyone. An unchanged app stays as it is; a changed one becomes a
//! new [`App`] sharing the old one's channels, metrics, console and connections, so new settings apply to
//! what happens next; a replaced secret stays accepted for an overlap; a disabled or removed app's
//! connections are closed with 4003.

use super::Node;
use crate::app::{App, AppConfig, AppRegistry};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a reload changed, by app id.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reloaded {
    pub added: Vec<String>,
    pub changed: Vec<String>,
    pub removed: Vec<String>,
    /// Apps whose secret changed (the old one is accepted for the overlap).
    pub rotated: Vec<String>,
    /// Apps whose `redis_prefix` changed: kept as it was until a restart (the node's Redis subscriptions
    /// were made with the old one, and another app may take it over).
    pub prefix_kept: Vec<String>,
}

impl Reloaded {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

impl Node {
    /// Applies a new list of app settings (already validated). A secret that changed stays accepted for
    /// `overlap`, next to the new one.
    pub fn reload(&self, configs: Vec<AppConfig>, overlap: Duration) -> Reloaded {
        let old = self.apps.load_full();
        let now = Instant::now();
        let mut report = Reloaded::default();
        let mut apps = Vec::with_capacity(configs.len());
        for mut config in configs {
            let Some(prev) = old.by_id(&config.id) else {
                report.added.push(config.id.clone());
                apps.push(Arc::new(App::new(config)));
                continue;
            };
            if config.redis_prefixes != prev.config.redis_prefixes {
                config.redis_prefixes = prev.config.redis_prefixes.clone();
                report.prefix_kept.push(config.id.clone());
            }
            // Secrets still in their overlap carry over; the one just replaced starts its own.
            config.retired_secrets = prev
                .config
                .retired_secrets
                .iter()
                .filter(|(s, until)| now < *until && *s != config.secret)
                .cloned()
                .collect();
            if prev.config.secret != config.secret {
                if let Some(until) = now.checked_add(overlap) {
                    config.retired_secrets.push((prev.config.secret.clone(), until));
                }
                report.rotated.push(config.id.clone());
            }
            if config.same_settings(&prev.config) && config.retired_secrets == prev.config.retired_secrets {
                apps.push(prev.clone());
            } else {
                report.changed.push(config.id.clone());
                apps.push(Arc::new(prev.reconfigured(config)));
            }
        }
        let registry = AppRegistry::of(apps);
        let removed: Vec<Arc<App>> = old
            .iter()
            .filter(|app| registry.by_id(&app.config.id).is_none())
            .cloned()
            .collect();
        self.apps.store(Arc::new(registry));
        self.generation.fetch_add(1, Ordering::Release);
        // Connections are told only once the new registry is in place.
        for app in self.apps.load().iter() {
            app.apply_enabled();
        }
        for app in removed {
            report.removed.push(app.config.id.clone());
            app.disable();
        }
        for list in [
            &mut report.added,
            &mut report.changed,
            &mut report.removed,
            &mut report.rotated,
            &mut report.prefix_kept,
        ] {
            list.sort();
        }
        report
    }

    /// Bumped by every reload.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(apps: Vec<AppConfig>) -> Arc<Node> {
        Node::embedded(apps, Default::default())
    }

    #[tokio::test]
    async fn a_reload_adds_changes_rotates_and_removes_keeping_what_is_running() {
        let n = node(vec![AppConfig::new("a", "ka", "sa"), AppConfig::new("b", "kb", "sb")]);
        let a_before = n.app_by_id("a").unwrap();
        let b_before = n.app_by_id("b").unwrap();
        let mut b_closed = b_before.disabled();
        let mut a2 = AppConfig::new("a", "ka", "sa-new");
        a2.client_events = false;
        let report = n.reload(vec![a2, AppConfig::new("c", "kc", "sc")], Duration::from_secs(60));
        assert_eq!(
            report,
            Reloaded {
                added: vec!["c".into()],
                changed: vec!["a".into()],
                removed: vec!["b".into()],
                rotated: vec!["a".into()],
                prefix_kept: vec![],
            }
        );
        let a_after = n.app_by_id("a").unwrap();
        assert!(
            Arc::ptr_eq(&a_before.channels, &a_after.channels),
            "same channels, same connections"
        );
        assert!(!a_after.config.client_events);
        assert_eq!(a_after.config.secrets().collect::<Vec<_>>(), ["sa-new", "sa"]);
        assert!(n.app_by_id("b").is_none() && n.app_by_key("kc").is_some());
        b_closed.wait_for(|d| *d).await.unwrap();
        assert_eq!(n.generation(), 1);
        // The same list again changes nothing (the overlap carries over).
        let again = n.reload(
            vec![
                {
                    let mut a = AppConfig::new("a", "ka", "sa-new");
                    a.client_events = false;
                    a
                },
                AppConfig::new("c", "kc", "sc"),
            ],
            Duration::from_secs(60),
        );
        assert!(again.is_empty(), "{again:?}");
        assert!(Arc::ptr_eq(&n.app_by_id("a").unwrap(), &a_after));
    }

    #[tokio::test]
    async fn a_disabled_app_closes_and_an_expired_secret_is_refused() {
        let n = node(vec![AppConfig::new("a", "ka", "s1")]);
        let mut closed = n.app_by_id("a").unwrap().disabled();
        let mut off = AppConfig::new("a", "ka", "s2");
        off.enabled = false;
        n.reload(vec![off], Duration::ZERO);
        closed.wait_for(|d| *d).await.unwrap();
        let a = n.app_by_id("a").unwrap();
        assert_eq!(
            a.config.secrets().collect::<Vec<_>>(),
            ["s2"],
            "an overlap of zero ends at once"
        );
    }

    #[tokio::test]
    async fn a_changed_redis_prefix_is_kept_until_a_restart() {
        let mut a = AppConfig::new("a", "ka", "s");
        a.redis_prefixes = vec!["a_".into()];
        let n = node(vec![a.clone()]);
        let mut moved = a.clone();
        moved.redis_prefixes = vec!["b_".into()];
        let report = n.reload(vec![moved], Duration::from_secs(60));
        assert_eq!(report.prefix_kept, vec!["a".to_string()]);
        assert_eq!(n.app_by_id("a").unwrap().config.redis_prefixes, vec!["a_".to_string()]);
    }
}
