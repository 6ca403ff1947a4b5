//! The parameters of ocf:handoff:nfs-server.

use std::net::IpAddr;

use ocf::{AbsPath, Bounded, HostName, Params, RelDir};
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

    /// nfsd threads of this server.
    #[param(short = "nfsd threads", default = "8", reloadable)]
    pub threads: Bounded<1, 1024>,

    /// Seconds of the grace period a start opens, during which the
    /// export's clients reclaim their locks and new locks on this export
    /// wait. It is this server's alone: no other export on the node waits.
    #[param(short = "Grace period (seconds)", default = "90")]
    pub grace_time: Bounded<5, 3600>,

    /// NFSv4 lease time of this server, in seconds.
    #[param(short = "Lease time (seconds)", default = "90")]
    pub lease_time: Bounded<10, 3600>,
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
    fn interface_names() {
        assert!(IfName::parse_value("eth0").is_ok());
        assert!(IfName::parse_value("0123456789abcdef").is_err());
        assert!(IfName::parse_value("a b").is_err());
        assert!(IfName::parse_value("..").is_err());
    }
}
