//! `monitor diff`: per function, calls, error rate, p50 and p99 before and
//! after, the change in percent, and a verdict (`slower`, `faster`, `same`,
//! `mixed`, `new`, `gone`, `too few`).

use std::process::ExitCode;

use serde_json::json;

use crate::db::Db;
use crate::query::diff::{diff, Change, Rules, Verdict};
use crate::query::Window;
use crate::render::{self, Out};
use crate::Failure;

/// The two windows compared.
pub struct Windows {
    pub before: Window,
    pub after: Window,
}

impl Windows {
    /// `--after` (a range such as `1h` or `2h..1h`), else the last hour;
    /// `--before`, else as long as `after`, just before it. Against a
    /// baseline file, a window not given is the whole file.
    pub fn resolve(
        before: Option<&str>,
        after: Option<&str>,
        baseline: bool,
        now: u64,
    ) -> Result<Windows, Failure> {
        let range = |text: Option<&str>| {
            text.map(|t| {
                crate::window::range(t, now).map(|(since, until)| Window {
                    since: Some(since),
                    until: Some(until),
                })
            })
            .transpose()
        };
        let (before, after) = (range(before)?, range(after)?);
        if baseline {
            return Ok(Windows {
                before: before.unwrap_or(Window::ALL),
                after: after.unwrap_or(Window::ALL),
            });
        }
        let after = match after {
            Some(after) => after,
            None => range(Some("1h"))?.expect("a window"),
        };
        let before = before.unwrap_or_else(|| {
            let since = after.since.unwrap_or(0);
            let length = after.until.unwrap_or(now) - since;
            Window {
                since: Some(since.saturating_sub(length)),
                until: Some(since),
            }
        });
        // Spans in both samples would make the test compare a sample with
        // itself.
        let overlap = before.since.unwrap_or(0) < after.until.unwrap_or(u64::MAX)
            && after.since.unwrap_or(0) < before.until.unwrap_or(u64::MAX);
        if overlap {
            return Err(Failure(
                "--before and --after overlap: expected two windows of the file that share no \
                 time, such as --before 2h..1h --after 1h"
                    .into(),
            ));
        }
        Ok(Windows { before, after })
    }
}

/// The test's settings, checked.
pub fn rules(alpha: f64, min_change_pct: f64, min_calls: usize) -> Result<Rules, Failure> {
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(Failure(format!(
            "--alpha: expected a significance level between 0 and 1 such as 0.01, got {alpha}"
        )));
    }
    if !(min_change_pct >= 0.0 && min_change_pct.is_finite()) {
        return Err(Failure(format!(
            "--min-change: expected a percentage of at least 0 such as 10, got {min_change_pct}"
        )));
    }
    Ok(Rules {
        alpha,
        min_change_pct,
        min_calls: min_calls.max(1),
    })
}

/// A side as people read it: the file and the window's times.
fn label(db: &Db, window: Window) -> String {
    let at = |ns: u64| render::timestamp(ns as i64);
    match (window.since, window.until) {
        (Some(since), Some(until)) => {
            format!("{} ({} to {} UTC)", db.path.display(), at(since), at(until))
        }
        _ => format!("{} (all of it)", db.path.display()),
    }
}

/// Exit code 1 when `fail_on_slower` and a function got slower.
pub fn run(
    out: &Out,
    (before_db, after_db): (&Db, &Db),
    windows: &Windows,
    group: Option<&str>,
    rules: Rules,
    fail_on_slower: bool,
) -> Result<ExitCode, Failure> {
    let mut changes = diff(
        (before_db, windows.before),
        (after_db, windows.after),
        group,
        rules,
    )?;
    // The worst news first: slower by how much, then the rest.
    changes.sort_by(|a, b| {
        let rank = |c: &Change| match c.verdict {
            Verdict::Slower => 0,
            Verdict::Faster => 1,
            Verdict::Mixed | Verdict::New | Verdict::Gone => 2,
            Verdict::Same => 3,
            Verdict::TooFew => 4,
        };
        rank(a)
            .cmp(&rank(b))
            .then_with(|| {
                let change = |c: &Change| c.p50_change_pct.unwrap_or(0.0).abs();
                change(b).total_cmp(&change(a))
            })
            .then_with(|| (&a.name, &a.module).cmp(&(&b.name, &b.module)))
    });
    let slower = changes
        .iter()
        .filter(|c| c.verdict == Verdict::Slower)
        .count();
    let (before, after) = (
        label(before_db, windows.before),
        label(after_db, windows.after),
    );
    out.emit(
        json!({
            "before": before,
            "after": after,
            "alpha": rules.alpha,
            "min_change_pct": rules.min_change_pct,
            "functions": changes,
        }),
        || {
            println!("before: {before}\nafter:  {after}");
            let mut table = render::table(
                &[
                    "function", "module", "verdict", "calls", "err %", "p50", "Δ p50", "p99",
                    "Δ p99", "p-value",
                ],
                3,
            );
            for c in &changes {
                table.add_row(row(c));
            }
            println!("{table}");
            println!(
                "{slower} slower; a verdict needs p < {} (Mann-Whitney U on the durations) and \
                 a median changed by at least {}%",
                rules.alpha, rules.min_change_pct
            );
        },
    );
    Ok(if fail_on_slower && slower > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn row(c: &Change) -> Vec<String> {
    let pair = |a: String, b: String| format!("{a} → {b}");
    // A side without calls has no durations to show.
    let duration = |side: &crate::query::diff::Side, ns: i64| {
        if side.calls == 0 {
            "-".to_owned()
        } else {
            render::duration(ns)
        }
    };
    let pct = |p: Option<f64>| p.map(|p| format!("{p:+.1}%")).unwrap_or_default();
    vec![
        render::text(&c.name),
        render::text(&c.module),
        c.verdict.name().to_owned(),
        pair(c.before.calls.to_string(), c.after.calls.to_string()),
        pair(
            format!("{:.1}", 100.0 * c.before.error_rate),
            format!("{:.1}", 100.0 * c.after.error_rate),
        ),
        pair(
            duration(&c.before, c.before.p50_ns),
            duration(&c.after, c.after.p50_ns),
        ),
        pct(c.p50_change_pct),
        pair(
            duration(&c.before, c.before.p99_ns),
            duration(&c.after, c.after.p99_ns),
        ),
        pct(c.p99_change_pct),
        c.p_value.map(|p| format!("{p:.2e}")).unwrap_or_default(),
    ]
}
