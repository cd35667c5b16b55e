//! A configuration file as an operator could write it (TOML, every key, any value): parsed and validated
//! as the server does at start. Whatever the text, the answer is a configuration or an error message,
//! never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Err(message) = herald_server::config::Config::from_toml(text) {
        assert!(!message.is_empty());
    }
});
