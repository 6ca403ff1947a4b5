//! The server's interface on the node's network: a macvlan (bridge mode) on
//! the node's nic, created directly inside the server's network namespace,
//! and the namespace's loopback (lockd reaches statd through it). One
//! rtnetlink request each, on a connection opened in the namespace the
//! request is about.

use std::os::fd::{AsRawFd, BorrowedFd};

use rtnetlink::packet_route::link::{LinkFlags, MacVlanMode};
use rtnetlink::LinkMacVlan;
use rtnl::Rtnl;

use crate::error::ServerError;

impl From<rtnl::Error> for ServerError {
    fn from(e: rtnl::Error) -> Self {
        ServerError::Netlink(e.to_string())
    }
}

/// The name the interface is created under, unique on the node: the kernel
/// looks a new link's name up in the requesting namespace, where the final
/// name (eth0) usually exists already. It is renamed inside the server.
pub fn transit_name(server: &str) -> String {
    // FNV-1a: stable across runs and builds.
    let h = server.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("hsv{:08x}", h as u32)
}

/// From the node's namespace: create `name` on `parent`, inside the
/// namespace `netns`. Nothing is created when `parent` is missing.
pub fn create_macvlan(parent: &str, name: &str, netns: BorrowedFd<'_>) -> Result<(), ServerError> {
    let nl = Rtnl::connect()?;
    let index = nl
        .link(parent)?
        .ok_or_else(|| ServerError::NoNic(parent.to_owned()))?
        .header
        .index;
    let msg = LinkMacVlan::new(name, index, MacVlanMode::Bridge)
        .setns_by_fd(netns.as_raw_fd())
        .build();
    nl.run(nl.handle().link().add(msg).execute())
        .map_err(rtnl::failed("creating the macvlan"))?;
    Ok(())
}

/// Inside the server's namespace: name the interface created as `transit`
/// `name`, and bring it and `lo` up. Returns whether `name` exists.
pub fn bring_up(transit: &str, name: &str) -> Result<bool, ServerError> {
    let nl = Rtnl::connect()?;
    if nl.link(name)?.is_none() {
        if let Some(t) = nl.link(transit)? {
            nl.rename(t.header.index, name)?;
        }
    }
    let mut found = false;
    for (link, wanted) in [("lo", true), (name, false)] {
        let Some(m) = nl.link(link)? else {
            if wanted {
                return Err(ServerError::Netlink("the namespace has no loopback".into()));
            }
            continue;
        };
        found |= !wanted;
        if !m.header.flags.contains(LinkFlags::Up) {
            nl.set_up(m.header.index)?;
        }
    }
    Ok(found)
}
