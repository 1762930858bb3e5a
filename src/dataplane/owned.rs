//! The data plane's record of the IPVS services it created: the only ones it may delete. Kept
//! across restarts so that lbd can still delete a service whose removal was committed but had
//! not reached the kernel when it stopped.
//!
//! The actor sees only the [`OwnedServices`] trait. The daemon records in the SQLite store (its
//! own table, beside the configuration but not part of the configuration's API); tests and
//! benchmarks use [`MemoryOwned`].

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use crate::control::store::{Store, StoreError};
use crate::ipvs::table::ServiceKey;

#[derive(Debug, thiserror::Error)]
pub enum OwnedError {
    #[error("the owned-services record: {0}")]
    Store(#[from] StoreError),
}

pub type OwnedFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, OwnedError>> + Send + 'a>>;

/// Where the actor keeps the set of services it owns.
pub trait OwnedServices: Send + Sync + 'static {
    /// The set as last saved (empty when nothing was ever saved).
    fn load(&self) -> OwnedFuture<'_, BTreeSet<ServiceKey>>;
    /// Replaces the saved set with `owned`, all or nothing.
    fn save<'a>(&'a self, owned: &'a BTreeSet<ServiceKey>) -> OwnedFuture<'a, ()>;
}

/// The SQLite store's `dataplane_owned` table, one text token per service
/// ([`ServiceKey::to_token`]); a token this version cannot read is skipped.
impl OwnedServices for Store {
    fn load(&self) -> OwnedFuture<'_, BTreeSet<ServiceKey>> {
        Box::pin(async move {
            let tokens = self.load_owned().await?;
            Ok(tokens
                .iter()
                .filter_map(|t| ServiceKey::from_token(t))
                .collect())
        })
    }

    fn save<'a>(&'a self, owned: &'a BTreeSet<ServiceKey>) -> OwnedFuture<'a, ()> {
        Box::pin(async move {
            let tokens: Vec<String> = owned.iter().map(ServiceKey::to_token).collect();
            self.save_owned(&tokens).await?;
            Ok(())
        })
    }
}

/// A record in memory: it lasts as long as its clones (a test restarts an actor on the same one).
#[derive(Debug, Clone, Default)]
pub struct MemoryOwned {
    set: Arc<Mutex<BTreeSet<ServiceKey>>>,
}

impl MemoryOwned {
    /// What was last saved.
    pub fn get(&self) -> BTreeSet<ServiceKey> {
        self.set.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl OwnedServices for MemoryOwned {
    fn load(&self) -> OwnedFuture<'_, BTreeSet<ServiceKey>> {
        let s = self.get();
        Box::pin(async move { Ok(s) })
    }

    fn save<'a>(&'a self, owned: &'a BTreeSet<ServiceKey>) -> OwnedFuture<'a, ()> {
        *self.set.lock().unwrap_or_else(|p| p.into_inner()) = owned.clone();
        Box::pin(async move { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> BTreeSet<ServiceKey> {
        ["tcp|192.168.10.100|80", "fwm|ipv4|7"]
            .iter()
            .map(|t| ServiceKey::from_token(t).unwrap())
            .collect()
    }

    async fn round_trip(r: &dyn OwnedServices) {
        assert!(r.load().await.unwrap().is_empty());
        r.save(&keys()).await.unwrap();
        assert_eq!(r.load().await.unwrap(), keys());
        r.save(&BTreeSet::new()).await.unwrap();
        assert!(r.load().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_store_and_the_memory_record_keep_the_same_set() {
        round_trip(&MemoryOwned::default()).await;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("lbd.db")).await.unwrap();
        round_trip(&store).await;
        // An unreadable token (a newer version's) is skipped, not an error.
        store
            .save_owned(&["tcp|192.168.10.100|80".into(), "quic|x".into()])
            .await
            .unwrap();
        assert_eq!(OwnedServices::load(&store).await.unwrap().len(), 1);
        store.close().await;
    }
}
