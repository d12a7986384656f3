//! The body sent to a provider: a few `Bytes` pieces sent one after the other. A rewritten
//! request is the caller's body sliced around the edits (see `wire::rewrite_request_parts`), so
//! a large prompt reaches the provider without being copied again; the pieces go out in one
//! vectored write. The length is known up front, so the request carries a `content-length`.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};

#[derive(Debug, Clone, Default)]
pub struct RequestBody {
    pieces: VecDeque<Bytes>,
    remaining: u64,
}

impl RequestBody {
    /// Bytes not yet sent; the whole length before the first poll.
    pub fn len(&self) -> u64 {
        self.remaining
    }

    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }
}

impl From<Bytes> for RequestBody {
    fn from(bytes: Bytes) -> RequestBody {
        RequestBody::from(vec![bytes])
    }
}

impl From<Vec<Bytes>> for RequestBody {
    fn from(pieces: Vec<Bytes>) -> RequestBody {
        let pieces: VecDeque<Bytes> = pieces.into_iter().filter(|p| !p.is_empty()).collect();
        let remaining = pieces.iter().map(|p| p.len() as u64).sum();
        RequestBody { pieces, remaining }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        let next = this.pieces.pop_front();
        if let Some(piece) = &next {
            this.remaining = this.remaining.saturating_sub(piece.len() as u64);
        }
        Poll::Ready(next.map(|piece| Ok(Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn pieces_come_out_in_order_and_empty_ones_are_skipped() {
        let body = RequestBody::from(vec![
            Bytes::from_static(b"{\"a\":"),
            Bytes::new(),
            Bytes::from_static(b"1}"),
        ]);
        assert_eq!(body.len(), 7);
        assert_eq!(body.size_hint().exact(), Some(7));
        let mut frames = Vec::new();
        let mut body = body;
        while let Some(frame) = body.frame().await {
            frames.push(frame.unwrap().into_data().unwrap());
        }
        assert_eq!(frames, ["{\"a\":", "1}"]);
        assert!(body.is_end_stream());
        assert_eq!(body.size_hint().exact(), Some(0));
    }

    #[test]
    fn an_empty_body_ends_at_once() {
        let body = RequestBody::from(Bytes::new());
        assert!(body.is_empty());
        assert!(body.is_end_stream());
    }
}
