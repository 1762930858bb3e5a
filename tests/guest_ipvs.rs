//! IPVS over generic netlink against a real kernel: runs inside the guest (tests/guest/run via the
//! cargo runner, see tests/README.md). On the host these tests say SKIP, or fail when
//! LBD_REQUIRE_GUEST=1 (tests/run-all sets it for the guest pass).

use std::process::Command;

use lbd::ipvs::uapi::*;
use lbd::ipvs::{DestAttrs, IpvsSocket, SvcAttrs};

fn in_guest(test: &str) -> bool {
    if std::env::var_os("LBD_IN_GUEST").is_some() {
        return true;
    }
    assert!(
        std::env::var_os("LBD_REQUIRE_GUEST").is_none(),
        "{test} needs the guest kernel but runs outside it"
    );
    eprintln!(
        "SKIP {test}: needs a kernel with IPVS (run tests/run-all, or the guest cargo runner)"
    );
    false
}

fn ipvsadm_ln() -> String {
    let out = Command::new("ipvsadm")
        .arg("-Ln")
        .output()
        .expect("run ipvsadm");
    assert!(
        out.status.success(),
        "ipvsadm -Ln: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// The service and destination lines of `ipvsadm -Ln`, whitespace-normalized.
fn table_lines(s: &str) -> Vec<String> {
    s.lines()
        .skip(3)
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
}

fn svc(addr: &str, port: u16, sched: &str) -> SvcAttrs {
    SvcAttrs {
        af: AF_INET,
        protocol: IPPROTO_TCP,
        addr: Some(addr.parse().unwrap()),
        port,
        fwmark: 0,
        sched_name: sched.into(),
        flags: 0,
        timeout: 0,
        netmask: 0xffff_ffff,
        stats: None,
    }
}

#[test]
fn create_read_back_and_ipvsadm_agrees() {
    if !in_guest("create_read_back_and_ipvsadm_agrees") {
        return;
    }
    let mut s = IpvsSocket::open().expect("IPVS family resolves in the guest");
    let web = svc("192.168.10.100", 80, "rr");
    s.new_service(&web).unwrap();
    for (addr, w) in [("192.168.10.103", 1), ("192.168.10.104", 2)] {
        s.new_dest(
            &web,
            &DestAttrs {
                addr: addr.parse().unwrap(),
                port: 80,
                fwd_method: IP_VS_CONN_F_DROUTE,
                weight: w,
                u_thresh: 0,
                l_thresh: 0,
                ..Default::default()
            },
        )
        .unwrap();
    }
    let mut persistent = svc("192.168.10.100", 443, "wlc");
    persistent.flags = IP_VS_SVC_F_PERSISTENT;
    persistent.timeout = 300;
    s.new_service(&persistent).unwrap();
    s.new_dest(
        &persistent,
        &DestAttrs {
            addr: "10.0.0.5".parse().unwrap(),
            port: 8443,
            fwd_method: IP_VS_CONN_F_MASQ,
            weight: 5,
            u_thresh: 100,
            l_thresh: 10,
            ..Default::default()
        },
    )
    .unwrap();
    let fwm = SvcAttrs {
        af: AF_INET6,
        protocol: 0,
        addr: None,
        port: 0,
        fwmark: 7,
        sched_name: "sh".into(),
        flags: 0,
        timeout: 0,
        netmask: 128,
        stats: None,
    };
    s.new_service(&fwm).unwrap();

    // Read back over netlink.
    // Only this test's services: the other test may run at the same time.
    let mine = |x: &SvcAttrs| x.fwmark == 7 || x.addr == web.addr;
    let mut got: Vec<_> = s.services().unwrap().into_iter().filter(mine).collect();
    got.sort_by_key(|x| (x.fwmark, x.port));
    assert_eq!(got.len(), 3);
    assert_eq!(
        (got[0].addr, got[0].port, got[0].sched_name.as_str()),
        (web.addr, 80, "rr")
    );
    assert_eq!(
        (
            got[1].port,
            got[1].timeout,
            got[1].flags & IP_VS_SVC_F_PERSISTENT
        ),
        (443, 300, IP_VS_SVC_F_PERSISTENT)
    );
    assert_eq!(
        (got[2].fwmark, got[2].af, got[2].sched_name.as_str()),
        (7, AF_INET6, "sh")
    );
    let mut d = s.dests(&web).unwrap();
    d.sort_by_key(|x| x.addr);
    assert_eq!(
        d.iter()
            .map(|x| (x.addr.to_string(), x.port, x.weight, x.fwd_method))
            .collect::<Vec<_>>(),
        vec![
            ("192.168.10.103".into(), 80, 1, IP_VS_CONN_F_DROUTE),
            ("192.168.10.104".into(), 80, 2, IP_VS_CONN_F_DROUTE)
        ]
    );

    // ipvsadm sees the same table.
    let lines = table_lines(&ipvsadm_ln());
    for want in [
        "TCP 192.168.10.100:80 rr",
        "-> 192.168.10.103:80 Route 1 0 0",
        "-> 192.168.10.104:80 Route 2 0 0",
        "TCP 192.168.10.100:443 wlc persistent 300",
        "-> 10.0.0.5:8443 Masq 5 0 0",
        "FWM 7 IPv6 sh",
    ] {
        assert!(
            lines.iter().any(|l| l == want),
            "ipvsadm -Ln lacks {want:?}: {lines:#?}"
        );
    }

    // Edit, delete, and the kernel's errors come back as errors.
    s.set_dest(
        &web,
        &DestAttrs {
            addr: "192.168.10.104".parse().unwrap(),
            port: 80,
            fwd_method: IP_VS_CONN_F_DROUTE,
            weight: 9,
            u_thresh: 0,
            l_thresh: 0,
            ..Default::default()
        },
    )
    .unwrap();
    assert!(table_lines(&ipvsadm_ln())
        .iter()
        .any(|l| l == "-> 192.168.10.104:80 Route 9 0 0"));
    let dup = s.new_service(&web).unwrap_err();
    assert!(dup.to_string().contains("exists"), "{dup}");
    for x in [&web, &persistent, &fwm] {
        s.del_service(x).unwrap();
    }
    assert!(!s.services().unwrap().iter().any(mine));
    assert!(!ipvsadm_ln().contains("192.168.10.100"));
}

#[test]
fn services_made_by_ipvsadm_are_read() {
    if !in_guest("services_made_by_ipvsadm_are_read") {
        return;
    }
    let run = |args: &[&str]| {
        assert!(
            Command::new("ipvsadm")
                .args(args)
                .status()
                .unwrap()
                .success(),
            "ipvsadm {args:?}"
        )
    };
    run(&["-A", "-u", "10.1.1.1:53", "-s", "lc"]);
    run(&[
        "-a",
        "-u",
        "10.1.1.1:53",
        "-r",
        "10.1.1.2:53",
        "-i",
        "-w",
        "4",
    ]);
    let mut s = IpvsSocket::open().unwrap();
    let all = s.services().unwrap();
    let dns = all
        .iter()
        .find(|x| x.port == 53)
        .expect("ipvsadm's service");
    assert_eq!((dns.protocol, dns.sched_name.as_str()), (IPPROTO_UDP, "lc"));
    let d = s.dests(dns).unwrap();
    assert_eq!((d[0].fwd_method, d[0].weight), (IP_VS_CONN_F_TUNNEL, 4));
    s.del_service(dns).unwrap();
}

/// A batch asks the kernel for one ack per datagram (the last request's): every refused request
/// must still be reported against the right request, wherever it sits, and the others applied.
#[test]
fn a_batch_reports_each_refused_request_and_applies_the_rest() {
    use lbd::ipvs::socket::Command;
    if !in_guest("a_batch_reports_each_refused_request_and_applies_the_rest") {
        return;
    }
    let mut s = IpvsSocket::open().unwrap();
    let new_svc = Command::NewService;
    let new_dest = |v: SvcAttrs, last: u8| {
        Command::NewDest(
            v,
            DestAttrs {
                addr: format!("10.77.0.{last}").parse().unwrap(),
                port: 80,
                fwd_method: IP_VS_CONN_F_DROUTE,
                weight: 1,
                ..Default::default()
            },
        )
    };
    let a = svc("192.168.77.1", 80, "rr");
    let missing = svc("192.168.77.99", 80, "rr");
    let (out, sends) = s
        .batch(vec![
            new_svc(a.clone()),
            new_svc(a.clone()),           // EEXIST
            new_dest(missing.clone(), 1), // ESRCH: no such service
            new_dest(a.clone(), 2),
            new_svc(svc("192.168.77.2", 80, "nosuchsched")), // ENOENT
            new_svc(svc("192.168.77.3", 80, "wlc")),
            new_dest(a.clone(), 2), // EEXIST, and the datagram's last request
        ])
        .unwrap();
    let codes: Vec<Option<i32>> = out
        .iter()
        .map(|o| o.as_ref().map(|e| e.raw_os_error().unwrap_or(-1)))
        .collect();
    assert_eq!(
        codes,
        vec![
            None,
            Some(libc::EEXIST),
            Some(libc::ESRCH),
            None,
            Some(libc::ENOENT),
            None,
            Some(libc::EEXIST)
        ]
    );
    assert_eq!(sends, 1);
    let t = table_lines(&ipvsadm_ln()).join("\n");
    assert!(
        t.contains("TCP 192.168.77.1:80 rr\n-> 10.77.0.2:80 Route 1 0 0"),
        "{t}"
    );
    assert!(t.contains("TCP 192.168.77.3:80 wlc"), "{t}");
    assert!(!t.contains("192.168.77.2:80"), "{t}");

    // Across datagrams: 2,500 destinations (three sendmsg calls), with refusals in the first,
    // the middle of the second, and as the very last request.
    let mut reqs = Vec::new();
    let b = svc("192.168.77.4", 80, "rr");
    reqs.push(new_svc(b.clone()));
    let addr = |i: usize| DestAttrs {
        addr: format!("10.78.{}.{}", i / 250, i % 250 + 1)
            .parse()
            .unwrap(),
        port: 80,
        fwd_method: IP_VS_CONN_F_DROUTE,
        weight: 1,
        ..Default::default()
    };
    let bad = [10usize, 1500, 2499];
    for i in 1..2500 {
        let (v, d) = if bad.contains(&i) {
            (missing.clone(), addr(i))
        } else {
            (b.clone(), addr(i))
        };
        reqs.push(Command::NewDest(v, d));
    }
    let (out, sends) = s.batch(reqs).unwrap();
    assert_eq!(sends, 3);
    let refused: Vec<usize> = (0..out.len()).filter(|&i| out[i].is_some()).collect();
    assert_eq!(refused, bad.to_vec());
    assert_eq!(s.dests(&b).unwrap().len(), 2499 - bad.len());

    for v in [&a, &b, &svc("192.168.77.3", 80, "wlc")] {
        s.del_service(v).unwrap();
    }
}
