//! The chunked transfer coding of a provider's response (RFC 9112 §7.1), decoded in place: data
//! comes out as slices of the read buffer, never copied. Chunk extensions and trailers are read
//! past and dropped; nothing in them matters to a caller of an LLM API.
//!
//! The decoder also looks past the end of a chunk when the bytes are there, so the frame that
//! carries the last data can say it was the last: the connection then goes back to the pool
//! with that frame instead of one poll later.

use std::io;

use bytes::{Buf, BytesMut};

use super::{invalid, Taken};

/// Longest chunk-size line or trailer line accepted.
const MAX_LINE: usize = 8 << 10;
/// Most trailer bytes read past.
const MAX_TRAILERS: usize = 64 << 10;

#[derive(Debug, Default)]
pub(in crate::upstream) struct Chunked {
    state: State,
    trailer_bytes: usize,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Expecting a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk, this many data bytes to go.
    Data(u64),
    /// After a chunk's data, expecting its CRLF.
    DataEnd,
    /// After the last (zero) chunk, reading trailer lines up to an empty one.
    Trailers,
    Done,
}

impl Chunked {
    /// The next data (or the end) the buffer holds, consumed; `None` when more must be read.
    pub(in crate::upstream) fn take(&mut self, buf: &mut BytesMut) -> io::Result<Option<Taken>> {
        if self.step(buf)? {
            return Ok(Some(Taken::End));
        }
        let State::Data(left) = &mut self.state else {
            return Ok(None);
        };
        if buf.is_empty() {
            return Ok(None);
        }
        let take = usize::try_from(*left).unwrap_or(usize::MAX).min(buf.len());
        *left -= take as u64;
        if *left == 0 {
            self.state = State::DataEnd;
        }
        let data = buf.split_to(take).freeze();
        let last = self.step(buf)?;
        Ok(Some(Taken::Data(data, last)))
    }

    /// Runs the framing between data as far as the buffer allows; true once the end was read.
    fn step(&mut self, buf: &mut BytesMut) -> io::Result<bool> {
        loop {
            match self.state {
                State::Data(_) => return Ok(false),
                State::Done => return Ok(true),
                State::DataEnd => {
                    let Some(crlf) = buf.get(..2) else {
                        return Ok(false);
                    };
                    if crlf != b"\r\n" {
                        return Err(invalid("a chunk's data is not followed by CRLF"));
                    }
                    buf.advance(2);
                    self.state = State::Size;
                }
                State::Size => {
                    let Some(size) = take_line(buf, parse_size)? else {
                        return Ok(false);
                    };
                    self.state = match size? {
                        0 => State::Trailers,
                        size => State::Data(size),
                    };
                }
                State::Trailers => {
                    let Some(length) = take_line(buf, <[u8]>::len)? else {
                        return Ok(false);
                    };
                    self.trailer_bytes += length + 2;
                    if self.trailer_bytes > MAX_TRAILERS {
                        return Err(invalid("the response trailers are too large"));
                    }
                    if length == 0 {
                        self.state = State::Done;
                    }
                }
            }
        }
    }
}

/// Applies `read` to the first line (without its CRLF or LF) and consumes it; `None` until a
/// whole line has arrived.
fn take_line<T>(buf: &mut BytesMut, read: impl FnOnce(&[u8]) -> T) -> io::Result<Option<T>> {
    let Some(end) = memchr::memchr(b'\n', buf) else {
        if buf.len() > MAX_LINE {
            return Err(invalid("a chunk line is too long"));
        }
        return Ok(None);
    };
    let line = buf.get(..end).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let value = read(line);
    buf.advance(end + 1);
    Ok(Some(value))
}

/// The hex size before any `;extension`.
fn parse_size(line: &[u8]) -> io::Result<u64> {
    let digits = line
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if digits.is_empty() || digits.len() > 15 {
        return Err(invalid("bad chunk size"));
    }
    digits.iter().try_fold(0u64, |size, &digit| {
        let value = (digit as char)
            .to_digit(16)
            .ok_or_else(|| invalid("bad chunk size"))?;
        Ok(size << 4 | u64::from(value))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    /// Feeds `wire` split at `cut`, collecting data until the end.
    fn decode(wire: &[u8], cut: usize) -> io::Result<(Vec<u8>, bool, usize)> {
        let mut chunked = Chunked::default();
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut frames = 0;
        for part in [&wire[..cut], &wire[cut..]] {
            buf.extend_from_slice(part);
            while let Some(taken) = chunked.take(&mut buf)? {
                match taken {
                    Taken::Data(data, last) => {
                        frames += 1;
                        out.extend_from_slice(&data);
                        if last {
                            return Ok((out, true, frames));
                        }
                    }
                    Taken::End => return Ok((out, true, frames)),
                }
            }
        }
        Ok((out, false, frames))
    }

    #[test]
    fn every_split_of_a_chunked_body_decodes_the_same() {
        let wire = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n";
        for cut in 0..=wire.len() {
            let (data, ended, _) = decode(wire, cut).unwrap();
            assert_eq!(data, b"hello, world", "cut at {cut}");
            assert!(ended, "cut at {cut}");
        }
    }

    #[test]
    fn the_last_data_frame_says_it_is_last_when_the_end_is_buffered() {
        let mut chunked = Chunked::default();
        let mut buf = BytesMut::from(&b"2\r\nok\r\n0\r\n\r\n"[..]);
        match chunked.take(&mut buf).unwrap() {
            Some(Taken::Data(data, true)) => assert_eq!(data, Bytes::from_static(b"ok")),
            _ => panic!("expected the last frame"),
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn the_end_is_not_claimed_before_it_arrives() {
        let (data, ended, _) = decode(b"2\r\nok\r\n", 7).unwrap();
        assert_eq!(data, b"ok");
        assert!(!ended);
    }

    #[test]
    fn bad_framing_is_an_error_not_a_panic() {
        for wire in [
            &b"zz\r\nok\r\n0\r\n\r\n"[..],
            b"2\r\nokX\r\n0\r\n\r\n",
            b"\r\n",
            b"ffffffffffffffffff\r\n",
        ] {
            assert!(decode(wire, wire.len()).is_err(), "{wire:?}");
        }
        let long = vec![b'1'; MAX_LINE + 1];
        assert!(decode(&long, long.len()).is_err());
    }
}
