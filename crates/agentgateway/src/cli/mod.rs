//! The command line beyond serving: `agentgateway keys ...`, a client of a running gateway's
//! admin API, and the environment overrides applied to a served config. `main.rs` only parses
//! arguments and dispatches here, so all of this is testable as a library.
//!
//! # Layout
//! - [`args`]: the `keys` flags (clap) and their mapping to admin API request bodies.
//! - [`client`]: the admin API over HTTP, its failures as [`CliError`]s.
//! - [`render`]: key objects as a table, as details, and the one-time secret notice.
//! - [`keys`]: runs one subcommand: call, render, print.
//! - [`env`]: `STATS_ADDR`/`ADMIN_ADDR`/... and `AGW_ADMIN_TOKEN` over the config file.

pub mod args;
pub mod client;
pub mod env;
pub mod keys;
pub mod render;

pub use args::KeysArgs;

/// Why a `keys` command failed; `Display` is the line after `error: `, [`CliError::hint`] the next.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad flags or settings, found before anything was sent.
    #[error("{0}")]
    Usage(String),
    /// The admin API refused, with its own message (`{"error":{"message"}}`).
    #[error("{message}")]
    Api {
        status: u16,
        message: String,
        had_token: bool,
    },
    /// Nothing answered at the admin URL.
    #[error("cannot reach the admin API at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// Something answered, but not the way the admin API does.
    #[error("{0}")]
    Protocol(String),
}

impl CliError {
    /// What to try next, when the cause is likely on this side.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            CliError::Unreachable { .. } => Some(
                "is the gateway running with config.adminAddr set? \
                 Point elsewhere with --admin-url or AGW_ADMIN_URL",
            ),
            CliError::Api {
                status: 401,
                had_token: false,
                ..
            } => Some("this admin API needs a token: set AGW_ADMIN_TOKEN or pass --admin-token"),
            _ => None,
        }
    }
}
