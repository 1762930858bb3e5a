//! What `/metrics` shows of the checks as a whole: every attempt (a round's first try and its
//! retries) by check type and result, and how long it took.
//!
//! The checker tasks time their attempts and send them with their round's [`super::Report`]; the
//! one owner of the reports, [`super::Checkers::apply`], adds them to the [`HealthMetrics`] it
//! was given, which the [`crate::control::status::StatusBoard`] holds for the scrape. The
//! counters are atomics; the tasks themselves share nothing.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

use super::{CheckError, Probe};

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    Success,
    /// No answer within the check's timeout.
    Timeout,
    /// Any other failure: refused, a wrong status or body, a non-zero exit, TLS, ...
    Failure,
}

impl Outcome {
    pub fn of<T>(r: &Result<T, CheckError>) -> Outcome {
        match r {
            Ok(_) => Outcome::Success,
            Err(CheckError::Timeout(_)) => Outcome::Timeout,
            Err(_) => Outcome::Failure,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Timeout => "timeout",
            Outcome::Failure => "failure",
        }
    }
}

/// One attempt of a round, as its task timed it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attempt {
    pub duration: Duration,
    pub outcome: Outcome,
}

/// The check type as the configuration names it: `tcp`, `http`, `https` (SSL_GET) or `misc`.
pub fn kind(p: &Probe) -> &'static str {
    match p {
        Probe::Tcp => "tcp",
        Probe::Http { tls: None, .. } => "http",
        Probe::Http { tls: Some(_), .. } => "https",
        Probe::Misc { .. } => "misc",
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AttemptLabels {
    pub kind: &'static str,
    pub result: &'static str,
}

/// Attempts by check type and result, and their latency (shared handles over atomics; a clone
/// counts into the same families).
#[derive(Clone, Debug)]
pub struct HealthMetrics {
    pub attempts: Family<AttemptLabels, Counter>,
    pub duration: Family<AttemptLabels, Histogram, fn() -> Histogram>,
}

fn duration_histogram() -> Histogram {
    // 0.25 ms .. ~8 s: a local TCP connect is well under a millisecond, a timeout seconds.
    Histogram::new(exponential_buckets(0.00025, 2.0, 16))
}

impl Default for HealthMetrics {
    fn default() -> Self {
        HealthMetrics {
            attempts: Family::default(),
            duration: Family::new_with_constructor(duration_histogram),
        }
    }
}

impl HealthMetrics {
    /// Counts the attempts of one round of a `kind` check.
    pub fn record(&self, kind: &'static str, attempts: &[Attempt]) {
        for a in attempts {
            let labels = AttemptLabels {
                kind,
                result: a.outcome.as_str(),
            };
            self.attempts.get_or_create(&labels).inc();
            self.duration
                .get_or_create(&labels)
                .observe(a.duration.as_secs_f64());
        }
    }
}
