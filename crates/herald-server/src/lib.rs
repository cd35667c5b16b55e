//! The parts of the `herald` binary that other crates reach: the configuration (flags, environment, the
//! TOML file and Laravel's own names), so the fuzz targets can feed it what an operator could write, and the
//! reader of clients' WebSocket frames, so they can feed it what a client could send.

pub mod config;
pub mod echo_server_config;
pub mod frame_reader;
pub mod laravel_env;
pub mod listener;
