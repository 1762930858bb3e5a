//! The commands of VRRP groups: track scripts (keepalived `vrrp_script` + `track_script`) and
//! notify commands (`notify_master` and friends).
//!
//! Both run as MISC_CHECK's do ([`crate::dataplane::health::misc::run`]): no shell (the
//! command is split into argv as keepalived splits it), in a process group of their own,
//! killed at their timeout, the first 512 bytes of their output kept. They run on tokio tasks
//! of the data plane, never on the VRRP thread: a script that hangs delays no advert.
//!
//! A script runs every `interval_ms`; `rise` successes in a row make it up, `fall` failures in
//! a row make it failing (until then it is unknown and counts neither way). Each result goes
//! to the engine ([`TrackSender::script`]), which shows it in the status and feeds changes to
//! the group; a change of verdict is also an event.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::control::events::{EventBus, EventKind};
use crate::dataplane::health::misc;
use crate::dataplane::vrrp::engine::{NotifyRun, TrackSender};
use crate::model::real_server::split_command;
use crate::model::units::millis;
use crate::model::{TrackScript, VrrpGroup};

/// The running script tasks, by (group, script name).
#[derive(Default)]
pub struct Scripts {
    running: BTreeMap<(String, String), (TrackScript, JoinHandle<()>)>,
}

impl Scripts {
    /// Starts, restarts (changed) and stops script tasks for the groups this node is in.
    pub fn sync(&mut self, groups: &[VrrpGroup], node: &str, to: &TrackSender, events: &EventBus) {
        let mut wanted = BTreeMap::new();
        for g in groups.iter().filter(|g| g.node(node).is_some()) {
            for s in &g.track_scripts {
                wanted.insert((g.name.clone(), s.name.clone()), s.clone());
            }
        }
        // A new weight needs no new run: the engine applies it.
        self.running.retain(|k, (spec, task)| {
            let keep = wanted.get(k).is_some_and(|w| w.runs_like(spec));
            if !keep {
                task.abort();
            }
            keep
        });
        for (k, spec) in wanted {
            if self.running.contains_key(&k) {
                continue;
            }
            let task = tokio::spawn(script_loop(
                k.0.clone(),
                spec.clone(),
                to.clone(),
                events.clone(),
            ));
            self.running.insert(k, (spec, task));
        }
    }

    /// Stops every script task (their commands are killed with them).
    pub fn stop(&mut self) {
        for (_, (_, task)) in std::mem::take(&mut self.running) {
            task.abort();
        }
    }
}

impl Drop for Scripts {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One result: (exit 0, the result in words, the output).
async fn run_once(argv: &[String], timeout: Duration) -> (bool, String, String) {
    match misc::run(argv, timeout, None).await {
        Ok(misc::Exit { code, output }) => (
            code == Some(0),
            code.map_or_else(|| "a signal".to_string(), |c| format!("exit {c}")),
            output,
        ),
        Err(e) => (false, e.to_string(), String::new()),
    }
}

/// `rise`/`fall` over one more result: the new verdict (`Some(true)`: failing) and the runs.
pub fn judge(
    state: Option<bool>,
    ok: bool,
    runs: &mut (u32, u32),
    rise: u32,
    fall: u32,
) -> Option<bool> {
    if ok {
        runs.0 = runs.0.saturating_add(1);
        runs.1 = 0;
    } else {
        runs.1 = runs.1.saturating_add(1);
        runs.0 = 0;
    }
    match state {
        Some(false) | None if runs.1 >= fall => Some(true),
        Some(true) | None if runs.0 >= rise => Some(false),
        s => s,
    }
}

async fn script_loop(group: String, s: TrackScript, to: TrackSender, events: EventBus) {
    let argv = split_command(&s.command);
    let timeout = millis(s.timeout());
    let mut tick = tokio::time::interval(millis(s.interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut state: Option<bool> = None;
    let mut runs = (0, 0);
    loop {
        tick.tick().await;
        let (ok, result, output) = run_once(&argv, timeout).await;
        let next = judge(state, ok, &mut runs, s.rise, s.fall);
        let detail = if output.is_empty() {
            result.clone()
        } else {
            format!("{result}: {output}")
        };
        to.script(&group, &s.name, next, detail);
        if next != state {
            if next == Some(true) {
                tracing::warn!(group = %group, script = %s.name, %result, %output, "VRRP track script failing");
            } else {
                tracing::info!(group = %group, script = %s.name, %result, "VRRP track script up");
            }
            events.publish(EventKind::VrrpCommand {
                group: group.clone(),
                command: format!("script {}", s.name),
                ok,
                result,
                output,
            });
        }
        state = next;
    }
}

/// Runs the notify commands the engine hands over, each on a task of its own, until the
/// engine drops its sender (it stopped); then waits for the commands still running (each
/// ends by its timeout), so that `notify_stop` runs when lbd stops.
pub fn spawn_notifier(
    mut rx: mpsc::UnboundedReceiver<NotifyRun>,
    events: EventBus,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut running = tokio::task::JoinSet::new();
        loop {
            let n = tokio::select! {
                n = rx.recv() => match n {
                    Some(n) => n,
                    None => break,
                },
                // Finished commands are reaped as they end.
                Some(_) = running.join_next(), if !running.is_empty() => continue,
            };
            let events = events.clone();
            running.spawn(async move {
                let (ok, result, output) = run_once(&n.argv, n.timeout).await;
                if ok {
                    tracing::info!(group = %n.group, command = n.which, "VRRP notify command ran");
                } else {
                    tracing::warn!(group = %n.group, command = n.which, %result, %output, "VRRP notify command failed");
                }
                events.publish(EventKind::VrrpCommand {
                    group: n.group,
                    command: n.which.to_string(),
                    ok,
                    result,
                    output,
                });
            });
        }
        while running.join_next().await.is_some() {}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rise_and_fall_count_results_in_a_row() {
        let mut runs = (0, 0);
        // Unknown until `fall` failures or `rise` successes in a row.
        let s = judge(None, false, &mut runs, 2, 2);
        assert_eq!(s, None);
        let s = judge(s, false, &mut runs, 2, 2);
        assert_eq!(s, Some(true));
        let s = judge(s, true, &mut runs, 2, 2);
        assert_eq!(s, Some(true), "one success is not `rise` 2");
        let s = judge(s, false, &mut runs, 2, 2);
        let s = judge(s, true, &mut runs, 2, 2);
        assert_eq!(s, Some(true), "the run was broken");
        let s = judge(s, true, &mut runs, 2, 2);
        assert_eq!(s, Some(false));
        // rise/fall 1: every result decides.
        let mut runs = (0, 0);
        assert_eq!(judge(None, true, &mut runs, 1, 1), Some(false));
        assert_eq!(judge(Some(false), false, &mut runs, 1, 1), Some(true));
    }

    #[tokio::test]
    async fn a_command_runs_without_a_shell_and_is_killed_at_its_timeout() {
        // No shell: `;` and `$HOME` are arguments, printed as they are.
        let argv = split_command("/bin/echo 'a;b' $HOME");
        let (ok, result, output) = run_once(&argv, Duration::from_secs(5)).await;
        assert!(ok, "{result}");
        assert_eq!(output, "a;b $HOME");
        let t0 = std::time::Instant::now();
        let (ok, result, _) =
            run_once(&split_command("/bin/sleep 30"), Duration::from_millis(200)).await;
        assert!(!ok);
        assert!(
            result.contains("timed out") || result.contains("timeout"),
            "{result}"
        );
        assert!(t0.elapsed() < Duration::from_secs(5));
        let (ok, result, _) = run_once(&split_command("/bin/false"), Duration::from_secs(5)).await;
        assert_eq!((ok, result.as_str()), (false, "exit 1"));
    }

    #[test]
    fn notify_gets_keepalived_s_arguments() {
        use crate::dataplane::vrrp::engine::notify_runs;
        use crate::dataplane::vrrp::State;
        let n = crate::model::Notify {
            master: Some("/bin/m 'x y'".into()),
            any: Some("/bin/any".into()),
            ..Default::default()
        };
        let runs = notify_runs("VI_1", &n, State::Master, 80);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[0].argv, vec!["/bin/m", "x y"]);
        assert_eq!(runs[0].which, "notify_master");
        assert_eq!(
            runs[1].argv,
            vec!["/bin/any", "INSTANCE", "VI_1", "MASTER", "80"]
        );
        assert_eq!(runs[1].timeout, Duration::from_secs(10));
        let runs = notify_runs("VI_1", &n, State::Initialize, 80);
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].argv[3], "STOP");
    }
}
