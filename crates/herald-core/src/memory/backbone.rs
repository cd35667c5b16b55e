//! The in-memory backbone of the embedded default: a publish is handed straight back to this node, and
//! there is nothing to subscribe to.

use crate::backbone::{Backbone, BackboneError};
use crate::backend_events::{Events, Inbound};
use crate::{AppConfig, BoxFuture, Broadcast};

/// Delivery within one process.
pub struct MemoryBackbone {
    events: Events,
}

impl MemoryBackbone {
    pub fn new(events: Events) -> Self {
        MemoryBackbone { events }
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
        let now = std::time::Instant::now();
        self.events
            .delivered(&app.id, channel, Inbound::Broadcast(broadcast), now);
        Box::pin(async { Ok(()) })
    }

    fn is_ready(&self) -> bool {
        true
    }
}
