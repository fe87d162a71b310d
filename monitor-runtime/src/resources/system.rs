//! The default sampler, on `sysinfo`: it refreshes only this process's CPU
//! and memory, and the system's RAM figures, not the whole system.

use sysinfo::{MemoryRefreshKind, Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use super::{ResourceReading, ResourceSampler};

/// Reads this process's CPU %, resident and virtual memory and threads, and
/// the system's used and total memory, with `sysinfo`.
///
/// ```
/// use monitor_runtime::resources::{ResourceSampler, SysinfoSampler};
/// let mut sampler = SysinfoSampler::new();
/// let reading = sampler.sample();
/// # #[cfg(target_os = "linux")]
/// assert!(reading.rss_bytes.unwrap() > 0);
/// ```
pub struct SysinfoSampler {
    system: System,
    pid: Option<Pid>,
}

impl SysinfoSampler {
    /// A sampler of the current process.
    pub fn new() -> Self {
        SysinfoSampler {
            system: System::new(),
            pid: sysinfo::get_current_pid().ok(),
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
        f.debug_struct("SysinfoSampler")
            .field("pid", &self.pid)
            .finish_non_exhaustive()
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
        let Some(pid) = self.pid else {
            return reading;
        };
        self.system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            false,
            ProcessRefreshKind::nothing().with_cpu().with_memory(),
        );
        if let Some(process) = self.system.process(pid) {
            reading.cpu_percent = Some(f64::from(process.cpu_usage()));
            reading.rss_bytes = Some(process.memory());
            reading.virtual_bytes = Some(process.virtual_memory());
            reading.threads = process.tasks().map(|t| t.len() as u64);
        }
        reading
    }
}
