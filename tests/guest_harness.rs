//! The guest harness itself (tests/guest/run): exit status, timeout and output streaming. Each
//! case boots a guest (~6 s), so these run when LBD_GUEST_HARNESS=1 (tests/run-all sets it).

use std::process::Command;

fn harness(test: &str) -> bool {
    if std::env::var_os("LBD_GUEST_HARNESS").is_some() {
        return true;
    }
    eprintln!("SKIP {test}: set LBD_GUEST_HARNESS=1 (tests/run-all does) to boot guests");
    false
}

fn run(args: &[&str]) -> (i32, String) {
    let out = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/guest/run"))
        .args(args)
        .output()
        .expect("tests/guest/run");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn status_output_and_timeout() {
    if !harness("status_output_and_timeout") {
        return;
    }
    let (code, out) = run(&[
        "--",
        "sh",
        "-c",
        "echo in-guest $(uname -r) $(id -u); exit 7",
    ]);
    assert_eq!(code, 7, "{out}");
    assert!(
        out.contains("in-guest") && out.contains("-amd64 0"),
        "runs as root in the guest kernel: {out}"
    );
    let (code, _) = run(&["--timeout", "15", "--", "sleep", "600"]);
    assert_eq!(code, 124, "timeout has its own code");
    let left = Command::new("pgrep")
        .args(["-f", "qemu-system-x86_64"])
        .output()
        .unwrap();
    assert!(left.stdout.is_empty(), "no guest left running");
}
