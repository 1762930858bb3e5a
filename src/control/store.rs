//! The SQLite store: the only code that reads or writes the database file.
//!
//! The file is opened in WAL mode with `synchronous=FULL`, so a change is on disk before its write
//! call returns: an acknowledged write survives a crash or power loss. Every commit applies the
//! diff of one revision in one transaction and bumps `meta.revision` in the same transaction, with
//! a compare-and-set on the previous revision so a second writer can never interleave.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use crate::control::replication::RevisionId;
use crate::model::{
    Change, ChangeOp, Config, ConnectionSync, EntityKind, GarpSettings, HealthCheck, Id,
    IpvsTimeouts, Priority, RealServer, Scope, Snapshot, SorryServer, TimeoutSecs, VirtualAddress,
    VirtualServer, Vrid, VrrpGroup, VrrpNode, VrrpSettings, Weight,
};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("the database holds an unreadable value in {table} row {id}: {message}")]
    Corrupt {
        table: &'static str,
        id: i64,
        message: String,
    },
    #[error("the stored revision moved from {expected} to {found} under us (another writer?)")]
    RevisionMoved { expected: u64, found: u64 },
    #[error("a change refers to an entity that is not in the new configuration: {0}")]
    Inconsistent(String),
    #[error("{path} is in use by another lbd{}; one database has one owner", holder.map(|p| format!(" (pid {p})")).unwrap_or_default())]
    InUse { path: String, holder: Option<u32> },
    #[error("cannot take the lock {path}: {source}")]
    Lock {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} cannot be written (a read-only file, directory or filesystem?): {message}")]
    NotWritable { path: String, message: String },
    #[error("{path} is damaged or is not an lbd database, and was left as it is: {message}")]
    Damaged { path: String, message: String },
}

type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
    /// The event history's own connection (see [`Store::append_events`]).
    events: SqlitePool,
    /// The owner's lock on the database (see [`Store::open`]); `close` releases it. A mutex,
    /// only so that `close` on one clone can drop the handle every clone shares.
    lock: std::sync::Arc<std::sync::Mutex<Option<std::fs::File>>>,
}

/// `<db>.lock`: the file whose lock says who owns the database, and which holds the owner's pid.
fn lock_path(db: &Path) -> std::path::PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".lock");
    std::path::PathBuf::from(p)
}

/// Takes the owner's lock, or says who has it. `flock` is released by the kernel when the
/// process dies, so a SIGKILLed lbd never leaves a stale lock behind; the pid in the file is
/// only for the message.
fn take_lock(db: &Path) -> Result<std::fs::File> {
    use std::io::{Read, Seek, Write};
    let path = lock_path(db);
    let lock_err = |source| StoreError::Lock {
        path: path.display().to_string(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(lock_err)?;
    match f.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut text = String::new();
            let _ = f.read_to_string(&mut text);
            return Err(StoreError::InUse {
                path: db.display().to_string(),
                holder: text.trim().parse().ok(),
            });
        }
        Err(std::fs::TryLockError::Error(e)) => return Err(lock_err(e)),
    }
    f.set_len(0).map_err(lock_err)?;
    f.rewind().map_err(lock_err)?;
    writeln!(f, "{}", std::process::id()).map_err(lock_err)?;
    Ok(f)
}

/// SQLite's primary result code of a database error (the low byte of an extended code).
fn sqlite_code(e: &sqlx::Error) -> Option<i32> {
    match e {
        sqlx::Error::Database(d) => d.code()?.parse::<i32>().ok().map(|c| c & 0xff),
        _ => None,
    }
}

/// Whether a database error is SQLite saying it cannot write: SQLITE_READONLY (8), or
/// SQLITE_CANTOPEN (14) for a directory that does not let SQLite create the journal.
fn is_read_only(e: &sqlx::Error) -> bool {
    matches!(sqlite_code(e), Some(8 | 14))
}

/// Whether a database error is SQLite saying the file is damaged (SQLITE_CORRUPT, 11) or is
/// not a database (SQLITE_NOTADB, 26).
fn is_damaged(e: &sqlx::Error) -> bool {
    matches!(sqlite_code(e), Some(11 | 26))
}

/// What `load` returns: the last committed snapshot, the next free id, and the identities of
/// the newest revisions (peer sync, oldest first).
pub struct Loaded {
    pub snapshot: Snapshot,
    pub next_id: Id,
    pub lineage: Vec<RevisionId>,
}

/// What a commit records besides the configuration (peer sync).
#[derive(Debug, Default)]
pub struct CommitRecord<'a> {
    /// Revision identities to record (the new tip, or a peer's revisions up to it). Rows above
    /// the new tip are dropped: they belonged to a split edit that lost.
    pub lineage: &'a [RevisionId],
    /// A split edit's losing configuration, kept in the same transaction.
    pub conflict: Option<&'a NewConflict>,
}

/// A conflict record to keep (see `control::replication`).
#[derive(Debug, Clone)]
pub struct NewConflict {
    pub revision: u64,
    pub origin: String,
    pub winner_revision: u64,
    pub winner_origin: String,
    /// The losing configuration as JSON (ids and VRRP passwords kept).
    pub config: String,
}

/// A kept conflict record.
#[derive(Debug, Clone)]
pub struct StoredConflict {
    pub id: i64,
    pub time_unix_ms: u64,
    pub revision: u64,
    pub origin: String,
    pub winner_revision: u64,
    pub winner_origin: String,
    pub config: String,
}

/// How many revision identities the store keeps (the in-memory lineage is shorter).
const REVISIONS_KEPT: i64 = 10_000;

/// A connection to the database file with the store's settings, schema untouched. The store
/// opens its own with it; the IPVS benchmark times a bare write with it (its SQLite floor).
pub async fn connect(path: &Path) -> Result<SqlitePool> {
    connect_with(path, SqliteSynchronous::Full).await
}

async fn connect_with(path: &Path, synchronous: SqliteSynchronous) -> Result<SqlitePool> {
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5));
    // One connection: the service serializes writes, and reads are served from memory.
    // No liveness ping before each use: the connection is to a local file, and a ping is
    // one more round trip to SQLite's worker thread on every write.
    Ok(SqlitePoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect_with(opts)
        .await?)
}

impl Store {
    /// Opens (creating if missing) the database file and brings its schema up to date.
    ///
    /// Before anything else it takes the owner's lock (`<db>.lock`): a second lbd on the same
    /// file stops here, with the first one's pid. Then it checks, so that no problem waits for
    /// the first write to show itself: that SQLite can read the file (`PRAGMA quick_check`: a
    /// damaged file is reported and left untouched), and that it can write it. A start that
    /// fails removes the files it created, and only those.
    pub async fn open(path: &Path) -> Result<Store> {
        let lock_file = lock_path(path);
        let lock_existed = lock_file.exists();
        let lock = take_lock(path)?;
        let existed = path.exists();
        let opened = match Self::open_locked(path).await {
            // The event history's writes need no fsync of their own (synchronous=NORMAL, WAL:
            // they are on disk by the next configuration commit or checkpoint); so they hold
            // SQLite's write lock for microseconds, not for an fsync a commit would wait behind.
            // Events are news: losing the last few to a power cut is acceptable, a slower
            // commit is not.
            Ok(pool) => match connect_with(path, SqliteSynchronous::Normal).await {
                Ok(events) => Ok((pool, events)),
                Err(e) => {
                    pool.close().await;
                    Err(e)
                }
            },
            Err(e) => Err(e),
        };
        match opened {
            Ok((pool, events)) => Ok(Store {
                pool,
                events,
                lock: std::sync::Arc::new(std::sync::Mutex::new(Some(lock))),
            }),
            Err(e) => {
                if !existed {
                    for suffix in ["", "-wal", "-shm", "-journal"] {
                        let mut p = path.as_os_str().to_owned();
                        p.push(suffix);
                        let _ = std::fs::remove_file(std::path::PathBuf::from(p));
                    }
                }
                if !lock_existed {
                    let _ = std::fs::remove_file(&lock_file);
                }
                drop(lock);
                Err(e)
            }
        }
    }

    async fn open_locked(path: &Path) -> Result<SqlitePool> {
        let shown = path.display().to_string();
        let classify = |e: sqlx::Error| {
            if is_read_only(&e) {
                StoreError::NotWritable {
                    path: shown.clone(),
                    message: e.to_string(),
                }
            } else if is_damaged(&e) {
                StoreError::Damaged {
                    path: shown.clone(),
                    message: e.to_string(),
                }
            } else {
                StoreError::Db(e)
            }
        };
        let pool = connect(path).await.map_err(|e| match e {
            StoreError::Db(e) => classify(e),
            e => e,
        })?;
        let checked = async {
            let rows: Vec<String> = sqlx::query_scalar("PRAGMA quick_check")
                .fetch_all(&pool)
                .await
                .map_err(classify)?;
            if rows.first().map(String::as_str) != Some("ok") {
                return Err(StoreError::Damaged {
                    path: shown.clone(),
                    message: rows.join("; "),
                });
            }
            sqlx::migrate!("./migrations")
                .run(&pool)
                .await
                .map_err(|e| match e {
                    sqlx::migrate::MigrateError::Execute(e) => classify(e),
                    e => StoreError::Migrate(e),
                })?;
            // A write that changes nothing, rolled back: SQLite refuses it on a file, directory
            // or filesystem it cannot write, which would otherwise show only at the first commit.
            let mut tx = pool.begin().await.map_err(classify)?;
            sqlx::query("UPDATE meta SET next_id = next_id WHERE id = 1")
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
            tx.rollback().await.map_err(classify)?;
            Ok(())
        }
        .await;
        match checked {
            Ok(()) => Ok(pool),
            Err(e) => {
                pool.close().await;
                Err(e)
            }
        }
    }

    /// Closes the database and gives up the owner's lock.
    pub async fn close(&self) {
        self.events.close().await;
        self.pool.close().await;
        if let Ok(mut l) = self.lock.lock() {
            l.take();
        }
    }

    /// Reads the whole configuration.
    pub async fn load(&self) -> Result<Loaded> {
        let mut conn = self.pool.acquire().await?;
        let meta = sqlx::query("SELECT revision, next_id FROM meta WHERE id = 1")
            .fetch_one(&mut *conn)
            .await?;
        let revision: i64 = meta.try_get("revision")?;
        let next_id: i64 = meta.try_get("next_id")?;

        let mut virtual_servers = Vec::new();
        let mut index: HashMap<Id, usize> = HashMap::new();
        for row in sqlx::query("SELECT * FROM virtual_servers ORDER BY id")
            .fetch_all(&mut *conn)
            .await?
        {
            let vs = vs_from_row(&row)?;
            index.insert(vs.id, virtual_servers.len());
            virtual_servers.push(vs);
        }
        for row in sqlx::query(
            "SELECT r.*, h.real_server_id AS hc_id, h.type AS hc_type, h.connect_port, \
             h.connect_timeout_ms, h.retry, h.delay_before_retry_ms, h.rise, h.fall, h.path, \
             h.expected_status, h.body_contains, h.urls, h.misc_path, h.misc_timeout_ms, \
             h.misc_dynamic, h.run_as_user, h.tls_ca_file, h.tls_server_name, \
             h.virtualhost \
             FROM real_servers r LEFT JOIN health_checks h ON h.real_server_id = r.id \
             ORDER BY r.id",
        )
        .fetch_all(&mut *conn)
        .await?
        {
            let vs_id: i64 = row.try_get("virtual_server_id")?;
            let rs = rs_from_row(&row)?;
            let i = *index.get(&vs_id).ok_or_else(|| StoreError::Corrupt {
                table: "real_servers",
                id: rs.id,
                message: format!("virtual server {vs_id} does not exist"),
            })?;
            virtual_servers[i].real_servers.push(rs);
        }

        let mut vrrp_groups = Vec::new();
        let mut gindex: HashMap<Id, usize> = HashMap::new();
        for row in sqlx::query("SELECT * FROM vrrp_groups ORDER BY id")
            .fetch_all(&mut *conn)
            .await?
        {
            let g = group_from_row(&row)?;
            gindex.insert(g.id, vrrp_groups.len());
            vrrp_groups.push(g);
        }
        for row in sqlx::query("SELECT * FROM vrrp_virtual_addresses ORDER BY group_id, position")
            .fetch_all(&mut *conn)
            .await?
        {
            let gid: i64 = row.try_get("group_id")?;
            let corrupt = |message: String| StoreError::Corrupt {
                table: "vrrp_virtual_addresses",
                id: gid,
                message,
            };
            let address: String = row.try_get("address")?;
            let prefix_len: i64 = row.try_get("prefix_len")?;
            let mut va =
                VirtualAddress::from_str(&format!("{address}/{prefix_len}")).map_err(corrupt)?;
            va.dev = row.try_get("dev")?;
            va.label = row.try_get("label")?;
            let scope: Option<i64> = row.try_get("scope")?;
            va.scope = scope
                .map(|s| {
                    u8::try_from(s)
                        .map(Scope)
                        .map_err(|_| corrupt(format!("scope {s}")))
                })
                .transpose()?;
            let brd: Option<String> = row.try_get("broadcast")?;
            va.broadcast = brd
                .map(|b| b.parse().map_err(|_| corrupt(format!("broadcast {b}"))))
                .transpose()?;
            va.no_track = row.try_get::<i64, _>("no_track")? != 0;
            let i = *gindex
                .get(&gid)
                .ok_or_else(|| corrupt("group does not exist".into()))?;
            vrrp_groups[i].virtual_addresses.push(va);
        }
        for row in sqlx::query("SELECT * FROM vrrp_nodes ORDER BY group_id, position")
            .fetch_all(&mut *conn)
            .await?
        {
            let gid: i64 = row.try_get("group_id")?;
            let node = node_from_row(gid, &row)?;
            let i = *gindex.get(&gid).ok_or_else(|| StoreError::Corrupt {
                table: "vrrp_nodes",
                id: gid,
                message: "group does not exist".into(),
            })?;
            vrrp_groups[i].nodes.push(node);
        }

        let ipvs_timeouts = match sqlx::query(
            "SELECT tcp_secs, tcp_fin_secs, udp_secs FROM ipvs_timeouts WHERE id = 1",
        )
        .fetch_optional(&mut *conn)
        .await?
        {
            None => None,
            Some(row) => {
                let secs = |col: &str| -> Result<TimeoutSecs> {
                    let v: i64 = row.try_get(col)?;
                    u64::try_from(v)
                        .map_err(|_| v.to_string())
                        .and_then(TimeoutSecs::new)
                        .map_err(|message| StoreError::Corrupt {
                            table: "ipvs_timeouts",
                            id: 1,
                            message: format!("{col}: {message}"),
                        })
                };
                Some(IpvsTimeouts {
                    tcp_secs: secs("tcp_secs")?,
                    tcp_fin_secs: secs("tcp_fin_secs")?,
                    udp_secs: secs("udp_secs")?,
                })
            }
        };

        let connection_sync = match sqlx::query(
            "SELECT interface, sync_id, maxlen, port, ttl, mcast_group, vrrp_group, \
             failback_hold_ms FROM connection_sync WHERE id = 1",
        )
        .fetch_optional(&mut *conn)
        .await?
        {
            None => None,
            Some(row) => Some(connection_sync_row(&row)?),
        };

        let vrrp_settings =
            match sqlx::query("SELECT strict, sync_groups FROM vrrp_settings WHERE id = 1")
                .fetch_optional(&mut *conn)
                .await?
            {
                None => VrrpSettings::default(),
                Some(row) => {
                    let groups: String = row.try_get("sync_groups")?;
                    VrrpSettings {
                        strict: row.try_get("strict")?,
                        sync_groups: serde_json::from_str(&groups).map_err(|e| {
                            StoreError::Corrupt {
                                table: "vrrp_settings",
                                id: 1,
                                message: format!("sync_groups: {e}"),
                            }
                        })?,
                    }
                }
            };

        let mut lineage = Vec::new();
        for row in sqlx::query(
            "SELECT revision, origin FROM revisions WHERE revision <= ?1 \
             ORDER BY revision DESC LIMIT ?2",
        )
        .bind(revision)
        .bind(crate::control::replication::LINEAGE_LEN as i64)
        .fetch_all(&mut *conn)
        .await?
        {
            let r: i64 = row.try_get("revision")?;
            lineage.push(RevisionId {
                revision: u64::try_from(r).unwrap_or(0),
                origin: row.try_get("origin")?,
            });
        }
        lineage.reverse();

        Ok(Loaded {
            lineage,
            snapshot: Snapshot {
                revision: u64::try_from(revision).unwrap_or(0),
                config: Config {
                    virtual_servers: virtual_servers
                        .into_iter()
                        .map(std::sync::Arc::new)
                        .collect(),
                    vrrp_groups,
                    ipvs_timeouts,
                    connection_sync,
                    vrrp_settings,
                },
            },
            next_id,
        })
    }

    /// Commits one revision: `changes` (from `model::diff`) turn the stored `base_revision` into
    /// `new`. Either all of it is durable when this returns `Ok`, or none of it is.
    pub async fn commit(
        &self,
        base_revision: u64,
        new: &Snapshot,
        changes: &[Change],
        next_id: Id,
        record: &CommitRecord<'_>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        // The compare-and-set takes the write lock first, before any other statement.
        let moved = sqlx::query(
            "UPDATE meta SET revision = ?1, next_id = ?2 WHERE id = 1 AND revision = ?3",
        )
        .bind(new.revision as i64)
        .bind(next_id)
        .bind(base_revision as i64)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() != 1 {
            let found: i64 = sqlx::query_scalar("SELECT revision FROM meta WHERE id = 1")
                .fetch_one(&mut *tx)
                .await?;
            return Err(StoreError::RevisionMoved {
                expected: base_revision,
                found: u64::try_from(found).unwrap_or(0),
            });
        }
        let cfg = &new.config;
        // Real servers to insert, written after the loop in multi-row statements (a whole
        // table of 37,000 is a few dozen statements, not 37,000 round trips to SQLite's thread).
        let mut rss: Vec<(Id, &RealServer)> = Vec::new();
        for c in changes {
            let missing = || StoreError::Inconsistent(format!("{:?} {} ({})", c.kind, c.id, c.key));
            match (c.kind, c.op) {
                (EntityKind::VirtualServer, ChangeOp::Remove) => {
                    delete(&mut tx, "DELETE FROM virtual_servers WHERE id = ?1", c.id).await?
                }
                (EntityKind::VirtualServer, ChangeOp::Add) => {
                    let vs = cfg.virtual_server(c.id).ok_or_else(missing)?;
                    write_vs(&mut tx, vs, true).await?;
                    rss.extend(vs.real_servers.iter().map(|rs| (vs.id, rs)));
                }
                (EntityKind::VirtualServer, ChangeOp::Update) => {
                    let vs = cfg.virtual_server(c.id).ok_or_else(missing)?;
                    write_vs(&mut tx, vs, false).await?;
                }
                (EntityKind::RealServer, op) => {
                    // Real servers are small: an update is a delete and an insert with the same id.
                    delete(&mut tx, "DELETE FROM real_servers WHERE id = ?1", c.id).await?;
                    if op != ChangeOp::Remove {
                        let vs_id = c.parent_id.ok_or_else(missing)?;
                        let rs = cfg
                            .virtual_server(vs_id)
                            .and_then(|v| v.real_server(c.id))
                            .ok_or_else(missing)?;
                        rss.push((vs_id, rs));
                    }
                }
                (EntityKind::IpvsTimeouts, _) => {
                    sqlx::query("DELETE FROM ipvs_timeouts")
                        .execute(&mut *tx)
                        .await?;
                    if let Some(t) = &cfg.ipvs_timeouts {
                        sqlx::query(
                            "INSERT INTO ipvs_timeouts (id, tcp_secs, tcp_fin_secs, udp_secs) \
                             VALUES (1, ?1, ?2, ?3)",
                        )
                        .bind(i64::from(t.tcp_secs.get()))
                        .bind(i64::from(t.tcp_fin_secs.get()))
                        .bind(i64::from(t.udp_secs.get()))
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                (EntityKind::VrrpSettings, _) => {
                    sqlx::query("DELETE FROM vrrp_settings")
                        .execute(&mut *tx)
                        .await?;
                    let vs = &cfg.vrrp_settings;
                    if !vs.is_default() {
                        sqlx::query(
                            "INSERT INTO vrrp_settings (id, strict, sync_groups) \
                             VALUES (1, ?1, ?2)",
                        )
                        .bind(vs.strict)
                        .bind(
                            serde_json::to_string(&vs.sync_groups).unwrap_or_else(|_| "[]".into()),
                        )
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                (EntityKind::ConnectionSync, _) => {
                    sqlx::query("DELETE FROM connection_sync")
                        .execute(&mut *tx)
                        .await?;
                    if let Some(cs) = &cfg.connection_sync {
                        sqlx::query(
                            "INSERT INTO connection_sync (id, interface, sync_id, maxlen, port, \
                             ttl, mcast_group, vrrp_group, failback_hold_ms) \
                             VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                        )
                        .bind(&cs.interface)
                        .bind(i64::from(cs.sync_id))
                        .bind(cs.maxlen.map(i64::from))
                        .bind(cs.port.map(i64::from))
                        .bind(cs.ttl.map(i64::from))
                        .bind(cs.group.map(|g| g.to_string()))
                        .bind(&cs.vrrp_group)
                        .bind(i64::from(cs.failback_hold_ms))
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                (EntityKind::VrrpGroup, op) => {
                    delete(&mut tx, "DELETE FROM vrrp_groups WHERE id = ?1", c.id).await?;
                    if op != ChangeOp::Remove {
                        let g = cfg.vrrp_group(c.id).ok_or_else(missing)?;
                        insert_group(&mut tx, g).await?;
                    }
                }
            }
        }
        insert_rss(&mut tx, &rss).await?;
        let now = crate::control::events::now_unix_ms() as i64;
        sqlx::query("DELETE FROM revisions WHERE revision > ?1 OR revision <= ?1 - ?2")
            .bind(new.revision as i64)
            .bind(REVISIONS_KEPT)
            .execute(&mut *tx)
            .await?;
        for id in record.lineage {
            sqlx::query(
                "INSERT OR REPLACE INTO revisions (revision, origin, time_unix_ms) \
                 VALUES (?1, ?2, ?3)",
            )
            .bind(id.revision as i64)
            .bind(&id.origin)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        if let Some(c) = record.conflict {
            sqlx::query(
                "INSERT INTO conflicts (time_unix_ms, revision, origin, winner_revision, \
                 winner_origin, config) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .bind(now)
            .bind(c.revision as i64)
            .bind(&c.origin)
            .bind(c.winner_revision as i64)
            .bind(&c.winner_origin)
            .bind(&c.config)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The kept conflict records, oldest first.
    pub async fn conflicts(&self) -> Result<Vec<StoredConflict>> {
        let rows = sqlx::query("SELECT * FROM conflicts ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let u = |col: &str| -> Result<u64> {
                    let v: i64 = row.try_get(col)?;
                    Ok(u64::try_from(v).unwrap_or(0))
                };
                Ok(StoredConflict {
                    id: row.try_get("id")?,
                    time_unix_ms: u("time_unix_ms")?,
                    revision: u("revision")?,
                    origin: row.try_get("origin")?,
                    winner_revision: u("winner_revision")?,
                    winner_origin: row.try_get("winner_origin")?,
                    config: row.try_get("config")?,
                })
            })
            .collect()
    }

    /// Drops a conflict record; false if there was none with that id.
    pub async fn dismiss_conflict(&self, id: i64) -> Result<bool> {
        let r = sqlx::query("DELETE FROM conflicts WHERE id = ?1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() == 1)
    }
}

impl Store {
    /// The services the data plane owns (text tokens, see `ServiceKey::to_token`).
    pub async fn load_owned(&self) -> Result<Vec<String>> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT service FROM dataplane_owned ORDER BY service")
                .fetch_all(&self.pool)
                .await?;
        Ok(rows)
    }

    /// Replaces the owned set in one transaction.
    pub async fn save_owned(&self, services: &[String]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM dataplane_owned")
            .execute(&mut *tx)
            .await?;
        for chunk in services.chunks(INSERT_CHUNK) {
            let mut q = sqlx::QueryBuilder::<Sqlite>::new("INSERT INTO dataplane_owned (service) ");
            q.push_values(chunk, |mut b, s| {
                b.push_bind(s.clone());
            });
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// The stored event history: the newest events (oldest first) and the largest sequence number
/// ever stored (which an unreadable row still counts for).
pub struct StoredEvents {
    pub events: Vec<crate::control::events::Event>,
    pub last_seq: u64,
}

impl Store {
    /// The last `limit` events. A row that does not parse (written by a newer lbd, or damaged)
    /// is skipped with a warning: the history is news, not configuration.
    pub async fn load_events(&self, limit: usize) -> Result<StoredEvents> {
        let last: Option<i64> = sqlx::query_scalar("SELECT MAX(seq) FROM events")
            .fetch_one(&self.events)
            .await?;
        let rows: Vec<(i64, String)> =
            sqlx::query_as("SELECT seq, body FROM events ORDER BY seq DESC LIMIT ?1")
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&self.events)
                .await?;
        let mut events = Vec::with_capacity(rows.len());
        for (seq, body) in rows.into_iter().rev() {
            match serde_json::from_str::<crate::control::events::Event>(&body) {
                Ok(e) => events.push(e),
                Err(e) => tracing::warn!(seq, error = %e, "skipping an unreadable stored event"),
            }
        }
        Ok(StoredEvents {
            events,
            last_seq: last.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
        })
    }

    /// Appends events (in seq order) and drops all but the newest `keep`, in one transaction,
    /// on the events' own connection (only the events task calls this).
    pub async fn append_events(
        &self,
        events: &[crate::control::events::Event],
        keep: usize,
    ) -> Result<()> {
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok(());
        };
        let mut tx = self.events.begin().await?;
        for chunk in events.chunks(INSERT_CHUNK) {
            let mut q = sqlx::QueryBuilder::<Sqlite>::new(
                "INSERT OR REPLACE INTO events (seq, time_unix_ms, body) ",
            );
            q.push_values(chunk, |mut b, e| {
                b.push_bind(e.seq as i64)
                    .push_bind(e.time_unix_ms as i64)
                    .push_bind(serde_json::to_string(e).unwrap_or_else(|_| "{}".into()));
            });
            q.build().execute(&mut *tx).await?;
        }
        let floor = last.saturating_sub(keep as u64);
        sqlx::query("DELETE FROM events WHERE seq <= ?1")
            .bind(floor as i64)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn delete(tx: &mut Transaction<'_, Sqlite>, sql: &str, id: Id) -> Result<()> {
    sqlx::query(sql).bind(id).execute(&mut **tx).await?;
    Ok(())
}

/// A unit-like enum's serde name ("tcp", "dr", ...), the form stored in TEXT columns.
fn name_of<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    }
}

fn parse_name<T: DeserializeOwned>(table: &'static str, id: i64, s: &str) -> Result<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).map_err(|e| {
        StoreError::Corrupt {
            table,
            id,
            message: e.to_string(),
        }
    })
}

fn parse_addr(table: &'static str, id: i64, s: &str) -> Result<IpAddr> {
    s.parse().map_err(|_| StoreError::Corrupt {
        table,
        id,
        message: format!("`{s}` is not an IP address"),
    })
}

fn opt_u16(table: &'static str, id: i64, v: Option<i64>) -> Result<Option<u16>> {
    v.map(|x| {
        u16::try_from(x).map_err(|_| StoreError::Corrupt {
            table,
            id,
            message: format!("{x} is out of range"),
        })
    })
    .transpose()
}

fn opt_u32(table: &'static str, id: i64, v: Option<i64>) -> Result<Option<u32>> {
    v.map(|x| u32_of(table, id, x)).transpose()
}

fn u32_of(table: &'static str, id: i64, x: i64) -> Result<u32> {
    u32::try_from(x).map_err(|_| StoreError::Corrupt {
        table,
        id,
        message: format!("{x} is out of range"),
    })
}

fn vs_from_row(row: &SqliteRow) -> Result<VirtualServer> {
    const T: &str = "virtual_servers";
    let id: i64 = row.try_get("id")?;
    let address: Option<String> = row.try_get("address")?;
    let protocol: Option<String> = row.try_get("protocol")?;
    let sorry_address: Option<String> = row.try_get("sorry_address")?;
    let granularity: Option<i64> = row.try_get("persistence_granularity")?;
    Ok(VirtualServer {
        id,
        name: row.try_get("name")?,
        address: address.map(|a| parse_addr(T, id, &a)).transpose()?,
        port: opt_u16(T, id, row.try_get("port")?)?,
        protocol: protocol.map(|p| parse_name(T, id, &p)).transpose()?,
        fwmark: opt_u32(T, id, row.try_get("fwmark")?)?,
        family: Some(parse_name(T, id, &row.try_get::<String, _>("family")?)?),
        scheduler: parse_name(T, id, &row.try_get::<String, _>("scheduler")?)?,
        forwarding: parse_name(T, id, &row.try_get::<String, _>("forwarding")?)?,
        persistence_timeout_secs: opt_u32(T, id, row.try_get("persistence_timeout_secs")?)?,
        persistence_granularity: granularity.map(|g| g.clamp(0, 128) as u8),
        delay_loop_ms: u32_of(T, id, row.try_get("delay_loop_ms")?)?,
        sorry_server: sorry_address
            .map(|a| -> Result<SorryServer> {
                Ok(SorryServer {
                    address: parse_addr(T, id, &a)?,
                    port: opt_u16(T, id, row.try_get("sorry_port")?)?,
                })
            })
            .transpose()?,
        quorum: opt_u32(T, id, row.try_get("quorum")?)?,
        hysteresis: u32_of(T, id, row.try_get("hysteresis")?)?,
        quorum_up: row.try_get("quorum_up")?,
        quorum_down: row.try_get("quorum_down")?,
        alpha: row.try_get("alpha")?,
        omega: row.try_get("omega")?,
        one_packet: row.try_get("one_packet")?,
        scheduler_flags: serde_json::from_str(&row.try_get::<String, _>("scheduler_flags")?)
            .map_err(|e| StoreError::Corrupt {
                table: T,
                id,
                message: format!("scheduler_flags: {e}"),
            })?,
        real_servers: Vec::new(),
    })
}

async fn write_vs(
    tx: &mut Transaction<'_, Sqlite>,
    vs: &VirtualServer,
    insert: bool,
) -> Result<()> {
    let sql = if insert {
        "INSERT INTO virtual_servers (name, address, port, protocol, fwmark, family, scheduler, \
         forwarding, persistence_timeout_secs, persistence_granularity, delay_loop_ms, \
         sorry_address, sorry_port, quorum, id, one_packet, scheduler_flags, hysteresis, \
         quorum_up, quorum_down, alpha, omega) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
         ?18, ?19, ?20, ?21, ?22)"
    } else {
        "UPDATE virtual_servers SET name = ?1, address = ?2, port = ?3, protocol = ?4, \
         fwmark = ?5, family = ?6, scheduler = ?7, forwarding = ?8, \
         persistence_timeout_secs = ?9, persistence_granularity = ?10, delay_loop_ms = ?11, \
         sorry_address = ?12, sorry_port = ?13, quorum = ?14, one_packet = ?16, \
         scheduler_flags = ?17, hysteresis = ?18, quorum_up = ?19, quorum_down = ?20, \
         alpha = ?21, omega = ?22 WHERE id = ?15"
    };
    sqlx::query(sql)
        .bind(&vs.name)
        .bind(vs.address.map(|a| a.to_string()))
        .bind(vs.port.map(i64::from))
        .bind(vs.protocol.map(|p| name_of(&p)))
        .bind(vs.fwmark.map(i64::from))
        .bind(vs.family().map(|f| name_of(&f)))
        .bind(name_of(&vs.scheduler))
        .bind(name_of(&vs.forwarding))
        .bind(vs.persistence_timeout_secs.map(i64::from))
        .bind(vs.persistence_granularity.map(i64::from))
        .bind(i64::from(vs.delay_loop_ms))
        .bind(vs.sorry_server.as_ref().map(|s| s.address.to_string()))
        .bind(vs.sorry_server.as_ref().and_then(|s| s.port).map(i64::from))
        .bind(vs.quorum.map(i64::from))
        .bind(vs.id)
        .bind(vs.one_packet)
        .bind(serde_json::to_string(&vs.scheduler_flags).unwrap_or_else(|_| "[]".into()))
        .bind(i64::from(vs.hysteresis))
        .bind(&vs.quorum_up)
        .bind(&vs.quorum_down)
        .bind(vs.alpha)
        .bind(vs.omega)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn rs_from_row(row: &SqliteRow) -> Result<RealServer> {
    const T: &str = "real_servers";
    let id: i64 = row.try_get("id")?;
    let forwarding: Option<String> = row.try_get("forwarding")?;
    let weight: i64 = row.try_get("weight")?;
    let hc_type: Option<String> = row.try_get("hc_type")?;
    let health_check = match hc_type {
        None => None,
        Some(t) => {
            const H: &str = "health_checks";
            Some(HealthCheck {
                kind: parse_name(H, id, &t)?,
                connect_port: opt_u16(H, id, row.try_get("connect_port")?)?,
                connect_timeout_ms: u32_of(H, id, row.try_get("connect_timeout_ms")?)?,
                retry: u32_of(H, id, row.try_get("retry")?)?,
                delay_before_retry_ms: u32_of(H, id, row.try_get("delay_before_retry_ms")?)?,
                rise: opt_u32(H, id, row.try_get("rise")?)?,
                fall: opt_u32(H, id, row.try_get("fall")?)?,
                path: row.try_get("path")?,
                expected_status: opt_u16(H, id, row.try_get("expected_status")?)?,
                body_contains: row.try_get("body_contains")?,
                urls: serde_json::from_str(&row.try_get::<String, _>("urls")?).map_err(|e| {
                    StoreError::Corrupt {
                        table: H,
                        id,
                        message: format!("urls: {e}"),
                    }
                })?,
                misc_path: row.try_get("misc_path")?,
                misc_timeout_ms: opt_u32(H, id, row.try_get("misc_timeout_ms")?)?,
                misc_dynamic: row.try_get("misc_dynamic")?,
                user: row.try_get("run_as_user")?,
                tls_ca_file: row.try_get("tls_ca_file")?,
                tls_server_name: row.try_get("tls_server_name")?,
                virtualhost: row.try_get("virtualhost")?,
            })
        }
    };
    Ok(RealServer {
        id,
        address: parse_addr(T, id, &row.try_get::<String, _>("address")?)?,
        port: opt_u16(T, id, row.try_get("port")?)?,
        weight: Weight::new(u64::try_from(weight).unwrap_or(u64::MAX)).map_err(|message| {
            StoreError::Corrupt {
                table: T,
                id,
                message,
            }
        })?,
        forwarding: forwarding.map(|f| parse_name(T, id, &f)).transpose()?,
        inhibit_on_failure: row.try_get("inhibit_on_failure")?,
        upper_threshold: opt_u32(T, id, row.try_get("upper_threshold")?)?,
        lower_threshold: opt_u32(T, id, row.try_get("lower_threshold")?)?,
        health_check,
    })
}

/// Rows per multi-row INSERT: 9 or 19 bound values each, far below SQLite's 32,766 limit.
const INSERT_CHUNK: usize = 500;

async fn insert_rss(tx: &mut Transaction<'_, Sqlite>, rss: &[(Id, &RealServer)]) -> Result<()> {
    for chunk in rss.chunks(INSERT_CHUNK) {
        let mut q = sqlx::QueryBuilder::<Sqlite>::new(
            "INSERT INTO real_servers (id, virtual_server_id, address, port, weight, forwarding, \
             inhibit_on_failure, upper_threshold, lower_threshold) ",
        );
        q.push_values(chunk, |mut b, (vs_id, rs)| {
            b.push_bind(rs.id)
                .push_bind(*vs_id)
                .push_bind(rs.address.to_string())
                .push_bind(rs.port.map(i64::from))
                .push_bind(i64::from(rs.weight.get()))
                .push_bind(rs.forwarding.map(|f| name_of(&f)))
                .push_bind(rs.inhibit_on_failure)
                .push_bind(rs.upper_threshold.map(i64::from))
                .push_bind(rs.lower_threshold.map(i64::from));
        });
        q.build().execute(&mut **tx).await?;
        let checks: Vec<(Id, &HealthCheck)> = chunk
            .iter()
            .filter_map(|(_, rs)| rs.health_check.as_ref().map(|hc| (rs.id, hc)))
            .collect();
        if checks.is_empty() {
            continue;
        }
        let mut q = sqlx::QueryBuilder::<Sqlite>::new(
            "INSERT INTO health_checks (real_server_id, type, connect_port, connect_timeout_ms, \
             retry, delay_before_retry_ms, rise, fall, path, expected_status, body_contains, \
             urls, misc_path, misc_timeout_ms, misc_dynamic, run_as_user, tls_ca_file, \
             tls_server_name, virtualhost) ",
        );
        q.push_values(checks, |mut b, (id, hc)| {
            b.push_bind(id)
                .push_bind(name_of(&hc.kind))
                .push_bind(hc.connect_port.map(i64::from))
                .push_bind(i64::from(hc.connect_timeout_ms))
                .push_bind(i64::from(hc.retry))
                .push_bind(i64::from(hc.delay_before_retry_ms))
                .push_bind(hc.rise.map(i64::from))
                .push_bind(hc.fall.map(i64::from))
                .push_bind(hc.path.clone())
                .push_bind(hc.expected_status.map(i64::from))
                .push_bind(hc.body_contains.clone())
                .push_bind(serde_json::to_string(&hc.urls).unwrap_or_else(|_| "[]".into()))
                .push_bind(hc.misc_path.clone())
                .push_bind(hc.misc_timeout_ms.map(i64::from))
                .push_bind(hc.misc_dynamic)
                .push_bind(hc.user.clone())
                .push_bind(hc.tls_ca_file.clone())
                .push_bind(hc.tls_server_name.clone())
                .push_bind(hc.virtualhost.clone());
        });
        q.build().execute(&mut **tx).await?;
    }
    Ok(())
}

fn group_from_row(row: &SqliteRow) -> Result<VrrpGroup> {
    const T: &str = "vrrp_groups";
    let id: i64 = row.try_get("id")?;
    let json_list = |col: &str| -> Result<Vec<String>> {
        let s: String = row.try_get(col)?;
        serde_json::from_str(&s).map_err(|e| StoreError::Corrupt {
            table: T,
            id,
            message: format!("{col}: {e}"),
        })
    };
    fn json_col<V: serde::de::DeserializeOwned>(row: &SqliteRow, id: i64, col: &str) -> Result<V> {
        let s: String = row.try_get(col)?;
        serde_json::from_str(&s).map_err(|e| StoreError::Corrupt {
            table: "vrrp_groups",
            id,
            message: format!("{col}: {e}"),
        })
    }
    let vrid: i64 = row.try_get("vrid")?;
    let version: i64 = row.try_get("version")?;
    Ok(VrrpGroup {
        id,
        name: row.try_get("name")?,
        vrid: Vrid::new(u64::try_from(vrid).unwrap_or(0)).map_err(|message| {
            StoreError::Corrupt {
                table: T,
                id,
                message,
            }
        })?,
        version: u8::try_from(version).unwrap_or(0),
        advert_interval_ms: u32_of(T, id, row.try_get("advert_interval_ms")?)?,
        auth_pass: row.try_get("auth_pass")?,
        virtual_addresses: Vec::new(),
        preempt: row.try_get("preempt")?,
        preempt_delay_ms: u32_of(T, id, row.try_get("preempt_delay_ms")?)?,
        unicast_peers: json_list("unicast_peers")?
            .iter()
            .map(|a| parse_addr(T, id, a))
            .collect::<Result<_>>()?,
        garp: GarpSettings {
            count: u32_of(T, id, row.try_get("garp_count")?)?,
            repeat_delay_ms: u32_of(T, id, row.try_get("garp_repeat_delay_ms")?)?,
            refresh_interval_ms: opt_u32(T, id, row.try_get("garp_refresh_interval_ms")?)?,
            interval_ms: u32_of(T, id, row.try_get("garp_interval_ms")?)?,
            na_interval_ms: u32_of(T, id, row.try_get("gna_interval_ms")?)?,
        },
        track_interfaces: json_list("track_interfaces")?,
        track_interfaces_weighted: json_col(row, id, "track_interfaces_weighted")?,
        track_virtual_servers: json_col(row, id, "track_virtual_servers")?,
        track_scripts: json_col(row, id, "track_scripts")?,
        virtual_routes: json_col(row, id, "virtual_routes")?,
        virtual_rules: json_col(row, id, "virtual_rules")?,
        notify: json_col(row, id, "notify")?,
        nodes: Vec::new(),
        use_vmac: row.try_get("use_vmac")?,
        vmac_name: row.try_get("vmac_name")?,
        vmac_xmit_base: row.try_get("vmac_xmit_base")?,
    })
}

fn node_from_row(gid: i64, row: &SqliteRow) -> Result<VrrpNode> {
    const T: &str = "vrrp_nodes";
    let priority: i64 = row.try_get("priority")?;
    let src: Option<String> = row.try_get("unicast_src")?;
    Ok(VrrpNode {
        node: row.try_get("node")?,
        priority: Priority::new(u64::try_from(priority).unwrap_or(0)).map_err(|message| {
            StoreError::Corrupt {
                table: T,
                id: gid,
                message,
            }
        })?,
        interface: row.try_get("interface")?,
        initial_state: parse_name(T, gid, &row.try_get::<String, _>("initial_state")?)?,
        unicast_src: src.map(|s| parse_addr(T, gid, &s)).transpose()?,
    })
}

async fn insert_group(tx: &mut Transaction<'_, Sqlite>, g: &VrrpGroup) -> Result<()> {
    let peers: Vec<String> = g.unicast_peers.iter().map(|p| p.to_string()).collect();
    let to_json = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
    sqlx::query(
        "INSERT INTO vrrp_groups (id, name, vrid, version, advert_interval_ms, auth_pass, \
         preempt, preempt_delay_ms, unicast_peers, track_interfaces, garp_count, \
         garp_repeat_delay_ms, garp_refresh_interval_ms, track_interfaces_weighted, \
         track_virtual_servers, track_scripts, notify, use_vmac, vmac_name, vmac_xmit_base, \
         virtual_routes, virtual_rules) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
         ?18, ?19, ?20, ?21, ?22)",
    )
    .bind(g.id)
    .bind(&g.name)
    .bind(i64::from(g.vrid.get()))
    .bind(i64::from(g.version))
    .bind(i64::from(g.advert_interval_ms))
    .bind(&g.auth_pass)
    .bind(g.preempt)
    .bind(i64::from(g.preempt_delay_ms))
    .bind(to_json(&peers))
    .bind(to_json(&g.track_interfaces))
    .bind(i64::from(g.garp.count))
    .bind(i64::from(g.garp.repeat_delay_ms))
    .bind(g.garp.refresh_interval_ms.map(i64::from))
    .bind(serde_json::to_string(&g.track_interfaces_weighted).unwrap_or_else(|_| "[]".into()))
    .bind(serde_json::to_string(&g.track_virtual_servers).unwrap_or_else(|_| "[]".into()))
    .bind(serde_json::to_string(&g.track_scripts).unwrap_or_else(|_| "[]".into()))
    .bind(serde_json::to_string(&g.notify).unwrap_or_else(|_| "{}".into()))
    .bind(g.use_vmac)
    .bind(&g.vmac_name)
    .bind(g.vmac_xmit_base)
    .bind(serde_json::to_string(&g.virtual_routes).unwrap_or_else(|_| "[]".into()))
    .bind(serde_json::to_string(&g.virtual_rules).unwrap_or_else(|_| "[]".into()))
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE vrrp_groups SET garp_interval_ms = ?1, gna_interval_ms = ?2 WHERE id = ?3")
        .bind(i64::from(g.garp.interval_ms))
        .bind(i64::from(g.garp.na_interval_ms))
        .bind(g.id)
        .execute(&mut **tx)
        .await?;
    for (pos, va) in g.virtual_addresses.iter().enumerate() {
        sqlx::query(
            "INSERT INTO vrrp_virtual_addresses (group_id, position, address, prefix_len, \
             dev, scope, label, broadcast, no_track) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .bind(g.id)
        .bind(pos as i64)
        .bind(va.address.to_string())
        .bind(i64::from(va.prefix_len))
        .bind(&va.dev)
        .bind(va.scope.map(|s| i64::from(s.0)))
        .bind(&va.label)
        .bind(va.broadcast.map(|b| b.to_string()))
        .bind(i64::from(va.no_track))
        .execute(&mut **tx)
        .await?;
    }
    for (pos, n) in g.nodes.iter().enumerate() {
        sqlx::query(
            "INSERT INTO vrrp_nodes (group_id, node, position, priority, interface, \
             initial_state, unicast_src) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(g.id)
        .bind(&n.node)
        .bind(pos as i64)
        .bind(i64::from(n.priority.get()))
        .bind(&n.interface)
        .bind(name_of(&n.initial_state))
        .bind(n.unicast_src.map(|s| s.to_string()))
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
/// The one row of `connection_sync` as the model's setting.
fn connection_sync_row(row: &sqlx::sqlite::SqliteRow) -> Result<ConnectionSync> {
    let corrupt = |col: &str, message: String| StoreError::Corrupt {
        table: "connection_sync",
        id: 1,
        message: format!("{col}: {message}"),
    };
    // An integer column narrowed to its field's type (NULL: absent).
    fn narrow<T: TryFrom<i64>>(
        row: &sqlx::sqlite::SqliteRow,
        col: &str,
        corrupt: &dyn Fn(&str, String) -> StoreError,
    ) -> Result<Option<T>> {
        let v: Option<i64> = row.try_get(col)?;
        v.map(|v| T::try_from(v).map_err(|_| corrupt(col, format!("{v} is out of range"))))
            .transpose()
    }
    let required = |col: &str| corrupt(col, "missing".into());
    let group: Option<String> = row.try_get("mcast_group")?;
    Ok(ConnectionSync {
        interface: row.try_get("interface")?,
        sync_id: narrow(row, "sync_id", &corrupt)?.ok_or_else(|| required("sync_id"))?,
        maxlen: narrow(row, "maxlen", &corrupt)?,
        port: narrow(row, "port", &corrupt)?,
        ttl: narrow(row, "ttl", &corrupt)?,
        group: group
            .map(|g| g.parse().map_err(|_| corrupt("mcast_group", g.clone())))
            .transpose()?,
        vrrp_group: row.try_get("vrrp_group")?,
        failback_hold_ms: narrow(row, "failback_hold_ms", &corrupt)?
            .ok_or_else(|| required("failback_hold_ms"))?,
    })
}
