//! nfsd's generic netlink family (`nfsd`, version 1; kernel 6.10 and
//! later): versions, listeners, threads, grace and lease time and the
//! server scope, set in one request each on a socket of the network
//! namespace they are about. It is what nfs-utils' nfsdctl speaks; it sets
//! the scope explicitly, needs no user-space program, and touches nothing
//! outside the namespace. Where the kernel lacks it, start falls back to
//! rpc.nfsd and the nfsd filesystem (see nfsd.rs).

use std::net::SocketAddr;

use netlink_packet_core::{
    DecodeError, Emitable, NetlinkHeader, NetlinkMessage, NetlinkPayload, Nla,
    ParseableParametrized, NLA_F_NESTED, NLM_F_ACK, NLM_F_REQUEST,
};
use netlink_packet_generic::ctrl::nlas::{GenlCtrlAttrs, OpAttrs};
use netlink_packet_generic::ctrl::{GenlCtrl, GenlCtrlCmd};
use netlink_packet_generic::{GenlFamily, GenlHeader, GenlMessage};
use netlink_sys::{protocols::NETLINK_GENERIC, Socket, SocketAddr as NlAddr};

use crate::params::{Version, Versions};

// From the kernel's uapi/linux/nfsd_netlink.h.
const CMD_THREADS_SET: u8 = 2;
const CMD_VERSION_SET: u8 = 4;
const CMD_LISTENER_SET: u8 = 6;
const A_SERVER_THREADS: u16 = 1;
const A_SERVER_GRACETIME: u16 = 2;
const A_SERVER_LEASETIME: u16 = 3;
const A_SERVER_SCOPE: u16 = 4;
const A_SERVER_PROTO_VERSION: u16 = 1;
const A_VERSION_MAJOR: u16 = 1;
const A_VERSION_MINOR: u16 = 2;
const A_VERSION_ENABLED: u16 = 3;
const A_SERVER_SOCK_ADDR: u16 = 1;
const A_SOCK_ADDR: u16 = 1;
const A_SOCK_TRANSPORT_NAME: u16 = 2;

/// One attribute of a request.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Attr {
    U32(u16, u32),
    Str(u16, String),
    Bytes(u16, Vec<u8>),
    Flag(u16),
    Nested(u16, Vec<Attr>),
}

impl Nla for Attr {
    fn value_len(&self) -> usize {
        match self {
            Attr::U32(..) => 4,
            Attr::Str(_, s) => s.len() + 1,
            Attr::Bytes(_, b) => b.len(),
            Attr::Flag(_) => 0,
            Attr::Nested(_, list) => list.iter().map(Emitable::buffer_len).sum(),
        }
    }

    fn kind(&self) -> u16 {
        match self {
            Attr::U32(k, _) | Attr::Str(k, _) | Attr::Bytes(k, _) | Attr::Flag(k) => *k,
            Attr::Nested(k, _) => *k | NLA_F_NESTED,
        }
    }

    fn emit_value(&self, buf: &mut [u8]) {
        match self {
            Attr::U32(_, v) => buf[..4].copy_from_slice(&v.to_ne_bytes()),
            Attr::Str(_, s) => {
                buf[..s.len()].copy_from_slice(s.as_bytes());
                buf[s.len()] = 0;
            }
            Attr::Bytes(_, b) => buf[..b.len()].copy_from_slice(b),
            Attr::Flag(_) => {}
            Attr::Nested(_, list) => {
                let mut at = 0;
                for a in list {
                    a.emit(&mut buf[at..]);
                    at += a.buffer_len();
                }
            }
        }
    }
}

/// A request of the nfsd family (its replies are only acknowledgements).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Request {
    cmd: u8,
    attrs: Vec<Attr>,
}

impl GenlFamily for Request {
    fn family_name() -> &'static str {
        "nfsd"
    }

    fn command(&self) -> u8 {
        self.cmd
    }

    fn version(&self) -> u8 {
        1
    }
}

impl Emitable for Request {
    fn buffer_len(&self) -> usize {
        self.attrs.iter().map(Emitable::buffer_len).sum()
    }

    fn emit(&self, buf: &mut [u8]) {
        let mut at = 0;
        for a in &self.attrs {
            a.emit(&mut buf[at..]);
            at += a.buffer_len();
        }
    }
}

impl ParseableParametrized<[u8], GenlHeader> for Request {
    fn parse_with_param(_buf: &[u8], header: GenlHeader) -> Result<Self, DecodeError> {
        Ok(Request {
            cmd: header.cmd,
            attrs: Vec::new(),
        })
    }
}

/// A socket address as the kernel's struct sockaddr_in / sockaddr_in6.
fn sockaddr(addr: SocketAddr) -> Vec<u8> {
    match addr {
        SocketAddr::V4(a) => {
            let mut b = Vec::with_capacity(16);
            b.extend_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
            b.extend_from_slice(&a.port().to_be_bytes());
            b.extend_from_slice(&a.ip().octets());
            b.extend_from_slice(&[0; 8]);
            b
        }
        SocketAddr::V6(a) => {
            let mut b = Vec::with_capacity(28);
            b.extend_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
            b.extend_from_slice(&a.port().to_be_bytes());
            b.extend_from_slice(&a.flowinfo().to_be_bytes());
            b.extend_from_slice(&a.ip().octets());
            b.extend_from_slice(&a.scope_id().to_ne_bytes());
            b
        }
    }
}

/// The nfsd family of the current network namespace.
pub struct Nfsd {
    sock: Socket,
    id: u16,
    seq: u32,
}

/// The commands start needs; a kernel whose family lacks one (6.7 to 6.9
/// have only rpc-status-get) is configured the old way.
const NEEDED: [u8; 3] = [CMD_VERSION_SET, CMD_LISTENER_SET, CMD_THREADS_SET];

/// Why the family cannot configure nfsd here.
#[derive(Debug)]
pub enum Unusable {
    /// The kernel has no nfsd family.
    Missing,
    /// It lacks commands start needs (their numbers).
    Lacks(Vec<u8>),
    /// Asking failed.
    Io(std::io::Error),
}

impl std::fmt::Display for Unusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unusable::Missing => f.write_str("the kernel has no nfsd netlink family"),
            Unusable::Lacks(cmds) => write!(f, "its nfsd netlink family lacks commands {cmds:?}"),
            Unusable::Io(e) => write!(f, "asking for the nfsd netlink family: {e}"),
        }
    }
}

impl Nfsd {
    /// Open the family in the current network namespace.
    pub fn open() -> Result<Nfsd, Unusable> {
        Self::try_open().map_err(Unusable::Io)?
    }

    fn try_open() -> std::io::Result<Result<Nfsd, Unusable>> {
        let mut sock = Socket::new(NETLINK_GENERIC)?;
        sock.bind_auto()?;
        sock.connect(&NlAddr::new(0, 0))?;
        let mut nl = Nfsd {
            sock,
            id: 0,
            seq: 0,
        };
        let ask = GenlCtrl {
            cmd: GenlCtrlCmd::GetFamily,
            nlas: vec![GenlCtrlAttrs::FamilyName("nfsd".into())],
        };
        let reply = match nl.exchange(GenlMessage::from_payload(ask)) {
            Ok(r) => r,
            // ENOENT: no such family.
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(Err(Unusable::Missing)),
            Err(e) => return Err(e),
        };
        let Some(reply) = reply else {
            return Ok(Err(Unusable::Missing));
        };
        let mut ops = Vec::new();
        for nla in reply.payload.nlas {
            match nla {
                GenlCtrlAttrs::FamilyId(id) => nl.id = id,
                GenlCtrlAttrs::Ops(list) => {
                    ops.extend(list.into_iter().flatten().filter_map(|a| match a {
                        OpAttrs::Id(id) => Some(id),
                        OpAttrs::Flags(_) => None,
                    }))
                }
                _ => {}
            }
        }
        if nl.id == 0 {
            return Ok(Err(Unusable::Missing));
        }
        let lacks: Vec<u8> = NEEDED
            .iter()
            .copied()
            .filter(|c| !ops.contains(&u32::from(*c)))
            .collect();
        Ok(if lacks.is_empty() {
            Ok(nl)
        } else {
            Err(Unusable::Lacks(lacks))
        })
    }

    /// Send one request and wait for its answer: the reply message, if the
    /// request has one, or an error with the kernel's errno.
    fn exchange<F>(&mut self, mut msg: GenlMessage<F>) -> std::io::Result<Option<GenlMessage<F>>>
    where
        F: GenlFamily + Emitable + ParseableParametrized<[u8], GenlHeader> + std::fmt::Debug,
    {
        if self.id != 0 {
            msg.set_resolved_family_id(self.id);
        }
        self.seq += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | NLM_F_ACK;
        header.sequence_number = self.seq;
        let mut nl = NetlinkMessage::new(header, NetlinkPayload::from(msg));
        nl.finalize();
        let mut buf = vec![0; nl.buffer_len()];
        nl.serialize(&mut buf);
        self.sock.send(&buf, 0)?;
        let mut reply = None;
        loop {
            let (bytes, _) = self.sock.recv_from_full()?;
            let mut at = 0;
            while at < bytes.len() {
                let m = NetlinkMessage::<GenlMessage<F>>::deserialize(&bytes[at..])
                    .map_err(|e| std::io::Error::other(format!("nfsd netlink reply: {e}")))?;
                let len = m.header.length as usize;
                if m.header.sequence_number == self.seq {
                    match m.payload {
                        NetlinkPayload::Error(e) => {
                            return match e.code {
                                None => Ok(reply),
                                Some(code) => Err(std::io::Error::from_raw_os_error(-code.get())),
                            }
                        }
                        NetlinkPayload::InnerMessage(inner) => reply = Some(inner),
                        NetlinkPayload::Done(_) => return Ok(reply),
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                at += len;
            }
        }
    }

    fn request(&mut self, cmd: u8, attrs: Vec<Attr>) -> std::io::Result<()> {
        self.exchange(GenlMessage::from_payload(Request { cmd, attrs }))
            .map(drop)
    }

    /// Serve exactly `versions` (NFSv2 never). nfsd must be down.
    pub fn set_versions(&mut self, versions: &Versions) -> std::io::Result<()> {
        let attrs = Version::ALL
            .iter()
            .map(|v| {
                let (major, minor) = v.numbers();
                let mut inner = vec![
                    Attr::U32(A_VERSION_MAJOR, major),
                    Attr::U32(A_VERSION_MINOR, minor),
                ];
                if versions.has(*v) {
                    inner.push(Attr::Flag(A_VERSION_ENABLED));
                }
                Attr::Nested(A_SERVER_PROTO_VERSION, inner)
            })
            .collect();
        self.request(CMD_VERSION_SET, attrs)
    }

    /// Listen over TCP on `addrs` (the kernel registers them with rpcbind).
    pub fn set_listeners(&mut self, addrs: &[SocketAddr]) -> std::io::Result<()> {
        let attrs = addrs
            .iter()
            .map(|a| {
                Attr::Nested(
                    A_SERVER_SOCK_ADDR,
                    vec![
                        Attr::Bytes(A_SOCK_ADDR, sockaddr(*a)),
                        Attr::Str(A_SOCK_TRANSPORT_NAME, "tcp".into()),
                    ],
                )
            })
            .collect();
        self.request(CMD_LISTENER_SET, attrs)
    }

    /// Start (or resize) nfsd with `threads`; the times (seconds) and the
    /// scope apply only to a start.
    pub fn set_threads(
        &mut self,
        threads: u32,
        times: Option<(u32, u32)>,
        scope: &str,
    ) -> std::io::Result<()> {
        let mut attrs = vec![Attr::U32(A_SERVER_THREADS, threads)];
        if let Some((grace, lease)) = times {
            attrs.push(Attr::U32(A_SERVER_GRACETIME, grace));
            attrs.push(Attr::U32(A_SERVER_LEASETIME, lease));
            attrs.push(Attr::Str(A_SERVER_SCOPE, scope.into()));
        }
        self.request(CMD_THREADS_SET, attrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ocf::ParamValue;

    #[test]
    fn attributes_are_laid_out_as_the_kernel_reads_them() {
        let a = Attr::Nested(
            A_SERVER_PROTO_VERSION,
            vec![Attr::U32(A_VERSION_MAJOR, 4), Attr::Flag(A_VERSION_ENABLED)],
        );
        let mut buf = vec![0u8; a.buffer_len()];
        a.emit(&mut buf);
        // len 16, type 1|NESTED; inner: len 8 type 1 value 4; len 4 type 3.
        let mut want = vec![16, 0, 1, 0x80];
        want.extend([8, 0, 1, 0]);
        want.extend(4u32.to_ne_bytes());
        want.extend([4, 0, 3, 0]);
        assert_eq!(buf, want);
        let s = Attr::Str(A_SOCK_TRANSPORT_NAME, "tcp".into());
        let mut buf = vec![0u8; s.buffer_len()];
        s.emit(&mut buf);
        assert_eq!(buf, [8, 0, 2, 0, b't', b'c', b'p', 0]);
    }

    #[test]
    fn socket_addresses_are_struct_sockaddrs() {
        let v4 = sockaddr("192.0.2.1:2049".parse().unwrap());
        assert_eq!(v4.len(), 16);
        assert_eq!(&v4[2..8], &[8, 1, 192, 0, 2, 1]);
        let v6 = sockaddr("[2001:db8::1]:2049".parse().unwrap());
        assert_eq!(v6.len(), 28);
        assert_eq!(&v6[2..4], &[8, 1]);
        assert_eq!(v6[8], 0x20);
    }

    #[test]
    fn every_version_is_said_on_or_off() {
        let v = Versions::parse_value("3,4.2").unwrap();
        let on: Vec<(u32, u32)> = Version::ALL
            .iter()
            .filter(|x| v.has(**x))
            .map(|x| x.numbers())
            .collect();
        assert_eq!(on, [(3, 0), (4, 2)]);
    }
}
