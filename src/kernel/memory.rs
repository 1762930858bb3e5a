//! An in-memory kernel for the actor's unit tests: a table, a log of what was applied, and
//! switches to make it fail. It never replaces the real-kernel tests of the netlink code.

use std::sync::{Arc, Mutex};

use super::{ApplyReport, Kernel, KernelError};
use crate::dataplane::table::{IpvsOp, IpvsTable, Service};

#[derive(Debug, Default)]
pub struct MemoryState {
    pub table: IpvsTable,
    /// Every operation applied, in order.
    pub log: Vec<IpvsOp>,
    pub dumps: usize,
    /// When set, every call fails with `Unavailable(reason)`.
    pub unavailable: Option<String>,
    /// Schedulers this "kernel" lacks (adding a service with one is refused, as ENOENT).
    pub missing_schedulers: Vec<String>,
}

/// Cloneable: a test keeps one clone to inspect and poke the table the actor owns.
#[derive(Debug, Clone, Default)]
pub struct MemoryKernel {
    pub state: Arc<Mutex<MemoryState>>,
}

impl MemoryKernel {
    pub fn with<R>(&self, f: impl FnOnce(&mut MemoryState) -> R) -> R {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut s)
    }
}

/// One operation, with the errors the kernel gives (EEXIST, ESRCH/ENOENT).
fn apply_one(table: &mut IpvsTable, missing: &[String], op: &IpvsOp) -> Result<(), String> {
    let t = &mut table.services;
    match op {
        IpvsOp::AddService(k, spec) => {
            if t.contains_key(k) {
                return Err("service exists".into());
            }
            if missing.contains(&spec.scheduler) {
                return Err("no such scheduler".into());
            }
            t.insert(
                *k,
                Service {
                    spec: spec.clone(),
                    dests: Default::default(),
                },
            );
        }
        IpvsOp::EditService(k, spec) => {
            t.get_mut(k).ok_or("no such service")?.spec = spec.clone();
        }
        IpvsOp::DelService(k) => {
            t.remove(k).ok_or("no such service")?;
        }
        IpvsOp::AddDest(k, d, spec) => {
            let svc = t.get_mut(k).ok_or("no such service")?;
            if svc.dests.insert(*d, *spec).is_some() {
                return Err("destination exists".into());
            }
        }
        IpvsOp::EditDest(k, d, spec) => {
            let svc = t.get_mut(k).ok_or("no such service")?;
            *svc.dests.get_mut(d).ok_or("no such destination")? = *spec;
        }
        IpvsOp::DelDest(k, d) => {
            let svc = t.get_mut(k).ok_or("no such service")?;
            svc.dests.remove(d).ok_or("no such destination")?;
        }
    }
    Ok(())
}

impl Kernel for MemoryKernel {
    fn ipvs_dump(&mut self) -> Result<IpvsTable, KernelError> {
        self.with(|s| {
            if let Some(r) = &s.unavailable {
                return Err(KernelError::Unavailable(r.clone()));
            }
            s.dumps += 1;
            Ok(s.table.clone())
        })
    }

    fn ipvs_apply(&mut self, ops: &[IpvsOp]) -> Result<ApplyReport, KernelError> {
        self.with(|s| {
            if let Some(r) = &s.unavailable {
                return Err(KernelError::Unavailable(r.clone()));
            }
            let mut report = ApplyReport {
                round_trips: 1,
                ..ApplyReport::default()
            };
            for op in ops {
                match apply_one(&mut s.table, &s.missing_schedulers, op) {
                    Ok(()) => {
                        s.log.push(op.clone());
                        report.applied += 1;
                    }
                    Err(m) => report.refused.push(format!("{op:?}: {m}")),
                }
            }
            Ok(report)
        })
    }
}
