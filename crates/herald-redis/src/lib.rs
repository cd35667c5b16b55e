//! Redis as the backbone. In: Laravel's RedisBroadcaster channels (`<prefix><channel>`) and Herald's own
//! channels (`herald:{app}:c:{channel}`), subscribed only while a channel has local subscribers. Out:
//! Herald's publishes (HTTP API, client events, member events) as a compact envelope holding the frame,
//! encoded once by the publishing node. Reconnects with backoff, resubscribes everything, and watches its
//! own subscription with a heartbeat so that a silent failure turns the node unready.

pub mod connection;
pub mod envelope;
pub mod keys;
pub mod liveness;
pub mod redis_backbone;
pub mod redis_cache;
pub mod redis_presence;
pub mod redis_stats;

pub use redis_backbone::RedisBackbone;
pub use redis_cache::RedisCache;
pub use redis_presence::RedisPresence;
pub use redis_stats::RedisStats;
