//! The access log: one line per finished request on stdout, text or JSON (`interface.md`,
//! "Access log"), with the user's `filter` and `fields.add` / `fields.remove` applied.
//!
//! Formatting happens on the request path (it is cheap, see [`format`]); writing does not: the
//! stdout sink appends the line to a batch that a dedicated thread writes ([`writer`]), so a slow
//! or blocked stdout can never stall a request. [`AccessLog::close`] writes what is pending and
//! joins the thread at shutdown so no line is lost.

mod format;
mod writer;

use std::sync::{Arc, Mutex, PoisonError};

use crate::config::{LogFormat, LoggingConfig};
use crate::expr::Expr;
use crate::record::RequestRecord;
use format::{KeySet, Line};
use writer::BatchWriter;

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
            Writer::Stdout(w) => w.send(&line),
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

#[cfg(test)]
mod tests;
