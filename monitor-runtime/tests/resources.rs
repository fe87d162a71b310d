//! Resource samples and per-span resource figures, read back from the file.

mod common;

use std::time::{Duration, Instant};

use common::{count, reader, serial, temp_db, LEAF};
use monitor_runtime::resources::{ResourceReading, ScriptedSampler};
use monitor_runtime::{Config, EnteredSpan};

const HOUR: Duration = Duration::from_secs(3600);

fn reading(cpu: f64, rss: u64) -> ResourceReading {
    ResourceReading::new(Some(cpu), Some(rss)).with_details(
        Some(rss * 4),
        Some(3),
        Some(1 << 30),
        Some(4 << 30),
    )
}

type SampleRow = (Option<f64>, i64, i64, i64, i64, i64);

/// (cpu_percent, rss_bytes, virtual_bytes, threads, used, total) rows, in order.
fn samples(path: &std::path::Path) -> Vec<SampleRow> {
    let conn = reader(path);
    let mut stmt = conn
        .prepare(
            "SELECT cpu_percent, rss_bytes, virtual_bytes, threads, system_memory_used_bytes, \
             system_memory_total_bytes FROM resource_samples ORDER BY ts_ns",
        )
        .unwrap();
    stmt.query_map([], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

#[test]
fn a_scripted_sampler_gives_exact_rows_and_span_rss() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let sampler = ScriptedSampler::new([
        reading(1.5, 10 << 20),
        reading(50.0, 20 << 20),
        reading(99.5, 30 << 20),
    ]);
    let guard = monitor_runtime::init_with(
        Config::default()
            .db_path(&path)
            .resource_interval(HOUR)
            .resource_sampler(sampler),
    )
    .unwrap();
    // The first reading is taken at start; two more on demand; the script
    // then reads nothing, which stores nothing.
    guard.sample_resources();
    guard.sample_resources();
    drop(EnteredSpan::new(&LEAF));
    guard.sample_resources();
    guard.flush();

    let mib = 1 << 20;
    assert_eq!(
        samples(&path),
        [
            (Some(1.5), 10 * mib, 40 * mib, 3, 1 << 30, 4 << 30),
            (Some(50.0), 20 * mib, 80 * mib, 3, 1 << 30, 4 << 30),
            (Some(99.5), 30 * mib, 120 * mib, 3, 1 << 30, 4 << 30),
        ]
    );
    assert_eq!(
        count(&path, "SELECT pid FROM resource_samples LIMIT 1"),
        i64::from(std::process::id())
    );
    // A span ending after the third reading carries its RSS, from memory.
    assert_eq!(count(&path, "SELECT rss_bytes FROM spans"), 30 * mib);
    // Neither the counting allocator nor thread_cpu is on here.
    assert_eq!(
        count(
            &path,
            "SELECT count(*) FROM spans WHERE alloc_bytes IS NULL AND cpu_ns IS NULL"
        ),
        1
    );
    drop(guard);
}

#[test]
fn the_sysinfo_sampler_reads_plausible_figures() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let guard =
        monitor_runtime::init_with(Config::default().db_path(&path).resource_interval(HOUR))
            .unwrap();
    // Returns after the sample taken at start and this one.
    guard.sample_resources();
    // 50 MB written to, so resident, and kept alive until the next sample.
    let ballast = vec![7u8; 50 << 20];
    guard.sample_resources();
    guard.flush();
    let rows = samples(&path);
    assert_eq!(rows.len(), 3);
    let (before, after) = (rows[1], rows[2]);
    assert!(before.1 > 0, "RSS {before:?}");
    assert!(after.1 - before.1 >= 45 << 20, "{before:?} -> {after:?}");
    assert!(after.2 >= after.1, "virtual >= resident");
    // This thread, the writer, the sampler and the retention thread at least.
    assert!(after.3 >= 4, "threads {}", after.3);
    assert!(after.4 > 0 && after.5 >= after.4, "system memory");
    // CPU % needs two readings: the first has none.
    assert_eq!(rows[0].0, None);
    assert!(after.0.is_some_and(|cpu| cpu >= 0.0), "{after:?}");
    drop(ballast);
    drop(guard);
}

/// Panics on its second reading.
struct Flaky(u32);

impl monitor_runtime::resources::ResourceSampler for Flaky {
    fn sample(&mut self) -> ResourceReading {
        self.0 += 1;
        assert_ne!(self.0, 2, "sensor unplugged");
        reading(0.0, u64::from(self.0) << 20)
    }
}

#[test]
fn a_panicking_sampler_is_asked_again_next_time() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let guard = monitor_runtime::init_with(
        Config::default()
            .db_path(&path)
            .resource_interval(HOUR)
            .resource_sampler(Flaky(0)),
    )
    .unwrap();
    guard.sample_resources(); // panics, is reported
    guard.sample_resources();
    drop(EnteredSpan::new(&LEAF));
    guard.flush();
    let rss: Vec<i64> = samples(&path).iter().map(|s| s.1).collect();
    assert_eq!(rss, [1 << 20, 3 << 20]);
    assert_eq!(count(&path, "SELECT rss_bytes FROM spans"), 3 << 20);
    drop(guard);
}

#[test]
fn sampling_off_writes_no_rows() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let guard = monitor_runtime::init_with(
        Config::default()
            .db_path(&path)
            .resource_interval(Duration::ZERO),
    )
    .unwrap();
    guard.sample_resources();
    drop(EnteredSpan::new(&LEAF));
    guard.flush();
    assert!(samples(&path).is_empty());
    assert_eq!(
        count(&path, "SELECT count(*) FROM spans WHERE rss_bytes IS NULL"),
        1
    );
    drop(guard);
}

#[test]
fn thread_cpu_gives_each_span_its_cpu_time() {
    let _serial = serial();
    let (_dir, path) = temp_db();
    let guard =
        monitor_runtime::init_with(Config::default().db_path(&path).thread_cpu(true)).unwrap();
    {
        let _busy = EnteredSpan::new(&LEAF);
        let started = Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(20) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
    }
    guard.flush();
    let (cpu, busy): (i64, i64) = reader(&path)
        .query_row("SELECT cpu_ns, busy_ns FROM spans", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    // A busy loop is all CPU, unless the scheduler took the core away.
    assert!(busy >= 20_000_000, "{busy}");
    assert!(cpu <= busy + 1_000_000, "cpu {cpu} > busy {busy}");
    assert!(cpu >= busy / 4, "cpu {cpu} for busy {busy}");
    drop(guard);
}
