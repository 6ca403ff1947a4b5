//! ocf:handoff:fs — the `Agent` implementation: what each action does,
//! in terms of the modules beside it.

use std::cell::OnceCell;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::mount::MsFlags;
use ocf::{Action, ActionSpec, Agent, AgentInfo, Ctx, Facts, OcfError};

use crate::device::{self, Device, Identity};
use crate::error::FsError;
use crate::params::{ForceUnmount, FsParams, RunFsck};
use crate::{fsck, health, kernel, mount, probe, users};
use systables::mountinfo::{self, Mount};

/// The agent; remembers the resolved device between validate and start.
#[derive(Default)]
pub struct Fs {
    device: OnceCell<Device>,
}

const INFO: AgentInfo = AgentInfo {
    provider: "handoff",
    name: "fs",
    version: env!("CARGO_PKG_VERSION"),
    shortdesc: "Local block filesystem of one NFS export (ext4, xfs, btrfs)",
    longdesc: "Mounts one local block filesystem (ext2/3/4, xfs, btrfs) on a shared disk, \
as the first member of an export group (fs, nlm-locks, export, vip). It reads the kernel's \
mount table and /proc directly instead of running mount, grep and fuser, so a monitor costs \
about a millisecond.\n\n\
Start refuses a device already mounted elsewhere on this node or held by the kernel, and \
refuses to mount over another filesystem. Stop unmounts the filesystem (and anything mounted \
inside it); when it is busy it signals the processes using it (force_unmount) and retries \
within the stop timeout, and fails rather than detaching lazily.\n\n\
Monitor depth 0 checks that the device is mounted at the directory with the right type; \
depth 10 also reads the device's first block with O_DIRECT; depth 20 also writes, syncs and \
reads back a status file on the filesystem.",
    actions: &[
        ActionSpec::new(Action::Start, 60),
        ActionSpec::new(Action::Stop, 60),
        ActionSpec::monitor(20, 40, 0),
        ActionSpec::new(Action::ValidateAll, 5),
        ActionSpec::new(Action::MetaData, 5),
        ActionSpec::new(Action::Reload, 20),
    ],
    example: "pcs resource create export_a_fs ocf:handoff:fs device=/dev/disk/by-id/wwn-0x5000c500a1b2c3d4 \\\n    directory=/srv/nfs/a fstype=xfs op monitor interval=20s timeout=40s --group export_a",
};

/// Families of types whose kernel drivers mount each other's filesystems.
fn same_family(found: &str, configured: &str) -> bool {
    fn family(t: &str) -> &str {
        if t.starts_with("ext") {
            "ext"
        } else {
            t
        }
    }
    family(found) == family(configured)
}

/// The mount point as the mount table shows it (symlinks resolved), or as
/// configured when it does not exist.
fn mount_point(dir: &Path) -> PathBuf {
    std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned())
}

/// Create the mount point and its missing parents; returns the topmost
/// directory created, if any.
fn create_mount_point(dir: &Path) -> Result<Option<PathBuf>, FsError> {
    let topmost = dir
        .ancestors()
        .take_while(|a| !a.exists())
        .last()
        .map(Path::to_owned);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|source| FsError::Mkdir {
            path: dir.to_owned(),
            source,
        })?;
    Ok(topmost)
}

/// Remove the directories `create_mount_point` made, deepest first.
fn remove_created(dir: &Path, topmost: Option<&Path>) {
    let Some(top) = topmost else { return };
    for d in dir.ancestors() {
        if std::fs::remove_dir(d).is_err() || d == top {
            break;
        }
    }
}

impl Fs {
    fn device(&self, p: &FsParams) -> Result<&Device, FsError> {
        if let Some(d) = self.device.get() {
            return Ok(d);
        }
        let d = device::resolve(&p.device)?;
        Ok(self.device.get_or_init(|| d))
    }

    /// The type to mount with: configured, or read from the superblock.
    fn fstype(&self, p: &FsParams, dev: &Device) -> Result<String, FsError> {
        if let Some(t) = &p.fstype {
            return Ok(t.0.clone());
        }
        match probe::probe(&dev.path) {
            Ok(Some(sb)) => Ok(sb.fstype.to_owned()),
            Ok(None) => Err(FsError::Unrecognised(dev.path.clone())),
            Err(source) => Err(FsError::DeviceRead {
                path: dev.path.clone(),
                source,
            }),
        }
    }
}

/// Unmount what is mounted at `point` (expected to be the mount `id`),
/// signalling its users as force_unmount says, until `until`.
fn release(ctx: &Ctx, p: &FsParams, point: &Path, until: Instant) -> Result<(), FsError> {
    let mut signalled: std::collections::BTreeMap<i32, Instant> = Default::default();
    loop {
        match mount::unmount(point) {
            Ok(()) => {
                ctx.log.info(format!("unmounted {}", point.display()));
                return Ok(());
            }
            // Not a mount point (any more), or gone: nothing to release.
            Err(Errno::EINVAL | Errno::ENOENT) => return Ok(()),
            Err(Errno::EBUSY) => {}
            Err(e) => {
                return Err(FsError::Unmount {
                    dir: point.to_owned(),
                    why: e.to_string(),
                })
            }
        }
        let table = read_mounts()?;
        let Some(top) = mountinfo::at(&table, point).last().map(|m| m.id) else {
            return Ok(());
        };
        let found = users::find(top, point, p.force_unmount);
        let last_users = found
            .iter()
            .map(|u| u.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        if Instant::now() >= until {
            let why = if found.is_empty() {
                "busy, but no process on this node uses it (an NFS export, NLM locks held by lockd, a loop device or swap file on it, or a mount in another namespace can keep it busy)".to_owned()
            } else if p.force_unmount == ForceUnmount::False {
                format!("busy and force_unmount=false; used by {last_users}")
            } else {
                format!("still busy at the end of the stop timeout; used by {last_users}")
            };
            return Err(FsError::Unmount {
                dir: point.to_owned(),
                why,
            });
        }
        if p.force_unmount != ForceUnmount::False {
            for u in &found {
                let now = Instant::now();
                let sig = match signalled.get(&u.pid) {
                    None => Some(nix::sys::signal::Signal::SIGTERM),
                    Some(t) if now.duration_since(*t) >= p.signal_delay.0 => {
                        Some(nix::sys::signal::Signal::SIGKILL)
                    }
                    Some(_) => None,
                };
                if let Some(sig) = sig {
                    ctx.log
                        .info(format!("{} uses {}: sending {sig}", u, point.display()));
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(u.pid), sig);
                    if sig == nix::sys::signal::Signal::SIGTERM {
                        signalled.insert(u.pid, now);
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Agent for Fs {
    type Params = FsParams;
    const INFO: AgentInfo = INFO;

    fn validate(&self, _ctx: &Ctx, p: &FsParams) -> ocf::Result<()> {
        if ocf::env::meta("clone").is_some() && !p.force_clones {
            return Err(FsError::Cloned.into());
        }
        if p.directory.as_path() == Path::new("/") {
            return Err(FsError::RootDirectory.into());
        }
        if let Ok(meta) = std::fs::metadata(p.directory.as_path()) {
            if !meta.is_dir() {
                return Err(FsError::NotADirectory(p.directory.as_path().to_owned()).into());
            }
        }
        if let Some(t) = &p.fstype {
            kernel::check_fstype(&t.0)?;
        }
        let dev = self.device(p)?;
        let found = probe::probe(&dev.path).map_err(|source| FsError::DeviceRead {
            path: dev.path.clone(),
            source,
        })?;
        match (&found, &p.fstype) {
            (Some(sb), Some(t)) if !same_family(sb.fstype, &t.0) => {
                return Err(FsError::TypeMismatch {
                    device: dev.path.clone(),
                    found: sb.fstype.to_owned(),
                    configured: t.0.clone(),
                }
                .into())
            }
            (None, None) => return Err(FsError::Unrecognised(dev.path.clone()).into()),
            _ => {}
        }
        let fstype = found
            .map(|sb| sb.fstype.to_owned())
            .or(p.fstype.as_ref().map(|t| t.0.clone()));
        if fstype.is_some_and(|t| fsck::needed(p.run_fsck, &t)) && fsck::binary().is_none() {
            return Err(FsError::FsckMissing.into());
        }
        Ok(())
    }

    fn start(&self, ctx: &Ctx, p: &FsParams) -> ocf::Result<()> {
        let dev = self.device(p)?.clone();
        let id = Identity::resolved(&p.device, &dev);
        let dir = mount_point(p.directory.as_path());
        let table = read_mounts()?;
        if let Some(top) = mountinfo::at(&table, &dir).last() {
            if id.owns(top) {
                ctx.log.info(format!(
                    "{} is already mounted on {}",
                    dev.path.display(),
                    dir.display()
                ));
                return Ok(());
            }
            return Err(FsError::DirectoryOccupied {
                dir,
                mounted: top.source.clone().unwrap_or_default(),
                fstype: top.fstype.clone(),
            }
            .into());
        }
        if let Some(sub) = mountinfo::under(&table, &dir).last() {
            return Err(FsError::Submounted {
                dir,
                under: sub.point.clone(),
            }
            .into());
        }
        if let Some(m) = table.iter().find(|m| id.owns(m)) {
            return Err(FsError::MountedElsewhere {
                device: dev.path.clone(),
                at: m.point.clone(),
            }
            .into());
        }
        // The kernel refuses an exclusive open of a device it holds anywhere.
        match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_EXCL)
            .open(&dev.path)
        {
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                return Err(FsError::DeviceBusy(dev.path.clone()).into())
            }
            _ => {}
        }
        let fstype = self.fstype(p, &dev)?;
        if fsck::needed(p.run_fsck, &fstype) {
            let force = p.run_fsck == RunFsck::Force;
            fsck::run(&dev.path, &fstype, force, &ctx.deadline, &ctx.log)?;
        }
        let created = create_mount_point(p.directory.as_path())?;
        let dir = mount_point(p.directory.as_path());
        for ignored in &p.options.ignored {
            ctx.log
                .debug(format!("ignoring fstab-only option {ignored}"));
        }
        let mounted = mount::mount(&dev.path, &dir, &fstype, &p.options);
        if mounted.is_err() {
            // A failed start leaves the system as it found it.
            remove_created(p.directory.as_path(), created.as_deref());
        }
        mounted.map_err(|errno| FsError::Mount {
            device: dev.path.clone(),
            dir: dir.clone(),
            fstype: fstype.clone(),
            errno,
            hint: match errno {
                Errno::EINVAL => {
                    " (wrong fstype, an option the filesystem rejects, or a damaged superblock)"
                }
                Errno::ENODEV => " (the kernel does not know this filesystem type)",
                Errno::EROFS | Errno::EACCES => " (the device is read-only; add ro to options)",
                Errno::EUCLEAN => {
                    " (the filesystem is damaged: repair it with fsck, or set run_fsck=force)"
                }
                _ => "",
            },
        })?;
        ctx.log.info(format!(
            "mounted {} on {} as {fstype}{}",
            dev.path.display(),
            dir.display(),
            if p.options.raw.is_empty() {
                String::new()
            } else {
                format!(" ({})", p.options.raw)
            }
        ));
        Ok(())
    }

    fn stop(&self, ctx: &Ctx, p: &FsParams) -> ocf::Result<()> {
        let id = Identity::new(&p.device);
        let dir = mount_point(p.directory.as_path());
        let table = read_mounts()?;
        let ours: Vec<&Mount> = table.iter().filter(|m| id.owns(m)).collect();
        if ours.is_empty() {
            ctx.log
                .info(format!("{} is not mounted; nothing to stop", p.device));
            return Ok(());
        }
        let stack = mountinfo::at(&table, &dir);
        let ours_here = stack.iter().any(|m| id.owns(m));
        if let Some(top) = stack.last() {
            if ours_here && !id.owns(top) {
                return Err(FsError::Covered {
                    dir,
                    mounted: top.source.clone().unwrap_or_default(),
                    device: p.device.to_string(),
                }
                .into());
            }
        }
        if ours_here {
            let rel = health::status_file(&p.statusfile_prefix, &ctx.instance);
            if let Err(e) = health::remove_status(&dir, &rel) {
                ctx.log.debug(format!("status file not removed: {e}"));
            }
        }
        let budget = if p.fast_stop {
            ctx.deadline.remaining().min(Duration::from_secs(6))
        } else {
            ctx.deadline.remaining()
        };
        let until = Instant::now() + budget;
        // Inside-out: what is mounted inside ours, then stray mounts of the
        // same device elsewhere (they would keep it mounted on this node
        // after a failover), then the mount point itself.
        let mut points: Vec<PathBuf> = Vec::new();
        for m in &ours {
            points.extend(
                mountinfo::under(&table, &m.point)
                    .iter()
                    .map(|s| s.point.clone()),
            );
            if m.point != dir {
                ctx.log.warn(format!(
                    "{} is also mounted at {}; unmounting it too",
                    p.device,
                    m.point.display()
                ));
            }
            points.push(m.point.clone());
        }
        points.dedup();
        for point in &points {
            release(ctx, p, point, until)?;
        }
        let left: Vec<String> = read_mounts()?
            .iter()
            .filter(|m| id.owns(m))
            .map(|m| m.point.display().to_string())
            .collect();
        if !left.is_empty() {
            return Err(FsError::Unmount {
                dir,
                why: format!("still mounted at {}", left.join(", ")),
            }
            .into());
        }
        Ok(())
    }

    fn monitor(&self, ctx: &Ctx, p: &FsParams) -> ocf::Result<Facts> {
        let id = Identity::new(&p.device);
        let dir = mount_point(p.directory.as_path());
        let table = read_mounts()?;
        let top = mountinfo::at(&table, &dir).last().copied();
        let Some(m) = top.filter(|m| id.owns(m)) else {
            if let Some(elsewhere) = table.iter().find(|m| id.owns(m)) {
                return Err(FsError::Misplaced {
                    device: p.device.to_string(),
                    at: elsewhere.point.clone(),
                    dir,
                }
                .into());
            }
            let what = match top {
                Some(other) => format!(
                    "{} is not mounted at {} ({} is)",
                    p.device,
                    dir.display(),
                    other.source.as_deref().unwrap_or(&other.fstype)
                ),
                None => format!("{} is not mounted at {}", p.device, dir.display()),
            };
            return Err(OcfError::not_running(what));
        };
        if let Some(t) = &p.fstype {
            if m.fstype != t.0 {
                return Err(FsError::WrongType {
                    dir,
                    found: m.fstype.clone(),
                    expected: t.0.clone(),
                }
                .into());
            }
        }
        // Seen at every depth: the mount table is read anyway, and an export
        // that cannot take writes is down for its clients.
        let asked_ro = p.options.flags.contains(MsFlags::MS_RDONLY);
        if m.read_only && !asked_ro {
            return Err(FsError::ReadOnly { dir }.into());
        }
        let source = m.source.clone().unwrap_or_default();
        if ctx.check_level >= 10 {
            health::read_test(Path::new(&source))?;
        }
        if ctx.check_level >= 20 {
            if asked_ro {
                ctx.log.debug(format!(
                    "{} is mounted read-only as configured: depth 20 skips the write test",
                    dir.display()
                ));
            } else {
                let rel = health::status_file(&p.statusfile_prefix, &ctx.instance);
                health::write_test(&dir, &rel, &ctx.instance)?;
            }
        }
        Ok(Facts::new()
            .with("device", &source)
            .with("directory", dir.display())
            .with("fstype", &m.fstype)
            .with("options", m.options.join(","))
            .with("mount_id", m.id)
            .with("depth", ctx.check_level))
    }

    fn reload(&self, ctx: &Ctx, p: &FsParams) -> ocf::Result<()> {
        let id = Identity::new(&p.device);
        let dir = mount_point(p.directory.as_path());
        let table = read_mounts()?;
        if mountinfo::at(&table, &dir)
            .last()
            .is_some_and(|m| id.owns(m))
        {
            mount::remount(&dir, &p.options).map_err(|errno| FsError::Remount {
                dir: dir.clone(),
                options: p.options.raw.clone(),
                errno,
            })?;
            ctx.log.info(format!(
                "remounted {} with options {:?}",
                dir.display(),
                p.options.raw
            ));
        }
        if p.run_fsck != RunFsck::No {
            ctx.log.debug("run_fsck applies at the next start");
        }
        Ok(())
    }
}

/// The mount table, failing as an agent error.
fn read_mounts() -> Result<Vec<Mount>, FsError> {
    Ok(mountinfo::read()?)
}
