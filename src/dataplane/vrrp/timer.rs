//! VRRP timers and the interval arithmetic of RFC 3768 section 6.1 and RFC 5798 section 6.1.
//!
//! All arithmetic is integer nanoseconds. VRRPv2 values are exact (1 s / 256 = 3 906 250 ns).
//! VRRPv3's Skew_Time is `(256 - Priority) * Master_Adver_Interval / 256` with the interval in
//! centiseconds (10 000 000 ns = 2^7 * 78 125), so the exact value is a multiple of 0.5 ns: it
//! is exact whenever `(256 - Priority) * Master_Adver_Interval` is even and is otherwise
//! rounded down by half a nanosecond. (keepalived computes the same formula in whole
//! microseconds, rounding down.)

use std::time::Duration;

use super::packet::Version;
use crate::model::Centiseconds;

/// The timers an [`super::instance::Instance`] asks its driver to run. Each kind has at most
/// one deadline at a time; starting it again replaces the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// Adver_Timer (RFC 5798 section 6.2): the master's next advertisement.
    Adver,
    /// Master_Down_Timer (RFC 5798 section 6.2): a backup's wait for the master.
    MasterDown,
    /// keepalived's preempt_delay: how long a backup keeps accepting a lower-priority master.
    PreemptDelay,
    /// The second gratuitous ARP / unsolicited NA burst after becoming master.
    GarpRepeat,
    /// The periodic gratuitous ARP refresh while master.
    GarpRefresh,
    /// A stopped master's bound on holding its addresses while it waits to hear the new
    /// master (see `Input::Shutdown`).
    Release,
}

impl Timer {
    pub const ALL: [Timer; 6] = [
        Timer::Adver,
        Timer::MasterDown,
        Timer::PreemptDelay,
        Timer::GarpRepeat,
        Timer::GarpRefresh,
        Timer::Release,
    ];

    pub(crate) fn index(self) -> usize {
        match self {
            Timer::Adver => 0,
            Timer::MasterDown => 1,
            Timer::PreemptDelay => 2,
            Timer::GarpRepeat => 3,
            Timer::GarpRefresh => 4,
            Timer::Release => 5,
        }
    }
}

/// The protocol version an instance runs, without the per-packet fields of [`Version`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProtocolVersion {
    V2,
    V3,
}

impl ProtocolVersion {
    pub fn number(self) -> u8 {
        match self {
            ProtocolVersion::V2 => 2,
            ProtocolVersion::V3 => 3,
        }
    }

    pub fn of(v: &Version) -> Self {
        match v {
            Version::V2 { .. } => ProtocolVersion::V2,
            Version::V3 { .. } => ProtocolVersion::V3,
        }
    }
}

const NANOS_PER_CENTISECOND: u64 = 10_000_000;
const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Skew_Time computed for `256 - priority_term` = `weight` (1..=256).
fn skew_for_weight(
    version: ProtocolVersion,
    weight: u64,
    master_adver_int: Centiseconds,
) -> Duration {
    let nanos = match version {
        // RFC 3768 section 6.1: Skew_Time = (256 - Priority) / 256 seconds.
        ProtocolVersion::V2 => weight * NANOS_PER_SECOND / 256,
        // RFC 5798 section 6.1: Skew_Time = ((256 - Priority) * Master_Adver_Interval) / 256.
        ProtocolVersion::V3 => weight * u64::from(master_adver_int.0) * NANOS_PER_CENTISECOND / 256,
    };
    Duration::from_nanos(nanos)
}

/// Skew_Time (RFC 3768 section 6.1 for v2, RFC 5798 section 6.1 for v3). `master_adver_int`
/// only matters for v3.
pub fn skew_time(
    version: ProtocolVersion,
    priority: u8,
    master_adver_int: Centiseconds,
) -> Duration {
    skew_for_weight(version, 256 - u64::from(priority), master_adver_int)
}

/// The smallest skew (weight 1, i.e. priority 255): keepalived's `VRRP_TIMER_SKEW_MIN`, used
/// for the startup wait of an instance configured `state MASTER`.
pub fn skew_min(version: ProtocolVersion, master_adver_int: Centiseconds) -> Duration {
    skew_for_weight(version, 1, master_adver_int)
}

/// Master_Down_Interval = 3 * interval + Skew_Time (RFC 3768 section 6.1 with the configured
/// Advertisement_Interval; RFC 5798 section 6.1 with the learned Master_Adver_Interval).
pub fn master_down_interval(
    version: ProtocolVersion,
    priority: u8,
    master_adver_int: Centiseconds,
) -> Duration {
    3 * master_adver_int.as_duration() + skew_time(version, priority, master_adver_int)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v3_100ms_priority_90() {
        // 300 ms + (256 - 90) * 100 ms / 256 = 300 ms + 64.84375 ms.
        let cs = Centiseconds(10);
        assert_eq!(
            skew_time(ProtocolVersion::V3, 90, cs),
            Duration::from_nanos(64_843_750)
        );
        assert_eq!(
            master_down_interval(ProtocolVersion::V3, 90, cs),
            Duration::from_nanos(364_843_750)
        );
    }

    #[test]
    fn v2_skew_is_exact_256ths_of_a_second() {
        let cs = Centiseconds(100);
        assert_eq!(
            skew_time(ProtocolVersion::V2, 100, cs),
            Duration::from_nanos(609_375_000)
        );
        assert_eq!(
            master_down_interval(ProtocolVersion::V2, 100, cs),
            Duration::from_nanos(3_609_375_000)
        );
        // v2 skew does not depend on the interval.
        assert_eq!(
            skew_time(ProtocolVersion::V2, 100, Centiseconds(500)),
            Duration::from_nanos(609_375_000)
        );
    }

    #[test]
    fn v3_odd_product_rounds_down_half_a_nanosecond() {
        // 1 cs, priority 1: 255 * 10 ms / 256 = 9 960 937.5 ns.
        assert_eq!(
            skew_time(ProtocolVersion::V3, 1, Centiseconds(1)),
            Duration::from_nanos(9_960_937)
        );
        // Largest values: no overflow (4095 cs, priority 1 -> weight 255).
        assert_eq!(
            skew_time(ProtocolVersion::V3, 1, Centiseconds(4095)),
            Duration::from_nanos(255 * 4095 * 10_000_000 / 256)
        );
    }

    #[test]
    fn skew_min_is_one_256th() {
        assert_eq!(
            skew_min(ProtocolVersion::V2, Centiseconds(100)),
            Duration::from_nanos(3_906_250)
        );
        assert_eq!(
            skew_min(ProtocolVersion::V3, Centiseconds(100)),
            Duration::from_nanos(3_906_250)
        );
        assert_eq!(
            skew_min(ProtocolVersion::V3, Centiseconds(1)),
            Duration::from_nanos(39_062)
        );
    }
}
