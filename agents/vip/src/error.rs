//! What can go wrong, with the OCF exit code each failure maps to.

use std::net::IpAddr;

use ocf::{OcfError, Status};

/// A failure of a vip action.
#[derive(Debug, thiserror::Error)]
pub enum VipError {
    /// A netlink request failed.
    #[error("netlink: {0}")]
    Netlink(String),
    /// The address exists already (raced with something else adding it).
    #[error("{0} was added by something else at the same time")]
    Exists(IpAddr),
    /// The interface does not exist here.
    #[error("interface {0} does not exist on this node")]
    NoSuchNic(String),
    /// The named network namespace does not exist.
    #[error("network namespace {0} does not exist on this node (/run/netns/{0})")]
    NoNetns(String),
    /// Entering the network namespace failed.
    #[error("cannot enter network namespace {name}: {why}")]
    Netns { name: String, why: String },
    /// No route tells where the address belongs.
    #[error("no route on this node contains {ip}{on}; set nic and cidr_netmask")]
    NoRoute { ip: IpAddr, on: String },
    /// Several interfaces are equally good.
    #[error("{ip} matches routes on {nics} equally well; set nic to choose one")]
    Ambiguous { ip: IpAddr, nics: String },
    /// A parameter that does not fit the address family.
    #[error("{0}")]
    Family(String),
    /// IPv6 is disabled on the interface.
    #[error("IPv6 is disabled on {0} (net.ipv6.conf.{0}.disable_ipv6=1); it cannot carry an IPv6 address")]
    NoIpv6(String),
    /// Another host answered the ARP probe.
    #[error("{ip} is already in use on {nic} by {mac}: another host answered the ARP probe; refusing to start (set duplicate_check=false only if that host is this resource's own stale copy)")]
    InUse {
        ip: IpAddr,
        nic: String,
        mac: String,
    },
    /// IPv6 duplicate address detection failed.
    #[error("{ip} is already in use on {nic}{by}: duplicate address detection failed; the address was removed again")]
    DadFailed { ip: IpAddr, nic: String, by: String },
    /// DAD did not finish in time.
    #[error(
        "duplicate address detection for {ip} on {nic} did not finish within the start timeout"
    )]
    DadTimeout { ip: IpAddr, nic: String },
    /// The address is on an unexpected interface.
    #[error("{ip} is already on {other}, not on {nic}")]
    Elsewhere {
        ip: IpAddr,
        nic: String,
        other: String,
    },
    /// The link is down.
    #[error("{nic} is down ({why}); {ip} is unreachable")]
    LinkDown {
        nic: String,
        ip: IpAddr,
        why: &'static str,
    },
    /// An address marked dadfailed.
    #[error("{ip} on {nic} is marked dadfailed: another host uses it")]
    MarkedDadFailed { ip: IpAddr, nic: String },
    /// A packet socket failed.
    #[error("{what}: {source}")]
    Socket {
        what: &'static str,
        source: std::io::Error,
    },
    /// The interface of a running address has disappeared.
    #[error("interface {nic} of {ip} no longer exists on this node; {ip} is down with it")]
    NicGone { ip: IpAddr, nic: String },
    /// The address is still present after stop.
    #[error("{ip} is still on {nic} after it was removed")]
    StillThere { ip: IpAddr, nic: String },
}

impl From<VipError> for OcfError {
    fn from(e: VipError) -> Self {
        use VipError::*;
        let status = match &e {
            // IPaddr2 says OCF_ERR_CONFIGURED for a missing nic, which
            // stops the resource on every node; a nic missing here (a
            // renamed interface, a node set up differently) bans only
            // this node. Deliberate, see the README.
            NoSuchNic(_) | NoNetns(_) => Status::Installed,
            Family(_) => Status::Configured,
            // As IPaddr2: findif's failures are OCF_ERR_GENERIC. Listed
            // one by one, so that a new variant must choose its class.
            NoRoute { .. }
            | Ambiguous { .. }
            | NoIpv6(_)
            | Netlink(_)
            | Exists(_)
            | Netns { .. }
            | InUse { .. }
            | DadFailed { .. }
            | DadTimeout { .. }
            | Elsewhere { .. }
            | LinkDown { .. }
            | MarkedDadFailed { .. }
            | Socket { .. }
            | NicGone { .. }
            | StillThere { .. } => Status::Generic,
        };
        OcfError::new(status, e.to_string())
    }
}
