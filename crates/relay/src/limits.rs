//! Per-hub limits on the relay: how many browser connections may be open
//! at once, and how many bytes per second all of them together may carry.
//!
//! Invariants: the bucket never lets more than `burst` bytes through
//! ahead of the rate; a taker that overdraws waits until the debt is paid
//! back, so the long-run rate is exactly `rate` bytes per second however
//! large the reads. Both directions of every connection of a hub draw on
//! the hub's one bucket.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The relay's per-hub limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Browser connections open at once per hub; more are refused.
    pub max_connections_per_hub: usize,
    /// Bytes per second per hub, both directions together (0 = no cap).
    pub bytes_per_second_per_hub: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections_per_hub: 64,
            // 100 Mbit/s: a dozen live views at 4 Mbit/s with room to spare.
            bytes_per_second_per_hub: 100_000_000 / 8,
        }
    }
}

/// A token bucket of bytes.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<(f64, Instant)>,
}

impl TokenBucket {
    /// `rate` bytes per second; a burst of a quarter second's worth (at
    /// least 64 KiB). `rate == 0` means unlimited.
    pub fn new(rate: u64) -> TokenBucket {
        let rate = rate as f64;
        let burst = (rate / 4.0).max(64.0 * 1024.0);
        TokenBucket {
            rate,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes `n` bytes, waiting as long as the rate requires.
    pub async fn take(&self, n: usize) {
        if self.rate <= 0.0 {
            return;
        }
        let wait = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            let refill = now.duration_since(s.1).as_secs_f64() * self.rate;
            s.0 = (s.0 + refill).min(self.burst) - n as f64;
            s.1 = now;
            if s.0 >= 0.0 {
                None
            } else {
                Some(Duration::from_secs_f64(-s.0 / self.rate))
            }
        };
        if let Some(w) = wait {
            tokio::time::sleep(w).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn long_run_rate() {
        let b = TokenBucket::new(1_000_000);
        let start = tokio::time::Instant::now();
        for _ in 0..100 {
            b.take(50_000).await; // 5 MB in total
        }
        let secs = start.elapsed().as_secs_f64();
        // 5 MB at 1 MB/s, less the initial burst of 250 kB.
        assert!((4.5..5.0).contains(&secs), "{secs}");
    }
}
