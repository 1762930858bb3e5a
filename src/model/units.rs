//! Units as types: the model never passes a bare integer where a range or a unit matters.
//!
//! Each bounded newtype checks its range while it is deserialized, so a bad value is reported with
//! the JSON path of the field that carried it (see `api::json`), not as a generic overflow.

use std::fmt;
use std::time::Duration;

use serde::{de, Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

macro_rules! bounded {
    ($(#[$doc:meta])* $name:ident, $inner:ty, $min:expr, $max:expr, $what:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
        #[serde(transparent)]
        pub struct $name($inner);

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::Integer)
                    .minimum(Some($min as f64))
                    .maximum(Some($max as f64))
                    .into()
            }
        }

        impl ToSchema for $name {}

        impl $name {
            pub const MIN: $inner = $min;
            pub const MAX: $inner = $max;

            /// Checks the range; the error says what the value is and which range it needs.
            pub fn new(v: u64) -> Result<Self, String> {
                if v < $min as u64 || v > $max as u64 {
                    return Err(format!(
                        "{} must be in {}..={}, got {}",
                        $what, $min, $max, v
                    ));
                }
                // The range check above makes the narrowing exact.
                Ok(Self(v as $inner))
            }

            pub fn get(self) -> $inner {
                self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = i64::deserialize(d)?;
                if v < 0 {
                    return Err(de::Error::custom(format!(
                        "{} must be in {}..={}, got {}",
                        $what, $min, $max, v
                    )));
                }
                Self::new(v as u64).map_err(de::Error::custom)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

bounded!(
    /// VRRP virtual router identifier (RFC 5798 section 5.2.3: 1-255).
    Vrid, u8, 1, 255, "vrid"
);
bounded!(
    /// VRRP priority (RFC 5798 section 5.2.4). 0 is reserved for "stopping" adverts and never
    /// configured; 255 is reserved for the address owner (checked in validation).
    Priority, u8, 1, 255, "priority"
);
bounded!(
    /// IPVS destination weight. The kernel takes an i32; keepalived and ipvsadm allow 0..=65535.
    Weight, u32, 0, 65535, "weight"
);

bounded!(
    /// One IPVS connection timeout in seconds (`ipvsadm --set`). The kernel refuses more than
    /// INT_MAX / HZ (ip_vs_set_timeout); 2,147,483 s (24.8 days) is what every HZ up to 1000
    /// accepts. 0 means "leave this timeout as the kernel has it", as for ipvsadm.
    TimeoutSecs, u32, 0, 2_147_483, "timeout (seconds)"
);

impl Default for TimeoutSecs {
    /// 0: not managed (the kernel's value stays).
    fn default() -> Self {
        TimeoutSecs(Self::MIN)
    }
}

impl Default for Weight {
    fn default() -> Self {
        Weight(1)
    }
}

/// VRRP advertisement interval in centiseconds, the unit of the VRRPv3 wire field
/// (RFC 5798 section 5.2.7: 12 bits, 1..=4095). VRRPv2 carries whole seconds (RFC 3768 5.3.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Centiseconds(pub u16);

impl Centiseconds {
    pub fn from_millis(ms: u32) -> Option<Self> {
        if !ms.is_multiple_of(10) {
            return None;
        }
        u16::try_from(ms / 10).ok().map(Centiseconds)
    }

    pub fn as_duration(self) -> Duration {
        Duration::from_millis(u64::from(self.0) * 10)
    }
}

/// A number of milliseconds as the API carries it, with the conversion in one place.
pub fn millis(ms: u32) -> Duration {
    Duration::from_millis(u64::from(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_rejects_out_of_range_with_named_message() {
        let err = serde_json::from_str::<Vrid>("0").unwrap_err().to_string();
        assert!(err.contains("vrid must be in 1..=255, got 0"), "{err}");
        let err = serde_json::from_str::<Weight>("65536")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("weight must be in 0..=65535, got 65536"),
            "{err}"
        );
        let err = serde_json::from_str::<Priority>("-1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("got -1"), "{err}");
        assert_eq!(serde_json::from_str::<Vrid>("255").unwrap().get(), 255);
        assert_eq!(
            serde_json::to_string(&Weight::new(7).unwrap()).unwrap(),
            "7"
        );
    }

    #[test]
    fn centiseconds_from_millis() {
        assert_eq!(Centiseconds::from_millis(1000), Some(Centiseconds(100)));
        assert_eq!(Centiseconds::from_millis(15), None);
        assert_eq!(Centiseconds(10).as_duration(), Duration::from_millis(100));
    }
}
