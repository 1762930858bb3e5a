//! One real server's health: keepalived semantics plus optional rise/fall hysteresis. Pure: the
//! checker task feeds it round results and the time.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    Up,
    Down,
}

impl std::fmt::Display for HealthState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HealthState::Up => "up",
            HealthState::Down => "down",
        })
    }
}

/// What `/api/v1/status` shows per real server.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RealServerHealth {
    pub virtual_server_id: i64,
    pub real_server_id: i64,
    pub state: HealthState,
    /// When the current state began (ms since the Unix epoch).
    pub since_unix_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_check_unix_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    pub transitions: u64,
    pub checks: u64,
}

/// Rise/fall counting. A *round* is one check with its retries (keepalived: `retry` attempts
/// `delay_before_retry` apart before a failure counts).
#[derive(Debug, Clone)]
pub struct Hysteresis {
    pub rise: u32,
    pub fall: u32,
    ok_run: u32,
    fail_run: u32,
}

impl Hysteresis {
    pub fn new(rise: u32, fall: u32) -> Self {
        Hysteresis {
            rise: rise.max(1),
            fall: fall.max(1),
            ok_run: 0,
            fail_run: 0,
        }
    }

    /// Feeds one round's result; returns the new state if it changes.
    pub fn round(&mut self, current: HealthState, ok: bool) -> Option<HealthState> {
        let failing = self.judge(Some(current == HealthState::Down), ok);
        let next = if failing == Some(true) {
            HealthState::Down
        } else {
            HealthState::Up
        };
        (next != current).then_some(next)
    }

    /// Feeds one result to a verdict that may still be unknown (`None`: nothing decided yet,
    /// as for a VRRP track script before its first `rise` or `fall` results in a row);
    /// `Some(true)` is failing. Returns the verdict after it.
    pub fn judge(&mut self, failing: Option<bool>, ok: bool) -> Option<bool> {
        if ok {
            self.ok_run = self.ok_run.saturating_add(1);
            self.fail_run = 0;
        } else {
            self.fail_run = self.fail_run.saturating_add(1);
            self.ok_run = 0;
        }
        match failing {
            Some(false) | None if self.fail_run >= self.fall => Some(true),
            Some(true) | None if self.ok_run >= self.rise => Some(false),
            s => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keepalived_default_one_failure_down_one_success_up() {
        let mut h = Hysteresis::new(1, 1);
        assert_eq!(h.round(HealthState::Up, true), None);
        assert_eq!(h.round(HealthState::Up, false), Some(HealthState::Down));
        assert_eq!(h.round(HealthState::Down, true), Some(HealthState::Up));
    }

    #[test]
    fn rise_and_fall_need_consecutive_rounds() {
        let mut h = Hysteresis::new(3, 2);
        assert_eq!(h.round(HealthState::Up, false), None);
        assert_eq!(
            h.round(HealthState::Up, true),
            None,
            "a success resets the fall count"
        );
        assert_eq!(h.round(HealthState::Up, false), None);
        assert_eq!(h.round(HealthState::Up, false), Some(HealthState::Down));
        assert_eq!(h.round(HealthState::Down, true), None);
        assert_eq!(h.round(HealthState::Down, true), None);
        assert_eq!(
            h.round(HealthState::Down, false),
            None,
            "a failure resets the rise count"
        );
        assert_eq!(h.round(HealthState::Down, true), None);
        assert_eq!(h.round(HealthState::Down, true), None);
        assert_eq!(h.round(HealthState::Down, true), Some(HealthState::Up));
    }
}
