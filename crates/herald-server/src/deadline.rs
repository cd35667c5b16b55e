//! A time limit that costs nothing when the work is done at once. Most writes to a socket and most HTTP API
//! bodies are done on their first poll (the socket has room; the body came with the request's headers),
//! while `tokio::time::timeout` reads the clock, and its timer may be registered, for every frame and every
//! request. Here the work is polled once first, and only work that has to wait gets the timer.

use std::future::Future;
use std::task::Poll;
use std::time::Duration;

/// Runs `work` to its end, or gives up after `limit` of waiting.
pub async fn within<F: Future>(limit: Duration, work: F) -> Result<F::Output, tokio::time::error::Elapsed> {
    let mut work = std::pin::pin!(work);
    if let Poll::Ready(out) = std::future::poll_fn(|cx| Poll::Ready(work.as_mut().poll(cx))).await {
        return Ok(out);
    }
    tokio::time::timeout(limit, work).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_done_at_once_or_later_is_returned_and_stuck_work_times_out() {
        assert_eq!(within(Duration::from_secs(5), async { 7 }).await, Ok(7));
        // Pending on its first poll: the rest runs under the limit.
        let later = async {
            tokio::task::yield_now().await;
            8
        };
        assert_eq!(within(Duration::from_secs(5), later).await, Ok(8));
        let started = std::time::Instant::now();
        let stuck = within(Duration::from_millis(50), std::future::pending::<()>()).await;
        assert!(stuck.is_err());
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
