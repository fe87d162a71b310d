//! Static facts about an instrumented function, registered once per process.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// What a span measures; stored as the `kind` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SpanKind {
    /// A plain function call.
    Sync,
    /// A future, from creation to `Ready`.
    Async,
    /// A `Stream`, from creation to `None`.
    Stream,
    /// An `Iterator`, from creation to `None`.
    Iter,
    /// A span of the `tracing` crate, from creation to close (with the
    /// `tracing` feature's `MonitorLayer`).
    Tracing,
}

impl SpanKind {
    /// The text stored in the `kind` column.
    pub const fn as_str(self) -> &'static str {
        match self {
            SpanKind::Sync => "sync",
            SpanKind::Async => "async",
            SpanKind::Stream => "stream",
            SpanKind::Iter => "iter",
            SpanKind::Tracing => "tracing",
        }
    }
}

impl fmt::Display for SpanKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The static facts of one instrumented function: a span row carries only the
/// callsite's id, and the `callsites` table holds the strings once.
///
/// A callsite lives in a `static` next to the function. Its id is a stable
/// hash of its facts, so two processes writing one file agree on it; it is
/// computed and registered on the first call, and read with one relaxed load
/// after that.
///
/// ```
/// use monitor_runtime::{Callsite, SpanKind};
///
/// static PARSE: Callsite = Callsite::new("parse", module_path!(), module_path!(), file!(), line!(), SpanKind::Sync);
/// assert_eq!(PARSE.name(), "parse");
/// assert_ne!(PARSE.id(), 0);
/// assert_eq!(PARSE.id(), PARSE.id());
/// ```
pub struct Callsite {
    name: &'static str,
    module: &'static str,
    group: &'static str,
    file: &'static str,
    line: u32,
    kind: SpanKind,
    /// Non-error spans are kept when a random `u64` falls below this.
    keep_below: u64,
    /// A `level` every span of this callsite has (a `tracing` span's),
    /// written into `fields` by the writer instead of held by each span.
    level: Option<&'static str>,
    id: AtomicU64,
}

/// Every callsite that has been hit in this process, in registration order;
/// the writer stores the ones it has not stored yet.
static REGISTRY: Mutex<Vec<&'static Callsite>> = Mutex::new(Vec::new());

impl Callsite {
    /// Describes a function. `group` is the `group` option, else the module path.
    pub const fn new(
        name: &'static str,
        module: &'static str,
        group: &'static str,
        file: &'static str,
        line: u32,
        kind: SpanKind,
    ) -> Self {
        Callsite {
            name,
            module,
            group,
            file,
            line,
            kind,
            keep_below: u64::MAX,
            level: None,
            id: AtomicU64::new(0),
        }
    }

    /// Gives every span of this callsite `level` in its `fields`.
    #[cfg(feature = "tracing")]
    pub(crate) const fn with_level(mut self, level: &'static str) -> Self {
        self.level = Some(level);
        self
    }

    /// The `level` every span of this callsite has, if any.
    pub(crate) fn level(&self) -> Option<&'static str> {
        self.level
    }

    /// Keeps only about `rate` (0.0 to 1.0) of this function's spans that
    /// end `ok` or `cancelled`; error and panic spans are always kept. The
    /// choice is made when the span ends, so it never loses an error.
    ///
    /// ```
    /// use monitor_runtime::{Callsite, SpanKind};
    /// static HOT: Callsite = Callsite::new("hot", module_path!(), module_path!(), file!(), line!(), SpanKind::Sync)
    ///     .sampled(0.01);
    /// assert_eq!(HOT.sample_rate(), 0.01);
    /// ```
    pub const fn sampled(mut self, rate: f64) -> Self {
        self.keep_below = if rate >= 1.0 {
            u64::MAX
        } else if rate > 0.0 {
            (rate * 18_446_744_073_709_551_616.0) as u64
        } else {
            0
        };
        self
    }

    /// The share of non-error spans kept (1.0 unless [`Callsite::sampled`]).
    pub fn sample_rate(&self) -> f64 {
        if self.keep_below == u64::MAX {
            1.0
        } else {
            self.keep_below as f64 / 18_446_744_073_709_551_616.0
        }
    }

    /// Whether a non-error span of this callsite is kept.
    #[inline]
    pub(crate) fn keeps_sample(&self) -> bool {
        self.keep_below == u64::MAX || crate::id::fast_random() < self.keep_below
    }

    /// The callsite's id, registering it on first use.
    #[inline]
    pub fn id(&'static self) -> u64 {
        match self.id.load(Ordering::Relaxed) {
            0 => self.register(),
            id => id,
        }
    }

    #[cold]
    fn register(&'static self) -> u64 {
        let mut registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
        // Re-check under the lock: another thread may have won the race.
        let id = self.id.load(Ordering::Relaxed);
        if id != 0 {
            return id;
        }
        let id = self.stable_id();
        registry.push(self);
        self.id.store(id, Ordering::Relaxed);
        id
    }

    /// FNV-1a over the facts, kept positive for SQLite's signed INTEGER.
    fn stable_id(&self) -> u64 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        let line = self.line.to_le_bytes();
        let parts: [&[u8]; 6] = [
            self.name.as_bytes(),
            self.module.as_bytes(),
            self.group.as_bytes(),
            self.file.as_bytes(),
            &line,
            self.kind.as_str().as_bytes(),
        ];
        for part in parts {
            for &byte in part.iter().chain(&[0xff]) {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        (hash >> 1).max(1)
    }

    /// The function name, or the `name` option.
    pub fn name(&self) -> &'static str {
        self.name
    }
    /// `module_path!()` of the function.
    pub fn module(&self) -> &'static str {
        self.module
    }
    /// The `group` option, else the module path.
    pub fn group(&self) -> &'static str {
        self.group
    }
    /// The file that defines the function.
    pub fn file(&self) -> &'static str {
        self.file
    }
    /// The line that defines the function.
    pub fn line(&self) -> u32 {
        self.line
    }
    /// What the span measures.
    pub fn kind(&self) -> SpanKind {
        self.kind
    }
}

impl fmt::Debug for Callsite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callsite")
            .field("name", &self.name)
            .field("module", &self.module)
            .field("group", &self.group)
            .field("file", &self.file)
            .field("line", &self.line)
            .field("kind", &self.kind)
            .finish()
    }
}

/// The callsites registered after the first `skip`, for the writer.
pub(crate) fn registered_since(skip: usize) -> Vec<&'static Callsite> {
    let registry = REGISTRY.lock().unwrap_or_else(PoisonError::into_inner);
    registry.get(skip..).unwrap_or_default().to_vec()
}
