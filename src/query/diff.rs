//! `monitor diff`: each function's calls, error rate and latency in two
//! windows (of one file, or of a baseline file and this one), and whether it
//! got slower, judged by a Mann-Whitney U test on the two samples of
//! durations and by the size of the change in the median.

use std::collections::HashMap;

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
    /// A real change whose median moved one way while most calls moved the
    /// other (a bimodal function whose modes shifted): read the figures.
    Mixed,
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
            Verdict::Mixed => "mixed",
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
    /// The chance that a call after is slower than a call before (ties
    /// count half): 0.5 when nothing changed.
    pub prob_slower: Option<f64>,
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
    let by_name = |side: &'_ [Sample]| -> HashMap<(String, String), usize> {
        side.iter()
            .enumerate()
            .map(|(i, (s, _))| ((s.name.clone(), s.module.clone()), i))
            .collect()
    };
    let (old_at, new_at) = (by_name(&old), by_name(&new));
    Ok(names
        .iter()
        .map(|name| {
            compare(
                old_at.get(name).map(|&i| &old[i]),
                new_at.get(name).map(|&i| &new[i]),
                rules,
            )
        })
        .collect())
}

fn compare(old: Option<&Sample>, new: Option<&Sample>, rules: Rules) -> Change {
    let site = old.or(new).map(|(s, _)| s).expect("a function of one side");
    let before = old.map(|(s, _)| Side::of(s)).unwrap_or_default();
    let after = new.map(|(s, _)| Side::of(s)).unwrap_or_default();
    let pct = |a: i64, b: i64| (a > 0).then(|| 100.0 * (b - a) as f64 / a as f64);
    let both = old.is_some() && new.is_some();
    let p50_change_pct = both.then(|| pct(before.p50_ns, after.p50_ns)).flatten();
    let (test, verdict) = match (old, new) {
        (None, _) => (None, Verdict::New),
        (_, None) => (None, Verdict::Gone),
        (Some((_, a)), Some((_, b))) if a.len() < rules.min_calls || b.len() < rules.min_calls => {
            (None, Verdict::TooFew)
        }
        (Some((_, a)), Some((_, b))) => {
            let test = mann_whitney(a, b);
            (
                Some(test),
                judge(test, p50_change_pct.unwrap_or(0.0), rules),
            )
        }
    };
    Change {
        name: site.name.clone(),
        module: site.module.clone(),
        group: site.group.clone(),
        p50_change_pct,
        p99_change_pct: both.then(|| pct(before.p99_ns, after.p99_ns)).flatten(),
        error_rate_change_pts: both.then_some(100.0 * (after.error_rate - before.error_rate)),
        p_value: test.map(|t| t.p_value),
        prob_slower: test.map(|t| t.prob_greater),
        verdict,
        before,
        after,
    }
}

/// The verdict on a function whose two samples gave `test` and whose
/// median moved by `p50_change_pct`: a change must be significant, large
/// enough, and in one direction for the median and for most calls alike.
fn judge(test: MannWhitney, p50_change_pct: f64, rules: Rules) -> Verdict {
    if test.p_value >= rules.alpha || p50_change_pct.abs() < rules.min_change_pct {
        return Verdict::Same;
    }
    match (p50_change_pct > 0.0, test.prob_greater > 0.5) {
        (true, true) => Verdict::Slower,
        (false, false) => Verdict::Faster,
        _ => Verdict::Mixed,
    }
}

/// What the Mann-Whitney U test says of two samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MannWhitney {
    /// Two-sided: that both come from one distribution.
    pub p_value: f64,
    /// U of the second sample over `n1 * n2`: the chance that a value of
    /// the second exceeds one of the first, ties counting half.
    pub prob_greater: f64,
}

/// The Mann-Whitney U test of `a` against `b` (each sorted, neither
/// empty): the two-sided p-value by the normal approximation with the tie
/// correction and a continuity correction of 1/2, as
/// `scipy.stats.mannwhitneyu(method="asymptotic")` computes it. Ranks come
/// from one merge of the two sorted samples: O(n).
pub fn mann_whitney(a: &[i64], b: &[i64]) -> MannWhitney {
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
    let prob_greater = (n1 * n2 - u1) / (n1 * n2);
    let mean = n1 * n2 / 2.0;
    let sd = (n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)))).sqrt();
    if sd.is_nan() || sd <= 0.0 {
        // Every value equal: nothing tells the samples apart.
        return MannWhitney {
            p_value: 1.0,
            prob_greater,
        };
    }
    let z = (u - mean - 0.5) / sd;
    let normal = Normal::new(0.0, 1.0).expect("the standard normal");
    MannWhitney {
        p_value: (2.0 * normal.sf(z)).clamp(0.0, 1.0),
        prob_greater,
    }
}

#[cfg(test)]
mod tests {
    use super::{judge, mann_whitney, Rules, Verdict};

    fn mann_whitney_p(a: &[i64], b: &[i64]) -> f64 {
        mann_whitney(a, b).p_value
    }

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
        assert!(mann_whitney(&a, &shifted).prob_greater > 0.5);
        assert!(mann_whitney(&shifted, &a).prob_greater < 0.5);
        assert!(mann_whitney_p(&a, &a) > 0.9);
        assert_eq!(mann_whitney(&a, &a).prob_greater, 0.5);
    }

    #[test]
    fn a_median_moving_against_most_calls_is_mixed_not_slower() {
        // Half the calls at 10 ms and half at 100 ms, then 49% at 1 ms and
        // 51% at 11.5 ms: the median rose 15% while most calls got faster.
        let ms = 1_000_000;
        let before = sorted([vec![10 * ms; 500], vec![100 * ms; 500]].concat());
        let after = sorted([vec![ms; 490], vec![11_500_000; 510]].concat());
        let test = mann_whitney(&before, &after);
        assert!(test.p_value < 1e-6 && test.prob_greater < 0.5, "{test:?}");
        let p50 = |v: &[i64]| crate::query::percentile(v, 50.0) as f64;
        let change = 100.0 * (p50(&after) - p50(&before)) / p50(&before);
        assert!(change > 10.0, "{change}");
        assert_eq!(judge(test, change, Rules::default()), Verdict::Mixed);
        // Both the median and most calls slower: slower.
        let slower: Vec<i64> = before.iter().map(|d| d * 12 / 10).collect();
        let test = mann_whitney(&before, &slower);
        assert_eq!(judge(test, 20.0, Rules::default()), Verdict::Slower);
        assert_eq!(judge(test, 5.0, Rules::default()), Verdict::Same);
    }
}
