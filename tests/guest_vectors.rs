//! Captures what `ipvsadm` (Debian's 1.31) sends the kernel, on an nlmon interface in the guest,
//! and checks it against the vectors in tests/data/ipvs/ (how they were made: this test with
//! LBD_CAPTURE_VECTORS=tests/data/ipvs). tests/ipvs_vectors.rs checks lbd's codec against the same
//! vectors on the host, in both directions. (In the guest the checkout is read-only: with
//! LBD_CAPTURE_VECTORS and `--nocapture` the test prints each vector as `vector NAME.hex HEX`.)

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const CASES: &[(&str, &[&str])] = &[
    (
        "new_service",
        &[
            "-A",
            "-t",
            "192.168.10.100:80",
            "-s",
            "wlc",
            "-p",
            "300",
            "-M",
            "255.255.255.0",
        ],
    ),
    (
        "new_dest",
        &[
            "-a",
            "-t",
            "192.168.10.100:80",
            "-r",
            "192.168.10.103:80",
            "-g",
            "-w",
            "3",
            "-x",
            "100",
            "-y",
            "10",
        ],
    ),
    ("new_service_fwmark6", &["-A", "-f", "7", "-6", "-s", "sh"]),
    // After new_service: the service exists, so the kernel accepts zeroing it.
    ("zero_service", &["-Z", "-t", "192.168.10.100:80"]),
    ("zero_all", &["-Z"]),
    ("set_config", &["--set", "1000", "100", "200"]),
];

/// The genl commands the cases send (IPVS_CMD_NEW_SERVICE, _NEW_DEST, _SET_CONFIG, _ZERO).
const COMMANDS: &[u8] = &[1, 5, 12, 16];

fn sh(args: &[&str]) {
    let st = Command::new(args[0])
        .args(&args[1..])
        .status()
        .expect("run");
    assert!(st.success(), "{args:?}");
}

/// Every netlink request seen on nlmon0 while `f` runs (the whole message, header included).
fn capture(f: impl FnOnce()) -> Vec<Vec<u8>> {
    // SAFETY: a packet socket on our own nlmon interface; buffers we own.
    let fd = unsafe {
        let proto = (libc::ETH_P_ALL as u16).to_be() as i32;
        let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, proto);
        assert!(fd >= 0);
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = proto as u16;
        sll.sll_ifindex = libc::if_nametoindex(c"nlmon0".as_ptr()) as i32;
        assert_eq!(
            libc::bind(
                fd,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32
            ),
            0
        );
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 100_000,
        };
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            std::mem::size_of::<libc::timeval>() as u32,
        );
        fd
    };
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let t = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            // SAFETY: receiving into our own buffer.
            let n = unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n > 0 {
                out.push(buf[..n as usize].to_vec());
            } else if stop2.load(Ordering::SeqCst) {
                break;
            }
        }
        // SAFETY: closing our socket.
        unsafe { libc::close(fd) };
        out
    });
    f();
    std::thread::sleep(std::time::Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    t.join().unwrap()
}

#[test]
fn ipvsadm_requests_match_the_checked_in_vectors() {
    if std::env::var_os("LBD_IN_GUEST").is_none() {
        assert!(
            std::env::var_os("LBD_REQUIRE_GUEST").is_none(),
            "needs the guest kernel"
        );
        eprintln!("SKIP ipvsadm_requests_match_the_checked_in_vectors: needs the guest kernel");
        return;
    }
    sh(&["modprobe", "ip_vs"]);
    sh(&["modprobe", "nlmon"]);
    let _ = Command::new("ip").args(["link", "del", "nlmon0"]).status();
    sh(&["ip", "link", "add", "nlmon0", "type", "nlmon"]);
    sh(&["ip", "link", "set", "nlmon0", "up"]);
    let dir = std::env::var("LBD_CAPTURE_VECTORS").ok();
    for (name, args) in CASES {
        let frames = capture(|| {
            let mut a = vec!["ipvsadm"];
            a.extend_from_slice(args);
            sh(&a);
        });
        // The request: NLM_F_REQUEST set, one of the genl commands above, not to the
        // generic-netlink controller (0x10).
        let req = frames
            .iter()
            .find(|f| {
                f.len() >= 20
                    && u16::from_ne_bytes([f[6], f[7]]) & 1 == 1
                    && COMMANDS.contains(&f[16])
                    && u16::from_ne_bytes([f[4], f[5]]) != 0x10
            })
            .unwrap_or_else(|| panic!("{name}: no request captured among {} frames", frames.len()));
        // Without the netlink header (its length, type, seq and pid vary by run and kernel).
        let payload: String = req[16..].iter().map(|b| format!("{b:02x}")).collect();
        if let Some(d) = &dir {
            // The guest's root (the checkout with it) is read-only: the vectors are printed
            // (run with --nocapture) to be saved on the host, and written where that works.
            println!("vector {name}.hex {payload}");
            let _ = std::fs::write(format!("{d}/{name}.hex"), format!("{payload}\n"));
            continue;
        }
        let want = std::fs::read_to_string(format!(
            "{}/tests/data/ipvs/{name}.hex",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        assert_eq!(
            payload,
            want.trim(),
            "{name}: ipvsadm sent something else than the checked-in vector"
        );
    }
    sh(&["ipvsadm", "-C"]);
    // The kernel's default timeouts again (tcp_timeouts / udp_timeouts).
    sh(&["ipvsadm", "--set", "900", "120", "300"]);
    sh(&["ip", "link", "del", "nlmon0"]);
}
