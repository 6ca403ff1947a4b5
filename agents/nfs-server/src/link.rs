//! The server's interface on the node's network: a macvlan (bridge mode) on
//! the node's nic, created directly inside the server's network namespace,
//! and the namespace's loopback (lockd reaches statd through it). One
//! rtnetlink request each, on a connection opened in the namespace the
//! request is about.

use std::os::fd::{AsRawFd, BorrowedFd};

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{LinkFlags, MacVlanMode};
use rtnetlink::{Handle, LinkMacVlan, LinkUnspec};

use crate::error::ServerError;

fn nl(what: &'static str) -> impl Fn(rtnetlink::Error) -> ServerError {
    move |e| ServerError::Netlink(format!("{what}: {e}"))
}

/// Run one batch of requests on a connection in the current network
/// namespace (a current-thread runtime: the process stays single-threaded).
fn with_handle<T, F>(f: impl FnOnce(Handle) -> F) -> Result<T, ServerError>
where
    F: std::future::Future<Output = Result<T, ServerError>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| ServerError::Netlink(format!("runtime: {e}")))?;
    rt.block_on(async {
        let (conn, handle, _) = rtnetlink::new_connection()
            .map_err(|e| ServerError::Netlink(format!("netlink socket: {e}")))?;
        tokio::spawn(conn);
        f(handle).await
    })
}

/// Index and flags of the link called `name` in the current namespace.
async fn find(handle: &Handle, name: &str) -> Result<Option<(u32, LinkFlags)>, ServerError> {
    let mut req = std::pin::pin!(handle.link().get().match_name(name).execute());
    match req.try_next().await {
        Ok(m) => Ok(m.map(|m| (m.header.index, m.header.flags))),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::ENODEV => Ok(None),
        Err(e) => Err(nl("reading link")(e)),
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
    let fd = netns.as_raw_fd();
    with_handle(|handle| async move {
        let (index, _) = find(&handle, parent)
            .await?
            .ok_or_else(|| ServerError::NoNic(parent.to_owned()))?;
        let msg = LinkMacVlan::new(name, index, MacVlanMode::Bridge)
            .setns_by_fd(fd)
            .build();
        handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(nl("creating the macvlan"))
    })
}

/// Inside the server's namespace: name the interface created as `transit`
/// `name`, and bring it and `lo` up. Returns whether `name` exists.
pub fn bring_up(transit: &str, name: &str) -> Result<bool, ServerError> {
    with_handle(|handle| async move {
        if find(&handle, name).await?.is_none() {
            if let Some((index, _)) = find(&handle, transit).await? {
                handle
                    .link()
                    .set(LinkUnspec::new_with_index(index).name(name).build())
                    .execute()
                    .await
                    .map_err(nl("renaming the interface"))?;
            }
        }
        let mut found = false;
        for (link, wanted) in [("lo", true), (name, false)] {
            let Some((index, flags)) = find(&handle, link).await? else {
                if wanted {
                    return Err(ServerError::Netlink("the namespace has no loopback".into()));
                }
                continue;
            };
            found |= !wanted;
            if !flags.contains(LinkFlags::Up) {
                handle
                    .link()
                    .set(LinkUnspec::new_with_index(index).up().build())
                    .execute()
                    .await
                    .map_err(nl("setting a link up"))?;
            }
        }
        Ok(found)
    })
}
