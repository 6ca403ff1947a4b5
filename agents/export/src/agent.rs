//! ocf:handoff:export — the `Agent` implementation: what each action does,
//! in terms of the modules beside it.

use std::path::{Path, PathBuf};

use ocf::{Action, ActionSpec, Agent, AgentInfo, Ctx, Facts, OcfError};

use crate::error::ExportError;
use crate::params::ExportParams;
use crate::{exportfs, rmtab};
use systables::etab::{self, Entry};
use vserver::Server;

/// The agent.
pub struct Export;

const ETAB: &str = "/var/lib/nfs/etab";
const RMTAB: &str = "/var/lib/nfs/rmtab";

const INFO: AgentInfo = AgentInfo {
    provider: "handoff",
    name: "export",
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "One NFS export entry of an export group",
    longdesc: "Exports one directory (the group's filesystem) to its clients with a fixed fsid, \
as the third member of an export group (fs, nlm-locks, export, vip). Export and unexport go \
through exportfs(8), which owns the kernel's export interface; monitor reads mountd's export \
table directly, so it runs no program and its cost does not depend on how exports are listed.\n\n\
Start refuses a directory that is not a mount point (unless allow_non_mountpoint is set), a \
second export of the directory with another fsid, and an fsid already used by another \
directory. The export's client list (its rmtab entries) is kept on the exported filesystem \
and restored where the export starts next.",
    actions: &[
        ActionSpec::new(Action::Start, 40),
        ActionSpec::new(Action::Stop, 120),
        ActionSpec::monitor(10, 20, 0),
        ActionSpec::new(Action::ValidateAll, 30),
        ActionSpec::new(Action::MetaData, 5),
        ActionSpec::new(Action::Reload, 40),
    ],
    example: "pcs resource create export_a_export ocf:handoff:export directory=/srv/nfs/a fsid=1 \\\n    clientspec=192.0.2.0/24 options=rw,sync,no_root_squash op monitor interval=10s --group export_a",
};

fn table() -> Result<Vec<Entry>, ExportError> {
    etab::read(Path::new(ETAB)).map_err(|source| ExportError::Io {
        what: "reading",
        path: PathBuf::from(ETAB),
        source,
    })
}

fn options(p: &ExportParams) -> String {
    format!("{},fsid={}", p.options.0, p.fsid.0)
}

/// Write a file atomically (temporary file, rename).
fn replace(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("handoff-tmp");
    std::fs::write(&tmp, content)?;
    std::fs::rename(&tmp, path)
}

/// The configured clients present in the table, and those missing.
fn present<'a>(entries: &'a [Entry], p: &'a ExportParams) -> (Vec<&'a Entry>, Vec<&'a str>) {
    let dir = p.directory.as_path();
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for c in &p.clientspec.0 {
        match entries.iter().find(|e| e.path == dir && e.client == *c) {
            Some(e) => found.push(e),
            None => missing.push(c.as_str()),
        }
    }
    (found, missing)
}

fn restore_rmtab(ctx: &Ctx, p: &ExportParams) {
    let Some(name) = &p.rmtab_backup.0 else {
        return;
    };
    let Ok(backup) = std::fs::read_to_string(p.directory.join(name)) else {
        return;
    };
    let current = std::fs::read_to_string(RMTAB).unwrap_or_default();
    if let Some(merged) = rmtab::merge(&current, &backup) {
        match replace(Path::new(RMTAB), merged.as_bytes()) {
            Ok(()) => ctx.log.info(format!(
                "restored {} client entries from {name}",
                backup.lines().count()
            )),
            Err(e) => ctx
                .log
                .warn(format!("cannot restore the rmtab backup into {RMTAB}: {e}")),
        }
    }
}

fn save_rmtab(ctx: &Ctx, p: &ExportParams) {
    let Some(name) = &p.rmtab_backup.0 else {
        return;
    };
    if !systables::is_mount_point(p.directory.as_path()) && !p.allow_non_mountpoint {
        return;
    }
    let current = std::fs::read_to_string(RMTAB).unwrap_or_default();
    let mine: String = rmtab::lines_for(&current, p.directory.as_path())
        .iter()
        .map(|l| format!("{l}\n"))
        .collect();
    if let Err(e) = replace(&p.directory.join(name), mine.as_bytes()) {
        ctx.log
            .warn(format!("cannot save the client list to {name}: {e}"));
    }
}

/// Where the export lives: the node's own NFS server, or the virtual
/// server named by nfs_server, whose namespaces this process then enters.
enum Place {
    Node,
    Server(String),
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Place::Node => f.write_str("node"),
            Place::Server(name) => f.write_str(name),
        }
    }
}

/// Enter the export's virtual server, if it has one. `Ok(None)` when it is
/// not running on this node.
fn enter(ctx: &Ctx, p: &ExportParams) -> Result<Option<Place>, ExportError> {
    let Some(name) = &p.nfs_server else {
        return Ok(Some(Place::Node));
    };
    let server = Server::new(name);
    if !server.is_ready() {
        return Ok(None);
    }
    server.enter(false, &ctx.log)?;
    Ok(Some(Place::Server(server.name)))
}

fn server_down(p: &ExportParams) -> String {
    format!(
        "virtual NFS server {} is not running on this node",
        p.nfs_server.as_ref().map(|n| n.0.as_str()).unwrap_or("")
    )
}

impl Agent for Export {
    type Params = ExportParams;
    const INFO: AgentInfo = INFO;

    fn validate(&self, _ctx: &Ctx, p: &ExportParams) -> ocf::Result<()> {
        if exportfs::binary().is_none() {
            return Err(ExportError::NoExportfs.into());
        }
        if let Ok(meta) = std::fs::metadata(p.directory.as_path()) {
            if !meta.is_dir() {
                return Err(ExportError::NotADirectory(p.directory.as_path().to_owned()).into());
            }
        }
        Ok(())
    }

    fn start(&self, ctx: &Ctx, p: &ExportParams) -> ocf::Result<()> {
        if enter(ctx, p)?.is_none() {
            return Err(OcfError::generic(format!(
                "{}: start its nfs-server resource before the export",
                server_down(p)
            )));
        }
        let dir = p.directory.as_path();
        if !dir.is_dir() {
            return Err(ExportError::NoDirectory(dir.to_owned()).into());
        }
        if !p.allow_non_mountpoint && !systables::is_mount_point(dir) {
            return Err(ExportError::NotMounted(dir.to_owned()).into());
        }
        let entries = table()?;
        for e in &entries {
            match e.fsid() {
                Some(f) if e.path == dir && f != p.fsid.0 => {
                    return Err(ExportError::FsidConflict {
                        dir: dir.to_owned(),
                        client: e.client.clone(),
                        other: f.to_owned(),
                    }
                    .into())
                }
                Some(f) if e.path != dir && f == p.fsid.0 => {
                    return Err(ExportError::FsidTaken {
                        fsid: p.fsid.0.clone(),
                        other: e.path.clone(),
                    }
                    .into())
                }
                _ => {}
            }
        }
        restore_rmtab(ctx, p);
        let (_, missing) = present(&entries, p);
        for client in &missing {
            exportfs::export(client, dir, &options(p))?;
            ctx.log.info(format!(
                "exported {} to {client} ({})",
                dir.display(),
                options(p)
            ));
        }
        if missing.is_empty() {
            ctx.log
                .info(format!("{} is already exported", dir.display()));
        }
        Ok(())
    }

    fn stop(&self, ctx: &Ctx, p: &ExportParams) -> ocf::Result<()> {
        if enter(ctx, p)?.is_none() {
            ctx.log
                .info(format!("{}; nothing is exported there", server_down(p)));
            return Ok(());
        }
        let dir = p.directory.as_path();
        let entries = table()?;
        let (found, _) = present(&entries, p);
        if found.is_empty() {
            ctx.log.info(format!(
                "{} is not exported; nothing to stop",
                dir.display()
            ));
            return Ok(());
        }
        save_rmtab(ctx, p);
        for e in &found {
            exportfs::unexport(&e.client, dir)?;
            ctx.log
                .info(format!("unexported {} from {}", dir.display(), e.client));
        }
        let left: Vec<String> = present(&table()?, p)
            .0
            .iter()
            .map(|e| e.client.clone())
            .collect();
        if !left.is_empty() {
            return Err(ExportError::StillExported {
                dir: dir.to_owned(),
                clients: left.join(" "),
            }
            .into());
        }
        if p.wait_for_leasetime_on_stop {
            let lease = std::fs::read_to_string("/proc/fs/nfsd/nfsv4leasetime")
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .unwrap_or(90);
            let wait = std::time::Duration::from_secs(lease).min(ctx.deadline.remaining());
            ctx.log
                .info(format!("waiting {wait:?} for NFSv4 leases to expire"));
            std::thread::sleep(wait);
        }
        Ok(())
    }

    fn monitor(&self, ctx: &Ctx, p: &ExportParams) -> ocf::Result<Facts> {
        let place = enter(ctx, p)?.ok_or_else(|| OcfError::not_running(server_down(p)))?;
        let dir = p.directory.as_path();
        let entries = table()?;
        let (found, missing) = present(&entries, p);
        if found.is_empty() {
            return Err(OcfError::not_running(format!(
                "{} is not exported",
                dir.display()
            )));
        }
        if !missing.is_empty() {
            return Err(ExportError::Partial {
                dir: dir.to_owned(),
                present: found
                    .iter()
                    .map(|e| e.client.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                missing: missing.join(" "),
            }
            .into());
        }
        if let Some(e) = found.iter().find(|e| e.fsid() != Some(p.fsid.0.as_str())) {
            return Err(ExportError::WrongFsid {
                dir: dir.to_owned(),
                found: e.fsid().unwrap_or("none").to_owned(),
                expected: p.fsid.0.clone(),
            }
            .into());
        }
        if !p.allow_non_mountpoint && !systables::is_mount_point(dir) {
            return Err(ExportError::NotMounted(dir.to_owned()).into());
        }
        Ok(Facts::new()
            .with("directory", dir.display())
            .with("clients", p.clientspec.0.join(" "))
            .with("fsid", &p.fsid.0)
            .with("options", found[0].options.join(","))
            .with("server", place))
    }

    fn reload(&self, ctx: &Ctx, p: &ExportParams) -> ocf::Result<()> {
        if enter(ctx, p)?.is_none() {
            return Ok(());
        }
        let entries = table()?;
        let (found, _) = present(&entries, p);
        for e in &found {
            exportfs::export(&e.client, p.directory.as_path(), &options(p))?;
            ctx.log.info(format!(
                "re-exported {} to {} ({})",
                p.directory,
                e.client,
                options(p)
            ));
        }
        Ok(())
    }
}
