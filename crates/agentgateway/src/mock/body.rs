//! [`Paced`]: the mock's response body, a lazy sequence of chunks each sent after its own delay,
//! which is how a model's time to first token and per-token pace reach the gateway's timers.
//!
//! Chunks are produced one at a time from an iterator, so a stream of a hundred thousand tokens
//! never sits in memory, and a client that leaves simply drops the body: nothing else runs.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame};
use tokio::time::Sleep;

/// One piece of a response: wait `delay`, then send `bytes`.
pub type Chunk = (Duration, Bytes);

/// The chunks of one response, produced on demand.
pub type Chunks = Box<dyn Iterator<Item = Chunk> + Send>;

pub struct Paced {
    chunks: Chunks,
    /// A chunk whose delay is running.
    waiting: Option<(Pin<Box<Sleep>>, Bytes)>,
}

impl Paced {
    pub fn new(chunks: Chunks) -> Paced {
        Paced {
            chunks,
            waiting: None,
        }
    }

    /// One whole body, at once.
    pub fn full(bytes: Bytes) -> Paced {
        Paced::new(Box::new(std::iter::once((Duration::ZERO, bytes))))
    }
}

impl Body for Paced {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.waiting.is_none() {
            let Some((delay, bytes)) = self.chunks.next() else {
                return Poll::Ready(None);
            };
            if delay.is_zero() {
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            self.waiting = Some((Box::pin(tokio::time::sleep(delay)), bytes));
        }
        let Some((sleep, _)) = self.waiting.as_mut() else {
            return Poll::Ready(None);
        };
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        match self.waiting.take() {
            Some((_, bytes)) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
            None => Poll::Ready(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test(start_paused = true)]
    async fn chunks_come_in_order_after_their_delays() {
        let start = tokio::time::Instant::now();
        let body = Paced::new(Box::new(
            vec![
                (Duration::from_millis(200), Bytes::from_static(b"a")),
                (Duration::ZERO, Bytes::from_static(b"b")),
                (Duration::from_millis(50), Bytes::from_static(b"c")),
            ]
            .into_iter(),
        ));
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"abc");
        assert_eq!(start.elapsed(), Duration::from_millis(250));
    }
}
