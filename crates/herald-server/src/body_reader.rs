//! Reading request bodies without letting anyone hold the node's memory or sockets: every body is bounded in
//! size (a declared `Content-Length` over the limit is refused before a byte is read), in time, and in how many
//! are read at once. The HTTP API checks a request's signature before it gets here, so an anonymous caller
//! never reaches its read; the auth endpoints (anonymous browsers) have a reader of their own.

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::Request;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Why a body was not read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("Request body larger than {0} bytes")]
    TooLarge(usize),
    #[error("Request body not received within {0} ms")]
    TooSlow(u64),
    #[error("Too many request bodies being received; retry")]
    Busy,
    #[error("Request body could not be read: {0}")]
    Broken(String),
}

impl BodyError {
    /// The HTTP status a caller gets.
    pub fn status(&self) -> u16 {
        match self {
            BodyError::TooLarge(_) => 413,
            BodyError::TooSlow(_) => 408,
            BodyError::Busy => 503,
            BodyError::Broken(_) => 400,
        }
    }
}

/// The node's body reader: a time limit for one body, and a bound on bodies in flight.
#[derive(Clone)]
pub struct BodyReader {
    timeout: Duration,
    in_flight: Arc<Semaphore>,
}

impl BodyReader {
    pub fn new(timeout: Duration, max_in_flight: usize) -> Self {
        BodyReader {
            timeout,
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
        }
    }

    /// Reads a body of at most `limit` bytes.
    pub async fn read(&self, req: Request<Incoming>, limit: usize) -> Result<Bytes, BodyError> {
        let declared = req
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(BodyError::TooLarge(limit));
        }
        let _slot = self.in_flight.try_acquire().map_err(|_| BodyError::Busy)?;
        let collect = Limited::new(req.into_body(), limit).collect();
        match crate::deadline::within(self.timeout, collect).await {
            Ok(Ok(body)) => Ok(body.to_bytes()),
            Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
                Err(BodyError::TooLarge(limit))
            }
            Ok(Err(e)) => Err(BodyError::Broken(e.to_string())),
            Err(_) => Err(BodyError::TooSlow(self.timeout.as_millis() as u64)),
        }
    }
}
