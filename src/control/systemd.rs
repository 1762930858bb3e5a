//! The systemd service protocol (`sd_notify(3)`), for `Type=notify` units: `READY=1` once both
//! front ends listen and the data plane runs, `STOPPING=1` when the drain starts, and
//! `WATCHDOG=1` only while the data-plane actor still answers.
//!
//! The watchdog pings are not sent from a timer alone: a timer keeps ticking while the actor is
//! wedged (a kernel call that never returns, a loop that never yields), and then systemd would
//! never restart lbd. Each ping is earned by a round trip through the actor's own loop.
//!
//! The datagrams are sent by the `sd-notify` crate; this module decides when.

use std::time::Duration;

use sd_notify::NotifyState;
use tokio::sync::watch;

use crate::dataplane::actor::DataplaneHandle;

/// Where lbd reports to its service manager. Built from the environment systemd gives a
/// `Type=notify` service (`NOTIFY_SOCKET`, and `WATCHDOG_USEC`/`WATCHDOG_PID` with
/// `WatchdogSec=`); [`Notifier::from_env`] is `None` when lbd was not started that way.
#[derive(Debug, Clone)]
pub struct Notifier {
    watchdog: Option<Duration>,
}

impl Notifier {
    /// `None` unless `NOTIFY_SOCKET` is set. The environment is left as it is, so that a
    /// command lbd runs (MISC_CHECK, quorum_up) cannot be mistaken for lbd: systemd only
    /// accepts messages from the main process unless `NotifyAccess=all`, and the unit says
    /// `main`.
    pub fn from_env() -> Option<Self> {
        std::env::var_os("NOTIFY_SOCKET")?;
        let mut usec = 0u64;
        // `watchdog_enabled` also checks that WATCHDOG_PID, when set, is this process.
        let watchdog = sd_notify::watchdog_enabled(false, &mut usec)
            .then(|| Duration::from_micros(usec))
            .filter(|d| !d.is_zero());
        Some(Notifier { watchdog })
    }

    /// The interval systemd expects pings within (`WatchdogSec=`), if it watches lbd.
    pub fn watchdog(&self) -> Option<Duration> {
        self.watchdog
    }

    /// Start-up is complete: systemd starts the units ordered after lbd.
    pub fn ready(&self, status: &str) {
        self.send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// The drain has begun; systemd waits up to `TimeoutStopSec=` for the exit.
    pub fn stopping(&self) {
        self.send(&[NotifyState::Stopping, NotifyState::Status("draining")]);
    }

    fn send(&self, states: &[NotifyState<'_>]) {
        if let Err(e) = sd_notify::notify(false, states) {
            tracing::warn!(error = %e, "cannot notify the service manager");
        }
    }

    /// Pings systemd's watchdog every half interval for as long as the actor answers within
    /// that half interval, until `stop` turns true. A missed answer sends nothing (the log
    /// says so): two in a row and systemd restarts lbd, which is the point.
    pub async fn watchdog_loop(self, dataplane: DataplaneHandle, stop: watch::Receiver<bool>) {
        let Some(interval) = self.watchdog else {
            return;
        };
        earned_pings(
            interval / 2,
            || {
                let d = dataplane.clone();
                async move { d.ping().await.is_ok() }
            },
            || self.send(&[NotifyState::Watchdog]),
            stop,
        )
        .await
    }
}

/// Every `every`, asks `alive` and calls `ping` if it said yes within `every`.
async fn earned_pings<F, A, P>(
    every: Duration,
    mut alive: A,
    mut ping: P,
    mut stop: watch::Receiver<bool>,
) where
    A: FnMut() -> F,
    F: std::future::Future<Output = bool>,
    P: FnMut(),
{
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tick.tick() => {}
        }
        match tokio::time::timeout(every, alive()).await {
            Ok(true) => ping(),
            Ok(false) => {
                tracing::error!("the data plane is gone; not pinging the systemd watchdog")
            }
            Err(_) => tracing::error!(
                waited_ms = every.as_millis() as u64,
                "the data plane did not answer; not pinging the systemd watchdog"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// Pings stop as soon as the actor stops answering, and the loop ends on `stop`.
    #[tokio::test(start_paused = true)]
    async fn pings_only_while_the_actor_answers() {
        let asked = Arc::new(AtomicUsize::new(0));
        let pinged = Arc::new(AtomicUsize::new(0));
        let (stop_tx, stop) = watch::channel(false);
        let (a, p) = (asked.clone(), pinged.clone());
        let task = tokio::spawn(earned_pings(
            Duration::from_millis(100),
            move || {
                let n = a.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n >= 3 {
                        // Wedged from the fourth question on.
                        std::future::pending::<()>().await;
                    }
                    true
                }
            },
            move || {
                p.fetch_add(1, Ordering::SeqCst);
            },
            stop,
        ));
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        assert_eq!(
            pinged.load(Ordering::SeqCst),
            3,
            "only answered questions earn a ping"
        );
        assert!(
            asked.load(Ordering::SeqCst) >= 5,
            "it keeps asking while wedged"
        );
        stop_tx.send(true).unwrap();
        tokio::time::timeout(Duration::from_secs(1), task)
            .await
            .expect("the loop ends on stop")
            .unwrap();
    }
}
