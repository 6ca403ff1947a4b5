//! The parameters of ocf:handoff:nfs-server.

use std::net::IpAddr;

use ocf::{AbsPath, Bounded, HostName, Nice, Params, RelDir};
use vserver::ServerName;

/// An interface name (at most 15 bytes, as the kernel allows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IfName(pub String);

impl ocf::ParamValue for IfName {
    const PLACEHOLDER: &'static str = "IFNAME";

    fn parse_value(raw: &str) -> Result<Self, String> {
        let ok = !raw.is_empty()
            && raw.len() <= 15
            && raw != "."
            && raw != ".."
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(IfName(raw.to_owned()))
        } else {
            Err("an interface name: up to 15 letters, digits, '-', '_' or '.', e.g. eth0".into())
        }
    }
}

/// One NFS version nfsd can serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Version {
    /// NFSv3 (with NLM locking).
    V3,
    /// NFSv4.0, minor version 0 (4.0 clients reclaim through
    /// SETCLIENTID, without RECLAIM_COMPLETE).
    V40,
    /// NFSv4.1.
    V41,
    /// NFSv4.2.
    V42,
}

impl Version {
    /// Every version, in order.
    pub const ALL: [Version; 4] = [Version::V3, Version::V40, Version::V41, Version::V42];

    /// As written in `versions` and given to rpc.nfsd.
    pub fn text(self) -> &'static str {
        match self {
            Version::V3 => "3",
            Version::V40 => "4.0",
            Version::V41 => "4.1",
            Version::V42 => "4.2",
        }
    }

    /// Major and minor number.
    pub fn numbers(self) -> (u32, u32) {
        match self {
            Version::V3 => (3, 0),
            Version::V40 => (4, 0),
            Version::V41 => (4, 1),
            Version::V42 => (4, 2),
        }
    }
}

/// The NFS versions a server serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versions(pub Vec<Version>);

impl Versions {
    /// Whether `v` is served.
    pub fn has(&self, v: Version) -> bool {
        self.0.contains(&v)
    }

    /// Whether any NFSv4 minor version is served.
    pub fn any_v4(&self) -> bool {
        self.0.iter().any(|v| *v != Version::V3)
    }
}

impl std::fmt::Display for Versions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list: Vec<&str> = self.0.iter().map(|v| v.text()).collect();
        f.write_str(&list.join(","))
    }
}

impl ocf::ParamValue for Versions {
    const PLACEHOLDER: &'static str = "LIST";

    fn parse_value(raw: &str) -> Result<Self, String> {
        let mut list = Vec::new();
        for word in raw.split(',').map(str::trim) {
            let add: &[Version] = match word {
                "3" => &[Version::V3],
                "4" => &[Version::V40, Version::V41, Version::V42],
                "4.0" => &[Version::V40],
                "4.1" => &[Version::V41],
                "4.2" => &[Version::V42],
                _ => {
                    return Err(format!(
                        "{word:?} is not an NFS version this server serves: a comma-separated list of 3, 4.0, 4.1, 4.2 (4 is all three minors), e.g. 3,4.1,4.2"
                    ))
                }
            };
            list.extend_from_slice(add);
        }
        list.sort();
        list.dedup();
        Ok(Versions(list))
    }
}

/// The parameters of ocf:handoff:nfs-server.
#[derive(Debug, Params)]
pub struct ServerParams {
    /// The virtual server's name: its network namespace is
    /// /run/netns/NAME (give the same name to the group's vip as
    /// network_namespace and to its export as nfs_server), and its host
    /// name inside is NAME.
    #[param(short = "Virtual server name", unique)]
    pub name: ServerName,

    /// The exported filesystem (its mount point, mounted by the group's fs
    /// resource). The server's state (statd's client records, the export
    /// table, the NSM state number) lives on it, so it moves with it.
    #[param(short = "Exported filesystem", unique)]
    pub directory: AbsPath,

    /// The export's virtual IP (the group's vip resource adds it inside the
    /// server's namespace). Start sends reboot notifications from it, so
    /// that the export's clients reclaim their locks here; monitor checks
    /// that nfsd listens on it.
    #[param(short = "Virtual IP of the export")]
    pub ip: IpAddr,

    /// The node's interface the server's own interface sits on (a macvlan
    /// in bridge mode: its own MAC address on the node's network).
    #[param(short = "Node interface")]
    pub nic: IfName,

    /// The name of the server's interface inside its namespace (give it as
    /// nic to the group's vip).
    #[param(short = "Interface inside the server", default = "eth0")]
    pub interface: IfName,

    /// The name sent in reboot notifications; clients match it (or the
    /// virtual IP it comes from) against the server they locked on. The
    /// server's namespace resolves it to ip by itself (its own /etc/hosts),
    /// so no node-wide name service entry is needed. Empty: name.
    #[param(short = "Name in reboot notifications")]
    pub notify_name: Option<HostName>,

    /// Where, inside the exported filesystem, the server keeps its state
    /// (it becomes the server's /var/lib/nfs).
    #[param(short = "State directory on the export", default = ".handoff-nfs")]
    pub state_dir: RelDir,

    /// The NFS versions served, comma-separated: 3, 4.0, 4.1, 4.2 (4 is
    /// all three minors). NFSv4 clients reclaim their state after a move
    /// as NFSv3 clients do, through the client records nfsdcld keeps on
    /// the export, under the same server scope (the server's name) on
    /// every node. 4.0 is off by default: its clients reclaim without
    /// saying when they are done, so a takeover cannot end its grace
    /// period early for them.
    #[param(short = "NFS versions", default = "3,4.1,4.2")]
    pub versions: Versions,

    /// nfsd threads of this server.
    #[param(short = "nfsd threads", default = "8", reloadable)]
    pub threads: Bounded<1, 1024>,

    /// Nice value of this server's rpc.statd and rpc.mountd. lockd is one
    /// kernel thread for every server on the node, and it waits for them:
    /// up to 1 s for mountd to answer about a client it has not seen yet,
    /// and for statd to record a client (SM_MON) before granting its first
    /// lock. When a node's CPUs are busy (a drain, several takeovers at
    /// once) a higher priority keeps that wait short, and with it the
    /// NFSv3 lock operations of every other export on the node. 0 is the
    /// usual priority.
    #[param(short = "Nice value of statd and mountd", default = "-10", reloadable)]
    pub daemon_nice: Nice,

    /// Seconds the export's clients get to reclaim their locks and NFSv4
    /// state after a start, counted from the moment they are told to (the
    /// virtual IP is up, SM_NOTIFY sent), however long the rest of the
    /// group takes to start. Meanwhile new locks on this export wait; the
    /// grace period is this server's alone, and ends early once every
    /// client is back. lockd on this kernel holds NFSv3 reclaims open for
    /// at most 240 s after nfsd starts; a longer value is cut there for
    /// NFSv3 clients.
    #[param(short = "Grace period (seconds)", default = "90")]
    pub grace_time: Bounded<5, 3600>,

    /// NFSv4 lease time of this server, in seconds. Keep it longer than a
    /// takeover after a crash takes, fencing included: a Linux NFSv4.1
    /// client gives up its connection one lease after the server went
    /// quiet and then reconnects on its own back-off (up to 16 s), which
    /// the taking node's tickles cannot shorten.
    #[param(short = "Lease time (seconds)", default = "90")]
    pub lease_time: Bounded<10, 3600>,

    /// Tickle the export's clients after a start: monitor and stop record
    /// the clients' TCP connections to ip on the export, and once ip is up
    /// on the taking node each recorded connection gets three tickle ACKs
    /// (sequence 0, 0.6 s apart). The client's answer draws a reset from
    /// this node's kernel and it reconnects at once, instead of after its
    /// TCP back-off (seconds, a minute when idle).
    #[param(short = "Tickle clients after a move", default = "true", reloadable)]
    pub tickle: bool,
}

impl ServerParams {
    /// The name notifications carry.
    pub fn notify_name(&self) -> &str {
        self.notify_name
            .as_ref()
            .map(|n| n.0.as_str())
            .unwrap_or(&self.name.0)
    }

    /// The server's state directory on the export.
    pub fn state_path(&self) -> std::path::PathBuf {
        self.directory.join(&self.state_dir.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocf::ParamValue;

    #[test]
    fn versions() {
        let v = Versions::parse_value("4.2,3, 4.1").unwrap();
        assert_eq!(v.0, [Version::V3, Version::V41, Version::V42]);
        assert_eq!(v.to_string(), "3,4.1,4.2");
        assert!(v.any_v4() && !v.has(Version::V40));
        assert_eq!(Versions::parse_value("4").unwrap().0.len(), 3);
        assert!(!Versions::parse_value("3").unwrap().any_v4());
        for bad in ["2", "4.3", "3,", "v3"] {
            assert!(Versions::parse_value(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn interface_names() {
        assert!(IfName::parse_value("eth0").is_ok());
        assert!(IfName::parse_value("0123456789abcdef").is_err());
        assert!(IfName::parse_value("a b").is_err());
        assert!(IfName::parse_value("..").is_err());
    }
}
