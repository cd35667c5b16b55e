//! The embedded default's backends: one node, everything in this process's memory, nothing to connect to.

mod backbone;
mod cache;
mod presence;
mod stats;

pub use backbone::MemoryBackbone;
pub use cache::MemoryCache;
pub use presence::MemoryPresence;
pub use stats::MemoryStats;

use crate::backend_events::Events;
use crate::backends::{Backends, NothingToRetire};
use std::sync::Arc;

/// The backends of a node that runs alone.
pub fn backends(events: Events) -> Backends {
    Backends {
        backbone: Arc::new(MemoryBackbone::new(events.clone())),
        presence: Arc::new(MemoryPresence::new()),
        stats: Arc::new(MemoryStats::new(events)),
        cache: Arc::new(MemoryCache::new()),
        lifecycle: Box::new(NothingToRetire),
    }
}
