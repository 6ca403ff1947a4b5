//! ocf:handoff:nlm-locks — the `Agent` implementation: what each action
//! does, in terms of the modules beside it.

use std::path::Path;
use std::time::{Duration, Instant};

use ocf::{Action, ActionSpec, Agent, AgentInfo, Ctx, Facts, OcfError};

use crate::backend::{self, Chosen};
use crate::error::NlmError;
use crate::params::{Backend, Grace, NlmParams};
use crate::{grace, notifier};
use nsm::reclaim;
use systables::etab;
use systables::locks::{self, Dev};
use systables::mountinfo::{self, Mount};

/// The agent.
pub struct NlmLocks;

const INFO: AgentInfo = AgentInfo {
    provider: "handoff",
    name: "nlm-locks",
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "The NLM locks of one exported filesystem",
    longdesc: "Second member of an export group (fs, nlm-locks, export, vip). On the releasing node, \
stop drops exactly the NLM locks of this filesystem (and no other export's), then reads \
/proc/locks: if any lock on the filesystem's device remains, stop fails with the count instead \
of letting the filesystem be unmounted under it. Before that it copies this node's NSM records \
onto the exported filesystem, so that they move with it.\n\n\
On the taking node, start makes sure clients can reclaim (a grace period; see grace) and starts \
a notifier that, as soon as the export's virtual IP is up, sends SM_NOTIFY from it to the \
recorded clients; they then reclaim their locks here. Monitor checks that the instance is \
recorded, the filesystem is the one it started on, and the backend is usable, and refreshes \
the records on the export (so a crash of this node loses at most one monitor interval).",
    actions: &[
        ActionSpec::new(Action::Start, 40),
        ActionSpec::new(Action::Stop, 60),
        ActionSpec::monitor(30, 20, 0),
        ActionSpec::monitor(300, 20, 10),
        ActionSpec::new(Action::ValidateAll, 10),
        ActionSpec::new(Action::MetaData, 5),
        ActionSpec::new(Action::Reload, 10),
    ],
    example: "pcs resource create export_a_locks ocf:handoff:nlm-locks directory=/srv/nfs/a ip=192.0.2.100 \\\n    notify_name=nfs-a.example.com op monitor interval=30s --group export_a",
};

fn export_nsm_dir(p: &NlmParams) -> std::path::PathBuf {
    p.directory.join(&p.statd_dir.0)
}

/// What start records: the exported filesystem's device.
#[derive(serde::Serialize, serde::Deserialize)]
struct Record {
    major: u32,
    minor: u32,
}

/// The device recorded at start.
fn recorded(ctx: &Ctx) -> Option<Dev> {
    let bytes = ctx.state("nlm").read().ok()??;
    let r: Record = serde_json::from_slice(&bytes).ok()?;
    Some((r.major, r.minor))
}

/// Copy this node's NSM records onto the export.
fn save_records(ctx: &Ctx, p: &NlmParams) {
    let src = p.nfs_state_dir.join("sm");
    match notifier::mirror(&src, &export_nsm_dir(p).join("sm")) {
        Ok(n) => ctx
            .log
            .debug(format!("{n} NSM records mirrored onto the export")),
        Err(e) => ctx
            .log
            .warn(format!("cannot copy the NSM records onto the export: {e}")),
    }
}

fn mount_table() -> Result<Vec<Mount>, NlmError> {
    mountinfo::read().map_err(|source| NlmError::Io {
        what: "reading",
        path: "/proc/self/mountinfo".into(),
        source,
    })
}

/// The mount at `dir` (the top one, when several are stacked).
fn mounted_at(dir: &Path) -> Result<Mount, NlmError> {
    let table = mount_table()?;
    mountinfo::at(&table, dir)
        .last()
        .map(|m| (*m).clone())
        .ok_or_else(|| NlmError::NotMounted(dir.to_owned()))
}

/// The node's export table (mountd's etab).
fn export_table(p: &NlmParams) -> Result<Vec<etab::Entry>, NlmError> {
    let path = p.nfs_state_dir.join("etab");
    etab::read(&path).map_err(|source| NlmError::Io {
        what: "reading",
        path,
        source,
    })
}

/// The devices of the filesystems this node's own NFS server exports (its
/// export table), other than `own`: a restart of that server drops their
/// locks. Virtual NFS servers keep their exports in tables of their own and
/// lose nothing.
fn exported_devices(p: &NlmParams, own: Dev) -> Result<Vec<Dev>, NlmError> {
    let entries = export_table(p)?;
    let table = mount_table()?;
    let mut devs: Vec<Dev> = entries
        .iter()
        .filter_map(|e| holder(&table, &e.path).map(|m| m.dev))
        .filter(|d| *d != own)
        .collect();
    devs.sort();
    devs.dedup();
    Ok(devs)
}

/// The filesystem holding `path`: the deepest mount above it, the last
/// mounted when several are stacked.
fn holder<'a>(table: &'a [Mount], path: &Path) -> Option<&'a Mount> {
    table
        .iter()
        .filter(|m| path.starts_with(&m.point))
        .max_by_key(|m| m.point.components().count())
}

/// Check the fsid parameter against the export table, where the export is
/// listed: every entry with this fsid must be on `mount`'s filesystem.
/// Returns whether the table listed it.
fn resolve_fsid(p: &NlmParams, mount: &Mount) -> Result<bool, NlmError> {
    let Some(fsid) = &p.fsid else {
        return Ok(false);
    };
    let entries = export_table(p)?;
    let listed: Vec<_> = entries
        .iter()
        .filter(|e| e.fsid().is_some_and(|f| fsid.matches(f)))
        .collect();
    if listed.is_empty() {
        return Ok(false);
    }
    let table = mount_table()?;
    for e in listed {
        if holder(&table, &e.path).is_none_or(|m| m.dev != mount.dev) {
            return Err(NlmError::FsidElsewhere {
                fsid: fsid.0.clone(),
                path: e.path.clone(),
                dir: mount.point.clone(),
            });
        }
    }
    Ok(true)
}

impl Agent for NlmLocks {
    type Params = NlmParams;
    const INFO: AgentInfo = INFO;

    fn validate(&self, _ctx: &Ctx, p: &NlmParams) -> ocf::Result<()> {
        if notifier::sm_notify().is_none() {
            return Err(NlmError::NoSmNotify.into());
        }
        if p.backend == Backend::Kmod {
            backend::choose(Backend::Kmod)?;
        }
        Ok(())
    }

    fn start(&self, ctx: &Ctx, p: &NlmParams) -> ocf::Result<()> {
        let dir = p.directory.as_path();
        if !systables::is_mount_point(dir) {
            return Err(NlmError::NotMounted(dir.to_owned()).into());
        }
        let mount = mounted_at(dir)?;
        let dev = mount.dev;
        resolve_fsid(p, &mount)?;
        let chosen = backend::choose(p.backend)?;
        // A clean release's record holds for this start only.
        let released = reclaim::take_release(&export_nsm_dir(p));
        let mut window = None;
        match grace::in_grace() {
            Some(true) => ctx.log.info("this node's NFS server is in grace: clients can reclaim"),
            Some(false) if p.grace == Grace::Restart => {
                let others = exported_devices(p, dev)?;
                if !others.is_empty() && !locks::owners_visible() {
                    return Err(NlmError::LocksHidden.into());
                }
                let held: usize = locks::held_on(&others)
                    .iter()
                    .map(|h| h.client_locks())
                    .sum();
                if held > 0 {
                    return Err(NlmError::RestartWouldDrop(held).into());
                }
                // lockd's grace is a node-wide setting read at its start:
                // the longest, so that the rest of the group may take its
                // time; the notifier ends it grace_time after it told the
                // clients.
                let setting = reclaim::LockdGrace::open().map_err(|e| {
                    NlmError::Restart(format!("opening lockd's grace setting: {e}"))
                })?;
                let held = setting.hold(reclaim::LOCKD_GRACE_MAX).map_err(|e| {
                    NlmError::Restart(format!("setting lockd's grace: {e}"))
                })?;
                let n = grace::restart_nfsd();
                drop(held);
                let n = n?;
                let records = nsm::records(&export_nsm_dir(p));
                window = Some(notifier::Window {
                    secs: p.grace_time.0,
                    expect: reclaim::Expect::from(dev, records, released),
                });
                ctx.log.info(format!(
                    "restarted nfsd ({n} threads) for a fresh grace period: clients can reclaim within {} s of their notification",
                    p.grace_time.0
                ));
                // The stop half of the restart can leave the virtual
                // servers' lock requests unserved (see vserver::lockd).
                let woken = std::fs::File::open("/proc/self/ns/net")
                    .map_err(|e| e.to_string())
                    .and_then(|net| vserver::lockd::wake(&net, "", Duration::from_secs(2)));
                match woken {
                    Ok(via) => ctx.log.info(format!("woke lockd through {via}")),
                    Err(why) => ctx.log.info(format!("lockd not woken: {why}")),
                }
            }
            Some(false) => ctx.log.warn(
                "this node's NFS server is not in grace: the export's clients cannot reclaim their locks here \
                 (grace=restart opens one on a node without other locked exports; a virtual NFS server per export has its own)",
            ),
            None => return Err(NlmError::NoNfsd("/proc/fs/lockd/nlm_end_grace".into()).into()),
        }
        let work = ctx.state_dir.join(format!(
            "handoff-nlm-locks-{}.nsm",
            ctx.instance.replace('/', "_")
        ));
        let pid_file = ctx.state("notifier");
        notifier::stop_notifier(&pid_file, &ctx.log);
        let staged = match notifier::stage(&export_nsm_dir(p), &work, p.tickle) {
            Ok(s) => s,
            Err(e) => {
                ctx.log.warn(format!(
                    "cannot stage the NSM records: {e}; clients will not reclaim"
                ));
                notifier::Staged {
                    clients: 0,
                    conns: 0,
                }
            }
        };
        if staged.clients == 0 {
            ctx.log
                .info("no clients recorded for this export: nothing to notify");
        }
        if staged.clients > 0 || staged.conns > 0 || window.is_some() {
            let name = p
                .notify_name
                .as_ref()
                .map(|n| n.0.clone())
                .unwrap_or_else(|| p.ip.to_string());
            let job = notifier::Job {
                instance: &ctx.instance,
                ip: p.ip,
                name: &name,
                work: &work,
                export_dir: &export_nsm_dir(p),
                // Within lockd's grace: export and vip start after this.
                wait: Duration::from_secs(reclaim::LOCKD_GRACE_MAX),
                window,
            };
            notifier::spawn_notifier(&job, &pid_file, &ctx.log);
            if staged.clients > 0 {
                ctx.log.info(format!(
                    "{} client(s) will be told to reclaim",
                    staged.clients
                ));
            }
            if staged.conns > 0 {
                ctx.log.info(format!(
                    "{} recorded client connection(s) will be tickled",
                    staged.conns
                ));
            }
        }
        let record = Record {
            major: dev.0,
            minor: dev.1,
        };
        ctx.state("nlm")
            .write(&serde_json::to_vec(&record).unwrap_or_default())
            .map_err(|source| NlmError::Io {
                what: "recording the instance in",
                path: ctx.state("nlm").path(),
                source,
            })?;
        ctx.log.info(format!(
            "backend {chosen} for {} (device {})",
            dir.display(),
            locks::dev_text(dev)
        ));
        Ok(())
    }

    fn stop(&self, ctx: &Ctx, p: &NlmParams) -> ocf::Result<()> {
        let dir = p.directory.as_path();
        notifier::stop_notifier(&ctx.state("notifier"), &ctx.log);
        let then = recorded(ctx);
        if !systables::is_mount_point(dir) {
            // Unmounted already: no lock can be held on it.
            ctx.log.info(format!(
                "{} is not mounted; no locks to drop",
                dir.display()
            ));
            let _ = ctx.state("nlm").remove();
            return Ok(());
        }
        let mount = mounted_at(dir)?;
        let dev = mount.dev;
        if let Some(t) = then.filter(|t| *t != dev) {
            return Err(NlmError::OtherFilesystem {
                dir: dir.to_owned(),
                now: locks::dev_text(dev),
                then: locks::dev_text(t),
            }
            .into());
        }
        if resolve_fsid(p, &mount)? {
            ctx.log
                .debug("fsid found in the export table, on this filesystem");
        }
        save_records(ctx, p);
        if p.tickle {
            // In group order the address left first: what vip noted as it
            // removed it; out of order the connections still stand.
            let departed = nsm::tickle::Departed::new(&ctx.state_dir, p.ip).take();
            let update = nsm::tickle::Update::Merge(&departed);
            nsm::tickle::keep(&ctx.log, &export_nsm_dir(p), p.ip, update);
        }
        let chosen = match backend::choose(p.backend) {
            Ok(c) => c,
            // No NFS server here: nothing can hold NLM locks, provided
            // /proc/locks agrees.
            Err(e @ NlmError::NoNfsd(_)) => {
                let held = locks::held_on(&[dev]).remove(0);
                if held.total() > 0 {
                    return Err(NlmError::Remaining {
                        count: held.total(),
                        dev: locks::dev_text(dev),
                        dir: dir.to_owned(),
                        owners: held.owners(),
                    }
                    .into());
                }
                ctx.log.info(format!(
                    "no lock on {} and {e}: nothing to drop",
                    dir.display()
                ));
                let _ = ctx.state("nlm").remove();
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        let before = locks::held_on(&[dev]).remove(0);
        let t = Instant::now();
        if p.unlock_ip {
            backend::drop_ip(chosen, p.ip, p.fsid.as_ref().map(|f| f.0.as_str()))?;
            let after_ip = locks::held_on(&[dev]).remove(0);
            if before.nlm > 0 && after_ip.nlm == before.nlm {
                ctx.log.warn(format!(
                    "unlock_ip {} dropped none of the {} NLM locks: this kernel's lockd does not match by server address",
                    p.ip, before.nlm
                ));
            }
        }
        let fsid = p.fsid.as_ref().map(|f| f.0.as_str());
        backend::drop_filesystem(chosen, &mount, p.kmod_request, fsid)?;
        let took = t.elapsed();
        let mut after = locks::held_on(&[dev]).remove(0);
        // kmod drops NLM locks only; NFSv4 state would keep the filesystem
        // busy (procfs revoked it with the locks).
        let v4 = after.client_locks() + after.delegations;
        if v4 > 0 && chosen == Chosen::Kmod {
            backend::revoke_v4(&mount)?;
            ctx.log.warn(format!(
                "revoked {v4} NFSv4 lock(s) and delegation(s) on {} through unlock_filesystem: a node-wide server's NFSv4 clients lose them",
                dir.display()
            ));
            after = locks::held_on(&[dev]).remove(0);
        }
        let visible = locks::owners_visible();
        if !visible {
            ctx.log.warn(
                "this /proc hides lockd's and nfsd's locks (a PID namespace): the drop cannot be checked, and the taking node keeps its whole grace period",
            );
        }
        let v4_kept = after.nfsd + after.delegations;
        if visible && v4_kept > 0 && v4_kept == after.total() {
            return Err(NlmError::V4Kept {
                count: v4_kept,
                dir: dir.to_owned(),
            }
            .into());
        }
        if visible && after.total() > 0 {
            return Err(NlmError::Remaining {
                count: after.total(),
                dev: locks::dev_text(dev),
                dir: dir.to_owned(),
                owners: after.owners(),
            }
            .into());
        }
        ctx.log.info(format!(
            "dropped {} lock(s) held for NFS clients on {} ({}) through {chosen} in {:.2} ms",
            before.client_locks(),
            dir.display(),
            locks::dev_text(dev),
            took.as_secs_f64() * 1000.0
        ));
        // With the address gone the clients could not change their locks:
        // the taking node waits for as many.
        if visible && !nsm::is_local(p.ip) {
            if let Err(e) = reclaim::record_release(&export_nsm_dir(p), before.client_locks()) {
                ctx.log.warn(format!(
                    "cannot record the release on the export ({e}): the taking node keeps its whole grace period"
                ));
            }
        }
        if let Err(e) = ctx.state("nlm").remove() {
            ctx.log
                .warn(format!("cannot remove the instance record: {e}"));
        }
        Ok(())
    }

    fn monitor(&self, ctx: &Ctx, p: &NlmParams) -> ocf::Result<Facts> {
        let Some(then) = recorded(ctx) else {
            return Err(OcfError::not_running(format!(
                "no instance recorded for {}",
                p.directory
            )));
        };
        let dir = p.directory.as_path();
        if !systables::is_mount_point(dir) {
            return Err(NlmError::NotMounted(dir.to_owned()).into());
        }
        let mount = mounted_at(dir)?;
        let dev = mount.dev;
        if dev != then {
            return Err(NlmError::OtherFilesystem {
                dir: dir.to_owned(),
                now: locks::dev_text(dev),
                then: locks::dev_text(then),
            }
            .into());
        }
        let chosen: Chosen = backend::choose(p.backend)?;
        if !ctx.probe {
            save_records(ctx, p);
            // With the address elsewhere there is nothing to record, and
            // the record the next start tickles from must stay.
            if p.tickle && nsm::is_local(p.ip) {
                nsm::tickle::keep(
                    &ctx.log,
                    &export_nsm_dir(p),
                    p.ip,
                    nsm::tickle::Update::Replace,
                );
            }
        }
        let mut facts = Facts::new()
            .with("directory", dir.display())
            .with("device", locks::dev_text(dev))
            .with("backend", chosen)
            .with(
                "in_grace",
                grace::in_grace().map(|g| g.to_string()).unwrap_or_default(),
            );
        // Reading /proc/locks holds every lock request on the node back for
        // an RCU grace period: only a deeper monitor counts them.
        if ctx.check_level >= 10 {
            facts = facts.with(
                "client_locks",
                locks::held_on(&[dev]).remove(0).client_locks(),
            );
        }
        Ok(facts)
    }
}
