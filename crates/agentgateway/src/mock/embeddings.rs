//! The mock's Embeddings answers: one vector per input (a string, a list of strings, a token
//! list or a list of token lists), of `dimensions` floats (default 1536), as JSON floats or — as
//! the official SDKs ask by default — `encoding_format: "base64"` (little-endian `f32`s).
//!
//! Vectors are deterministic unit vectors seeded by the input's text, so the same input always
//! embeds the same way and two different inputs (almost surely) differ: good enough for tests of
//! a vector store's plumbing, meaningless as semantics. Usage is `prompt_tokens` =
//! `total_tokens` = the gateway tokenizer's count of the input.

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use super::reply::Reply;
use super::to_json;

/// `text-embedding-3-small`'s size.
const DEFAULT_DIMENSIONS: usize = 1536;
/// Bounds what one request can make the mock allocate.
const MAX_DIMENSIONS: usize = 8192;
const MAX_INPUTS: usize = 2048;

#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<Embedding>,
    model: &'a str,
    usage: Usage,
}

#[derive(Serialize)]
struct Embedding {
    object: &'static str,
    index: usize,
    embedding: Vector,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Vector {
    Floats(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct Usage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// The Embeddings JSON answer to `body`.
pub fn respond(body: &[u8], reply: &Reply) -> Bytes {
    let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let dimensions = request
        .get("dimensions")
        .and_then(Value::as_u64)
        .and_then(|d| usize::try_from(d).ok())
        .unwrap_or(DEFAULT_DIMENSIONS)
        .clamp(1, MAX_DIMENSIONS);
    let base64 = request.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let data = inputs(request.get("input"))
        .iter()
        .take(MAX_INPUTS)
        .enumerate()
        .map(|(index, input)| {
            let vector = unit_vector(&input.to_string(), dimensions);
            Embedding {
                object: "embedding",
                index,
                embedding: if base64 {
                    Vector::Base64(encode_base64(&vector))
                } else {
                    Vector::Floats(vector)
                },
            }
        })
        .collect();
    let list = EmbeddingList {
        object: "list",
        data,
        model: &reply.model,
        usage: Usage {
            prompt_tokens: reply.input_tokens,
            total_tokens: reply.input_tokens,
        },
    };
    Bytes::from(to_json(&list))
}

/// The inputs to embed: a list of strings or of token lists is many; anything else is one.
fn inputs(input: Option<&Value>) -> Vec<&Value> {
    match input {
        None => Vec::new(),
        Some(Value::Array(items)) if items.iter().any(|i| !i.is_number()) => items.iter().collect(),
        Some(one) => vec![one],
    }
}

/// A unit vector from a seed text: FNV-1a of the text seeds an xorshift generator.
fn unit_vector(seed: &str, dimensions: usize) -> Vec<f32> {
    let mut state = seed.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    state |= 1;
    let mut vector: Vec<f32> = (0..dimensions)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // The top 24 bits as a fraction in [-1, 1).
            ((state >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect();
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}

/// Standard base64 (with padding) of the floats' little-endian bytes.
fn encode_base64(vector: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [
            group.first().copied().unwrap_or(0),
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            let sextet = ((n >> (18 - 6 * i)) & 63) as usize;
            let c = if i <= group.len() {
                ALPHABET.get(sextet).copied().unwrap_or(b'=')
            } else {
                b'='
            };
            out.push(char::from(c));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_standard_alphabet_and_padding() {
        let floats = [f32::from_le_bytes(*b"Man\0")];
        // "Man\0" -> "TWFuAA=="
        assert_eq!(encode_base64(&floats), "TWFuAA==");
    }

    #[test]
    fn vectors_are_deterministic_unit_vectors() {
        let a = unit_vector("\"hello\"", 64);
        assert_eq!(a, unit_vector("\"hello\"", 64));
        assert_ne!(a, unit_vector("\"world\"", 64));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
    }

    #[test]
    fn one_vector_per_input() {
        let count = |json: &str| inputs(serde_json::from_str::<Value>(json).ok().as_ref()).len();
        assert_eq!(count(r#""one""#), 1);
        assert_eq!(count(r#"["a","b","c"]"#), 3);
        assert_eq!(count("[1,2,3]"), 1);
        assert_eq!(count("[[1,2],[3]]"), 2);
        assert_eq!(count("null"), 1);
    }
}
