//! Latency samples and their percentiles. Every sample is kept (4 bytes each), so percentiles are exact.

#[derive(Debug, Default, Clone)]
pub struct Latencies {
    micros: Vec<u32>,
}

/// Percentiles of a run, in milliseconds.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Latencies {
    pub fn record(&mut self, micros: u64) {
        self.micros.push(micros.min(u32::MAX as u64) as u32);
    }

    /// The raw samples, for a worker process to hand to its parent.
    pub fn samples(&self) -> &[u32] {
        &self.micros
    }

    pub fn from_samples(micros: Vec<u32>) -> Self {
        Latencies { micros }
    }

    pub fn merge(&mut self, other: Latencies) {
        self.micros.extend(other.micros);
    }

    pub fn percentiles(&mut self) -> Percentiles {
        self.micros.sort_unstable();
        let at = |q: f64| -> f64 {
            if self.micros.is_empty() {
                return 0.0;
            }
            let i = ((self.micros.len() as f64 - 1.0) * q).round() as usize;
            self.micros[i] as f64 / 1000.0
        };
        Percentiles {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            p999: at(0.999),
            max: at(1.0),
        }
    }
}

/// Microseconds since the Unix epoch (the send timestamp carried in each payload).
pub fn now_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles() {
        let mut l = Latencies::default();
        for i in 1..=1000 {
            l.record(i * 1000);
        }
        let p = l.percentiles();
        assert_eq!(p.max, 1000.0);
        assert!((p.p50 - 500.0).abs() <= 1.0);
        assert!((p.p99 - 990.0).abs() <= 1.0);
    }
}
