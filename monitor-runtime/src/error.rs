//! Errors of `init` and of configuration.

use std::path::PathBuf;

/// Why monitoring could not start. The instrumented program can report it
/// and go on: nothing is running after an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `init` was called while a [`Guard`](crate::Guard) is alive.
    #[error("monitor is already initialised: drop the first Guard before calling init again")]
    AlreadyInitialized,
    /// A configuration key has a bad value, or is unknown.
    #[error("invalid configuration in {origin}: `{key}`: {message}")]
    Config {
        /// The file or environment variable the value came from.
        origin: String,
        /// The offending key, dotted (`queue.capacity`).
        key: String,
        /// What was wrong and what was expected.
        message: String,
    },
    /// The configuration file could not be read.
    #[error("cannot read configuration file {path}: {source}")]
    ConfigFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The database file could not be opened, or is not a monitor database.
    #[error("monitor database {path}: {reason}")]
    Database {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A retention pass failed; the next one tries again.
    #[error("retention of {path}: {reason}")]
    Retention {
        /// The database file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The writer thread could not be started.
    #[error("cannot start the monitor writer thread: {0}")]
    Thread(#[source] std::io::Error),
    /// [`Guard::flush_on_signals`](crate::Guard::flush_on_signals) could
    /// not watch for the signals.
    #[error("cannot watch for SIGTERM and SIGINT: {0}")]
    Signals(#[source] std::io::Error),
}
