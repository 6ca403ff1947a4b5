//! A virtual NFS server (ocf:handoff:nfs-server) is a set of namespaces on
//! one node: a network namespace, named like `ip netns` names them
//! (/run/netns/NAME) so that `ip netns exec` and ocf:handoff:vip find it, a
//! mount namespace (its own /run, /var/lib/nfs and nfsd filesystem) and a
//! UTS namespace (its host name). nfs-server creates them; export and the
//! administrator's tools enter them.

use std::fs::File;
use std::path::PathBuf;

use nix::sched::{setns, CloneFlags};
use ocf::{Logger, ParamValue};

pub mod lockd;

/// Where `ip netns` keeps named network namespaces.
pub const NETNS_DIR: &str = "/run/netns";
/// Where nfs-server keeps the other namespaces of each server. It is a
/// private mount of its own: the kernel refuses to pin a mount namespace
/// on a mount that propagates.
pub const SERVERS_DIR: &str = "/run/handoff/nfs-server";

/// The name of a virtual NFS server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerName(pub String);

impl ParamValue for ServerName {
    const PLACEHOLDER: &'static str = "NAME";

    fn parse_value(raw: &str) -> Result<Self, String> {
        let ok = !raw.is_empty()
            && raw.len() <= 63
            && raw.as_bytes()[0].is_ascii_alphanumeric()
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(ServerName(raw.to_owned()))
        } else {
            Err("a name of up to 63 letters, digits, '-', '_' and '.', starting with a letter or digit, e.g. nfs-a".into())
        }
    }
}

/// Why a server's namespaces cannot be entered.
#[derive(Debug, thiserror::Error)]
pub enum EnterError {
    /// The server is not running on this node.
    #[error("the virtual NFS server {0} is not running on this node (no {1})")]
    Missing(String, PathBuf),
    /// A namespace exists but cannot be entered.
    #[error("cannot enter the {kind} namespace of virtual NFS server {name}: {why}")]
    Setns {
        /// The server.
        name: String,
        /// net, mnt or uts.
        kind: &'static str,
        /// The error.
        why: String,
    },
}

/// One virtual server's namespace files.
#[derive(Clone, Debug)]
pub struct Server {
    /// Its name.
    pub name: String,
}

impl Server {
    /// The server called `name`.
    pub fn new(name: &ServerName) -> Self {
        Server {
            name: name.0.clone(),
        }
    }

    /// Its network namespace file.
    pub fn netns(&self) -> PathBuf {
        PathBuf::from(NETNS_DIR).join(&self.name)
    }

    /// The directory of its other namespace files.
    pub fn dir(&self) -> PathBuf {
        PathBuf::from(SERVERS_DIR).join(&self.name)
    }

    /// Its mount namespace file.
    pub fn mntns(&self) -> PathBuf {
        self.dir().join("mnt")
    }

    /// Its UTS namespace file.
    pub fn utsns(&self) -> PathBuf {
        self.dir().join("uts")
    }

    /// Written last when the namespaces are complete: without it they are
    /// the remains of a start that was interrupted.
    pub fn ready_marker(&self) -> PathBuf {
        self.dir().join("ready")
    }

    /// Whether its namespaces are complete.
    pub fn is_ready(&self) -> bool {
        self.ready_marker().exists()
    }

    /// Move this process into the server's network and mount namespaces
    /// (and UTS with `uts`). It must be single-threaded: the kernel refuses
    /// a mount namespace change to a process that shares its filesystem
    /// context with other threads. `log` keeps writing where it wrote.
    pub fn enter(&self, uts: bool, log: &Logger) -> Result<(), EnterError> {
        log.pin();
        if !self.is_ready() {
            return Err(EnterError::Missing(self.name.clone(), self.ready_marker()));
        }
        let mut list = vec![
            ("net", self.netns(), CloneFlags::CLONE_NEWNET),
            ("mnt", self.mntns(), CloneFlags::CLONE_NEWNS),
        ];
        if uts {
            list.push(("uts", self.utsns(), CloneFlags::CLONE_NEWUTS));
        }
        // Open them all first: after the mount namespace changes, these
        // paths would resolve inside the server.
        let mut files = Vec::new();
        for (kind, path, flag) in list {
            let f = File::open(&path).map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => EnterError::Missing(self.name.clone(), path),
                _ => EnterError::Setns {
                    name: self.name.clone(),
                    kind,
                    why: e.to_string(),
                },
            })?;
            files.push((kind, f, flag));
        }
        for (kind, f, flag) in files {
            setns(f, flag).map_err(|e| EnterError::Setns {
                name: self.name.clone(),
                kind,
                why: e.to_string(),
            })?;
        }
        Ok(())
    }
}

/// The namespaces this process started in, kept open to come back to.
pub struct Node {
    net: File,
    mnt: File,
    uts: File,
}

impl Node {
    /// Remember the current namespaces.
    pub fn current() -> std::io::Result<Node> {
        let f = |kind: &str| File::open(format!("/proc/self/ns/{kind}"));
        Ok(Node {
            net: f("net")?,
            mnt: f("mnt")?,
            uts: f("uts")?,
        })
    }

    /// The node's mount namespace.
    pub fn mnt(&self) -> &File {
        &self.mnt
    }

    /// The node's network namespace.
    pub fn net(&self) -> &File {
        &self.net
    }

    /// Return to them.
    pub fn back(&self) -> nix::Result<()> {
        setns(&self.mnt, CloneFlags::CLONE_NEWNS)?;
        setns(&self.net, CloneFlags::CLONE_NEWNET)?;
        setns(&self.uts, CloneFlags::CLONE_NEWUTS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for good in ["nfs-a", "A1", "srv_2.example"] {
            assert!(ServerName::parse_value(good).is_ok(), "{good}");
        }
        for bad in ["", "-a", ".x", "a b", "a/b", "a;b", &"x".repeat(64)] {
            assert!(ServerName::parse_value(bad).is_err(), "{bad:?}");
        }
        let s = Server::new(&ServerName("nfs-a".into()));
        assert_eq!(s.netns(), PathBuf::from("/run/netns/nfs-a"));
        assert_eq!(
            s.mntns(),
            PathBuf::from("/run/handoff/nfs-server/nfs-a/mnt")
        );
    }
}
