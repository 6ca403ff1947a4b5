//! Entering a named network namespace (/run/netns/NAME, as `ip netns`
//! and ocf:handoff:nfs-server create them) before any socket is opened.

use std::fs::File;
use std::path::Path;

use nix::sched::{setns, CloneFlags};

use crate::error::VipError;

/// Move this process into the namespace; `NoNetns` when it does not exist.
pub fn enter(name: &str) -> Result<(), VipError> {
    let path = Path::new(vserver::NETNS_DIR).join(name);
    let f = File::open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => VipError::NoNetns(name.to_owned()),
        _ => VipError::Netns {
            name: name.to_owned(),
            why: e.to_string(),
        },
    })?;
    setns(f, CloneFlags::CLONE_NEWNET).map_err(|e| VipError::Netns {
        name: name.to_owned(),
        why: e.to_string(),
    })
}
