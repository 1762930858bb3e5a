//! Watching what a master added: keepalived's tracking of its virtual addresses, routes and
//! rules (sans-IO; the engine feeds it what [`crate::kernel::rtnl::RouteWatch`] hears).
//!
//! keepalived 2.2.7 (`keepalived_netlink.c`: `netlink_if_address_filter`,
//! `netlink_route_filter`, `netlink_rule_filter`) listens on the rtnetlink address, route and
//! rule groups; when one of a master's objects is deleted and it is not marked `no_track`, the
//! instance leaves master (`set_vrrp_backup`: a priority-0 advert, everything removed,
//! Backup with its Master_Down_Timer at Skew_Time), so that it comes back at once with
//! everything put back unless a peer takes over first. Checked on the wire with keepalived
//! 2.2.7 (priority 150, advert_int 1, VRRPv3): `ip route del` of a virtual route, `ip addr
//! del` of a VIP and `ip rule del` of a virtual rule each gave a priority-0 advert within 5 ms
//! and the master's own advert again 415 ms later (its Skew_Time, (256 - 150) / 256 s), with
//! every address, route and rule back; a `no_track` one deleted changed nothing and stayed
//! deleted until the next transition to master.
//!
//! Subscriptions, not a periodic comparison: the kernel announces every deletion on those
//! groups (also to the deleting socket's peers), and the announcement carries what
//! identifies the object. lbd's own removals (leaving master, edits) are announced too; the
//! engine notes each one it makes ([`OwnRemovals`]) and the announcement of one is not taken
//! for someone else's. Only a master reacts: a backup has none of these objects.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::instance::Deleted;
use crate::kernel::rtnl::Deletion;
use crate::model::{VirtualAddress, VirtualRoute, VirtualRule};

/// How long a removal of lbd's own waits for its announcement (which the kernel queues before
/// it acknowledges the removal; this only bounds the list if one is lost).
pub const OWN_REMOVAL_TTL: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Own {
    Address { ifindex: u32, address: IpAddr },
    Route(VirtualRoute, Option<u32>),
    Rule(VirtualRule),
}

/// lbd's own removals whose announcements have not been heard yet.
#[derive(Debug, Default)]
pub struct OwnRemovals {
    pending: Vec<(Instant, Own)>,
}

impl OwnRemovals {
    /// lbd removed `address` from interface `ifindex`.
    pub fn address(&mut self, now: Instant, ifindex: Option<u32>, address: IpAddr) {
        if let Some(ifindex) = ifindex {
            self.pending.push((now, Own::Address { ifindex, address }));
        }
    }

    /// lbd removed route `r` (`oif`: its `dev`'s index).
    pub fn route(&mut self, now: Instant, r: &VirtualRoute, oif: Option<u32>) {
        self.pending.push((now, Own::Route(r.clone(), oif)));
    }

    /// lbd removed rule `r`.
    pub fn rule(&mut self, now: Instant, r: &VirtualRule) {
        self.pending.push((now, Own::Rule(r.clone())));
    }

    /// Whether `d` announces one of lbd's own removals (then forgotten).
    pub fn take(&mut self, d: &Deletion, now: Instant) -> bool {
        self.pending
            .retain(|(at, _)| now.saturating_duration_since(*at) < OWN_REMOVAL_TTL);
        let found = self.pending.iter().position(|(_, o)| match (o, d) {
            (
                Own::Address { ifindex, address },
                Deletion::Address {
                    ifindex: i,
                    address: a,
                    ..
                },
            ) => ifindex == i && address == a,
            (Own::Route(r, oif), Deletion::Route(g)) => g.is(r, || *oif),
            (Own::Rule(r), Deletion::Rule(g)) => g.is(r),
            _ => false,
        });
        match found {
            Some(i) => {
                self.pending.remove(i);
                true
            }
            None => false,
        }
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// What a master's objects are, for [`classify`].
pub struct MasterObjects<'a> {
    pub addresses: &'a [VirtualAddress],
    /// The interface the addresses without `dev` are on (the group's, or its virtual-MAC
    /// interface).
    pub interface: &'a str,
    pub routes: &'a [VirtualRoute],
    pub rules: &'a [VirtualRule],
    /// Whether the routes and rules are in the kernel.
    pub routes_up: bool,
}

/// Which of a master's objects `d` deleted, if any, and whether it is `no_track`.
/// `index`: an interface's index by name (`None`: no such interface).
pub fn classify(
    d: &Deletion,
    m: &MasterObjects<'_>,
    index: impl Fn(&str) -> Option<u32>,
) -> Option<(Deleted, bool)> {
    match d {
        Deletion::Address {
            ifindex, address, ..
        } => m
            .addresses
            .iter()
            .find(|v| v.address == *address && index(v.interface(m.interface)) == Some(*ifindex))
            .map(|v| {
                let text = format!("{} on {}", v, v.interface(m.interface));
                (Deleted::Address(text), v.no_track)
            }),
        Deletion::Route(g) if m.routes_up => m
            .routes
            .iter()
            .find(|r| g.is(r, || r.dev.as_deref().and_then(&index)))
            .map(|r| (Deleted::Route(r.to_string()), r.no_track)),
        Deletion::Rule(g) if m.routes_up => m
            .rules
            .iter()
            .find(|r| g.is(r))
            .map(|r| (Deleted::Rule(r.to_string()), r.no_track)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::rtnl::{RouteGone, RuleGone, FR_ACT_TO_TBL};

    fn route_gone(dst: [u8; 4], len: u8, table: u32, oif: Option<u32>) -> Deletion {
        Deletion::Route(RouteGone {
            family: libc::AF_INET as u8,
            dst: Some(IpAddr::from(dst)),
            dst_len: len,
            table,
            protocol: 18,
            kind: libc::RTN_UNICAST,
            metric: 0,
            oif,
            gateway: Some(IpAddr::from([192, 168, 10, 1])),
        })
    }

    fn index(n: &str) -> Option<u32> {
        match n {
            "eth0" => Some(2),
            "eth1" => Some(3),
            _ => None,
        }
    }

    #[test]
    fn deletions_are_matched_to_the_masters_objects() {
        let vips: Vec<VirtualAddress> = vec![
            "192.168.10.100/32".parse().unwrap(),
            VirtualAddress {
                no_track: true,
                ..VirtualAddress::plain(IpAddr::from([192, 168, 10, 110]), 32)
            },
        ];
        let routes: Vec<VirtualRoute> = vec![
            "10.1.0.0/16 via 192.168.10.1 dev eth0 table 100"
                .parse()
                .unwrap(),
            "10.2.0.0/16 via 192.168.10.1 dev eth0 table 100 no_track"
                .parse()
                .unwrap(),
        ];
        let rules: Vec<VirtualRule> = vec!["from 192.168.10.100/32 table 100 priority 100"
            .parse()
            .unwrap()];
        let mut m = MasterObjects {
            addresses: &vips,
            interface: "eth0",
            routes: &routes,
            rules: &rules,
            routes_up: true,
        };
        let addr = |a: [u8; 4], i| Deletion::Address {
            ifindex: i,
            address: IpAddr::from(a),
            prefix_len: 32,
        };
        assert_eq!(
            classify(&addr([192, 168, 10, 100], 2), &m, index),
            Some((Deleted::Address("192.168.10.100/32 on eth0".into()), false))
        );
        // The same address on another interface is not ours.
        assert_eq!(classify(&addr([192, 168, 10, 100], 3), &m, index), None);
        assert_eq!(
            classify(&addr([192, 168, 10, 110], 2), &m, index).map(|x| x.1),
            Some(true)
        );
        let r = classify(&route_gone([10, 1, 0, 0], 16, 100, Some(2)), &m, index);
        assert_eq!(
            r,
            Some((
                Deleted::Route("10.1.0.0/16 via 192.168.10.1 dev eth0 table 100".into()),
                false
            ))
        );
        assert_eq!(
            classify(&route_gone([10, 2, 0, 0], 16, 100, Some(2)), &m, index).map(|x| x.1),
            Some(true)
        );
        // Another table, another length, another interface: not ours.
        assert_eq!(
            classify(&route_gone([10, 1, 0, 0], 16, 254, Some(2)), &m, index),
            None
        );
        assert_eq!(
            classify(&route_gone([10, 1, 0, 0], 24, 100, Some(2)), &m, index),
            None
        );
        assert_eq!(
            classify(&route_gone([10, 1, 0, 0], 16, 100, Some(3)), &m, index),
            None
        );
        let rule = Deletion::Rule(RuleGone {
            family: libc::AF_INET as u8,
            src: Some(IpAddr::from([192, 168, 10, 100])),
            src_len: 32,
            table: 100,
            action: FR_ACT_TO_TBL,
            priority: Some(100),
            protocol: Some(18),
            ..RuleGone::default()
        });
        assert!(matches!(
            classify(&rule, &m, index),
            Some((Deleted::Rule(_), false))
        ));
        // Routes and rules not in the kernel (not master yet): nothing of ours.
        m.routes_up = false;
        assert_eq!(classify(&rule, &m, index), None);
    }

    #[test]
    fn own_removals_are_consumed_once_and_expire() {
        let t0 = Instant::now();
        let mut own = OwnRemovals::default();
        let r: VirtualRoute = "10.1.0.0/16 via 192.168.10.1 dev eth0 table 100"
            .parse()
            .unwrap();
        own.route(t0, &r, Some(2));
        own.address(t0, Some(2), IpAddr::from([192, 168, 10, 100]));
        let gone = route_gone([10, 1, 0, 0], 16, 100, Some(2));
        assert!(own.take(&gone, t0));
        assert!(!own.take(&gone, t0), "once only");
        let a = Deletion::Address {
            ifindex: 2,
            address: IpAddr::from([192, 168, 10, 100]),
            prefix_len: 32,
        };
        assert!(!own.take(&a, t0 + OWN_REMOVAL_TTL), "expired");
        assert!(own.is_empty());
    }
}
