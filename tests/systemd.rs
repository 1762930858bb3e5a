//! lbd under systemd's `Type=notify` protocol, spoken by a test socket in place of systemd:
//! `READY=1` once it serves, `WATCHDOG=1` pings while the data plane answers, `STOPPING=1` on
//! SIGTERM; and the database in `STATE_DIRECTORY` when `--db` is not given.

use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `lbd serve` on ephemeral loopback ports, through `sh -c 'exec ...'` so that the command can
/// set `WATCHDOG_PID` to lbd's own pid, as systemd does.
fn lbd(dir: &std::path::Path) -> Command {
    let mut c = Command::new("sh");
    c.args([
        "-c",
        r#"[ -n "$WATCHDOG_USEC" ] && export WATCHDOG_PID=$$; exec "$0" "$@""#,
        env!("CARGO_BIN_EXE_lbd"),
        "serve",
        "--http-listen",
        "127.0.0.1:0",
        "--grpc-listen",
        "127.0.0.1:0",
    ])
    .current_dir(dir)
    .env_remove("LBD_DB")
    .env_remove("NOTIFY_SOCKET")
    .env_remove("WATCHDOG_USEC")
    .env_remove("WATCHDOG_PID")
    .env_remove("STATE_DIRECTORY")
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    c
}

/// The lbd process; killed if the test ends without stopping it (a failed assertion).
struct Lbd(Child);

impl Drop for Lbd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Lbd {
    /// SIGTERM, then whether lbd exited with success.
    fn term(&mut self) -> bool {
        // SAFETY: a signal to our own child, which has not been waited for yet (the shell
        // exec'd lbd, so the pid is lbd's).
        unsafe {
            libc::kill(self.0.id() as i32, libc::SIGTERM);
        }
        self.0.wait().map(|s| s.success()).unwrap_or(false)
    }
}

/// The datagrams received until `until` matches one of them or `within` has passed.
fn read_until(
    sock: &UnixDatagram,
    within: Duration,
    mut until: impl FnMut(&str) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        sock.set_read_timeout(Some(
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1)),
        ))
        .unwrap();
        match sock.recv(&mut buf) {
            Ok(n) => {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                let done = until(&msg);
                got.push(msg);
                if done {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) => panic!("{e}"),
        }
    }
    got
}

/// Starts `cmd` with `NOTIFY_SOCKET` on a socket of the test's, and returns lbd, the socket and
/// the datagrams up to and including the one that says `READY=1`.
fn start_notified(mut cmd: Command, dir: &std::path::Path) -> (Lbd, UnixDatagram, String) {
    let path = dir.join("notify");
    let sock = UnixDatagram::bind(&path).unwrap();
    let child = cmd.env("NOTIFY_SOCKET", &path).spawn().map(Lbd).unwrap();
    let start = read_until(&sock, Duration::from_secs(30), |m| {
        m.lines().any(|l| l == "READY=1")
    });
    let ready = start.last().cloned().unwrap_or_default();
    assert!(
        ready.lines().any(|l| l == "READY=1"),
        "no READY=1: {start:?}"
    );
    (child, sock, ready)
}

#[test]
fn ready_watchdog_and_stopping_over_the_notify_socket() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = lbd(dir.path());
    cmd.arg("--db")
        .arg(dir.path().join("lbd.db"))
        // 400 ms: lbd pings every 200 ms while its data plane answers.
        .env("WATCHDOG_USEC", "400000");
    let (mut child, sock, ready) = start_notified(cmd, dir.path());
    assert!(
        ready
            .lines()
            .any(|l| l.starts_with("STATUS=serving HTTP on 127.0.0.1:")),
        "{ready:?}"
    );

    let mut pings = 0;
    let got = read_until(&sock, Duration::from_secs(30), |m| {
        if m.lines().any(|l| l == "WATCHDOG=1") {
            pings += 1;
        }
        pings >= 3
    });
    assert!(pings >= 3, "fewer than 3 watchdog pings: {got:?}");

    // SAFETY: a signal to our own child, not yet waited for.
    unsafe {
        libc::kill(child.0.id() as i32, libc::SIGTERM);
    }
    let end = read_until(&sock, Duration::from_secs(30), |m| {
        m.lines().any(|l| l == "STOPPING=1")
    });
    assert!(
        end.iter().any(|m| m.lines().any(|l| l == "STOPPING=1")),
        "no STOPPING=1 after SIGTERM: {end:?}"
    );
    assert!(child.0.wait().unwrap().success());
}

#[test]
fn without_watchdog_usec_there_are_no_pings() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = lbd(dir.path());
    cmd.arg("--db").arg(dir.path().join("lbd.db"));
    let (mut child, sock, _) = start_notified(cmd, dir.path());
    let more = read_until(&sock, Duration::from_millis(1_500), |_| false);
    assert!(
        !more.iter().any(|m| m.contains("WATCHDOG=1")),
        "a ping systemd did not ask for: {more:?}"
    );
    assert!(child.term());
}

#[test]
fn the_database_goes_to_state_directory_when_db_is_not_given() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let mut cmd = lbd(&work);
    // systemd gives a colon-separated list; the first is lbd's.
    cmd.env(
        "STATE_DIRECTORY",
        format!("{}:/nonexistent", state.display()),
    );
    let (mut child, _sock, _) = start_notified(cmd, dir.path());
    assert!(
        state.join("lbd.db").exists(),
        "no lbd.db in STATE_DIRECTORY"
    );
    assert!(
        !work.join("lbd.db").exists(),
        "lbd.db in the working directory"
    );
    assert!(child.term());
}
