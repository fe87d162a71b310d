//! `monitor resources`: process CPU and memory over time, from the
//! `resource_samples` partitions.

use monitor_runtime::schema;
use serde_json::json;

use crate::db::Db;
use crate::render::{self, Out};
use crate::Failure;

const SPARK_WIDTH: usize = 40;

struct Sample {
    ts_ns: i64,
    cpu_percent: Option<f64>,
    rss_bytes: Option<i64>,
}

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
    let mut samples = Vec::new();
    let partitions = schema::resource_partitions(&db.conn).map_err(|e| db.fail(e))?;
    for partition in partitions
        .iter()
        .filter(|p| since.is_none_or(|s| p.reaches(s)))
    {
        let sql = format!(
            "SELECT ts_ns, cpu_percent, rss_bytes FROM ({}) WHERE ts_ns >= ?1 ORDER BY ts_ns",
            schema::resource_samples_select(&partition.table)
        );
        let mut stmt = db.conn.prepare(&sql).map_err(|e| db.fail(e))?;
        let rows = stmt
            .query_map([since.unwrap_or(0) as i64], |r| {
                Ok(Sample {
                    ts_ns: r.get(0)?,
                    cpu_percent: r.get(1)?,
                    rss_bytes: r.get(2)?,
                })
            })
            .map_err(|e| db.fail(e))?;
        for row in rows {
            samples.push(row.map_err(|e| db.fail(e))?);
        }
    }
    let cpu: Vec<f64> = samples.iter().filter_map(|s| s.cpu_percent).collect();
    let rss: Vec<f64> = samples
        .iter()
        .filter_map(|s| s.rss_bytes.map(|b| b as f64))
        .collect();
    let figures = |values: &[f64]| {
        spread(values).map(|(min, mean, max)| json!({"min": min, "mean": mean, "max": max}))
    };
    let json = json!({
        "samples": samples.len(),
        "first_ns": samples.first().map(|s| s.ts_ns),
        "last_ns": samples.last().map(|s| s.ts_ns),
        "cpu_percent": figures(&cpu),
        "rss_bytes": figures(&rss),
    });
    out.emit(json, || {
        let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
            println!(
                "no resource samples in {} (the sampler writes them when [resources] interval_ms > 0)",
                db.path.display()
            );
            return;
        };
        println!(
            "{} samples, {} to {} UTC",
            samples.len(),
            render::timestamp(first.ts_ns),
            render::timestamp(last.ts_ns)
        );
        let mut table = render::table(&["figure", "min", "mean", "max", "over time"], 1);
        if let Some((min, mean, max)) = spread(&cpu) {
            table.add_row(vec![
                "CPU %".to_owned(),
                format!("{min:.1}"),
                format!("{mean:.1}"),
                format!("{max:.1}"),
                render::sparkline(&cpu, SPARK_WIDTH),
            ]);
        }
        if let Some((min, mean, max)) = spread(&rss) {
            table.add_row(vec![
                "RSS".to_owned(),
                render::bytes(min as i64),
                render::bytes(mean as i64),
                render::bytes(max as i64),
                render::sparkline(&rss, SPARK_WIDTH),
            ]);
        }
        println!("{table}");
    });
    Ok(())
}
