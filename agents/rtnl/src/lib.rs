//! One rtnetlink connection per action, shared by vip and nfs-server: the
//! async client runs on a current-thread runtime (an agent stays
//! single-threaded), each request to completion before the next, on a
//! socket opened in the network namespace the process is in when it
//! connects. Link look-ups and changes both agents make live here; what
//! only one needs (addresses and routes for vip, the macvlan for
//! nfs-server) stays with it, on the same connection.

use std::future::Future;

use futures::TryStreamExt;
use rtnetlink::packet_route::link::LinkMessage;
use rtnetlink::LinkUnspec;

pub use rtnetlink::Handle;

/// A request that failed, or a connection that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The runtime could not be built.
    #[error("netlink runtime: {0}")]
    Runtime(std::io::Error),
    /// The netlink socket could not be opened.
    #[error("netlink socket: {0}")]
    Socket(std::io::Error),
    /// The kernel refused a request, or it could not be sent.
    #[error("{what}: {source}")]
    Request {
        /// What was asked, for the exit reason.
        what: &'static str,
        /// What rtnetlink said.
        source: rtnetlink::Error,
    },
}

/// For `map_err`: `what` failed.
pub fn failed(what: &'static str) -> impl Fn(rtnetlink::Error) -> Error {
    move |source| Error::Request { what, source }
}

/// Whether the kernel answered `-errno` (an errno constant from libc).
pub fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.raw_code() == -errno)
}

/// An open connection in the current network namespace.
pub struct Rtnl {
    rt: tokio::runtime::Runtime,
    handle: Handle,
}

impl Rtnl {
    /// Open a connection in the current network namespace.
    pub fn connect() -> Result<Self, Error> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(Error::Runtime)?;
        let (conn, handle, _) = rt
            .block_on(async { rtnetlink::new_connection() })
            .map_err(Error::Socket)?;
        rt.spawn(conn);
        Ok(Self { rt, handle })
    }

    /// The client, to build requests with.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Run a request (or a batch of them) to completion.
    pub fn run<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The link called `name`, if there is one.
    pub fn link(&self, name: &str) -> Result<Option<LinkMessage>, Error> {
        let req = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        self.first_link(req)
    }

    /// The link with index `index`, if there is one.
    pub fn link_by_index(&self, index: u32) -> Result<Option<LinkMessage>, Error> {
        let req = self.handle.link().get().match_index(index).execute();
        self.first_link(req)
    }

    fn first_link(
        &self,
        req: impl futures::Stream<Item = Result<LinkMessage, rtnetlink::Error>>,
    ) -> Result<Option<LinkMessage>, Error> {
        let mut req = std::pin::pin!(req);
        match self.run(req.try_next()) {
            Ok(m) => Ok(m),
            // ENODEV: no such link.
            Err(e) if is_errno(&e, libc::ENODEV) => Ok(None),
            Err(e) => Err(failed("reading a link")(e)),
        }
    }

    /// Set the link administratively up.
    pub fn set_up(&self, index: u32) -> Result<(), Error> {
        let msg = LinkUnspec::new_with_index(index).up().build();
        self.run(self.handle.link().set(msg).execute())
            .map_err(failed("setting a link up"))
    }

    /// Rename the link (it must be down).
    pub fn rename(&self, index: u32, name: &str) -> Result<(), Error> {
        let msg = LinkUnspec::new_with_index(index)
            .name(name.to_owned())
            .build();
        self.run(self.handle.link().set(msg).execute())
            .map_err(failed("renaming a link"))
    }
}
