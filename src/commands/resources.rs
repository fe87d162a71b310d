//! `monitor resources`: process CPU and memory over time, from the
//! `resource_samples` partitions.

use std::collections::BTreeMap;

use serde_json::json;

use crate::db::Db;
use crate::query::health::{self, Sample};
use crate::query::Window;
use crate::render::{self, Out};
use crate::Failure;

const SPARK_WIDTH: usize = 40;

/// min, mean, max.
fn spread(values: &[f64]) -> Option<(f64, f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let min = values.iter().copied().fold(f64::MAX, f64::min);
    let max = values.iter().copied().fold(f64::MIN, f64::max);
    Some((min, values.iter().sum::<f64>() / values.len() as f64, max))
}

pub fn run(db: &Db, out: &Out, since: Option<u64>) -> Result<(), Failure> {
    let by_pid: BTreeMap<i64, Vec<Sample>> = health::resources(db, Window::since(since))?
        .into_iter()
        .map(|p| (p.pid, p.samples))
        .collect();
    let total: usize = by_pid.values().map(Vec::len).sum();
    let series = |samples: &[Sample]| {
        let cpu: Vec<f64> = samples.iter().filter_map(|s| s.cpu_percent).collect();
        let rss: Vec<f64> = samples
            .iter()
            .filter_map(|s| s.rss_bytes.map(|b| b as f64))
            .collect();
        (cpu, rss)
    };
    let figures = |values: &[f64]| {
        spread(values).map(|(min, mean, max)| json!({"min": min, "mean": mean, "max": max}))
    };
    let json = json!({
        "samples": total,
        "processes": by_pid.iter().map(|(pid, samples)| {
            let (cpu, rss) = series(samples);
            json!({
                "pid": pid,
                "samples": samples.len(),
                "first_ns": samples.first().map(|s| s.ts_ns),
                "last_ns": samples.last().map(|s| s.ts_ns),
                "cpu_percent": figures(&cpu),
                "rss_bytes": figures(&rss),
            })
        }).collect::<Vec<_>>(),
    });
    out.emit(json, || {
        if by_pid.is_empty() {
            println!(
                "no resource samples in {} (the sampler writes them when [resources] interval_ms > 0)",
                db.path.display()
            );
            return;
        }
        for (pid, samples) in &by_pid {
            let (first, last) = (&samples[0], &samples[samples.len() - 1]);
            println!(
                "process {pid}: {} samples, {} to {} UTC",
                samples.len(),
                render::timestamp(first.ts_ns),
                render::timestamp(last.ts_ns)
            );
            let (cpu, rss) = series(samples);
            let mut table = render::table(&["figure", "min", "mean", "max", "over time"], 1);
            if let Some((min, mean, max)) = spread(&cpu) {
                table.add_row(vec![
                    "CPU %".to_owned(),
                    format!("{min:.1}"),
                    format!("{mean:.1}"),
                    format!("{max:.1}"),
                    // From 0 to 100% (or more, past one core): a steady 95%
                    // reads high, not flat at the bottom.
                    render::sparkline(&cpu, SPARK_WIDTH, 0.0, max.max(100.0)),
                ]);
            }
            if let Some((min, mean, max)) = spread(&rss) {
                table.add_row(vec![
                    "RSS".to_owned(),
                    render::bytes(min as i64),
                    render::bytes(mean as i64),
                    render::bytes(max as i64),
                    render::sparkline(&rss, SPARK_WIDTH, min, max),
                ]);
            }
            println!("{table}");
        }
    });
    Ok(())
}
