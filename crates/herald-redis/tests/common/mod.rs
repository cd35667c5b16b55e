//! A real redis-server for one test: started on a free port (never 6379), stopped when dropped, and able to
//! restart empty on the same port, as a crashed Redis without persistence does; and nodes of the test app on it.

#![allow(dead_code)]

use herald_core::{Node, NodeSettings};
use herald_redis::RedisSettings;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A node of the test app on `url`, with a 2 s lease.
pub fn redis_node(url: &str) -> Arc<Node> {
    redis_node_of(url, herald_core::testing::app())
}

/// A node of the app `config` on `url`, with a 2 s lease.
pub fn redis_node_of(url: &str, config: herald_core::AppConfig) -> Arc<Node> {
    let settings = RedisSettings {
        url: url.to_owned(),
        lease: Duration::from_millis(2000),
        tls: Default::default(),
    };
    herald_redis::node(vec![config], NodeSettings::default(), &settings).expect("a valid Redis URL")
}

/// Waits (bounded) until `check` holds.
pub async fn until(what: &str, timeout: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the node serves correctly (Redis subscription live, lease held).
pub async fn ready(node: &Arc<Node>) {
    until("the node to be ready", Duration::from_secs(10), async || {
        node.not_ready().is_none()
    })
    .await;
}

pub struct Redis {
    child: Child,
    pub port: u16,
    pub url: String,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Redis {
    /// Kills the server (as a crash would) and starts it again with no data on the same port.
    pub fn restart_empty(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = spawn_redis(self.port);
        wait_until_up(&self.url);
    }

    /// Kills the server and leaves it down.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again after `kill`, empty.
    pub fn start_again(&mut self) {
        self.child = spawn_redis(self.port);
        wait_until_up(&self.url);
    }

    /// A plain connection for the test's own commands.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_connection()
            .expect("the test's Redis answers")
    }
}

pub fn start_redis() -> Redis {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    assert_ne!(port, 6379);
    let redis = Redis {
        child: spawn_redis(port),
        port,
        url: format!("redis://127.0.0.1:{port}"),
    };
    wait_until_up(&redis.url);
    redis
}

fn wait_until_up(url: &str) {
    let client = redis::Client::open(url).unwrap();
    for _ in 0..200 {
        if let Ok(mut c) = client.get_connection() {
            if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                return;
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("redis-server did not answer on {url}");
}

fn spawn_redis(port: u16) -> Child {
    Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--enable-debug-command",
            "yes",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server must be installed (make test-deps)")
}
