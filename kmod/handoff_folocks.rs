// SPDX-License-Identifier: GPL-2.0

//! handoff_folocks: drop the NLM locks of one filesystem, or of one server
//! address, on request, and say whether lockd released them all.
//!
//! /dev/folocks (root only) takes one ioctl per request (see uapi.rs):
//! by device number (the module finds the mounted superblock), by an open
//! descriptor of a mount root (the caller pins the filesystem), or by
//! server address; a request may carry the export's fsid, which is logged.
//! Requests are checked in full before anything is touched, and run one at
//! a time so the log reads as a sequence.

use kernel::c_str;
use kernel::prelude::*;
use kernel::sync::Mutex;
use kernel::uaccess::UserSlice;

mod ffi;
#[path = "uapi.rs"]
mod uapi;

use ffi::{FileRef, MiscDevice, Super};
use uapi::{Invalid, Request, Target};

module! {
    type: Folocks,
    name: "handoff_folocks",
    author: "handoff",
    description: "Drop the NLM locks of one filesystem or server address on request",
    license: "GPL",
}

const IOC_VERSION: u32 = kernel::ioctl::_IOR::<u32>(uapi::IOC_TYPE, uapi::IOC_VERSION_NR);
const IOC_DROP: u32 = kernel::ioctl::_IOWR::<[u8; uapi::SIZE]>(uapi::IOC_TYPE, uapi::IOC_DROP_NR);

/// Counters, reported when the module is unloaded.
struct Stats {
    requests: u64,
    incomplete: u64,
    refused: u64,
}

/// The device's state: one request at a time.
#[pin_data]
struct Control {
    #[pin]
    stats: Mutex<Stats>,
}

/// The loaded module.
struct Folocks {
    dev: MiscDevice<Control>,
}

impl kernel::Module for Folocks {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let control = KBox::pin_init(
            pin_init!(Control {
                stats <- kernel::new_mutex!(Stats { requests: 0, incomplete: 0, refused: 0 }),
            }),
            GFP_KERNEL,
        )?;
        let dev = MiscDevice::register(c_str!("folocks"), 0o600, module, control)?;
        pr_info!("ready: /dev/folocks, request layout v{}\n", uapi::VERSION);
        Ok(Folocks { dev })
    }
}

impl Drop for Folocks {
    fn drop(&mut self) {
        let s = self.dev.handler().stats.lock();
        pr_info!(
            "unloading after {} request(s): {} refused, {} incomplete\n",
            s.requests,
            s.refused,
            s.incomplete
        );
    }
}

fn errno(e: Invalid) -> Error {
    let code = match e {
        Invalid::Version(_) => kernel::bindings::EPROTO,
        Invalid::Malformed(_) => kernel::bindings::EINVAL,
        Invalid::Family(_) => kernel::bindings::EAFNOSUPPORT,
        Invalid::Address => kernel::bindings::EADDRNOTAVAIL,
    };
    Error::from_errno(-(code as i32))
}

/// Check `sb` against the request and drop its locks.
fn drop_on(sb: &Super<'_>, fsid: &str) -> Result {
    let (major, minor) = sb.dev();
    let res = sb.drop_nlm_locks();
    match res {
        Ok(()) => pr_info!(
            "fsid {}: released the NLM locks on {} ({}:{})\n",
            fsid,
            sb.id(),
            major,
            minor
        ),
        Err(_) => pr_warn!(
            "fsid {}: lockd could not release every NLM lock on {} ({}:{})\n",
            fsid,
            sb.id(),
            major,
            minor
        ),
    }
    res
}

impl Control {
    /// Carry out a checked request; returns the device acted on.
    fn act(&self, req: &Request) -> Result<(u32, u32)> {
        let fsid = if req.fsid.is_empty() { "-" } else { req.fsid.as_str() };
        match req.target {
            Target::Devno { dev, fstype } => {
                let found = ffi::with_mounted_super(fstype.with_nul(), dev, |sb| {
                    drop_on(&sb, fsid).map(|()| sb.dev())
                })?;
                found.ok_or(ENOENT)?
            }
            Target::Fd { fd, dev } => {
                let file = FileRef::get(fd)?;
                let sb = file.mount_root().ok_or(ENOTDIR)?;
                if dev.is_some_and(|d| d != sb.dev()) {
                    return Err(EXDEV);
                }
                drop_on(&sb, fsid)?;
                Ok(sb.dev())
            }
            Target::Ip { addr, scope_id } => {
                let res = ffi::drop_nlm_locks_by_ip(addr, scope_id);
                match res {
                    Ok(()) => pr_info!("fsid {}: released the NLM locks taken through {}\n", fsid, addr),
                    Err(_) => pr_warn!(
                        "fsid {}: lockd could not release every NLM lock taken through {}\n",
                        fsid,
                        addr
                    ),
                }
                res.map(|()| (0, 0))
            }
        }
    }

    fn drop_request(&self, arg: usize) -> Result<i32> {
        if !ffi::capable_sys_admin() {
            return Err(EPERM);
        }
        let (mut reader, mut writer) = UserSlice::new(arg, uapi::SIZE).reader_writer();
        let mut block = [0u8; uapi::SIZE];
        reader.read_slice(&mut block)?;
        let mut stats = self.stats.lock();
        stats.requests += 1;
        let req = match Request::decode(&block) {
            Ok(r) => r,
            Err(e) => {
                stats.refused += 1;
                return Err(errno(e));
            }
        };
        match self.act(&req) {
            Ok(dev) => {
                uapi::set_out_dev(&mut block, dev);
                writer.write_slice(&block)?;
                Ok(0)
            }
            Err(e) if e == EIO => {
                stats.incomplete += 1;
                Err(e)
            }
            Err(e) => {
                stats.refused += 1;
                Err(e)
            }
        }
    }
}

impl ffi::Ioctl for Control {
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<i32> {
        match cmd {
            IOC_VERSION => {
                UserSlice::new(arg, 4)
                    .writer()
                    .write_slice(&uapi::VERSION.to_ne_bytes())?;
                Ok(0)
            }
            IOC_DROP => self.drop_request(arg),
            _ => Err(ENOTTY),
        }
    }
}
