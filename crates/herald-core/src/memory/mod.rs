//! The embedded default's backends: one node, everything in this process's memory, nothing to connect to.

mod backbone;
mod cache;
mod presence;
mod stats;
mod webhook_outbox;

pub use backbone::MemoryBackbone;
pub use cache::MemoryCache;
pub use presence::MemoryPresence;
pub use stats::MemoryStats;
pub use webhook_outbox::MemoryOutbox;

use crate::backend_events::Events;
use crate::backends::{Backends, NothingToRetire};
use std::sync::Arc;

/// The backends of a node that runs alone.
pub fn backends(events: Events) -> Backends {
    Backends {
        node_id: "embedded".to_owned(),
        backbone: Arc::new(MemoryBackbone::new(events.clone())),
        presence: Arc::new(MemoryPresence::new()),
        stats: Arc::new(MemoryStats::new(events)),
        cache: Arc::new(MemoryCache::new()),
        webhooks: Arc::new(MemoryOutbox::default()),
        lifecycle: Box::new(NothingToRetire),
    }
}
