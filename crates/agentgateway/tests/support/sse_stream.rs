//! How the fake providers stream: a plan of SSE events sent one body frame each from a task, so
//! gaps and cuts happen after the headers went out, as with a real upstream. Shared by every fake
//! so each one only decides which bytes to send.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Response};
use http_body::Frame;
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use tokio::sync::mpsc;

pub const SSE_CONTENT_TYPE: &str = "text/event-stream; charset=utf-8";

/// How a stream is delivered: which events, how fast, and whether the connection dies after them.
pub struct StreamPlan {
    pub events: Vec<String>,
    /// Pause before every event but the first.
    pub gap: Option<Duration>,
    /// End with a body error (hyper aborts the connection) instead of a clean end.
    pub abort: bool,
}

impl StreamPlan {
    pub fn clean(events: Vec<String>) -> Self {
        StreamPlan {
            events,
            gap: None,
            abort: false,
        }
    }

    pub fn slow(events: Vec<String>, gap: Duration) -> Self {
        StreamPlan {
            events,
            gap: Some(gap),
            abort: false,
        }
    }

    pub fn cut(events: Vec<String>) -> Self {
        StreamPlan {
            events,
            gap: None,
            abort: true,
        }
    }
}

/// A `text/event-stream` response delivering `plan`.
pub fn sse_response(plan: StreamPlan) -> Response<BoxBody<Bytes, io::Error>> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(pump(plan, tx));
    let mut response = Response::new(ChannelBody { rx }.boxed());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(SSE_CONTENT_TYPE),
    );
    response
}

async fn pump(plan: StreamPlan, tx: mpsc::Sender<io::Result<Bytes>>) {
    for (i, event) in plan.events.into_iter().enumerate() {
        if let (Some(gap), true) = (plan.gap, i > 0) {
            tokio::time::sleep(gap).await;
        }
        if tx.send(Ok(Bytes::from(event))).await.is_err() {
            return; // the client went away
        }
    }
    if plan.abort {
        // Let the chunks already sent reach the socket first: a body error makes hyper drop the
        // connection at once, possibly with data still buffered, and tests want the partial
        // stream followed by an unterminated chunked body.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = tx
            .send(Err(io::Error::other("fake upstream cut the stream")))
            .await;
    }
}

/// A response body fed by [`pump`]; an `Err` item makes hyper abort the connection mid-body.
struct ChannelBody {
    rx: mpsc::Receiver<io::Result<Bytes>>,
}

impl http_body::Body for ChannelBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|r| r.map(Frame::data)))
    }
}
