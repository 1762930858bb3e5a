//! What differs between two configurations of one VRRP instance, and which differences the
//! running instance can take in place (sans-IO, no clock).
//!
//! A running instance takes [`Change`]s through [`super::Input::Reconfigure`] without leaving
//! its state; only a change of what identifies the virtual router on the wire (VRID, version,
//! address family) or where it runs (interface) needs a restart: the old instance stops as on
//! shutdown (priority 0) and a new one starts.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use super::instance::InstanceConfig;
use super::track::Tracker;
use crate::model::{Centiseconds, GarpSettings, InitialState, VirtualAddress};

/// One difference between an instance's configuration and a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    // ---- restart needed -------------------------------------------------------------------
    Vrid {
        from: u8,
        to: u8,
    },
    Interface {
        from: String,
        to: String,
    },
    Version {
        from: u8,
        to: u8,
    },
    /// The address family of the source address (and so of the advertised addresses).
    Family {
        from: &'static str,
        to: &'static str,
    },
    // ---- in place -------------------------------------------------------------------------
    Name {
        from: String,
        to: String,
    },
    Priority {
        from: u8,
        to: u8,
    },
    AdvertInterval {
        from: Centiseconds,
        to: Centiseconds,
    },
    Preempt {
        from: bool,
        to: bool,
    },
    PreemptDelay {
        from: Duration,
        to: Duration,
    },
    InitialState {
        from: InitialState,
        to: InitialState,
    },
    VirtualAddresses {
        added: Vec<VirtualAddress>,
        removed: Vec<VirtualAddress>,
    },
    Garp {
        from: GarpSettings,
        to: GarpSettings,
    },
    TrackInterfaces {
        added: Vec<String>,
        removed: Vec<String>,
    },
    /// The VRRPv2 password: set, cleared or changed (never shown).
    Auth {
        from_set: bool,
        to_set: bool,
    },
    SourceAddress {
        from: IpAddr,
        to: IpAddr,
    },
    UnicastPeers {
        from: Vec<IpAddr>,
        to: Vec<IpAddr>,
    },
    /// Weighted (or weight-0) tracked objects added, removed or re-weighted.
    Trackers {
        added: Vec<Tracker>,
        removed: Vec<Tracker>,
    },
    /// Whether a master answers a lower-priority advert (strict mode: it does not).
    LowerPrioNoAdvert {
        from: bool,
        to: bool,
    },
}

impl Change {
    /// Whether the instance must be restarted (priority 0, then a new start) to take it.
    pub fn needs_restart(&self) -> bool {
        matches!(
            self,
            Change::Vrid { .. }
                | Change::Interface { .. }
                | Change::Version { .. }
                | Change::Family { .. }
        )
    }
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

fn initial(s: InitialState) -> &'static str {
    match s {
        InitialState::Master => "master",
        InitialState::Backup => "backup",
    }
}

fn list<T: fmt::Display>(items: &[T]) -> String {
    let v: Vec<String> = items.iter().map(T::to_string).collect();
    format!("[{}]", v.join(", "))
}

fn plus_minus<T: fmt::Display>(
    f: &mut fmt::Formatter<'_>,
    what: &str,
    added: &[T],
    removed: &[T],
) -> fmt::Result {
    f.write_str(what)?;
    for a in added {
        write!(f, " +{a}")?;
    }
    for r in removed {
        write!(f, " -{r}")?;
    }
    Ok(())
}

fn garp(g: &GarpSettings) -> String {
    let refresh = match g.refresh_interval_ms {
        Some(ms) if ms > 0 => format!("{ms} ms"),
        _ => "off".into(),
    };
    let mut s = format!(
        "count {} repeat {} ms refresh {refresh}",
        g.count, g.repeat_delay_ms
    );
    if g.interval_ms > 0 || g.na_interval_ms > 0 {
        s.push_str(&format!(
            " interval {} ms na interval {} ms",
            g.interval_ms, g.na_interval_ms
        ));
    }
    s
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Vrid { from, to } => write!(f, "vrid {from}→{to}"),
            Change::Interface { from, to } => write!(f, "interface {from}→{to}"),
            Change::Version { from, to } => write!(f, "version {from}→{to}"),
            Change::Family { from, to } => write!(f, "address family {from}→{to}"),
            Change::Name { from, to } => write!(f, "name {from}→{to}"),
            Change::Priority { from, to } => write!(f, "priority {from}→{to}"),
            Change::AdvertInterval { from, to } => write!(
                f,
                "advert interval {}→{} ms",
                u32::from(from.0) * 10,
                u32::from(to.0) * 10
            ),
            Change::Preempt { from, to } => write!(f, "preempt {}→{}", on_off(*from), on_off(*to)),
            Change::LowerPrioNoAdvert { from, to } => {
                write!(f, "lower_prio_no_advert {}→{}", on_off(*from), on_off(*to))
            }
            Change::PreemptDelay { from, to } => write!(
                f,
                "preempt delay {}→{} ms",
                from.as_millis(),
                to.as_millis()
            ),
            Change::InitialState { from, to } => {
                write!(f, "initial state {}→{}", initial(*from), initial(*to))
            }
            Change::VirtualAddresses { added, removed } => {
                plus_minus(f, "virtual addresses", added, removed)
            }
            Change::Garp { from, to } => write!(f, "garp {}→{}", garp(from), garp(to)),
            Change::TrackInterfaces { added, removed } => {
                plus_minus(f, "track interfaces", added, removed)
            }
            Change::Auth { from_set, to_set } => match (from_set, to_set) {
                (false, true) => f.write_str("authentication none→password"),
                (true, false) => f.write_str("authentication password→none"),
                _ => f.write_str("authentication password changed"),
            },
            Change::SourceAddress { from, to } => write!(f, "source address {from}→{to}"),
            Change::UnicastPeers { from, to } => {
                write!(f, "unicast peers {}→{}", list(from), list(to))
            }
            Change::Trackers { added, removed } => plus_minus(f, "tracked", added, removed),
        }
    }
}

fn family(a: &IpAddr) -> &'static str {
    match a {
        IpAddr::V4(_) => "IPv4",
        IpAddr::V6(_) => "IPv6",
    }
}

/// `a` without the items of `b`, in `a`'s order.
fn minus<T: PartialEq + Clone>(a: &[T], b: &[T]) -> Vec<T> {
    a.iter().filter(|x| !b.contains(x)).cloned().collect()
}

impl InstanceConfig {
    /// What differs from `self` to `new`: the changes that need a restart first, then the ones
    /// a running instance takes in place. Empty when they are equal.
    pub fn changes(&self, new: &InstanceConfig) -> Vec<Change> {
        let mut c = Vec::new();
        let (o, n) = (self, new);
        if o.vrid != n.vrid {
            c.push(Change::Vrid {
                from: o.vrid.get(),
                to: n.vrid.get(),
            });
        }
        if o.interface != n.interface {
            c.push(Change::Interface {
                from: o.interface.clone(),
                to: n.interface.clone(),
            });
        }
        if o.version != n.version {
            c.push(Change::Version {
                from: o.version.number(),
                to: n.version.number(),
            });
        }
        let (fo, fn_) = (family(&o.primary_address), family(&n.primary_address));
        if fo != fn_ {
            c.push(Change::Family { from: fo, to: fn_ });
        }
        if o.name != n.name {
            c.push(Change::Name {
                from: o.name.clone(),
                to: n.name.clone(),
            });
        }
        if o.priority != n.priority {
            c.push(Change::Priority {
                from: o.priority.get(),
                to: n.priority.get(),
            });
        }
        if o.advert_interval != n.advert_interval {
            c.push(Change::AdvertInterval {
                from: o.advert_interval,
                to: n.advert_interval,
            });
        }
        if o.preempt != n.preempt {
            c.push(Change::Preempt {
                from: o.preempt,
                to: n.preempt,
            });
        }
        if o.lower_prio_no_advert != n.lower_prio_no_advert {
            c.push(Change::LowerPrioNoAdvert {
                from: o.lower_prio_no_advert,
                to: n.lower_prio_no_advert,
            });
        }
        if o.preempt_delay != n.preempt_delay {
            c.push(Change::PreemptDelay {
                from: o.preempt_delay,
                to: n.preempt_delay,
            });
        }
        if o.initial_state != n.initial_state {
            c.push(Change::InitialState {
                from: o.initial_state,
                to: n.initial_state,
            });
        }
        let added = minus(&n.virtual_addresses, &o.virtual_addresses);
        let removed = minus(&o.virtual_addresses, &n.virtual_addresses);
        if !added.is_empty() || !removed.is_empty() {
            c.push(Change::VirtualAddresses { added, removed });
        }
        if o.garp != n.garp {
            c.push(Change::Garp {
                from: o.garp.clone(),
                to: n.garp.clone(),
            });
        }
        let added = minus(&n.track_interfaces, &o.track_interfaces);
        let removed = minus(&o.track_interfaces, &n.track_interfaces);
        if !added.is_empty() || !removed.is_empty() {
            c.push(Change::TrackInterfaces { added, removed });
        }
        if o.auth != n.auth {
            c.push(Change::Auth {
                from_set: o.auth.is_some(),
                to_set: n.auth.is_some(),
            });
        }
        if o.primary_address != n.primary_address && fo == fn_ {
            c.push(Change::SourceAddress {
                from: o.primary_address,
                to: n.primary_address,
            });
        }
        let added = minus(&n.trackers, &o.trackers);
        let removed = minus(&o.trackers, &n.trackers);
        if !added.is_empty() || !removed.is_empty() {
            c.push(Change::Trackers { added, removed });
        }
        if o.unicast_peers != n.unicast_peers {
            c.push(Change::UnicastPeers {
                from: o.unicast_peers.clone(),
                to: n.unicast_peers.clone(),
            });
        }
        c
    }
}
