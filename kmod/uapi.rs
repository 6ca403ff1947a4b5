//! The user API of handoff_folocks, in one place: the control device, the
//! ioctl numbers and the request layout. The kernel module and the
//! nlm-locks agent both include this file (`#[path]`), so they cannot
//! disagree; it uses `core` only.
//!
//! A request is a fixed block of [`SIZE`] bytes in native byte order. Its
//! size is part of the ioctl number, so a module built for another layout
//! answers ENOTTY; a layout that keeps its size but changes its meaning
//! bumps [`VERSION`], which the module checks first (EPROTO). Either way
//! the agent then asks [`IOC_VERSION`] and says which versions met.
//!
//! Errors the module returns (names, since numbers differ between
//! architectures):
//! - EPERM: the caller lacks CAP_SYS_ADMIN;
//! - ENOTTY: not one of these ioctls (or a request of another size);
//! - EFAULT: the request is not readable or writable in full;
//! - EPROTO: the request's version is not [`VERSION`];
//! - EINVAL: malformed request (unknown kind or flag, reserved bytes set,
//!   unterminated or ill-formed fstype or fsid, device number out of range);
//! - EBADF: kind fd, and the descriptor is not open;
//! - ENOTDIR: kind fd, and the descriptor is not the root of a mount;
//! - EXDEV: kind fd with [`FLAG_MATCH_DEV`], and the mount is on another
//!   device than the request names;
//! - ENODEV: kind devno, and the kernel has no filesystem type `fstype`;
//! - ENOENT: kind devno, and no `fstype` filesystem is mounted from that
//!   device;
//! - EAFNOSUPPORT: kind ip, with a family other than IPv4 or IPv6;
//! - EADDRNOTAVAIL: kind ip, with an unspecified, multicast or broadcast
//!   address (no client reaches a server through those);
//! - EIO: lockd could not release every file: some lock may remain, and
//!   the filesystem must not be unmounted.
//!
//! Every error but EIO is returned before anything is touched.

// Each includer uses its half: the module decodes, the agent encodes.
#![allow(dead_code)]

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The control device the module registers.
pub(crate) const DEVICE: &str = "/dev/folocks";
/// Version of the request layout and its meaning.
pub(crate) const VERSION: u32 = 1;
/// ioctl type byte (unassigned in the kernel's ioctl-number list).
pub(crate) const IOC_TYPE: u32 = 0xF0;
/// ioctl number of "which version do you speak" (`_IOR`, a `u32`).
pub(crate) const IOC_VERSION_NR: u32 = 0;
/// ioctl number of a drop request (`_IOWR`, [`SIZE`] bytes).
pub(crate) const IOC_DROP_NR: u32 = 1;
/// Size of a request in bytes.
pub(crate) const SIZE: usize = 160;

/// Kind: drop by device number; the module finds the mounted superblock.
pub(crate) const KIND_DEVNO: u32 = 1;
/// Kind: drop on the filesystem whose mount root the descriptor holds.
pub(crate) const KIND_FD: u32 = 2;
/// Kind: drop the locks clients took through one server address.
pub(crate) const KIND_IP: u32 = 3;
/// Flag for kind fd: fail with EXDEV unless the mount is on `dev`.
pub(crate) const FLAG_MATCH_DEV: u32 = 1;

/// Longest filesystem type name, without its NUL.
pub(crate) const FSTYPE_MAX: usize = 15;
/// Longest fsid, without its NUL.
pub(crate) const FSID_MAX: usize = 63;

const AF_INET: u16 = 2;
const AF_INET6: u16 = 10;

// Byte offsets of the fields.
const OFF_VERSION: usize = 0;
const OFF_KIND: usize = 4;
const OFF_FLAGS: usize = 8;
const OFF_FD: usize = 12;
const OFF_MAJOR: usize = 16;
const OFF_MINOR: usize = 20;
const OFF_FSTYPE: usize = 24; // 16 bytes
const OFF_FSID: usize = 40; // 64 bytes
const OFF_FAMILY: usize = 104;
const OFF_PAD: usize = 106; // 2 bytes, zero
const OFF_SCOPE: usize = 108;
const OFF_ADDR: usize = 112; // 16 bytes
/// Written back by the module: the device of the superblock acted on.
const OFF_OUT_MAJOR: usize = 128;
const OFF_OUT_MINOR: usize = 132;
const OFF_RESERVED: usize = 136; // to SIZE, zero

/// What a request targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// The filesystem of type `fstype` mounted from device `dev`.
    Devno {
        /// Device number (major, minor), as in /proc/self/mountinfo.
        dev: (u32, u32),
        /// The type it is mounted as.
        fstype: Name<16>,
    },
    /// The filesystem whose mount root `fd` holds open.
    Fd {
        /// The caller's descriptor.
        fd: i32,
        /// When set, the device the mount must be on.
        dev: Option<(u32, u32)>,
    },
    /// Locks taken through this server address.
    Ip {
        /// The address.
        addr: IpAddr,
        /// IPv6 scope (interface index) of a link-local address.
        scope_id: u32,
    },
}

/// One drop request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Request {
    /// What to drop.
    pub(crate) target: Target,
    /// The export's fsid, for the kernel log (empty when unknown).
    pub(crate) fsid: Name<64>,
}

/// Why a request block is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Invalid {
    /// Another layout version (EPROTO).
    Version(u32),
    /// Anything else malformed (EINVAL).
    Malformed(&'static str),
    /// An address family other than IPv4/IPv6 (EAFNOSUPPORT).
    Family(u16),
    /// An address no client can use (EADDRNOTAVAIL).
    Address,
}

/// A short NUL-padded name (filesystem type, fsid) of at most `N - 1`
/// bytes from `[A-Za-z0-9_.:-]`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Name<const N: usize> {
    bytes: [u8; N],
    len: usize,
}

impl<const N: usize> core::fmt::Debug for Name<N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl<const N: usize> Name<N> {
    /// The empty name.
    pub(crate) const EMPTY: Self = Name {
        bytes: [0; N],
        len: 0,
    };

    /// A name from text; None when too long or with other characters.
    pub(crate) fn new(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() >= N || !b.iter().all(|&c| name_char(c)) {
            return None;
        }
        let mut bytes = [0; N];
        bytes[..b.len()].copy_from_slice(b);
        Some(Name {
            bytes,
            len: b.len(),
        })
    }

    /// The name as text.
    pub(crate) fn as_str(&self) -> &str {
        // Only ASCII is ever stored.
        core::str::from_utf8(&self.bytes[..self.len]).unwrap_or("")
    }

    /// The name with its NUL terminator, for C.
    pub(crate) fn with_nul(&self) -> &[u8] {
        &self.bytes[..=self.len]
    }

    /// True for the empty name.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn decode(raw: &[u8]) -> Option<Self> {
        let len = raw.iter().position(|&c| c == 0)?;
        if raw[len..].iter().any(|&c| c != 0) {
            return None;
        }
        core::str::from_utf8(&raw[..len]).ok().and_then(Self::new)
    }
}

fn name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'-')
}

fn get_u32(b: &[u8; SIZE], off: usize) -> u32 {
    u32::from_ne_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn put_u32(b: &mut [u8; SIZE], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_ne_bytes());
}

fn get_u16(b: &[u8; SIZE], off: usize) -> u16 {
    u16::from_ne_bytes([b[off], b[off + 1]])
}

/// Whether a device number fits the kernel's dev_t (12-bit major, 20-bit
/// minor).
pub(crate) fn dev_in_range(dev: (u32, u32)) -> bool {
    dev.0 < (1 << 12) && dev.1 < (1 << 20)
}

impl Request {
    /// The request block.
    pub(crate) fn encode(&self) -> [u8; SIZE] {
        let mut b = [0u8; SIZE];
        put_u32(&mut b, OFF_VERSION, VERSION);
        put_u32(&mut b, OFF_FD, u32::MAX); // -1: no descriptor
        match self.target {
            Target::Devno { dev, fstype } => {
                put_u32(&mut b, OFF_KIND, KIND_DEVNO);
                put_u32(&mut b, OFF_MAJOR, dev.0);
                put_u32(&mut b, OFF_MINOR, dev.1);
                b[OFF_FSTYPE..OFF_FSTYPE + 16].copy_from_slice(&fstype.bytes);
            }
            Target::Fd { fd, dev } => {
                put_u32(&mut b, OFF_KIND, KIND_FD);
                b[OFF_FD..OFF_FD + 4].copy_from_slice(&fd.to_ne_bytes());
                if let Some(dev) = dev {
                    put_u32(&mut b, OFF_FLAGS, FLAG_MATCH_DEV);
                    put_u32(&mut b, OFF_MAJOR, dev.0);
                    put_u32(&mut b, OFF_MINOR, dev.1);
                }
            }
            Target::Ip { addr, scope_id } => {
                put_u32(&mut b, OFF_KIND, KIND_IP);
                put_u32(&mut b, OFF_SCOPE, scope_id);
                let family = match addr {
                    IpAddr::V4(a) => {
                        b[OFF_ADDR..OFF_ADDR + 4].copy_from_slice(&a.octets());
                        AF_INET
                    }
                    IpAddr::V6(a) => {
                        b[OFF_ADDR..OFF_ADDR + 16].copy_from_slice(&a.octets());
                        AF_INET6
                    }
                };
                b[OFF_FAMILY..OFF_FAMILY + 2].copy_from_slice(&family.to_ne_bytes());
            }
        }
        b[OFF_FSID..OFF_FSID + 64].copy_from_slice(&self.fsid.bytes);
        b
    }

    /// Check and read a request block. The output fields are ignored.
    pub(crate) fn decode(b: &[u8; SIZE]) -> Result<Request, Invalid> {
        let version = get_u32(b, OFF_VERSION);
        if version != VERSION {
            return Err(Invalid::Version(version));
        }
        if b[OFF_RESERVED..].iter().any(|&c| c != 0) || get_u16(b, OFF_PAD) != 0 {
            return Err(Invalid::Malformed("reserved bytes are not zero"));
        }
        let fsid = Name::decode(&b[OFF_FSID..OFF_FSID + 64]).ok_or(Invalid::Malformed(
            "fsid is not a NUL-terminated [A-Za-z0-9_.:-] name",
        ))?;
        let flags = get_u32(b, OFF_FLAGS);
        let dev = (get_u32(b, OFF_MAJOR), get_u32(b, OFF_MINOR));
        let kind = get_u32(b, OFF_KIND);
        if flags & !FLAG_MATCH_DEV != 0 || (flags != 0 && kind != KIND_FD) {
            return Err(Invalid::Malformed("unknown flags"));
        }
        let target = match kind {
            KIND_DEVNO => {
                if !dev_in_range(dev) {
                    return Err(Invalid::Malformed("device number out of range"));
                }
                let fstype = Name::decode(&b[OFF_FSTYPE..OFF_FSTYPE + 16])
                    .filter(|n| !n.is_empty())
                    .ok_or(Invalid::Malformed("fstype is not a NUL-terminated name"))?;
                Target::Devno { dev, fstype }
            }
            KIND_FD => {
                let fd = get_u32(b, OFF_FD) as i32;
                if fd < 0 {
                    return Err(Invalid::Malformed("negative descriptor"));
                }
                let dev = if flags & FLAG_MATCH_DEV != 0 {
                    if !dev_in_range(dev) {
                        return Err(Invalid::Malformed("device number out of range"));
                    }
                    Some(dev)
                } else {
                    None
                };
                Target::Fd { fd, dev }
            }
            KIND_IP => {
                let family = get_u16(b, OFF_FAMILY);
                let mut raw = [0u8; 16];
                raw.copy_from_slice(&b[OFF_ADDR..OFF_ADDR + 16]);
                let addr = match family {
                    AF_INET if raw[4..].iter().all(|&c| c == 0) => {
                        IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))
                    }
                    AF_INET => return Err(Invalid::Malformed("IPv4 address longer than 4 bytes")),
                    AF_INET6 => IpAddr::V6(Ipv6Addr::from(raw)),
                    other => return Err(Invalid::Family(other)),
                };
                let unusable = match addr {
                    IpAddr::V4(a) => a.is_unspecified() || a.is_multicast() || a.is_broadcast(),
                    IpAddr::V6(a) => a.is_unspecified() || a.is_multicast(),
                };
                if unusable {
                    return Err(Invalid::Address);
                }
                Target::Ip {
                    addr,
                    scope_id: get_u32(b, OFF_SCOPE),
                }
            }
            _ => return Err(Invalid::Malformed("unknown kind")),
        };
        Ok(Request { target, fsid })
    }
}

/// The device the module acted on, from a request block it wrote back.
pub(crate) fn out_dev(b: &[u8; SIZE]) -> (u32, u32) {
    (get_u32(b, OFF_OUT_MAJOR), get_u32(b, OFF_OUT_MINOR))
}

/// Record the device acted on in a request block.
pub(crate) fn set_out_dev(b: &mut [u8; SIZE], dev: (u32, u32)) {
    put_u32(b, OFF_OUT_MAJOR, dev.0);
    put_u32(b, OFF_OUT_MINOR, dev.1);
}
