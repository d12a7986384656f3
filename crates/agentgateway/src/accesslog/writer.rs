//! The stdout sink of the access log: requests append their line to a shared batch; one writer
//! thread writes the batch out.
//!
//! Handing each line to the thread on its own (a channel send per request) wakes the thread once
//! per request: a futex call and a context switch that, measured under load on one core, cost
//! more CPU than all the rest of the request path. So the request only appends under a short
//! lock, and wakes the thread only when the batch was empty. The thread then waits
//! [`FLUSH_INTERVAL`] to let a batch gather before it writes: under load it wakes about
//! 1/`FLUSH_INTERVAL` times a second whatever the request rate, and when idle it sleeps.
//! A line reaches stdout within about `FLUSH_INTERVAL`, like nginx's `access_log ... flush=`.
//! A stuck stdout never blocks a request: past [`MAX_PENDING`] bytes lines are dropped and
//! counted. [`BatchWriter::close`] writes what is pending and joins the thread, so shutdown
//! loses nothing.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

/// How long the writer lets lines gather after the first one of a batch.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(20);

/// Bytes waiting for stdout before new lines are dropped: far more than a healthy stdout ever
/// lags; when reached, stdout is stuck, and dropping a line beats blocking or unbounded memory.
pub const MAX_PENDING: usize = 16 << 20;

/// Lines appended by requests, not yet taken by the writer thread.
#[derive(Default)]
struct Batch {
    bytes: Vec<u8>,
    dropped: u64,
    /// Set under the lock, so a line is either in the writer's last batch or written directly.
    closed: bool,
}

struct Shared {
    batch: Mutex<Batch>,
}

impl Shared {
    fn batch(&self) -> MutexGuard<'_, Batch> {
        self.batch.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub struct BatchWriter {
    shared: Arc<Shared>,
    /// The writer thread, to wake it without taking `thread`'s lock.
    waker: Thread,
    thread: Mutex<Option<JoinHandle<()>>>,
}

// === impl BatchWriter ===

impl BatchWriter {
    pub fn stdout() -> Result<BatchWriter, String> {
        BatchWriter::spawn(std::io::stdout())
    }

    /// A writer thread writing to `out` (tests pass their own sink).
    pub fn spawn(out: impl Write + Send + 'static) -> Result<BatchWriter, String> {
        let shared = Arc::new(Shared {
            batch: Mutex::new(Batch::default()),
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("access-log".into())
                .spawn(move || write_batches(&shared, out))
                .map_err(|e| format!("cannot start the access-log writer thread: {e}"))?
        };
        Ok(BatchWriter {
            shared,
            waker: thread.thread().clone(),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Appends one line (a newline is added); never blocks on stdout.
    pub fn send(&self, line: &str) {
        let mut batch = self.shared.batch();
        if batch.closed {
            drop(batch);
            return write_direct(line);
        }
        if batch.bytes.len() + line.len() >= MAX_PENDING {
            batch.dropped += 1;
            let dropped = batch.dropped;
            drop(batch);
            // Warn on the 1st, 2nd, 4th, 8th... drop: visible, but never a flood on stderr.
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped,
                    "access log: stdout is not keeping up, lines dropped"
                );
            }
            return;
        }
        let was_empty = batch.bytes.is_empty();
        batch.bytes.extend_from_slice(line.as_bytes());
        batch.bytes.push(b'\n');
        drop(batch);
        if was_empty {
            self.waker.unpark();
        }
    }

    /// Writes what is pending and joins the thread (at shutdown). Idempotent; lines sent
    /// afterwards are written to stdout directly.
    pub fn close(&self) {
        self.shared.batch().closed = true;
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(thread) = thread {
            self.waker.unpark();
            let _ = thread.join();
        }
    }
}

/// The writer thread: sleep until a batch starts, let it gather, write it, repeat; after
/// `closed`, write whatever is left and stop.
fn write_batches(shared: &Shared, mut out: impl Write) {
    let mut spare = Vec::new();
    loop {
        let (closed, empty) = {
            let batch = shared.batch();
            (batch.closed, batch.bytes.is_empty())
        };
        if !closed {
            if empty {
                std::thread::park();
                continue;
            }
            std::thread::park_timeout(FLUSH_INTERVAL);
        }
        // Swapping buffers keeps the lock short and reuses both allocations. `closed` is read
        // in the same critical section: after it, every `send` writes directly.
        let closed = {
            let mut batch = shared.batch();
            std::mem::swap(&mut batch.bytes, &mut spare);
            batch.closed
        };
        // Write errors (stdout closed) are ignored: there is nowhere left to report them.
        let _ = out.write_all(&spare);
        let _ = out.flush();
        spare.clear();
        if closed {
            return;
        }
    }
}

fn write_direct(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(line.as_bytes());
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}
