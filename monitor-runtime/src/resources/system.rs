//! The default sampler: the system's memory from `sysinfo` (it reads only
//! `/proc/meminfo` for that), and this process's figures from its own
//! `/proc/self` files on Linux. sysinfo's process refresh lists every
//! process on the machine first, which costs more the busier the host is.
//! Elsewhere the process figures come from sysinfo too.

use std::time::Instant;

use sysinfo::{MemoryRefreshKind, System};

use super::{ResourceReading, ResourceSampler};

/// Reads this process's CPU %, resident and virtual memory and threads, and
/// the system's used and total memory.
///
/// CPU % is the process's CPU time over the wall time since the previous
/// reading, in percent of one core (two busy threads read 200); the first
/// reading has none.
///
/// ```
/// use monitor_runtime::resources::{ResourceSampler, SysinfoSampler};
/// let mut sampler = SysinfoSampler::new();
/// let first = sampler.sample();
/// assert_eq!(first.cpu_percent, None);
/// # #[cfg(target_os = "linux")]
/// assert!(first.rss_bytes.unwrap() > 0);
/// ```
pub struct SysinfoSampler {
    system: System,
    /// CPU seconds and when they were read, for the next CPU %.
    last_cpu: Option<(f64, Instant)>,
    #[cfg(not(target_os = "linux"))]
    pid: Option<sysinfo::Pid>,
}

impl SysinfoSampler {
    /// A sampler of the current process.
    pub fn new() -> Self {
        SysinfoSampler {
            system: System::new(),
            last_cpu: None,
            #[cfg(not(target_os = "linux"))]
            pid: sysinfo::get_current_pid().ok(),
        }
    }

    /// CPU % since the previous reading, from the process's CPU seconds.
    fn cpu_percent(&mut self, cpu_seconds: f64) -> Option<f64> {
        let now = Instant::now();
        let previous = self.last_cpu.replace((cpu_seconds, now))?;
        let wall = now.duration_since(previous.1).as_secs_f64();
        (wall > 0.0).then(|| 100.0 * (cpu_seconds - previous.0).max(0.0) / wall)
    }

    #[cfg(target_os = "linux")]
    fn process(&mut self, reading: &mut ResourceReading) {
        let Some(stat) = proc_self::stat() else {
            return;
        };
        reading.cpu_percent = self.cpu_percent(stat.cpu_seconds);
        reading.threads = Some(stat.threads);
        if let Some((virtual_bytes, rss_bytes)) = proc_self::statm() {
            reading.virtual_bytes = Some(virtual_bytes);
            reading.rss_bytes = Some(rss_bytes);
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn process(&mut self, reading: &mut ResourceReading) {
        use sysinfo::{ProcessRefreshKind, ProcessesToUpdate};
        let Some(pid) = self.pid else { return };
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            false,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        if let Some(process) = self.system.process(pid) {
            let cpu = process.accumulated_cpu_time() as f64 / 1e3;
            reading.cpu_percent = self.cpu_percent(cpu);
            reading.rss_bytes = Some(process.memory());
            reading.virtual_bytes = Some(process.virtual_memory());
        }
    }
}

impl Default for SysinfoSampler {
    fn default() -> Self {
        SysinfoSampler::new()
    }
}

impl std::fmt::Debug for SysinfoSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SysinfoSampler").finish_non_exhaustive()
    }
}

impl ResourceSampler for SysinfoSampler {
    fn sample(&mut self) -> ResourceReading {
        self.system
            .refresh_memory_specifics(MemoryRefreshKind::nothing().with_ram());
        let mut reading = ResourceReading {
            system_memory_used_bytes: Some(self.system.used_memory()),
            system_memory_total_bytes: Some(self.system.total_memory()),
            ..ResourceReading::default()
        };
        self.process(&mut reading);
        reading
    }
}

/// This process's own `/proc` files: three small reads, no directory scan.
#[cfg(target_os = "linux")]
mod proc_self {
    pub(super) struct Stat {
        pub(super) cpu_seconds: f64,
        pub(super) threads: u64,
    }

    /// User + system CPU time and the thread count, from `/proc/self/stat`.
    pub(super) fn stat() -> Option<Stat> {
        let text = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name may hold spaces or parentheses: fields start
        // after the last `)`. Field 3 (state) is the first one there.
        let fields: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        // SAFETY: sysconf only reads a system constant.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        Some(Stat {
            cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
            threads: field(20)?,
        })
    }

    /// (virtual, resident) bytes, from `/proc/self/statm` (in pages).
    pub(super) fn statm() -> Option<(u64, u64)> {
        let text = std::fs::read_to_string("/proc/self/statm").ok()?;
        let mut pages = text.split_whitespace().map(|f| f.parse::<u64>().ok());
        // SAFETY: sysconf only reads a system constant.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
        Some((pages.next()?? * page, pages.next()?? * page))
    }
}
