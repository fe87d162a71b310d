//! Resource figures: a sampler thread writes the process's CPU and memory
//! into `resource_samples` every `resources.interval_ms`, and keeps the
//! latest RSS where span ends read it without a syscall. Per-span CPU time
//! (`resources.thread_cpu`) and allocated bytes ([`crate::alloc`]) are read
//! on the span's own thread.

mod system;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, Sender};

pub use system::SysinfoSampler;

use crate::clock::Clock;

/// What a sampler reads; `None` for a figure it cannot read.
#[derive(Clone, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct ResourceReading {
    /// Process CPU use since the previous reading, in percent of one core.
    pub cpu_percent: Option<f64>,
    /// Process resident memory.
    pub rss_bytes: Option<u64>,
    /// Process virtual memory.
    pub virtual_bytes: Option<u64>,
    /// Threads of the process.
    pub threads: Option<u64>,
    /// Memory in use on the whole system.
    pub system_memory_used_bytes: Option<u64>,
    /// Memory of the whole system.
    pub system_memory_total_bytes: Option<u64>,
}

impl ResourceReading {
    /// A reading of the figures given; the others are `None`.
    ///
    /// ```
    /// use monitor_runtime::resources::ResourceReading;
    /// let r = ResourceReading::new(Some(12.5), Some(40 << 20));
    /// assert_eq!(r.threads, None);
    /// ```
    pub fn new(cpu_percent: Option<f64>, rss_bytes: Option<u64>) -> Self {
        ResourceReading {
            cpu_percent,
            rss_bytes,
            ..ResourceReading::default()
        }
    }

    /// Sets `threads`, `virtual_bytes` and the system memory figures.
    pub fn with_details(
        mut self,
        virtual_bytes: Option<u64>,
        threads: Option<u64>,
        system_memory_used_bytes: Option<u64>,
        system_memory_total_bytes: Option<u64>,
    ) -> Self {
        self.virtual_bytes = virtual_bytes;
        self.threads = threads;
        self.system_memory_used_bytes = system_memory_used_bytes;
        self.system_memory_total_bytes = system_memory_total_bytes;
        self
    }

    fn is_empty(&self) -> bool {
        *self == ResourceReading::default()
    }
}

/// Reads the process's resource figures; the sampler thread calls it every
/// `resources.interval_ms`. [`SysinfoSampler`] is the default;
/// [`NullSampler`] reads nothing and [`ScriptedSampler`] replays readings
/// (for tests).
///
/// ```
/// use monitor_runtime::resources::{ResourceReading, ResourceSampler};
///
/// /// Reports a fixed RSS: a sampler is any `Send` type with `sample`.
/// struct Fixed;
/// impl ResourceSampler for Fixed {
///     fn sample(&mut self) -> ResourceReading {
///         ResourceReading::new(None, Some(64 << 20))
///     }
/// }
/// let config = monitor_runtime::Config::default().resource_sampler(Fixed);
/// ```
pub trait ResourceSampler: Send {
    /// Reads the figures now. A reading with every figure `None` is not
    /// stored.
    fn sample(&mut self) -> ResourceReading;
}

/// Reads nothing: no rows, and spans get no `rss_bytes`.
///
/// ```
/// use monitor_runtime::resources::{NullSampler, ResourceSampler};
/// assert_eq!(NullSampler.sample(), Default::default());
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct NullSampler;

impl ResourceSampler for NullSampler {
    fn sample(&mut self) -> ResourceReading {
        ResourceReading::default()
    }
}

/// Replays readings in order, then reads nothing: for tests that need exact
/// rows.
///
/// ```
/// use monitor_runtime::resources::{ResourceReading, ResourceSampler, ScriptedSampler};
/// let mut s = ScriptedSampler::new([ResourceReading::new(Some(1.0), None)]);
/// assert_eq!(s.sample().cpu_percent, Some(1.0));
/// assert_eq!(s.sample(), ResourceReading::default());
/// ```
#[derive(Clone, Debug, Default)]
pub struct ScriptedSampler {
    readings: std::collections::VecDeque<ResourceReading>,
}

impl ScriptedSampler {
    /// Will return `readings`, one per sample.
    pub fn new(readings: impl IntoIterator<Item = ResourceReading>) -> Self {
        ScriptedSampler {
            readings: readings.into_iter().collect(),
        }
    }
}

impl ResourceSampler for ScriptedSampler {
    fn sample(&mut self) -> ResourceReading {
        self.readings.pop_front().unwrap_or_default()
    }
}

/// A sampler shared by the configuration and the thread that runs it.
pub(crate) type SharedSampler = Arc<Mutex<dyn ResourceSampler>>;

/// A reading with its time, on its way to the writer.
#[derive(Debug)]
pub(crate) struct Sample {
    pub(crate) ts_ns: u64,
    pub(crate) reading: ResourceReading,
}

/// The latest RSS the sampler read; 0 until it has read one.
#[derive(Default)]
pub(crate) struct LatestRss(AtomicU64);

impl LatestRss {
    /// The latest RSS, or [`crate::record::NULL`].
    #[inline]
    pub(crate) fn get(&self) -> u64 {
        match self.0.load(Ordering::Relaxed) {
            0 => crate::record::NULL,
            rss => rss,
        }
    }
}

/// The thread that samples every `interval`.
pub(crate) struct SamplerThread {
    control: Sender<Control>,
    handle: Option<JoinHandle<()>>,
}

enum Control {
    SampleNow(Sender<()>),
    Stop,
}

impl SamplerThread {
    /// Takes a first sample on the calling thread, then samples every
    /// `interval` on its own thread; readings go to `store`.
    pub(crate) fn spawn(
        sampler: SharedSampler,
        interval: Duration,
        clock: Clock,
        latest_rss: &'static LatestRss,
        store: impl Fn(Sample) + Send + 'static,
    ) -> std::io::Result<SamplerThread> {
        let (control, requests) = crossbeam_channel::unbounded();
        // A sampler that panics is reported once and asked again next time:
        // it must not end sampling, nor take `init` down.
        let mut reported = false;
        let mut sample = move || {
            let read = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                sampler
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .sample()
            }));
            let Ok(reading) = read else {
                if !std::mem::replace(&mut reported, true) {
                    crate::report::report(format_args!(
                        "the resource sampler panicked; it is asked again at each interval"
                    ));
                }
                return;
            };
            if let Some(rss) = reading.rss_bytes {
                latest_rss.0.store(rss.max(1), Ordering::Relaxed);
            }
            if !reading.is_empty() {
                store(Sample {
                    ts_ns: clock.now_ns(),
                    reading,
                });
            }
        };
        // The first reading before `init` returns: every span gets an RSS.
        sample();
        let handle = std::thread::Builder::new()
            .name("monitor-sampler".into())
            .spawn(move || loop {
                match requests.recv_timeout(interval) {
                    Ok(Control::SampleNow(done)) => {
                        sample();
                        let _ = done.send(());
                    }
                    Ok(Control::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                    Err(RecvTimeoutError::Timeout) => sample(),
                }
            })?;
        Ok(SamplerThread {
            control,
            handle: Some(handle),
        })
    }

    /// Takes a sample now and returns once it is queued for the writer.
    pub(crate) fn sample_now(&self) {
        let (done, wait) = crossbeam_channel::bounded(1);
        if self.control.send(Control::SampleNow(done)).is_ok() {
            let _ = wait.recv();
        }
    }
}

impl Drop for SamplerThread {
    fn drop(&mut self) {
        let _ = self.control.send(Control::Stop);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}
