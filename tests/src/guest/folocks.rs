//! `handoff-vmtest --folocks ...`: raw requests to the handoff kernel
//! module, well-formed and not, so the scenarios can check each errno. It
//! speaks the layout of kmod/uapi.rs, the file the module and the agent
//! share. Prints `ok MAJ:MIN` or `err ERRNO`.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::sys::stat::Mode;

#[path = "../../../kmod/uapi.rs"]
mod uapi;

use uapi::{Name, Request, Target};

nix::ioctl_read!(ioc_version, uapi::IOC_TYPE, uapi::IOC_VERSION_NR, u32);
nix::ioctl_readwrite_buf!(ioc_drop, uapi::IOC_TYPE, uapi::IOC_DROP_NR, u8);
nix::ioctl_readwrite_buf!(ioc_unknown, uapi::IOC_TYPE, 7, u8);

fn dev_arg(s: &str) -> (u32, u32) {
    let (a, b) = s.split_once(':').expect("MAJ:MIN");
    (a.parse().expect("major"), b.parse().expect("minor"))
}

fn name<const N: usize>(s: &str) -> Name<N> {
    Name::new(s).expect("a valid name")
}

fn send(fd: &OwnedFd, block: &mut [u8; uapi::SIZE]) -> Result<(u32, u32), Errno> {
    // SAFETY: the ioctl number carries the block's size; the module reads
    // and writes only that much.
    unsafe { ioc_drop(fd.as_raw_fd(), block) }?;
    Ok(uapi::out_dev(block))
}

/// Drop CAP_SYS_ADMIN from this process's effective set.
fn drop_sys_admin() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut h = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: capget/capset with a v3 header and two data words, as
    // capability(7) documents.
    unsafe {
        assert_eq!(libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()), 0);
        d[0].effective &= !(1 << 21); // CAP_SYS_ADMIN
        assert_eq!(libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()), 0);
    }
}

/// The request, or the errno, of one invocation.
fn request(args: &[String]) -> Result<(u32, u32), Errno> {
    let dev = open(
        uapi::DEVICE,
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        Mode::empty(),
    )?;
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let fsid = if arg(3).is_empty() {
        Name::EMPTY
    } else {
        name(arg(3))
    };
    let devno = |d: &str, t: &str| Request {
        target: Target::Devno {
            dev: dev_arg(d),
            fstype: name(t),
        },
        fsid,
    };
    match arg(0) {
        "version" => {
            let mut v = 0u32;
            // SAFETY: the version ioctl writes one u32.
            unsafe { ioc_version(dev.as_raw_fd(), &mut v) }?;
            Ok((v, 0))
        }
        // devno MAJ:MIN FSTYPE [FSID]
        "devno" => send(&dev, &mut devno(arg(1), arg(2)).encode()),
        // fd PATH [MAJ:MIN|-] [FSID]
        "fd" => {
            let root = open(
                arg(1),
                OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            let target = Target::Fd {
                fd: root.as_raw_fd(),
                dev: (!arg(2).is_empty() && arg(2) != "-").then(|| dev_arg(arg(2))),
            };
            send(&dev, &mut Request { target, fsid }.encode())
        }
        // badfd: a descriptor that is not open
        "badfd" => {
            let target = Target::Fd {
                fd: 1000,
                dev: None,
            };
            send(&dev, &mut Request { target, fsid }.encode())
        }
        // ip ADDR [-] [FSID]
        "ip" => {
            let target = Target::Ip {
                addr: arg(1).parse().expect("address"),
                scope_id: 0,
            };
            send(&dev, &mut Request { target, fsid }.encode())
        }
        // version2|reserved|family|short|unknown|noadmin MAJ:MIN FSTYPE
        "version2" => {
            let mut b = devno(arg(1), arg(2)).encode();
            b[0..4].copy_from_slice(&2u32.to_ne_bytes());
            send(&dev, &mut b)
        }
        "reserved" => {
            let mut b = devno(arg(1), arg(2)).encode();
            b[uapi::SIZE - 1] = 1;
            send(&dev, &mut b)
        }
        "family" => {
            let target = Target::Ip {
                addr: "192.0.2.1".parse().expect("address"),
                scope_id: 0,
            };
            let mut b = Request { target, fsid }.encode();
            b[104..106].copy_from_slice(&1u16.to_ne_bytes()); // AF_UNIX
            send(&dev, &mut b)
        }
        "unknown" => {
            let mut b = devno(arg(1), arg(2)).encode();
            // SAFETY: as `send`; the module must refuse the number.
            unsafe { ioc_unknown(dev.as_raw_fd(), &mut b) }?;
            Ok((0, 0))
        }
        "short" => short(&dev, &devno(arg(1), arg(2)).encode()),
        "noadmin" => {
            drop_sys_admin();
            send(&dev, &mut devno(arg(1), arg(2)).encode())
        }
        other => panic!("unknown folocks request {other}"),
    }
}

/// A request whose block runs off the end of readable memory: the module
/// must fail with EFAULT before acting.
fn short(dev: &OwnedFd, block: &[u8; uapi::SIZE]) -> Result<(u32, u32), Errno> {
    let page = 4096usize;
    // SAFETY: an anonymous private mapping of two pages, the second then
    // unmapped; only the first page is written, and only in bounds.
    unsafe {
        let base = libc::mmap(
            std::ptr::null_mut(),
            2 * page,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        assert_ne!(base, libc::MAP_FAILED);
        assert_eq!(libc::munmap(base.cast::<u8>().add(page).cast(), page), 0);
        let keep = 100;
        let start = base.cast::<u8>().add(page - keep);
        std::ptr::copy_nonoverlapping(block.as_ptr(), start, keep);
        let code = nix::request_code_readwrite!(uapi::IOC_TYPE, uapi::IOC_DROP_NR, uapi::SIZE);
        let rc = libc::ioctl(dev.as_raw_fd(), code, start);
        libc::munmap(base, page);
        Errno::result(rc).map(|_| (0, 0))
    }
}

/// Entry point: print the outcome of one request.
pub fn main(args: &[String]) -> i32 {
    match request(args) {
        Ok((a, b)) => {
            println!("ok {a}:{b}");
            0
        }
        Err(e) => {
            println!("err {e:?}");
            1
        }
    }
}
