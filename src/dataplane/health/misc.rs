//! keepalived's MISC_CHECK: run a command (no shell) with a timeout; exit 0 is healthy, and with
//! `misc_dynamic` an exit of 2-255 is healthy with weight `code - 2` (1 and others: down).
//!
//! The command runs in a process group of its own, so a timeout kills it and whatever it
//! started (a script's children would otherwise keep its output pipe open). Its output (first
//! 512 bytes of stdout and stderr together) goes into the failure's message, which the status
//! shows.

use std::ffi::CString;
use std::os::unix::process::CommandExt as _;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;

use super::CheckError;

const MAX_OUTPUT: usize = 512;

/// What a healthy run says: the weight it asks for (`misc_dynamic`), if any.
pub type Outcome = Option<u32>;

/// The uid and gid of `user` (getpwnam_r).
fn lookup_user(user: &str) -> Result<(u32, u32), CheckError> {
    let name = CString::new(user).map_err(|_| CheckError::Script(format!("bad user {user:?}")))?;
    let mut pwd: libc::passwd = unsafe_zeroed_passwd();
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call: `name` is NUL-terminated, `pwd` and `result`
    // are live locals, `buf` is a live buffer of the length passed.
    let rc = unsafe {
        libc::getpwnam_r(
            name.as_ptr(),
            &mut pwd,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
        )
    };
    if rc != 0 || result.is_null() {
        return Err(CheckError::Script(format!("no user {user}")));
    }
    Ok((pwd.pw_uid, pwd.pw_gid))
}

fn unsafe_zeroed_passwd() -> libc::passwd {
    // SAFETY: `passwd` is a plain C struct of integers and pointers, for which all-zero bytes
    // (null pointers, zero ids) are a valid value; getpwnam_r overwrites it.
    unsafe { std::mem::zeroed() }
}

/// How a command that ran to its end ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exit {
    /// `None`: ended by a signal.
    pub code: Option<i32>,
    /// The first 512 bytes of its stdout and stderr (" | " between them), trimmed.
    pub output: String,
}

pub async fn check(
    argv: &[String],
    timeout: Duration,
    dynamic: bool,
    user: Option<&str>,
) -> Result<Outcome, CheckError> {
    let Exit { code, output } = run(argv, timeout, user).await?;
    match code {
        Some(0) => Ok(None),
        Some(c @ 2..=255) if dynamic => Ok(Some(c as u32 - 2)),
        code => Err(CheckError::Exit {
            code: code.map_or_else(|| "a signal".to_string(), |c| c.to_string()),
            output,
        }),
    }
}

/// Runs `argv` (no shell) in a process group of its own; at `timeout` the group is killed and
/// the result is [`CheckError::Timeout`]. Also runs keepalived's quorum commands.
pub async fn run(
    argv: &[String],
    timeout: Duration,
    user: Option<&str>,
) -> Result<Exit, CheckError> {
    let Some((prog, args)) = argv.split_first() else {
        return Err(CheckError::Script("no command".into()));
    };
    let mut cmd = std::process::Command::new(prog);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(u) = user {
        let (uid, gid) = lookup_user(u)?;
        cmd.uid(uid).gid(gid);
    }
    let mut child = tokio::process::Command::from(cmd)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| CheckError::Script(format!("cannot run {prog}: {e}")))?;
    let pid = child.id();
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let run = async {
        let mut o = Vec::new();
        let mut e = Vec::new();
        if let Some(s) = out.as_mut() {
            let _ = s.take(MAX_OUTPUT as u64).read_to_end(&mut o).await;
        }
        if let Some(s) = err.as_mut() {
            let _ = s.take(MAX_OUTPUT as u64).read_to_end(&mut e).await;
        }
        let status = child.wait().await;
        (status, o, e)
    };
    let (status, o, e) = match tokio::time::timeout(timeout, run).await {
        Ok(r) => r,
        Err(_) => {
            if let Some(pid) = pid {
                // SAFETY: signalling the process group we created for the command (its pgid
                // is its pid, `process_group(0)`); no memory is involved.
                unsafe {
                    libc::kill(-(pid as i32), libc::SIGKILL);
                }
            }
            return Err(CheckError::Timeout(timeout));
        }
    };
    let status = status.map_err(|e| CheckError::Script(format!("{prog}: {e}")))?;
    let mut output = String::from_utf8_lossy(&o).trim().to_string();
    let e = String::from_utf8_lossy(&e).trim().to_string();
    if !e.is_empty() {
        if !output.is_empty() {
            output.push_str(" | ");
        }
        output.push_str(&e);
    }
    truncate_at_char(&mut output, MAX_OUTPUT);
    Ok(Exit {
        code: status.code(),
        output,
    })
}

/// `String::truncate` panics inside a multi-byte character; cut at the boundary before it.
fn truncate_at_char(s: &mut String, max: usize) {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
}
