//! The parameters of ocf:handoff:nlm-locks.

use std::net::IpAddr;

use ocf::{AbsPath, ParamValue, Params};

ocf::choice! {
    /// How the locks are dropped.
    pub enum Backend {
        /// kmod when /dev/folocks exists, else procfs.
        Auto = "auto",
        /// /proc/fs/nfsd/unlock_filesystem (and unlock_ip).
        Procfs = "procfs",
        /// The handoff kernel module's /dev/folocks.
        Kmod = "kmod",
    }
}

ocf::choice! {
    /// How the taking node lets clients reclaim.
    pub enum Grace {
        /// Use the grace period the node's NFS server is in, if any.
        Existing = "existing",
        /// Restart this node's nfsd for a fresh grace period when it is not
        /// in one, and only when no export on this node holds locks.
        Restart = "restart",
    }
}

/// The virtual IP of the export.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ip(pub IpAddr);

impl ParamValue for Ip {
    const PLACEHOLDER: &'static str = "ADDRESS";

    fn parse_value(raw: &str) -> Result<Self, String> {
        raw.trim()
            .parse()
            .map(Ip)
            .map_err(|_| "not an IP address; give the export's virtual IP, e.g. 192.0.2.100".into())
    }
}

/// A host name for sm-notify -v.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostName(pub String);

impl ParamValue for HostName {
    const PLACEHOLDER: &'static str = "NAME";

    fn parse_value(raw: &str) -> Result<Self, String> {
        let ok = !raw.is_empty()
            && raw.len() <= 253
            && !raw.starts_with('-')
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'));
        if ok {
            Ok(HostName(raw.to_owned()))
        } else {
            Err(
                "a host name or address: letters, digits, '.', '-' (no spaces or shell characters)"
                    .into(),
            )
        }
    }
}

/// A directory relative to the exported filesystem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelDir(pub String);

impl ParamValue for RelDir {
    const PLACEHOLDER: &'static str = "DIR";

    fn parse_value(raw: &str) -> Result<Self, String> {
        ocf::param::check_single_line(raw)?;
        if raw.is_empty() || raw.starts_with('/') || raw.split('/').any(|s| s == ".." || s == ".") {
            return Err("a directory inside the exported filesystem, relative to it (no leading /, no . or ..)".into());
        }
        Ok(RelDir(raw.trim_end_matches('/').to_owned()))
    }
}

/// The parameters of ocf:handoff:nlm-locks.
#[derive(Debug, Params)]
pub struct NlmParams {
    /// The exported filesystem (its mount point). Stop drops the NLM locks
    /// of this filesystem and of no other.
    #[param(short = "Exported filesystem", unique)]
    pub directory: AbsPath,

    /// The export's virtual IP. Start sends reboot notifications (SM_NOTIFY)
    /// from it; with unlock_ip, stop also drops the locks clients took
    /// through it.
    #[param(short = "Virtual IP of the export")]
    pub ip: Ip,

    /// The name clients know the virtual IP by. sm-notify sends it as the
    /// server's name and refuses a bare address, so ip must resolve to a
    /// name on this node (/etc/hosts or DNS) when this is left empty.
    #[param(short = "Name of the virtual IP")]
    pub notify_name: Option<HostName>,

    /// How stop drops the locks: procfs writes the mount point to
    /// /proc/fs/nfsd/unlock_filesystem; kmod asks the handoff kernel
    /// module (/dev/folocks), which checks the target and reports whether
    /// every lock went; auto uses kmod when the module is loaded, else
    /// procfs. The backend that acted is logged.
    #[param(short = "Lock-drop backend", default = "auto", reloadable)]
    pub backend: Backend,

    /// Where the export keeps its clients' NSM records, inside the exported
    /// filesystem so that they move with it. Stop (and every monitor) copies
    /// this node's records there; start notifies the clients found there.
    #[param(
        short = "NSM records on the export",
        default = ".handoff-nsm",
        reloadable
    )]
    pub statd_dir: RelDir,

    /// Also drop the locks clients took through ip (/proc/fs/nfsd/unlock_ip).
    /// Before a 2026 fix to lockd's address match this dropped nothing; stop
    /// counts the locks before and after and says when it had no effect.
    #[param(
        short = "Also drop locks by server address",
        default = "false",
        reloadable
    )]
    pub unlock_ip: bool,

    /// Clients can reclaim only while the taking node is in a grace period.
    /// existing: use the one the node's NFS server is in (it has just
    /// started), else warn that clients cannot reclaim. restart: when not
    /// in grace, restart this node's nfsd for a fresh one — refused when an
    /// export on this node holds locks, which a restart would drop.
    #[param(
        short = "Grace period on the taking node",
        default = "existing",
        reloadable
    )]
    pub grace: Grace,

    /// The node's NFS state directory (where rpc.statd keeps sm/).
    #[param(short = "NFS state directory", default = "/var/lib/nfs", reloadable)]
    pub nfs_state_dir: AbsPath,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert!(Ip::parse_value("192.0.2.100").is_ok());
        assert!(Ip::parse_value("nfs-a").is_err());
        assert!(HostName::parse_value("nfs-a.example.com").is_ok());
        for bad in ["", "-v", "a b", "a;b"] {
            assert!(HostName::parse_value(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            RelDir::parse_value(".handoff-nsm/"),
            Ok(RelDir(".handoff-nsm".into()))
        );
        for bad in ["/abs", "../up", "a/./b", ""] {
            assert!(RelDir::parse_value(bad).is_err(), "{bad:?}");
        }
    }
}
