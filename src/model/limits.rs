//! The limits of single fields, in one place: validation checks them and the OpenAPI spec states
//! them (see `api::schema`), so the two cannot drift apart. Lengths of text are in bytes of
//! UTF-8 (the spec's `maxLength` counts characters: it states the same bound for ASCII text, and
//! a looser one otherwise, which a 422 with rule `max_bytes` then refuses).

/// Largest TCP/UDP/SCTP port.
pub const PORT_MAX: u16 = u16::MAX;
/// A virtual server's `name`.
pub const VS_NAME_MAX_BYTES: usize = 128;
/// A VRRP group's `name`.
pub const GROUP_NAME_MAX_BYTES: usize = 64;
/// A VRRP node entry's `node` (the director's node name).
pub const NODE_NAME_MAX_BYTES: usize = 64;
/// A Linux interface name: IFNAMSIZ - 1.
pub const IFNAME_MAX_BYTES: usize = 15;
/// A misc check's `user`.
pub const USER_MAX_BYTES: usize = 32;
/// An http check's `virtualhost` (a DNS name).
pub const VIRTUALHOST_MAX_BYTES: usize = 255;
/// `quorum_up` / `quorum_down`.
pub const COMMAND_MAX_BYTES: usize = 4096;
/// VRRPv2 simple password (RFC 2338 5.3.8: 8 octets).
pub const AUTH_PASS_MAX_BYTES: usize = 8;

/// `delay_loop_ms`.
pub const DELAY_LOOP_MIN_MS: u32 = 10;
/// `persistence_timeout_secs`.
pub const PERSISTENCE_TIMEOUT_MIN_SECS: u32 = 1;
/// A health check's `retry`.
pub const RETRY_MAX: u32 = 100;
/// An http check's `urls`.
pub const URLS_MAX: usize = 32;
/// HTTP statuses (`expected_status`, `status_codes`).
pub const HTTP_STATUS_MIN: u16 = 100;
pub const HTTP_STATUS_MAX: u16 = 599;
/// `digest`: an MD5 in hex.
pub const DIGEST_HEX_LEN: usize = 32;

/// VRRPv2 advertisement interval: whole seconds, 1-255 s (RFC 3768 5.3.7).
pub const V2_ADVERT_MIN_MS: u32 = 1_000;
pub const V2_ADVERT_MAX_MS: u32 = 255_000;
pub const V2_ADVERT_STEP_MS: u32 = 1_000;
/// VRRPv3 advertisement interval: centiseconds, 1-4095 (RFC 5798 5.2.7).
pub const V3_ADVERT_MIN_MS: u32 = 10;
pub const V3_ADVERT_MAX_MS: u32 = 40_950;
pub const V3_ADVERT_STEP_MS: u32 = 10;
/// A group's `virtual_addresses` (the advert's count field is one byte).
pub const VIRTUAL_ADDRESSES_MAX: usize = 255;
/// `preempt_delay_ms`.
pub const PREEMPT_DELAY_MAX_MS: u32 = 1_000_000;
/// `garp.count`.
pub const GARP_COUNT_MAX: u32 = 100;
/// `garp.refresh_interval_ms` when not 0 (off).
pub const GARP_REFRESH_MIN_MS: u32 = 100;
/// The priority of the address owner (RFC 5798 5.2.4); others use 1-254.
pub const PRIORITY_OWNER: u8 = 255;
/// A tracked object's weight (keepalived: -253..=253).
pub const TRACK_WEIGHT_MAX: i32 = 253;
/// Tracked objects of each kind per VRRP group.
pub const TRACKED_MAX: usize = 64;
/// A track script's name.
pub const SCRIPT_NAME_MAX_BYTES: usize = 64;
/// A track script's interval and timeout, and a notify command's timeout.
pub const SCRIPT_INTERVAL_MIN_MS: u32 = 100;
pub const SCRIPT_INTERVAL_MAX_MS: u32 = 3_600_000;
pub const SCRIPT_TIMEOUT_MIN_MS: u32 = 10;
/// A track script's rise and fall.
pub const SCRIPT_RISE_FALL_MAX: u32 = 1_000;

/// `connection_sync.maxlen`: a UDP payload (the kernel clamps it further to what the
/// interface and the sync protocol allow).
pub const SYNC_MAXLEN_MIN: u16 = 1;
pub const SYNC_MAXLEN_MAX: u16 = 65_507;
/// `connection_sync.failback_hold_ms`; default 3 s, the kernel's IPVS_SYNC_FLUSH_TIME (2 s)
/// plus a second.
pub const SYNC_FAILBACK_HOLD_DEFAULT_MS: u32 = 3_000;
pub const SYNC_FAILBACK_HOLD_MAX_MS: u32 = 600_000;

/// `garp.interval_ms` and `garp.na_interval_ms` (keepalived allows up to 1000 s; a gap of a
/// minute between two gratuitous ARPs of one burst is already no burst).
pub const GARP_INTERVAL_MAX_MS: u32 = 60_000;
/// Sync groups in `vrrp_settings.sync_groups`.
pub const SYNC_GROUPS_MAX: usize = 255;
