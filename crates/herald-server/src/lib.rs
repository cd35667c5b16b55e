//! The parts of the `herald` binary that other crates reach: the configuration (flags, environment, the
//! TOML file and Laravel's own names), so the fuzz targets can feed it what an operator could write.

pub mod config;
pub mod laravel_env;
