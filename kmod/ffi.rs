//! Everything unsafe of handoff_folocks: the kernel functions and structs
//! 6.12's Rust bindings lack (the misc device, lockd's unlock calls), and
//! small safe wrappers over them and over the ones the bindings have. The
//! rest of the module is safe Rust.

use core::marker::PhantomData;
use core::net::IpAddr;
use core::pin::Pin;
use core::ptr::NonNull;

use kernel::bindings;
use kernel::error::to_result;
use kernel::ffi::{c_int, c_long, c_uint, c_ulong, c_void};
use kernel::prelude::*;
use kernel::str::CStr;

/// `struct miscdevice` of include/linux/miscdevice.h (6.12), which 6.12's
/// bindings do not generate.
#[repr(C)]
struct RawMisc {
    minor: c_int,
    name: *const u8,
    fops: *const bindings::file_operations,
    list: bindings::list_head,
    parent: *mut c_void,
    this_device: *mut c_void,
    groups: *const *const c_void,
    nodename: *const u8,
    mode: bindings::umode_t,
}

// The mirror must match the C layout field by field; where bindgen knows
// the struct, the compiler checks that it does.
#[cfg(folocks_misc_bindings)]
const _: () = {
    use core::mem::{align_of, offset_of, size_of};
    type C = bindings::miscdevice;
    assert!(size_of::<RawMisc>() == size_of::<C>());
    assert!(align_of::<RawMisc>() == align_of::<C>());
    assert!(offset_of!(RawMisc, minor) == offset_of!(C, minor));
    assert!(offset_of!(RawMisc, name) == offset_of!(C, name));
    assert!(offset_of!(RawMisc, fops) == offset_of!(C, fops));
    assert!(offset_of!(RawMisc, list) == offset_of!(C, list));
    assert!(offset_of!(RawMisc, parent) == offset_of!(C, parent));
    assert!(offset_of!(RawMisc, this_device) == offset_of!(C, this_device));
    assert!(offset_of!(RawMisc, groups) == offset_of!(C, groups));
    assert!(offset_of!(RawMisc, nodename) == offset_of!(C, nodename));
    assert!(offset_of!(RawMisc, mode) == offset_of!(C, mode));
};

/// MISC_DYNAMIC_MINOR: let the kernel pick the minor.
const MISC_DYNAMIC_MINOR: c_int = 255;

// The bindings structs embed lockdep maps, which Rust calls improper for C;
// only pointers to them cross here.
#[allow(improper_ctypes)]
extern "C" {
    fn misc_register(misc: *mut RawMisc) -> c_int;
    fn misc_deregister(misc: *mut RawMisc);
    fn nlmsvc_unlock_all_by_sb(sb: *mut bindings::super_block) -> c_int;
    fn nlmsvc_unlock_all_by_ip(addr: *mut bindings::sockaddr) -> c_int;
}

/// What a misc device does with its ioctls.
pub(crate) trait Ioctl: Sync {
    /// Handle `cmd` with argument `arg` (a user address for ours).
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<i32>;
}

/// The registered device's C structures and its handler, at a fixed
/// address from registration to deregistration.
#[repr(C)]
struct Registered<T> {
    // First, so that the `struct miscdevice *` misc_open stores in the
    // file's private_data is also a pointer to the whole.
    misc: RawMisc,
    fops: bindings::file_operations,
    handler: Pin<KBox<T>>,
}

/// A registered misc device (/dev/<name>); deregistered on drop.
pub(crate) struct MiscDevice<T: Ioctl> {
    reg: Pin<KBox<Registered<T>>>,
}

// SAFETY: the C structures are written only before misc_register and after
// misc_deregister; in between the kernel reads them, and the handler is
// `Sync` itself.
unsafe impl<T: Ioctl> Sync for MiscDevice<T> {}
// SAFETY: as above; nothing in it is tied to the registering thread.
unsafe impl<T: Ioctl> Send for MiscDevice<T> {}

/// The `unlocked_ioctl` of the device.
///
/// # Safety
///
/// Called by the VFS with an open file of the device, whose private_data
/// misc_open set to the `RawMisc` at the start of a live `Registered<T>`.
unsafe extern "C" fn ioctl_trampoline<T: Ioctl>(
    file: *mut bindings::file,
    cmd: c_uint,
    arg: c_ulong,
) -> c_long {
    // SAFETY: per this function's contract, private_data points at the
    // first field of a `Registered<T>`, which outlives every open file
    // (the module cannot be unloaded while the device is open).
    let reg = unsafe { &*((*file).private_data as *const Registered<T>) };
    match reg.handler.ioctl(cmd, arg as usize) {
        Ok(v) => v as c_long,
        Err(e) => e.to_errno() as c_long,
    }
}

impl<T: Ioctl> MiscDevice<T> {
    /// Register /dev/`name` with permissions `mode`, answering ioctls with
    /// `handler`.
    pub(crate) fn register(
        name: &'static CStr,
        mode: u16,
        module: &'static ThisModule,
        handler: Pin<KBox<T>>,
    ) -> Result<Self> {
        // SAFETY: both are plain C structs for which all-zero is the
        // "nothing set" value the kernel expects.
        let (misc, fops) = unsafe {
            (
                core::mem::zeroed::<RawMisc>(),
                core::mem::zeroed::<bindings::file_operations>(),
            )
        };
        let mut reg = KBox::new(
            Registered {
                misc,
                fops,
                handler,
            },
            GFP_KERNEL,
        )?;
        reg.fops.owner = module.as_ptr();
        reg.fops.llseek = Some(bindings::noop_llseek);
        reg.fops.unlocked_ioctl = Some(ioctl_trampoline::<T>);
        reg.misc.minor = MISC_DYNAMIC_MINOR;
        reg.misc.name = name.as_char_ptr();
        reg.misc.mode = mode;
        reg.misc.fops = &reg.fops;
        let reg: Pin<KBox<Registered<T>>> = reg.into();
        // SAFETY: the structure is pinned in its box (its address stays
        // valid until Drop deregisters it), fully initialised, and `name`
        // is 'static.
        let rc = unsafe {
            misc_register(&reg.misc as *const RawMisc as *mut RawMisc)
        };
        to_result(rc)?;
        Ok(MiscDevice { reg })
    }

    /// The handler the device answers with.
    pub(crate) fn handler(&self) -> &T {
        &self.reg.handler
    }
}

impl<T: Ioctl> Drop for MiscDevice<T> {
    fn drop(&mut self) {
        // SAFETY: registered in `register`, deregistered once, here; after
        // this no new ioctl can start, and running ones hold the module.
        unsafe { misc_deregister(&self.reg.misc as *const RawMisc as *mut RawMisc) };
    }
}

/// A mounted superblock, valid for `'a` (pinned by a file or by s_umount
/// held during iterate_supers_type).
pub(crate) struct Super<'a> {
    sb: NonNull<bindings::super_block>,
    _life: PhantomData<&'a ()>,
}

impl Super<'_> {
    /// Its device number (major, minor).
    pub(crate) fn dev(&self) -> (u32, u32) {
        // SAFETY: the superblock is alive for 'a (type invariant); s_dev
        // does not change after mount.
        let dev = unsafe { (*self.sb.as_ptr()).s_dev };
        (dev >> 20, dev & 0xfffff)
    }

    /// Its s_id (the device's name, e.g. "loop0").
    pub(crate) fn id(&self) -> &CStr {
        // SAFETY: s_id is a NUL-terminated array set at mount time and
        // unchanged while the superblock lives (type invariant).
        unsafe { CStr::from_char_ptr((*self.sb.as_ptr()).s_id.as_ptr()) }
    }

    /// Ask lockd to release every NLM lock on files of this filesystem.
    /// EIO when lockd could not release them all.
    pub(crate) fn drop_nlm_locks(&self) -> Result {
        // SAFETY: the superblock is alive; lockd only compares it with its
        // files' superblocks and takes its own locks.
        to_result(unsafe { nlmsvc_unlock_all_by_sb(self.sb.as_ptr()) })
    }
}

/// Run `f` on the mounted superblock of type `fstype` on device `dev`, if
/// there is one. ENODEV when the kernel has no such filesystem type.
pub(crate) fn with_mounted_super<R, F: FnOnce(Super<'_>) -> R>(
    fstype: &[u8],
    dev: (u32, u32),
    f: F,
) -> Result<Option<R>> {
    struct Search<F, R> {
        dev: u32,
        f: Option<F>,
        out: Option<R>,
    }
    /// iterate_supers_type's callback.
    ///
    /// # Safety
    ///
    /// `sb` must be a live superblock with s_umount held, and `arg` the
    /// `Search<F, R>` the caller lent for the call, borrowed by no one else.
    unsafe extern "C" fn visit<F: FnOnce(Super<'_>) -> R, R>(
        sb: *mut bindings::super_block,
        arg: *mut c_void,
    ) {
        // SAFETY: `arg` is the `Search` below, borrowed for the call of
        // iterate_supers_type, which calls us with live superblocks and
        // s_umount held.
        let search = unsafe { &mut *(arg as *mut Search<F, R>) };
        // SAFETY: `sb` is live and not being unmounted (s_umount held).
        let matches = unsafe { (*sb).s_dev } == search.dev;
        if let (true, Some(sb)) = (matches, NonNull::new(sb)) {
            if let Some(f) = search.f.take() {
                search.out = Some(f(Super {
                    sb,
                    _life: PhantomData,
                }));
            }
        }
    }
    if fstype.last() != Some(&0) {
        return Err(EINVAL);
    }
    // SAFETY: `fstype` is NUL-terminated (checked above).
    let ty = unsafe { bindings::get_fs_type(fstype.as_ptr() as *const _) };
    if ty.is_null() {
        return Err(ENODEV);
    }
    let mut search = Search {
        dev: (dev.0 << 20) | dev.1,
        f: Some(f),
        out: None,
    };
    // SAFETY: `ty` is a registered type we hold a reference on; `visit`
    // matches the callback type, and `search` outlives the call.
    unsafe {
        bindings::iterate_supers_type(
            ty,
            Some(visit::<F, R>),
            &mut search as *mut Search<F, R> as *mut c_void,
        );
        // get_fs_type took a reference on the type's module.
        bindings::module_put((*ty).owner);
    }
    Ok(search.out)
}

/// A reference to an open file of the calling process, released on drop.
pub(crate) struct FileRef {
    file: NonNull<bindings::file>,
}

impl FileRef {
    /// The file open on the caller's descriptor `fd` (O_PATH ones too).
    /// EBADF when there is none.
    pub(crate) fn get(fd: i32) -> Result<Self> {
        let fd = u32::try_from(fd).map_err(|_| EBADF)?;
        // SAFETY: fget_raw looks `fd` up in the current task's table and
        // returns a counted reference, or NULL.
        let file = unsafe { bindings::fget_raw(fd) };
        NonNull::new(file).map(|file| FileRef { file }).ok_or(EBADF)
    }

    /// The superblock of the file's mount, if the file is that mount's
    /// root; it stays mounted while this reference lives.
    pub(crate) fn mount_root(&self) -> Option<Super<'_>> {
        // SAFETY: we hold a reference on the file, so its f_path (mount and
        // dentry) is pinned.
        let (mnt, dentry) = unsafe {
            let path = &(*self.file.as_ptr()).f_path;
            (path.mnt, path.dentry)
        };
        if mnt.is_null() {
            return None;
        }
        // SAFETY: `mnt` is pinned by the file (above).
        let (root, sb) = unsafe { ((*mnt).mnt_root, (*mnt).mnt_sb) };
        if root != dentry {
            return None;
        }
        NonNull::new(sb).map(|sb| Super {
            sb,
            _life: PhantomData,
        })
    }
}

impl Drop for FileRef {
    fn drop(&mut self) {
        // SAFETY: the reference fget_raw gave us, put once.
        unsafe { bindings::fput(self.file.as_ptr()) };
    }
}

/// Ask lockd to release the NLM locks clients took through server address
/// `addr`. EIO when lockd could not release them all.
pub(crate) fn drop_nlm_locks_by_ip(addr: IpAddr, scope_id: u32) -> Result {
    // A sockaddr_in or sockaddr_in6, built byte by byte: family (host
    // order), port 0, then the address.
    #[repr(C, align(4))]
    struct SockAddr([u8; 28]);
    let mut sa = SockAddr([0; 28]);
    match addr {
        IpAddr::V4(a) => {
            sa.0[..2].copy_from_slice(&(bindings::AF_INET as u16).to_ne_bytes());
            sa.0[4..8].copy_from_slice(&a.octets());
        }
        IpAddr::V6(a) => {
            sa.0[..2].copy_from_slice(&(bindings::AF_INET6 as u16).to_ne_bytes());
            sa.0[8..24].copy_from_slice(&a.octets());
            sa.0[24..28].copy_from_slice(&scope_id.to_ne_bytes());
        }
    }
    // SAFETY: `sa` is a well-formed sockaddr_in/in6 (28 bytes cover both)
    // that lockd only reads during the call.
    to_result(unsafe { nlmsvc_unlock_all_by_ip(&mut sa as *mut SockAddr as *mut bindings::sockaddr) })
}

/// Whether the caller has CAP_SYS_ADMIN (checked as the kernel does, with
/// auditing).
pub(crate) fn capable_sys_admin() -> bool {
    // SAFETY: capable only inspects the current task's credentials.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as c_int) }
}
