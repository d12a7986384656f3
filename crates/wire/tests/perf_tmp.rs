mod common;
use agentgateway_wire::*;
use bytes::Bytes;
use std::time::Instant;

#[test]
#[ignore]
fn perf() {
    let mut emb = br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":["#.to_vec();
    for _ in 0..1_000_000 { emb.extend_from_slice(b"-0.006929283495992422,"); }
    emb.extend_from_slice(br#"0.1]}],"model":"m","usage":{"prompt_tokens":4,"total_tokens":4}}"#);
    let t = Instant::now();
    let s = summarize_json(Operation::Embeddings, &emb);
    let d = t.elapsed();
    println!("json meter: {} MB in {:?} = {:.0} MB/s {:?}", emb.len() >> 20, d, emb.len() as f64 / d.as_secs_f64() / 1e6, s.usage.input_tokens);

    let mut b64 = br#"{"object":"list","data":[{"object":"embedding","index":0,"embedding":""#.to_vec();
    for _ in 0..1_000_000 { b64.extend_from_slice(b"AAAAAAAAAAAAAAAAAAAAAA"); }
    b64.extend_from_slice(br#""}],"model":"m","usage":{"prompt_tokens":4,"total_tokens":4}}"#);
    let t = Instant::now();
    let _ = summarize_json(Operation::Embeddings, &b64);
    let d = t.elapsed();
    println!("json meter base64: {:.0} MB/s", b64.len() as f64 / d.as_secs_f64() / 1e6);

    let chunks: Vec<Bytes> = common::CHAT_USAGE.split_inclusive(|&b| b == b'\n').map(Bytes::copy_from_slice).collect();
    for (name, strip, data) in [("passthrough include_usage", false, common::CHAT_USAGE), ("strip", true, common::CHAT_USAGE), ("passthrough plain", false, common::CHAT_PLAIN)] {
        let chunks: Vec<Bytes> = data.split_inclusive(|&b| b == b'\n').map(Bytes::copy_from_slice).collect();
        let n = 20000;
        let t = Instant::now();
        let mut total = 0;
        for _ in 0..n {
            let mut m = StreamMeter::new(Operation::ChatCompletions, strip);
            for c in &chunks { total += m.feed(c.clone()).len(); }
            total += m.finish().len();
        }
        let d = t.elapsed();
        println!("{name}: {:.0} MB/s, {:?}/event", (data.len() * n) as f64 / d.as_secs_f64() / 1e6, d / (n as u32 * 6));
        let _ = total;
    }
    let _ = chunks;
    let mut req = br#"{"messages":[{"role":"user","content":""#.to_vec();
    for _ in 0..100_000 { req.extend_from_slice(b"hello world \\\"quoted\\\" "); }
    req.extend_from_slice(br#""}],"model":"gpt-4o","stream":true}"#);
    let body = Bytes::from(req);
    let t = Instant::now();
    let info = scan_request(&body).unwrap();
    let d1 = t.elapsed();
    let t = Instant::now();
    let out = rewrite_request(&body, &info, Some("x"), true);
    let d2 = t.elapsed();
    println!("scan {} MB: {:?}, rewrite {:?} ({})", body.len() >> 20, d1, d2, out.len());
}
