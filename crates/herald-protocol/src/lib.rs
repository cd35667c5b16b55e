//! The Pusher Channels protocol 7, as `pusher-js` and `laravel-echo` speak it, and the payload Laravel's
//! `RedisBroadcaster` publishes. Pure data and functions: no I/O, no runtime, so every rule here is tested
//! alone and shared by the node core, the server and the load generator.

pub mod api_event;
pub mod channel;
pub mod close_code;
pub mod encryption;
pub mod frame;
pub mod laravel;
pub mod member_list;
pub mod presence_data;
pub mod signature;
pub mod socket_id;
pub mod socketio;

pub use channel::{ChannelKind, ChannelNameError};
pub use socket_id::SocketId;
