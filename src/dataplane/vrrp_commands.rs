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
//!
//! Scripts that run alike (the same command, interval, timeout, rise and fall; see
//! [`TrackScript::runs_like`]) run once for all the groups that track them, as keepalived runs
//! one `vrrp_script` for every instance whose `track_script` names it: each result goes to
//! every one of those groups (each with its own weight).

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::control::events::{EventBus, EventKind};
use crate::dataplane::health::misc;
use crate::dataplane::health::state::Hysteresis;
use crate::dataplane::vrrp::engine::{NotifyRun, TrackSender};
use crate::model::real_server::split_command;
use crate::model::units::millis;
use crate::model::{TrackScript, VrrpGroup};

/// How a script runs: scripts alike share one run.
type RunKey = (String, u32, u32, u32, u32);

fn run_key(s: &TrackScript) -> RunKey {
    (
        s.command.clone(),
        s.interval_ms,
        s.timeout(),
        s.rise,
        s.fall,
    )
}

/// Who a run's results go to: (group, the script's name in that group).
type Subscribers = Vec<(String, String)>;

/// The running script tasks: one per way of running, with the groups it reports to.
#[derive(Default)]
pub struct Scripts {
    running: BTreeMap<RunKey, (watch::Sender<Subscribers>, JoinHandle<()>)>,
}

impl Scripts {
    /// Starts and stops script tasks for the groups this node is in, and tells each running
    /// one which groups it reports to now.
    pub fn sync(&mut self, groups: &[VrrpGroup], node: &str, to: &TrackSender, events: &EventBus) {
        let mut wanted: BTreeMap<RunKey, (TrackScript, Subscribers)> = BTreeMap::new();
        for g in groups.iter().filter(|g| g.node(node).is_some()) {
            for s in &g.track_scripts {
                wanted
                    .entry(run_key(s))
                    .or_insert_with(|| (s.clone(), Vec::new()))
                    .1
                    .push((g.name.clone(), s.name.clone()));
            }
        }
        // A new weight needs no new run: the engine applies it.
        self.running.retain(|k, (subs, task)| match wanted.get(k) {
            Some((_, now)) => {
                subs.send_if_modified(|s| {
                    let changed = s != now;
                    if changed {
                        s.clone_from(now);
                    }
                    changed
                });
                true
            }
            None => {
                task.abort();
                false
            }
        });
        for (k, (spec, subs)) in wanted {
            if self.running.contains_key(&k) {
                continue;
            }
            let (tx, rx) = watch::channel(subs);
            let task = tokio::spawn(script_loop(spec, rx, to.clone(), events.clone()));
            self.running.insert(k, (tx, task));
        }
    }

    /// How many script tasks run.
    pub fn runs(&self) -> usize {
        self.running.len()
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

async fn script_loop(
    s: TrackScript,
    mut subs: watch::Receiver<Subscribers>,
    to: TrackSender,
    events: EventBus,
) {
    let argv = split_command(&s.command);
    let timeout = millis(s.timeout());
    let mut tick = tokio::time::interval(millis(s.interval_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut state: Option<bool> = None;
    let mut last = String::new();
    // `rise`/`fall` as for a real server's health checks.
    let mut runs = Hysteresis::new(s.rise, s.fall);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            changed = subs.changed() => {
                if changed.is_err() {
                    return;
                }
                // A group that starts tracking a running script learns its verdict at once.
                if state.is_some() {
                    for (group, name) in subs.borrow_and_update().iter() {
                        to.script(group, name, state, last.clone());
                    }
                }
                continue;
            }
        }
        let (ok, result, output) = run_once(&argv, timeout).await;
        let next = runs.judge(state, ok);
        last = if output.is_empty() {
            result.clone()
        } else {
            format!("{result}: {output}")
        };
        let subscribers = subs.borrow_and_update().clone();
        for (group, name) in &subscribers {
            to.script(group, name, next, last.clone());
        }
        if next != state {
            for (group, name) in &subscribers {
                if next == Some(true) {
                    tracing::warn!(group = %group, script = %name, %result, %output, "VRRP track script failing");
                } else {
                    tracing::info!(group = %group, script = %name, %result, "VRRP track script up");
                }
                events.publish(EventKind::VrrpCommand {
                    group: group.clone(),
                    command: format!("script {name}"),
                    ok,
                    result: result.clone(),
                    output: output.clone(),
                });
            }
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
        let mut runs = Hysteresis::new(2, 2);
        // Unknown until `fall` failures or `rise` successes in a row.
        let s = runs.judge(None, false);
        assert_eq!(s, None);
        let s = runs.judge(s, false);
        assert_eq!(s, Some(true));
        let s = runs.judge(s, true);
        assert_eq!(s, Some(true), "one success is not `rise` 2");
        let s = runs.judge(s, false);
        let s = runs.judge(s, true);
        assert_eq!(s, Some(true), "the run was broken");
        let s = runs.judge(s, true);
        assert_eq!(s, Some(false));
        // rise/fall 1: every result decides.
        let mut runs = Hysteresis::new(1, 1);
        assert_eq!(runs.judge(None, true), Some(false));
        assert_eq!(runs.judge(Some(false), false), Some(true));
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

    #[tokio::test]
    async fn a_script_two_groups_track_runs_once_for_both() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("runs");
        let script = |name: &str, weight: i32| TrackScript {
            name: name.into(),
            command: format!("/bin/sh -c 'echo run >> {}'", log.display()),
            interval_ms: 50,
            timeout_ms: None,
            weight,
            rise: 1,
            fall: 1,
        };
        let group = |name: &str, scripts: Vec<TrackScript>| {
            let mut g: VrrpGroup = serde_json::from_value(serde_json::json!({
                "name": name, "vrid": 1, "virtual_addresses": ["192.0.2.1"],
                "nodes": [{"node": "lk01", "priority": 100, "interface": "lbdtest0"}]
            }))
            .unwrap();
            g.track_scripts = scripts;
            g
        };
        // The same command and rhythm under two names, with their own weights.
        let groups = vec![
            group("VI_1", vec![script("chk", -20)]),
            group("VI_2", vec![script("chk_web", -50)]),
        ];
        let (to, drain) = TrackSender::for_test().unwrap();
        let events = EventBus::default();
        let mut scripts = Scripts::default();
        scripts.sync(&groups, "lk01", &to, &events);
        assert_eq!(scripts.runs(), 1);
        tokio::time::sleep(Duration::from_millis(600)).await;
        scripts.stop();
        let got = drain();
        let one = got
            .iter()
            .filter(|(g, n, _)| g == "VI_1" && n == "chk")
            .count();
        let two = got
            .iter()
            .filter(|(g, n, _)| g == "VI_2" && n == "chk_web")
            .count();
        let lines = std::fs::read_to_string(&log).unwrap().lines().count();
        assert!(one >= 2, "{got:?}");
        assert_eq!(one, two, "every run reports to both groups");
        // One run per result (the last run may have been stopped after its command ran).
        assert!(
            lines == one || lines == one + 1,
            "{lines} runs, {one} results"
        );
        assert!(got.iter().all(|(_, _, f)| *f == Some(false)));

        // A third group joins the run and learns the verdict at once; a different rhythm is
        // a run of its own; a group that leaves stops getting results.
        let mut more = groups.clone();
        more.push(group("VI_3", vec![script("chk", -10)]));
        let mut slow = script("chk", -10);
        slow.interval_ms = 60_000;
        more.push(group("VI_4", vec![slow]));
        let mut scripts = Scripts::default();
        scripts.sync(&groups, "lk01", &to, &events);
        tokio::time::sleep(Duration::from_millis(200)).await;
        scripts.sync(&more, "lk01", &to, &events);
        assert_eq!(scripts.runs(), 2);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(drain()
            .iter()
            .any(|(g, _, f)| g == "VI_3" && *f == Some(false)));
        scripts.sync(&more[1..], "lk01", &to, &events);
        tokio::time::sleep(Duration::from_millis(100)).await;
        drain();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let later = drain();
        assert!(later.iter().all(|(g, _, _)| g != "VI_1"), "{later:?}");
        assert!(later.iter().any(|(g, _, _)| g == "VI_2"));
        scripts.stop();
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
