//! The in-memory backbone of the embedded default: a publish is delivered straight to this node's
//! fan-out, and there is nothing to subscribe to.

use crate::app::AppRegistry;
use crate::backbone::{Backbone, BackboneError, Broadcast};
use crate::{AppConfig, BoxFuture};
use std::sync::{Arc, OnceLock};

/// Delivery within one process.
#[derive(Default)]
pub struct MemoryBackbone {
    apps: OnceLock<Arc<AppRegistry>>,
}

impl MemoryBackbone {
    pub fn new() -> Self {
        Self::default()
    }

    /// Connects the backbone to the apps it delivers to (once, when the node is built).
    pub fn attach(&self, apps: Arc<AppRegistry>) {
        let _ = self.apps.set(apps);
    }
}

impl Backbone for MemoryBackbone {
    fn subscribe(&self, _app: &AppConfig, _channel: &str) -> BoxFuture<'static, ()> {
        Box::pin(async {})
    }

    fn unsubscribe(&self, _app: &AppConfig, _channel: &str) {}

    fn publish(
        &self,
        app: &AppConfig,
        channel: &str,
        broadcast: Broadcast,
    ) -> BoxFuture<'static, Result<(), BackboneError>> {
        if let Some(app) = self.apps.get().and_then(|apps| apps.by_id(&app.id)) {
            app.fan_out(channel, &broadcast, std::time::Instant::now());
        }
        Box::pin(async { Ok(()) })
    }

    fn is_ready(&self) -> bool {
        true
    }
}
