//! The access log: one line per finished request on stdout, text or JSON (`interface.md`,
//! "Access log"), with the user's `filter` and `fields.add` / `fields.remove` applied.
//!
//! Formatting happens on the request path (it is cheap, see [`format`]); writing does not. The
//! stdout sink hands each line to a dedicated writer thread over a bounded channel, so a slow or
//! blocked stdout can never stall a request. The thread writes through a `BufWriter` and flushes
//! whenever the channel is momentarily empty: lines appear promptly when traffic is light, and
//! bursts are written in large batches. [`AccessLog::close`] drains and joins the thread at
//! shutdown so no line is lost.

mod format;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use crate::config::{LogFormat, LoggingConfig};
use crate::expr::Expr;
use crate::record::RequestRecord;
use format::{KeySet, Line};

/// Lines buffered for the writer thread before new ones are dropped (tens of MB at most). Far
/// more than a healthy stdout ever lags; when it is reached stdout is stuck, and dropping a log
/// line is better than blocking or growing memory without bound.
const QUEUE_LINES: usize = 64 * 1024;

/// Names `fields.remove` accepts without error although no line carries them: agentgateway keys
/// this gateway does not emit (yet), so agentgateway configs keep working.
const KNOWN_ABSENT_KEYS: &[&str] = &["trace.id", "span.id", "agw.ai.usage.cost.total"];

/// Where lines go.
pub enum LogSink {
    Stdout,
    /// Lines are collected in memory (tests).
    Memory(Arc<Mutex<Vec<String>>>),
}

pub struct AccessLog {
    format: LogFormat,
    filter: Option<Expr>,
    /// `fields.add`, in config order.
    fields: Vec<(String, Expr)>,
    /// Built-in keys left out: `fields.remove`, and those a `fields.add` entry replaces.
    skip: KeySet,
    capacity: usize,
    writer: Writer,
}

enum Writer {
    Stdout(StdoutWriter),
    Memory(Arc<Mutex<Vec<String>>>),
}

// === impl AccessLog ===

impl AccessLog {
    /// `format_override` comes from `LOG_FORMAT` (the caller reads the environment). Compiles the
    /// filter and `fields.add`; errors name the offending field.
    pub fn new(
        cfg: &LoggingConfig,
        format_override: Option<LogFormat>,
        sink: LogSink,
    ) -> Result<AccessLog, String> {
        let filter = cfg
            .filter
            .as_deref()
            .map(|source| Expr::compile(source).map_err(|e| format!("filter: {e}")))
            .transpose()?;
        let mut skip = KeySet::default();
        let mut fields = Vec::with_capacity(cfg.fields.add.len());
        for (name, source) in &cfg.fields.add {
            let expr = Expr::compile(source).map_err(|e| format!("fields.add.{name}: {e}"))?;
            // A custom field named like a built-in one replaces it, so no key appears twice.
            skip.insert_name(name);
            fields.push((name.clone(), expr));
        }
        for name in &cfg.fields.remove {
            let known = skip.insert_name(name)
                || KNOWN_ABSENT_KEYS.contains(&name.as_str())
                || cfg.fields.add.contains_key(name);
            if !known {
                return Err(format!("fields.remove: unknown field `{name}`"));
            }
        }
        fields.retain(|(name, _)| !cfg.fields.remove.contains(name));
        let writer = match sink {
            LogSink::Stdout => Writer::Stdout(StdoutWriter::spawn()?),
            LogSink::Memory(lines) => Writer::Memory(lines),
        };
        Ok(AccessLog {
            format: format_override.or(cfg.format).unwrap_or_default(),
            filter,
            capacity: 512 + 64 * fields.len(),
            fields,
            skip,
            writer,
        })
    }

    /// Whether any expression reads `request.headers`.
    pub fn uses_request_headers(&self) -> bool {
        self.filter.iter().any(Expr::uses_request_headers)
            || self.fields.iter().any(|(_, e)| e.uses_request_headers())
    }

    /// Formats (if the filter passes) and writes the line, without blocking on stdout.
    pub fn log(&self, rec: &RequestRecord) {
        let Some(line) = self.format(rec) else {
            return;
        };
        match &self.writer {
            Writer::Stdout(w) => w.send(line),
            Writer::Memory(lines) => lines
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(line),
        }
    }

    /// The line (without trailing newline), or `None` if the filter leaves the request out.
    pub fn format(&self, rec: &RequestRecord) -> Option<String> {
        if let Some(filter) = &self.filter {
            if !filter.eval_bool(rec) {
                return None;
            }
        }
        // Stamped with the time the request ended, which is when its line is written.
        let end = rec
            .start_time
            .checked_add(rec.duration)
            .unwrap_or(rec.start_time);
        let mut line = Line::start(self.format, self.capacity, self.skip, end);
        format::write_head(&mut line, rec);
        for (name, expr) in &self.fields {
            if let Some(value) = expr.eval(rec) {
                line.custom(name, &value);
            }
        }
        format::write_tail(&mut line, rec);
        Some(line.finish())
    }

    /// Flushes and joins the writer thread (at shutdown, so no line is lost). Idempotent; lines
    /// logged afterwards are written to stdout directly.
    pub fn close(&self) {
        if let Writer::Stdout(w) = &self.writer {
            w.close();
        }
    }
}

impl Drop for AccessLog {
    fn drop(&mut self) {
        self.close();
    }
}

enum Message {
    Line(String),
    Close,
}

/// The stdout sink: a channel to the writer thread.
struct StdoutWriter {
    tx: SyncSender<Message>,
    thread: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
    dropped: AtomicU64,
}

// === impl StdoutWriter ===

impl StdoutWriter {
    fn spawn() -> Result<StdoutWriter, String> {
        let (tx, rx) = mpsc::sync_channel(QUEUE_LINES);
        let thread = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || write_lines(rx, std::io::stdout()))
            .map_err(|e| format!("cannot start the access-log writer thread: {e}"))?;
        Ok(StdoutWriter {
            tx,
            thread: Mutex::new(Some(thread)),
            closed: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        })
    }

    fn send(&self, line: String) {
        if self.closed.load(Ordering::Acquire) {
            return write_direct(&line);
        }
        match self.tx.try_send(Message::Line(line)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // Warn on the 1st, 2nd, 4th, 8th... drop: visible, but never a flood on stderr.
                if dropped.is_power_of_two() {
                    tracing::warn!(
                        dropped,
                        "access log: stdout is not keeping up, lines dropped"
                    );
                }
            }
            // The writer is gone (closed concurrently): write this one line ourselves.
            Err(TrySendError::Disconnected(Message::Line(line))) => write_direct(&line),
            Err(TrySendError::Disconnected(Message::Close)) => {}
        }
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            // A blocking send is fine here: the thread is alive and draining until it sees Close.
            let _ = self.tx.send(Message::Close);
            let _ = thread.join();
        }
    }
}

/// The writer thread's loop: write each line, flush when no more are waiting, stop at `Close`
/// (after writing what was queued before it) or when every sender is gone.
fn write_lines(rx: Receiver<Message>, out: impl Write) {
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, out);
    loop {
        let message = match rx.try_recv() {
            Ok(message) => message,
            Err(TryRecvError::Empty) => {
                // Write errors (stdout closed) are ignored: there is nowhere left to report them.
                let _ = out.flush();
                match rx.recv() {
                    Ok(message) => message,
                    Err(_) => break,
                }
            }
            Err(TryRecvError::Disconnected) => break,
        };
        match message {
            Message::Line(line) => {
                let _ = out.write_all(line.as_bytes());
                let _ = out.write_all(b"\n");
            }
            Message::Close => {
                // Lines that raced with `close` may sit behind the Close message: keep them.
                while let Ok(Message::Line(line)) = rx.try_recv() {
                    let _ = out.write_all(line.as_bytes());
                    let _ = out.write_all(b"\n");
                }
                break;
            }
        }
    }
    let _ = out.flush();
}

fn write_direct(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

#[cfg(test)]
mod tests;
