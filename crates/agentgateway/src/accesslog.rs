//! The access log: one line per finished request on stdout, text or JSON (`interface.md`,
//! "Access log"), with the user's `filter` and `fields.add` / `fields.remove` applied.
//!
//! Formatting happens on the request path (it is cheap, see [`format`]); writing does not: the
//! stdout sink appends the line to a batch that a dedicated thread writes ([`writer`]), so a slow
//! or blocked stdout can never stall a request. [`AccessLog::close`] writes what is pending and
//! joins the thread at shutdown so no line is lost.

mod format;
mod timestamp;
mod values;
mod writer;

use std::cell::RefCell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::config::{LogFormat, LoggingConfig};
use crate::expr::Expr;
use crate::record::RequestRecord;
use format::{KeySet, Line};
use writer::BatchWriter;

/// Names `fields.remove` accepts without error although no line carries them: agentgateway keys
/// this gateway does not emit (yet), so agentgateway configs keep working.
const KNOWN_ABSENT_KEYS: &[&str] = &["trace.id", "span.id", "agw.ai.usage.cost.total"];

/// Bytes of line buffer a thread keeps between requests.
const MAX_KEPT_LINE: usize = 64 << 10;

thread_local! {
    /// The line being written to stdout, reused by every request this thread logs.
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(1024));
}

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
    /// The initial size of a line's buffer, before any line was written.
    capacity: usize,
    /// The length of the last line written, to size the next one.
    last_len: AtomicUsize,
    writer: Writer,
}

enum Writer {
    Stdout(BatchWriter),
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
            LogSink::Stdout => Writer::Stdout(BatchWriter::stdout()?),
            LogSink::Memory(lines) => Writer::Memory(lines),
        };
        Ok(AccessLog {
            format: format_override.or(cfg.format).unwrap_or_default(),
            filter,
            capacity: 512 + 64 * fields.len(),
            last_len: AtomicUsize::new(0),
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
        match &self.writer {
            // The line goes into a buffer this thread reuses: the batch copies it anyway.
            Writer::Stdout(w) => LINE.with(|line| match line.try_borrow_mut() {
                Ok(mut line) => {
                    line.clear();
                    if self.write_line(&mut line, rec) {
                        w.send(&line);
                    }
                    if line.capacity() > MAX_KEPT_LINE {
                        // One huge line (large custom fields) should not pin its memory forever.
                        *line = String::new();
                    }
                }
                Err(_) => {
                    if let Some(line) = self.format(rec) {
                        w.send(&line);
                    }
                }
            }),
            Writer::Memory(lines) => {
                if let Some(line) = self.format(rec) {
                    lines
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(line);
                }
            }
        }
    }

    /// The line (without trailing newline), or `None` if the filter leaves the request out.
    pub fn format(&self, rec: &RequestRecord) -> Option<String> {
        // Sized like the last line, so the line is written without growing its buffer.
        let capacity = self.capacity.max(self.last_len.load(Ordering::Relaxed));
        let mut line = String::with_capacity(capacity);
        self.write_line(&mut line, rec).then_some(line)
    }

    /// Appends the line to `buf`; false (nothing written) if the filter leaves the request out.
    fn write_line(&self, buf: &mut String, rec: &RequestRecord) -> bool {
        if let Some(filter) = &self.filter {
            if !filter.eval_bool(rec) {
                return false;
            }
        }
        // Stamped with the time the request ended, which is when its line is written.
        let end = rec
            .start_time
            .checked_add(rec.duration)
            .unwrap_or(rec.start_time);
        let start = buf.len();
        let mut line = Line::start(buf, self.format, self.skip, end);
        format::write_head(&mut line, rec);
        for (name, expr) in &self.fields {
            if let Some(value) = expr.eval(rec) {
                line.custom(name, &value);
            }
        }
        format::write_tail(&mut line, rec);
        line.finish();
        self.last_len
            .store(buf.len().saturating_sub(start), Ordering::Relaxed);
        true
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

#[cfg(test)]
mod tests;
