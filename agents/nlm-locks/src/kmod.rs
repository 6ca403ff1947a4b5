//! The client side of the handoff kernel module (kmod/): requests on its
//! control device /dev/folocks, in the layout kmod/uapi.rs defines for
//! both sides.

use std::fmt;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

#[path = "../../../kmod/uapi.rs"]
mod uapi;

pub(crate) use uapi::{Name, Request, Target, DEVICE};

nix::ioctl_read!(ioc_version, uapi::IOC_TYPE, uapi::IOC_VERSION_NR, u32);
nix::ioctl_readwrite_buf!(ioc_drop, uapi::IOC_TYPE, uapi::IOC_DROP_NR, u8);

/// A failure of a request to the module.
#[derive(Debug, thiserror::Error)]
pub enum KmodError {
    /// The device cannot be opened.
    #[error("cannot open {DEVICE}: {0}")]
    Open(Errno),
    /// The module speaks another request version.
    #[error("{DEVICE} speaks request version {module} and this agent version {agent}: load the handoff_folocks module built with this agent")]
    Version {
        /// The module's.
        module: u32,
        /// Ours.
        agent: u32,
    },
    /// The device does not answer the version request.
    #[error("{DEVICE} does not answer handoff_folocks' version request ({0}): another driver holds the name, or the module is too old")]
    Foreign(Errno),
    /// lockd could not release every lock.
    #[error("lockd could not release every NLM lock of {0}; some may remain")]
    Incomplete(String),
    /// The module refused the request.
    #[error("handoff_folocks refused to drop the locks of {what}: {why}")]
    Refused {
        /// The target, in words.
        what: String,
        /// The module's reason, from its errno.
        why: String,
        /// The errno.
        errno: Errno,
    },
    /// The module acted on another device than asked.
    #[error("handoff_folocks dropped the locks of device {got}, not {want}")]
    WrongDevice {
        /// Asked for.
        want: String,
        /// Acted on.
        got: String,
    },
}

impl KmodError {
    /// True when the agent lacks the privilege.
    pub fn is_permission(&self) -> bool {
        matches!(
            self,
            KmodError::Open(Errno::EACCES | Errno::EPERM)
                | KmodError::Refused {
                    errno: Errno::EPERM,
                    ..
                }
        )
    }

    /// True when the module is missing or does not match this agent.
    pub fn is_installation(&self) -> bool {
        matches!(
            self,
            KmodError::Open(Errno::ENOENT | Errno::ENXIO | Errno::ENODEV)
                | KmodError::Version { .. }
                | KmodError::Foreign(_)
        )
    }
}

/// An open control device.
pub struct Folocks(OwnedFd);

impl Folocks {
    /// Open the device and check that it speaks our request version.
    pub fn open() -> Result<Self, KmodError> {
        let fd = open(DEVICE, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(KmodError::Open)?;
        let dev = Folocks(fd);
        let module = dev.version()?;
        if module != uapi::VERSION {
            return Err(KmodError::Version {
                module,
                agent: uapi::VERSION,
            });
        }
        Ok(dev)
    }

    fn version(&self) -> Result<u32, KmodError> {
        let mut v = 0u32;
        // SAFETY: IOC_VERSION writes one u32, which `v` is.
        unsafe { ioc_version(self.0.as_raw_fd(), &mut v) }.map_err(KmodError::Foreign)?;
        Ok(v)
    }

    /// Send one drop request; the device the module acted on (0:0 for an
    /// address).
    pub fn drop_locks(&self, req: &Request) -> Result<(u32, u32), KmodError> {
        let mut block = req.encode();
        // SAFETY: the ioctl number encodes the block's size (nix takes it
        // from the slice), and the module reads and writes only that much.
        let rc = unsafe { ioc_drop(self.0.as_raw_fd(), &mut block) };
        let what = Described(req).to_string();
        match rc {
            Ok(_) => {
                let got = uapi::out_dev(&block);
                let want = match req.target {
                    Target::Devno { dev, .. } | Target::Fd { dev: Some(dev), .. } => Some(dev),
                    _ => None,
                };
                match want {
                    Some(w) if w != got => Err(KmodError::WrongDevice {
                        want: format!("{}:{}", w.0, w.1),
                        got: format!("{}:{}", got.0, got.1),
                    }),
                    _ => Ok(got),
                }
            }
            Err(Errno::EIO) => Err(KmodError::Incomplete(what)),
            // Another layout: say which versions met.
            Err(e @ (Errno::ENOTTY | Errno::EPROTO)) => match self.version() {
                Ok(module) if module != uapi::VERSION => Err(KmodError::Version {
                    module,
                    agent: uapi::VERSION,
                }),
                _ => Err(refused(what, e)),
            },
            Err(e) => Err(refused(what, e)),
        }
    }
}

fn refused(what: String, errno: Errno) -> KmodError {
    let why = match errno {
        Errno::EPERM => "the agent lacks CAP_SYS_ADMIN",
        Errno::EINVAL | Errno::ENOTTY | Errno::EPROTO => {
            "the request is malformed (agent and module disagree on its layout)"
        }
        Errno::EBADF | Errno::ENOTDIR => "the directory is not the root of a mount",
        Errno::EXDEV => "the directory is mounted from another device (a different filesystem is mounted there now)",
        Errno::ENODEV => "the kernel has no filesystem of that type",
        Errno::ENOENT => "no filesystem of that type is mounted from that device",
        Errno::EAFNOSUPPORT | Errno::EADDRNOTAVAIL => "the address cannot be a server address",
        _ => "unexpected error",
    };
    KmodError::Refused {
        what,
        why: format!("{why} ({errno})"),
        errno,
    }
}

/// A request's target in words, for messages.
struct Described<'a>(&'a Request);

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.target {
            Target::Devno { dev, fstype } => write!(
                f,
                "the {} filesystem on device {}:{}",
                fstype.as_str(),
                dev.0,
                dev.1
            )?,
            Target::Fd { dev: Some(dev), .. } => {
                write!(f, "the mount of device {}:{}", dev.0, dev.1)?
            }
            Target::Fd { dev: None, .. } => f.write_str("the mount")?,
            Target::Ip { addr, .. } => write!(f, "server address {addr}")?,
        }
        if !self.0.fsid.is_empty() {
            write!(f, " (fsid {})", self.0.fsid.as_str())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn roundtrip(target: Target) {
        let req = Request {
            target,
            fsid: Name::new("3e6be9de-8139-4a84-b0b4-b8d6e1a84f44").unwrap(),
        };
        assert_eq!(Request::decode(&req.encode()), Ok(req));
    }

    #[test]
    fn requests_roundtrip() {
        roundtrip(Target::Devno {
            dev: (7, 0),
            fstype: Name::new("ext4").unwrap(),
        });
        roundtrip(Target::Fd {
            fd: 3,
            dev: Some((0, 39)),
        });
        roundtrip(Target::Fd { fd: 3, dev: None });
        roundtrip(Target::Ip {
            addr: "192.0.2.100".parse().unwrap(),
            scope_id: 0,
        });
        roundtrip(Target::Ip {
            addr: "fe80::1".parse().unwrap(),
            scope_id: 2,
        });
    }

    #[test]
    fn bad_blocks_are_refused() {
        let good = Request {
            target: Target::Devno {
                dev: (7, 0),
                fstype: Name::new("ext4").unwrap(),
            },
            fsid: Name::EMPTY,
        }
        .encode();
        let mut b = good;
        b[0] = 2;
        assert_eq!(Request::decode(&b), Err(uapi::Invalid::Version(2)));
        let mut b = good;
        b[150] = 1;
        assert!(matches!(
            Request::decode(&b),
            Err(uapi::Invalid::Malformed(_))
        ));
        let mut b = good;
        b[24..40].fill(b'x'); // fstype without NUL
        assert!(matches!(
            Request::decode(&b),
            Err(uapi::Invalid::Malformed(_))
        ));
        let mut b = good;
        b[16..20].copy_from_slice(&4096u32.to_ne_bytes()); // major > 12 bits
        assert!(matches!(
            Request::decode(&b),
            Err(uapi::Invalid::Malformed(_))
        ));
        for addr in ["0.0.0.0", "255.255.255.255", "224.0.0.1", "::", "ff02::1"] {
            let r = Request {
                target: Target::Ip {
                    addr: addr.parse::<IpAddr>().unwrap(),
                    scope_id: 0,
                },
                fsid: Name::EMPTY,
            };
            assert_eq!(
                Request::decode(&r.encode()),
                Err(uapi::Invalid::Address),
                "{addr}"
            );
        }
        let mut b = Request {
            target: Target::Ip {
                addr: "192.0.2.1".parse().unwrap(),
                scope_id: 0,
            },
            fsid: Name::EMPTY,
        }
        .encode();
        b[104..106].copy_from_slice(&1u16.to_ne_bytes());
        assert_eq!(Request::decode(&b), Err(uapi::Invalid::Family(1)));
    }

    #[test]
    fn names() {
        assert!(Name::<16>::new("ext4").is_some());
        assert!(Name::<16>::new("0123456789abcdef").is_none()); // no room for NUL
        assert!(Name::<64>::new("a b").is_none());
        assert_eq!(Name::<16>::new("xfs").unwrap().with_nul(), b"xfs\0");
    }

    fn target() -> impl proptest::strategy::Strategy<Value = Target> {
        use proptest::prelude::*;
        let dev = (0u32..1 << 12, 0u32..1 << 20);
        prop_oneof![
            (dev.clone(), "[a-z0-9_]{1,15}").prop_map(|(dev, t)| Target::Devno {
                dev,
                fstype: Name::new(&t).unwrap_or(Name::EMPTY),
            }),
            (0i32..=i32::MAX, proptest::option::of(dev))
                .prop_map(|(fd, dev)| Target::Fd { fd, dev }),
            (any::<IpAddr>(), any::<u32>())
                .prop_filter("a usable address", |(a, _)| match a {
                    IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
                    IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
                })
                .prop_map(|(addr, scope_id)| Target::Ip { addr, scope_id }),
        ]
    }

    proptest::proptest! {
        // What the module's decoder meets from user space: any block.
        #[test]
        // Most blocks are past the version and reserved-byte checks, so the
        // field decoding sees them: version 1, kind 1 to 3, reserved zero.
        fn any_block_decodes_without_panic(
            b in proptest::collection::vec(proptest::prelude::any::<u8>(), uapi::SIZE),
            kind in 0u32..5,
            keep_header: bool,
        ) {
            let mut block = [0u8; uapi::SIZE];
            block.copy_from_slice(&b);
            if keep_header {
                block[0..4].copy_from_slice(&uapi::VERSION.to_ne_bytes());
                block[4..8].copy_from_slice(&kind.to_ne_bytes());
                block[106..108].fill(0);
                block[136..].fill(0);
            }
            if let Ok(r) = Request::decode(&block) {
                proptest::prop_assert_eq!(Request::decode(&r.encode()), Ok(r));
            }
        }

        #[test]
        fn every_valid_request_round_trips(t in target(), fsid in "[A-Za-z0-9_.:-]{0,63}") {
            let req = Request { target: t, fsid: Name::new(&fsid).unwrap_or(Name::EMPTY) };
            proptest::prop_assert_eq!(Request::decode(&req.encode()), Ok(req));
        }

        // One byte changed anywhere in a valid block: refused or read as
        // another valid request, never a panic.
        #[test]
        fn a_changed_byte_is_caught_or_harmless(t in target(), at in 0..uapi::SIZE, v: u8) {
            let mut b = Request { target: t, fsid: Name::EMPTY }.encode();
            b[at] = v;
            let _ = Request::decode(&b);
        }
    }
}
