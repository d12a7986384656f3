//! SseParser framing: line endings, chunk boundaries, multi-line data, names, comments.

mod common;

use agentgateway_wire::sse::MAX_EVENT_BYTES;
use agentgateway_wire::{SseFrame, SseParser};

/// (event name, data) pairs dispatched when `stream` is fed in `chunks`, then finished.
fn events_in(chunks: &[&[u8]]) -> Vec<(Option<String>, String)> {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    let mut record = |e: agentgateway_wire::SseEvent<'_>| {
        out.push((
            e.event.map(str::to_owned),
            String::from_utf8_lossy(e.data).into_owned(),
        ));
    };
    for chunk in chunks {
        parser.push(chunk, &mut record);
    }
    parser.finish(&mut record);
    out
}

fn events(stream: &[u8]) -> Vec<(Option<String>, String)> {
    events_in(&[stream])
}

fn data(d: &str) -> (Option<String>, String) {
    (None, d.to_owned())
}

#[test]
fn data_events_with_and_without_space() {
    assert_eq!(
        events(b"data: a\n\ndata:b\n\ndata:  c\n\n"),
        vec![data("a"), data("b"), data(" c")]
    );
}

#[test]
fn all_line_endings() {
    let want = vec![data("x"), (Some("e".into()), "y\nz".into())];
    for stream in [
        &b"data: x\n\nevent: e\ndata: y\ndata: z\n\n"[..],
        b"data: x\r\n\r\nevent: e\r\ndata: y\r\ndata: z\r\n\r\n",
        b"data: x\r\revent: e\rdata: y\rdata: z\r\r",
        b"data: x\r\n\nevent: e\rdata: y\r\ndata: z\n\r\n",
    ] {
        assert_eq!(
            events(stream),
            want,
            "{:?}",
            String::from_utf8_lossy(stream)
        );
        for cut in 0..=stream.len() {
            assert_eq!(
                events_in(&[&stream[..cut], &stream[cut..]]),
                want,
                "cut {cut}"
            );
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(events_in(&bytes), want);
    }
}

#[test]
fn comments_ids_and_unknown_fields_are_ignored() {
    let stream = b": hello\n\nid: 7\nretry: 100\nfoo: bar\ndata: x\n: mid\n\n:only comment\n\n";
    assert_eq!(events(stream), vec![data("x")]);
}

#[test]
fn event_name_resets_after_dispatch() {
    let stream = b"event: message_start\ndata: {}\n\ndata: {}\n\nevent: ping\n\n";
    assert_eq!(
        events(stream),
        vec![(Some("message_start".into()), "{}".into()), data("{}")]
    );
}

#[test]
fn empty_data_field_still_dispatches() {
    assert_eq!(events(b"data\n\ndata:\n\n"), vec![data(""), data("")]);
    assert_eq!(events(b"data\ndata\n\n"), vec![data("\n")]);
}

#[test]
fn done_marker_is_an_event() {
    assert_eq!(
        events(b"data: {\"a\":1}\n\ndata: [DONE]\n\n"),
        vec![data("{\"a\":1}"), data("[DONE]")]
    );
}

#[test]
fn unterminated_trailing_event_is_dispatched_at_finish() {
    assert_eq!(events(b"data: a\n\ndata: b"), vec![data("a"), data("b")]);
    assert_eq!(events(b"data: a\n\ndata: b\n"), vec![data("a"), data("b")]);
    assert_eq!(events(b"data: a\n\n: just a comment"), vec![data("a")]);
}

#[test]
fn bom_is_skipped() {
    assert_eq!(events(b"\xEF\xBB\xBFdata: a\n\n"), vec![data("a")]);
}

#[test]
fn multi_line_data_across_chunks() {
    assert_eq!(
        events_in(&[b"data: a\nda", b"ta: b\n", b"\n"]),
        vec![data("a\nb")]
    );
}

#[test]
fn frames_report_block_ends() {
    let stream = b": c\n\ndata: a\r\n\r\ndata: b\r";
    let mut parser = SseParser::new();
    let mut frames = Vec::new();
    parser.push_frames(stream, |f: SseFrame<'_>| {
        frames.push((f.end, f.split_crlf, f.event.map(|e| e.data.to_vec())))
    });
    assert_eq!(
        frames,
        vec![(5, false, None), (16, false, Some(b"a".to_vec()))]
    );
    frames.clear();
    parser.push_frames(b"\r", |f: SseFrame<'_>| {
        frames.push((f.end, f.split_crlf, f.event.map(|e| e.data.to_vec())))
    });
    assert_eq!(frames, vec![(1, true, Some(b"b".to_vec()))]);
}

#[test]
fn oversized_event_is_dropped_but_parsing_continues() {
    let mut parser = SseParser::new();
    let mut seen = Vec::new();
    parser.push(b"data: ", |e| seen.push(e.data.len()));
    let big = vec![b'x'; 1 << 20];
    for _ in 0..(MAX_EVENT_BYTES >> 20) + 1 {
        parser.push(&big, |e| seen.push(e.data.len()));
    }
    parser.push(b"\n\ndata: ok\n\n", |e| seen.push(e.data.len()));
    assert_eq!(seen, vec![2]);
}

#[test]
fn real_fixtures_parse() {
    let chat = events(common::CHAT_USAGE);
    assert_eq!(chat.len(), 6);
    assert_eq!(chat.last(), Some(&data("[DONE]")));
    let responses = events(common::RESPONSES_SSE);
    assert_eq!(
        responses.first().and_then(|e| e.0.as_deref()),
        Some("response.created")
    );
    assert_eq!(responses.len(), 11);
}
