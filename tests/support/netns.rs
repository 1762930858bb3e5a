//! Multi-host topologies in network namespaces, for tests that need a network.
//!
//! A [`Topology`] is a set of named hosts, each a network namespace with one interface `eth0`,
//! all joined by a bridge that lives in a namespace of its own. The root namespace gets no
//! address, route or interface: no packet from these hosts can leave the machine. Everything is
//! torn down on drop, also when the test fails; namespaces left by a killed earlier run with the
//! same prefix are removed first.
#![allow(dead_code)]

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::process::{Child, Command, Output, Stdio};

use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type};

/// `struct sockaddr_ll` for binding a packet socket to interface `ifindex` and EtherType
/// `protocol` (network order). Hand-written: socket2 builds no link-layer address.
fn packet_addr(protocol: u16, ifindex: u32) -> SockAddr {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: sockaddr_ll is one of this platform's sockaddr types and fits the storage; the
    // storage then holds an AF_PACKET address of exactly its size, as SockAddr::new is told.
    unsafe {
        let sll = storage.view_as::<libc::sockaddr_ll>();
        sll.sll_family = libc::AF_PACKET as libc::sa_family_t;
        sll.sll_protocol = protocol;
        sll.sll_ifindex = ifindex as i32;
        SockAddr::new(
            storage,
            std::mem::size_of::<libc::sockaddr_ll>() as socket2::socklen_t,
        )
    }
}

/// True when the test may build namespaces; otherwise says SKIP (or fails when
/// LBD_REQUIRE_PRIVILEGED=1, as CI sets it: a skip is not a pass there).
pub fn privileged(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    assert!(
        std::env::var_os("LBD_REQUIRE_PRIVILEGED").is_none(),
        "{test} needs root (network namespaces) but runs unprivileged"
    );
    eprintln!("SKIP {test}: needs root for network namespaces");
    false
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

pub struct Topology {
    prefix: String,
    bridge: String,
    hosts: Vec<String>,
}

impl Topology {
    /// A new, empty topology; `name` keeps namespaces of different tests apart.
    pub fn new(name: &str) -> Topology {
        let prefix = format!("lbdt-{name}");
        // Leftovers of an earlier run that was killed before its Drop ran.
        if let Ok(out) = Command::new("ip").args(["netns", "list"]).output() {
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some(ns) = line.split_whitespace().next() {
                    if ns.starts_with(&format!("{prefix}-")) {
                        let _ = ip(&["netns", "del", ns]);
                    }
                }
            }
        }
        let bridge = format!("{prefix}-sw");
        let t = Topology {
            prefix,
            bridge: bridge.clone(),
            hosts: Vec::new(),
        };
        ip(&["netns", "add", &bridge]).expect("create the bridge namespace");
        ip(&["-n", &bridge, "link", "add", "br0", "type", "bridge"]).expect("bridge");
        ip(&["-n", &bridge, "link", "set", "br0", "up"]).expect("bridge up");
        t
    }

    pub fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.prefix)
    }

    /// Adds a host with `eth0` holding `cidr` (e.g. "192.168.10.101/24") and a MAC derived
    /// from the host's index, plugged into the bridge.
    pub fn add_host(&mut self, host: &str, cidr: &str) {
        let ns = self.ns(host);
        ip(&["netns", "add", &ns]).expect("create the host namespace");
        self.hosts.push(ns.clone());
        let peer = format!("p{}", self.hosts.len());
        let mac = format!("02:00:00:00:00:{:02x}", self.hosts.len());
        // Both ends are created inside the namespaces: nothing appears in the root namespace.
        ip(&[
            "-n",
            &ns,
            "link",
            "add",
            "eth0",
            "address",
            &mac,
            "type",
            "veth",
            "peer",
            "name",
            &peer,
            "netns",
            &self.bridge,
        ])
        .expect("veth pair");
        ip(&[
            "-n",
            &self.bridge,
            "link",
            "set",
            &peer,
            "master",
            "br0",
            "up",
        ])
        .expect("plug into the bridge");
        ip(&["-n", &ns, "addr", "add", cidr, "dev", "eth0"]).expect("address");
        ip(&["-n", &ns, "link", "set", "eth0", "up"]).expect("eth0 up");
        ip(&["-n", &ns, "link", "set", "lo", "up"]).expect("lo up");
    }

    /// The switch's port that `host` is plugged into.
    fn port_of(&self, host: &str) -> String {
        let ns = self.ns(host);
        let i = self
            .hosts
            .iter()
            .position(|h| *h == ns)
            .expect("a host of this topology");
        format!("p{}", i + 1)
    }

    /// Takes `host`'s switch port down (or up again): for the host, as if its cable were
    /// pulled.
    pub fn set_port(&self, host: &str, up: bool) {
        let port = self.port_of(host);
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.bridge, "link", "set", &port, state]).expect("switch port");
    }

    /// Stops (or restarts) the switch forwarding `host`'s frames, its link staying up: a
    /// partition the host cannot see as a pulled cable (the bridge port's state goes to
    /// disabled, or back to forwarding; `ip link ... bridge_slave state` does not take it).
    pub fn set_partitioned(&self, host: &str, cut: bool) {
        let port = self.port_of(host);
        let state = if cut { "0" } else { "3" };
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.bridge,
                "bridge",
                "link",
                "set",
                "dev",
                &port,
            ])
            .args(["state", state])
            .output()
            .expect("bridge");
        assert!(
            out.status.success(),
            "bridge link set: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs a command in a host and waits for it.
    pub fn exec(&self, host: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(host)])
            .args(args)
            .output()
            .expect("ip netns exec")
    }

    /// Starts a process in a host (kill it, or it dies with the namespace teardown's SIGKILL).
    pub fn spawn(&self, host: &str, args: &[&str]) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(host)])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn in namespace")
    }

    /// Runs `f` on a thread that has entered `host`'s network namespace: sockets it opens live
    /// there (packet capture, probes) without a helper process.
    pub fn in_host<T: Send + 'static>(
        &self,
        host: &str,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        let path = format!("/run/netns/{}", self.ns(host));
        std::thread::spawn(move || {
            let file = File::open(&path).expect("namespace file");
            // SAFETY: setns on this thread only; the thread ends with the closure.
            let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("namespace thread")
    }

    /// Starts capturing every frame that `host`'s `eth0` sends or receives (an AF_PACKET socket
    /// opened inside the namespace), until [`Capture::stop`].
    pub fn capture(&self, host: &str) -> Capture {
        let path = format!("/run/netns/{}", self.ns(host));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let file = File::open(&path).expect("namespace file");
            // SAFETY: setns on this thread only, with a namespace file open for the call.
            let r = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(r, 0, "setns: {}", std::io::Error::last_os_error());
            let eth_p_all = (libc::ETH_P_ALL as u16).to_be();
            let sock = Socket::new(
                Domain::PACKET,
                Type::RAW,
                Some(Protocol::from(i32::from(eth_p_all))),
            )
            .expect("AF_PACKET socket");
            let ifindex = lbd::kernel::interface::index("eth0").expect("eth0");
            sock.bind(&packet_addr(eth_p_all, ifindex))
                .expect("bind to eth0");
            sock.set_read_timeout(Some(std::time::Duration::from_millis(50)))
                .expect("SO_RCVTIMEO");
            let _ = ready_tx.send(());
            let mut frames = Vec::new();
            let mut buf = vec![0u8; 65536];
            while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
                if let Ok(n @ 1..) = (&sock).read(&mut buf) {
                    frames.push((std::time::Instant::now(), buf[..n].to_vec()));
                }
            }
            // Frames already queued when stop was asked for belong to the capture.
            sock.set_nonblocking(true).expect("O_NONBLOCK");
            while let Ok(n @ 1..) = (&sock).read(&mut buf) {
                frames.push((std::time::Instant::now(), buf[..n].to_vec()));
            }
            frames
        });
        let _ = ready_rx.recv();
        Capture {
            stop,
            thread: Some(thread),
        }
    }

    /// Names of this topology's namespaces that exist now.
    pub fn existing(&self) -> Vec<String> {
        let out = Command::new("ip")
            .args(["netns", "list"])
            .output()
            .expect("ip netns list");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().next().map(String::from))
            .filter(|n| n.starts_with(&format!("{}-", self.prefix)))
            .collect()
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for ns in self.hosts.iter().chain(std::iter::once(&self.bridge)) {
            // Processes still inside would keep the namespace alive: end them first.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(p) = pid.parse::<i32>() {
                        // SAFETY: signalling a process of our own test topology.
                        unsafe { libc::kill(p, libc::SIGKILL) };
                    }
                }
            }
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// A running packet capture (see [`Topology::capture`]).
/// A captured Ethernet frame and when it was read.
pub type Frame = (std::time::Instant, Vec<u8>);

pub struct Capture {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<Frame>>>,
}

impl Capture {
    /// Ends the capture and returns the Ethernet frames, in order.
    pub fn stop(self) -> Vec<Vec<u8>> {
        self.stop_timed().into_iter().map(|(_, f)| f).collect()
    }

    /// Ends the capture and returns the Ethernet frames, in order, each with when it was read.
    pub fn stop_timed(mut self) -> Vec<Frame> {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread
            .take()
            .map(|t| t.join().expect("capture thread"))
            .unwrap_or_default()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
