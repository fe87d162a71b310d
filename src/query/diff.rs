//! `monitor diff`: each function's calls, error rate and latency in two
//! windows (of one file, or of a baseline file and this one), and whether it
//! got slower, judged by a Mann-Whitney U test on the two samples of
//! durations and by the size of the change in the median.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal};

use super::summary::{samples_by, FunctionStats, Sample};
use super::Window;
use crate::db::Db;
use crate::Failure;

/// When a change counts.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    /// The test's significance level: a smaller p-value is a real change.
    pub alpha: f64,
    /// The smallest change of the median, in percent, worth a verdict: with
    /// a million calls a side, the test finds 1% changes that nobody wants
    /// to hear about.
    pub min_change_pct: f64,
    /// Fewer calls than this on either side: `too few`.
    pub min_calls: usize,
}

impl Default for Rules {
    fn default() -> Rules {
        Rules {
            alpha: 0.01,
            min_change_pct: 10.0,
            min_calls: 20,
        }
    }
}

/// What happened to a function between the two sides.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Slower,
    Faster,
    Same,
    /// Not called before.
    New,
    /// Not called after.
    Gone,
    /// Too few calls on a side to tell.
    #[serde(rename = "too few")]
    TooFew,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Slower => "slower",
            Verdict::Faster => "faster",
            Verdict::Same => "same",
            Verdict::New => "new",
            Verdict::Gone => "gone",
            Verdict::TooFew => "too few",
        }
    }
}

/// One side's figures for a function.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Side {
    pub calls: u64,
    pub errors: u64,
    pub error_rate: f64,
    pub p50_ns: i64,
    pub p99_ns: i64,
}

impl Side {
    fn of(stats: &FunctionStats) -> Side {
        Side {
            calls: stats.calls,
            errors: stats.errors,
            error_rate: stats.errors as f64 / stats.calls.max(1) as f64,
            p50_ns: stats.p50_ns,
            p99_ns: stats.p99_ns,
        }
    }
}

/// A function in both windows.
#[derive(Clone, Debug, Serialize)]
pub struct Change {
    pub name: String,
    pub module: String,
    pub group: String,
    pub before: Side,
    pub after: Side,
    /// Change of the median, in percent (`None` when a side has no calls).
    pub p50_change_pct: Option<f64>,
    pub p99_change_pct: Option<f64>,
    /// Change of the error rate, in percentage points.
    pub error_rate_change_pts: Option<f64>,
    /// The two-sided Mann-Whitney U test's p-value on the durations.
    pub p_value: Option<f64>,
    pub verdict: Verdict,
}

/// Every function of `before` or `after`, compared; by name and module.
pub fn diff(
    before: (&Db, Window),
    after: (&Db, Window),
    group: Option<&str>,
    rules: Rules,
) -> Result<Vec<Change>, Failure> {
    let key = |site: &super::Callsite| {
        group
            .is_none_or(|g| g == site.group)
            .then(|| (site.name.clone(), site.module.clone()))
    };
    let (old, _) = samples_by(before.0, before.1, key)?;
    let (new, _) = samples_by(after.0, after.1, key)?;
    let mut names: Vec<(String, String)> = old
        .iter()
        .chain(&new)
        .map(|(s, _)| (s.name.clone(), s.module.clone()))
        .collect();
    names.sort();
    names.dedup();
    let find = |side: &'_ [Sample], name: &(String, String)| {
        side.iter()
            .position(|(s, _)| s.name == name.0 && s.module == name.1)
    };
    let mut changes = Vec::with_capacity(names.len());
    for name in &names {
        let old = find(&old, name).map(|i| &old[i]);
        let new = find(&new, name).map(|i| &new[i]);
        changes.push(compare(old, new, rules));
    }
    Ok(changes)
}

fn compare(old: Option<&Sample>, new: Option<&Sample>, rules: Rules) -> Change {
    let site = old.or(new).map(|(s, _)| s).expect("a function of one side");
    let before = old.map(|(s, _)| Side::of(s)).unwrap_or_default();
    let after = new.map(|(s, _)| Side::of(s)).unwrap_or_default();
    let pct = |a: i64, b: i64| (a > 0).then(|| 100.0 * (b - a) as f64 / a as f64);
    let both = old.is_some() && new.is_some();
    let p50_change_pct = both.then(|| pct(before.p50_ns, after.p50_ns)).flatten();
    let (p_value, verdict) = match (old, new) {
        (None, _) => (None, Verdict::New),
        (_, None) => (None, Verdict::Gone),
        (Some((_, a)), Some((_, b))) if a.len() < rules.min_calls || b.len() < rules.min_calls => {
            (None, Verdict::TooFew)
        }
        (Some((_, a)), Some((_, b))) => {
            let p = mann_whitney_p(a, b);
            let change = p50_change_pct.unwrap_or(0.0);
            let verdict = if p >= rules.alpha || change.abs() < rules.min_change_pct {
                Verdict::Same
            } else if change > 0.0 {
                Verdict::Slower
            } else {
                Verdict::Faster
            };
            (Some(p), verdict)
        }
    };
    Change {
        name: site.name.clone(),
        module: site.module.clone(),
        group: site.group.clone(),
        p50_change_pct,
        p99_change_pct: both.then(|| pct(before.p99_ns, after.p99_ns)).flatten(),
        error_rate_change_pts: both.then_some(100.0 * (after.error_rate - before.error_rate)),
        p_value,
        verdict,
        before,
        after,
    }
}

/// The two-sided p-value of the Mann-Whitney U test that `a` and `b`
/// (each sorted, neither empty) come from one distribution: the normal
/// approximation with the tie correction and a continuity correction of
/// 1/2, as `scipy.stats.mannwhitneyu(method="asymptotic")` computes it.
/// Ranks come from one merge of the two sorted samples: O(n).
pub fn mann_whitney_p(a: &[i64], b: &[i64]) -> f64 {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let n = n1 + n2;
    // Sum of `a`'s ranks (average ranks for ties) and the sum of t^3 - t
    // over groups of t tied values.
    let (mut rank_sum_a, mut ties) = (0.0f64, 0.0f64);
    let (mut i, mut j, mut rank) = (0usize, 0usize, 0.0f64);
    while i < a.len() || j < b.len() {
        let value = match (a.get(i), b.get(j)) {
            (Some(&x), Some(&y)) => x.min(y),
            (Some(&x), None) => x,
            (None, Some(&y)) => y,
            (None, None) => unreachable!(),
        };
        let from_a = a[i..].iter().take_while(|&&x| x == value).count();
        let from_b = b[j..].iter().take_while(|&&y| y == value).count();
        let t = (from_a + from_b) as f64;
        // Ranks rank+1 ..= rank+t share their mean.
        let mean_rank = rank + (t + 1.0) / 2.0;
        rank_sum_a += mean_rank * from_a as f64;
        ties += t * t * t - t;
        rank += t;
        i += from_a;
        j += from_b;
    }
    let u1 = rank_sum_a - n1 * (n1 + 1.0) / 2.0;
    let u = u1.max(n1 * n2 - u1);
    let mean = n1 * n2 / 2.0;
    let sd = (n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)))).sqrt();
    if sd.is_nan() || sd <= 0.0 {
        // Every value equal: nothing tells the samples apart.
        return 1.0;
    }
    let z = (u - mean - 0.5) / sd;
    let normal = Normal::new(0.0, 1.0).expect("the standard normal");
    (2.0 * normal.sf(z)).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::mann_whitney_p;

    fn sorted(mut v: Vec<i64>) -> Vec<i64> {
        v.sort_unstable();
        v
    }

    #[test]
    fn p_values_match_scipys_asymptotic_test() {
        // scipy.stats.mannwhitneyu(x, y, method="asymptotic") on the
        // example of its documentation.
        let x = sorted(vec![19, 22, 16, 29, 24]);
        let y = sorted(vec![20, 11, 17, 12]);
        assert!((mann_whitney_p(&x, &y) - 0.111_346_886_533_140_41).abs() < 1e-10);
        assert!((mann_whitney_p(&y, &x) - 0.111_346_886_533_140_41).abs() < 1e-10);
        // With ties across and within the samples (scipy 1.17.1 says
        // 0.012999854364387305 both ways round).
        let x = sorted(vec![1, 2, 2, 3, 3, 3, 4]);
        let y = sorted(vec![3, 4, 4, 5, 5, 6]);
        for p in [mann_whitney_p(&x, &y), mann_whitney_p(&y, &x)] {
            assert!((p - 0.012_999_854_364_387_305).abs() < 1e-10, "{p}");
        }
        // Nothing to tell apart.
        assert_eq!(mann_whitney_p(&[7, 7], &[7, 7, 7]), 1.0);
    }

    #[test]
    fn a_shift_is_found_and_the_same_sample_is_not() {
        let a: Vec<i64> = (0..1000).map(|i| 1_000 + i % 97 * 10).collect();
        let shifted: Vec<i64> = a.iter().map(|d| d * 13 / 10).collect();
        let (a, shifted) = (sorted(a), sorted(shifted));
        assert!(mann_whitney_p(&a, &shifted) < 1e-6);
        assert!(mann_whitney_p(&a, &a) > 0.9);
    }
}
