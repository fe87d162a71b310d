//! One module per subcommand.

pub mod alerts;
pub mod check;
pub mod diff;
pub mod errors;
pub mod export;
pub mod export_otlp;
pub mod resources;
pub mod retention;
pub mod stats;
pub mod summary;
pub mod tail;
pub mod tree;
