//! Socket ids for this process: a random process number and a counter. Unique across nodes without any
//! coordination, and never reused by a restarted node (it draws a new random number).

use herald_protocol::SocketId;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug)]
pub struct SocketIdGenerator {
    node: u32,
    next: AtomicU64,
}

impl SocketIdGenerator {
    /// A generator with a random process number.
    pub fn random() -> Self {
        let mut buf = [0u8; 12];
        getrandom::getrandom(&mut buf).expect("the OS provides randomness");
        let node = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]).max(1);
        // Start the counter at a random point too, so two processes that drew the same number still differ.
        let start = u64::from_le_bytes([buf[4], buf[5], buf[6], buf[7], buf[8], buf[9], buf[10], buf[11]]) >> 24;
        SocketIdGenerator {
            node,
            next: AtomicU64::new(start),
        }
    }

    pub fn next(&self) -> SocketId {
        SocketId::new(self.node, self.next.fetch_add(1, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_and_well_formed() {
        let g = SocketIdGenerator::random();
        let a = g.next();
        let b = g.next();
        assert_ne!(a, b);
        assert!(herald_protocol::socket_id::is_valid(a.as_str()));
    }
}
