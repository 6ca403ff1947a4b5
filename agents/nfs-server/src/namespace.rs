//! Creating and removing a virtual server's namespaces, pinned on files so
//! that they outlive the agent (see the `vserver` crate for the layout).
//!
//! Everything here runs in the agent's own, single-threaded process: it
//! unshares, pins each new namespace from the node's mount namespace, sets
//! up the server's mounts from inside, and returns to the node's
//! namespaces. No helper process is forked.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use systables::mountinfo;
use vserver::{Node, Server, NETNS_DIR, SERVERS_DIR};

use crate::daemons;
use crate::error::ServerError;

/// What the server's mount namespace is made of.
pub struct Layout<'a> {
    /// The exported filesystem.
    pub export: &'a Path,
    /// The server's state directory on it (its /var/lib/nfs).
    pub state: &'a Path,
    /// The /etc/hosts the server sees.
    pub hosts: String,
}

fn ns_err(name: &str, what: impl Into<String>) -> impl FnOnce(nix::Error) -> ServerError + '_ {
    let what = what.into();
    move |e| ServerError::Namespace {
        name: name.to_owned(),
        what,
        why: e.to_string(),
    }
}

/// Make `dir` a mount of its own with propagation `kind`, as `ip netns`
/// does for /run/netns (shared, so that a namespace deleted there is
/// deleted in every copy) and as a mount namespace pin needs (private).
fn own_mount(name: &str, dir: &Path, kind: MsFlags) -> Result<(), ServerError> {
    std::fs::create_dir_all(dir).map_err(ServerError::io("creating", dir))?;
    if !systables::is_mount_point(dir) {
        mount(
            Some(dir),
            dir,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )
        .map_err(ns_err(name, format!("binding {} on itself", dir.display())))?;
    }
    mount(
        None::<&str>,
        dir,
        None::<&str>,
        kind | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(ns_err(
        name,
        format!("setting the propagation of {}", dir.display()),
    ))
}

/// Pin the namespace `src` (a /proc ns link) on the new file `target`.
fn pin(name: &str, src: &Path, target: &Path) -> Result<(), ServerError> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .custom_flags(libc::O_NOFOLLOW)
        .open(target)
        .map_err(ServerError::io("creating", target))?;
    mount(
        Some(src),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| {
        let _ = std::fs::remove_file(target);
        ns_err(name, format!("pinning {}", target.display()))(e)
    })
}

/// Remove a pinned namespace file (and so the namespace, once nothing else
/// holds it).
fn unpin(name: &str, target: &Path) -> Result<(), ServerError> {
    if !target.exists() {
        return Ok(());
    }
    match umount2(target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) => {}
        Err(e) => return Err(ns_err(name, format!("unpinning {}", target.display()))(e)),
    }
    std::fs::remove_file(target).map_err(ServerError::io("removing", target))
}

/// Whether a mount of the node is kept in the server: the root, the system
/// filesystems programs need, the mounts that hold the programs, their
/// configuration and the export (the ancestors of those paths), and the
/// export itself. Everything else is detached in the server's copy, above
/// all other exports' filesystems and other namespaces' pins, which the
/// server would otherwise keep alive after their own groups stopped.
fn kept(point: &Path, export: &Path) -> bool {
    const SYSTEM: [&str; 3] = ["/proc", "/sys", "/dev"];
    const NEEDED: [&str; 9] = [
        "/usr/sbin",
        "/usr/lib",
        "/usr/lib64",
        "/lib",
        "/lib64",
        "/sbin",
        "/bin",
        "/etc",
        "/var/lib",
    ];
    if point == Path::new("/") {
        return true;
    }
    // The node's nfsd filesystem belongs to the node's network namespace.
    if point.starts_with("/proc/fs/nfsd") {
        return false;
    }
    SYSTEM.iter().any(|s| point.starts_with(s))
        || NEEDED.iter().any(|n| Path::new(n).starts_with(point))
        || export.starts_with(point)
}

/// Inside the new mount namespace: cut it off from the node's propagation,
/// drop what the server must not hold, and mount its own /run,
/// rpc_pipefs, /var/lib/nfs, /etc/hosts and nfsd filesystem.
fn furnish(name: &str, layout: &Layout<'_>) -> Result<(), ServerError> {
    // First: a mount or unmount here must never reach the node.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(ns_err(name, "making its mounts private"))?;
    // Detaching a mount uncovers what it hid (a node's /run over the
    // machine's): repeat until nothing unwanted is left or nothing moves.
    loop {
        let table =
            mountinfo::read().map_err(ServerError::io("reading", "/proc/self/mountinfo"))?;
        // Deepest and newest first, so that stacked mounts go top down.
        let mut drop: Vec<&mountinfo::Mount> = table
            .iter()
            .filter(|m| !kept(&m.point, layout.export))
            .collect();
        drop.sort_by_key(|m| (std::cmp::Reverse(m.point.components().count()), -m.id));
        // A parent detached earlier took the others with it: ENOENT/EINVAL.
        let detached = drop
            .iter()
            .filter(|m| umount2(&m.point, MntFlags::MNT_DETACH).is_ok())
            .count();
        if detached == 0 {
            break;
        }
    }
    mount(
        Some("tmpfs"),
        "/run",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755"),
    )
    .map_err(ns_err(name, "mounting its /run"))?;
    for d in [
        "/run/rpcbind",
        "/run/handoff",
        daemons::PIPEFS,
        "/var/lib/nfs",
    ] {
        std::fs::create_dir_all(d).map_err(ServerError::io("creating", d))?;
    }
    // This network namespace's own rpc_pipefs: nfsd makes nfsdcld's pipe
    // in it.
    mount(
        Some("sunrpc"),
        daemons::PIPEFS,
        Some("rpc_pipefs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    )
    .map_err(ns_err(name, "mounting its rpc_pipefs"))?;
    mount(
        Some(layout.state),
        "/var/lib/nfs",
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(ns_err(name, "binding its state directory on /var/lib/nfs"))?;
    let hosts = Path::new("/run/handoff/hosts");
    std::fs::write(hosts, &layout.hosts).map_err(ServerError::io("writing", hosts))?;
    if Path::new("/etc/hosts").is_file() {
        mount(
            Some(hosts),
            "/etc/hosts",
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(ns_err(name, "binding its /etc/hosts"))?;
    }
    // nfsd's control files answer for the network namespace of whoever
    // mounts them: this one.
    mount(
        Some("nfsd"),
        "/proc/fs/nfsd",
        Some("nfsd"),
        MsFlags::empty(),
        None::<&str>,
    )
    .map_err(ns_err(name, "mounting its nfsd filesystem"))
}

/// Create the server's network, UTS and mount namespaces and pin them.
/// The caller has removed the remains of an earlier attempt. The process
/// is back in the node's namespaces when this returns, whatever happened.
pub fn create(server: &Server, layout: &Layout<'_>) -> Result<(), ServerError> {
    let name = server.name.as_str();
    own_mount(name, Path::new(NETNS_DIR), MsFlags::MS_SHARED)?;
    own_mount(name, Path::new(SERVERS_DIR), MsFlags::MS_PRIVATE)?;
    std::fs::create_dir_all(server.dir()).map_err(ServerError::io("creating", server.dir()))?;
    let node = Node::current().map_err(ServerError::io("opening", "/proc/self/ns"))?;
    let made = create_inside(server, layout, &node);
    let back = node.back().map_err(ns_err(name, "returning to the node"));
    made.and(back)
}

fn create_inside(server: &Server, layout: &Layout<'_>, node: &Node) -> Result<(), ServerError> {
    let name = server.name.as_str();
    unshare(CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUTS)
        .map_err(ns_err(name, "creating its network namespace"))?;
    nix::unistd::sethostname(name).map_err(ns_err(name, "setting its host name"))?;
    pin(name, Path::new("/proc/self/ns/net"), &server.netns())?;
    pin(name, Path::new("/proc/self/ns/uts"), &server.utsns())?;
    unshare(CloneFlags::CLONE_NEWNS).map_err(ns_err(name, "creating its mount namespace"))?;
    let own =
        File::open("/proc/self/ns/mnt").map_err(ServerError::io("opening", "/proc/self/ns/mnt"))?;
    furnish(name, layout)?;
    // A mount namespace can only be pinned from an older one.
    setns(node.mnt(), CloneFlags::CLONE_NEWNS).map_err(ns_err(name, "returning to the node"))?;
    let src = PathBuf::from(format!("/proc/self/fd/{}", own.as_raw_fd()));
    pin(name, &src, &server.mntns())
}

/// Remove the pins of whatever part of the server exists. The caller has
/// ended every process inside.
pub fn remove(server: &Server) -> Result<(), ServerError> {
    let name = server.name.as_str();
    let _ = std::fs::remove_file(server.ready_marker());
    unpin(name, &server.mntns())?;
    unpin(name, &server.utsns())?;
    unpin(name, &server.netns())?;
    match std::fs::remove_dir(server.dir()) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(ServerError::io("removing", server.dir())(e))
        }
        _ => Ok(()),
    }
}

/// Whether any part of the server exists.
pub fn any_part(server: &Server) -> bool {
    server.netns().exists() || server.dir().exists()
}

/// Whether /run/netns/NAME is a namespace nfs-server made (its other pins
/// are beside it), so that a name `ip netns add` took is never removed.
pub fn netns_is_ours(server: &Server) -> bool {
    !server.netns().exists() || server.dir().exists()
}

/// The inode numbers of the server's network and mount namespaces.
pub fn inodes(server: &Server) -> (Option<u64>, Option<u64>) {
    let ino = |p: PathBuf| std::fs::metadata(p).ok().map(|m| m.ino());
    (ino(server.netns()), ino(server.mntns()))
}

/// The network namespace file of the server, opened (for link creation).
pub fn open_netns(server: &Server) -> Result<File, ServerError> {
    File::open(server.netns()).map_err(ServerError::io("opening", server.netns()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_what_the_server_needs() {
        let export = Path::new("/srv/nfs/a");
        for keep in [
            "/",
            "/proc",
            "/proc/sys/fs/binfmt_misc",
            "/dev/pts",
            "/usr",
            "/var",
            "/srv",
            "/srv/nfs/a",
            "/etc",
        ] {
            assert!(kept(Path::new(keep), export), "{keep}");
        }
        for drop in [
            "/srv/nfs/b",
            "/run",
            "/run/netns/b",
            "/proc/fs/nfsd",
            "/home",
            "/srv/nfs/a/sub",
            "/var/lib/nfs",
            "/tmp",
        ] {
            assert!(!kept(Path::new(drop), export), "{drop}");
        }
    }
}
