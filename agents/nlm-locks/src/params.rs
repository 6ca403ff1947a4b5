//! The parameters of ocf:handoff:nlm-locks.

use std::net::IpAddr;

use ocf::{AbsPath, Bounded, HostName, Params, RelDir};
use systables::etab::Fsid;

ocf::choice! {
    /// How the locks are dropped.
    pub enum Backend {
        /// kmod when /dev/folocks exists, else procfs.
        Auto = "auto",
        /// /proc/fs/nfsd/unlock_filesystem (and unlock_ip).
        Procfs = "procfs",
        /// The handoff kernel module's /dev/folocks.
        Kmod = "kmod",
    }
}

ocf::choice! {
    /// How a kmod request names the filesystem.
    pub enum KmodRequest {
        /// A descriptor of the mount root, checked against its device.
        Fd = "fd",
        /// The device number and type; the module finds the mount.
        Devno = "devno",
    }
}

ocf::choice! {
    /// How the taking node lets clients reclaim.
    pub enum Grace {
        /// Use the grace period the node's NFS server is in, if any.
        Existing = "existing",
        /// Restart this node's nfsd for a fresh grace period when it is not
        /// in one, and only when no export on this node holds locks.
        Restart = "restart",
    }
}

/// The parameters of ocf:handoff:nlm-locks.
#[derive(Debug, Params)]
pub struct NlmParams {
    /// The exported filesystem (its mount point). Stop drops the NLM locks
    /// of this filesystem and of no other.
    #[param(short = "Exported filesystem", unique)]
    pub directory: AbsPath,

    /// The export's virtual IP. Start sends reboot notifications (SM_NOTIFY)
    /// from it; with unlock_ip, stop also drops the locks clients took
    /// through it.
    #[param(short = "Virtual IP of the export")]
    pub ip: IpAddr,

    /// The name clients know the virtual IP by. sm-notify sends it as the
    /// server's name and refuses a bare address, so ip must resolve to a
    /// name on this node (/etc/hosts or DNS) when this is left empty.
    #[param(short = "Name of the virtual IP")]
    pub notify_name: Option<HostName>,

    /// How stop drops the locks: procfs writes the mount point to
    /// /proc/fs/nfsd/unlock_filesystem; kmod asks the handoff kernel
    /// module (/dev/folocks), which checks the target and reports whether
    /// every lock went; auto uses kmod when the module is loaded, else
    /// procfs. The backend that acted is logged.
    #[param(short = "Lock-drop backend", default = "auto", reloadable)]
    pub backend: Backend,

    /// How a kmod request names the filesystem. fd: the agent opens the
    /// mount root and passes the descriptor, which pins the filesystem
    /// while the module works, and the module checks that it is mounted
    /// from the device recorded at start. devno: the agent passes the
    /// device number and filesystem type, and the module finds the mounted
    /// filesystem itself (the form of the original NFSCTL_FOLOCKS
    /// proposal).
    #[param(short = "kmod request form", default = "fd", reloadable)]
    pub kmod_request: KmodRequest,

    /// The export's fsid, as given to its export resource. While the export
    /// is listed in the node's export table (monitor, and a stop outside
    /// group order) it is resolved there and must name this filesystem,
    /// else the action fails rather than drop another filesystem's locks;
    /// the kmod backend carries it in its requests so that the kernel log
    /// names the export.
    #[param(short = "The export's fsid", reloadable)]
    pub fsid: Option<Fsid>,

    /// Where the export keeps its clients' NSM records, inside the exported
    /// filesystem so that they move with it. Stop (and every monitor) copies
    /// this node's records there; start notifies the clients found there.
    #[param(
        short = "NSM records on the export",
        default = ".handoff-nsm",
        reloadable
    )]
    pub statd_dir: RelDir,

    /// Also drop the locks clients took through ip (/proc/fs/nfsd/unlock_ip).
    /// Before a 2026 fix to lockd's address match this dropped nothing; stop
    /// counts the locks before and after and says when it had no effect.
    #[param(
        short = "Also drop locks by server address",
        default = "false",
        reloadable
    )]
    pub unlock_ip: bool,

    /// Clients can reclaim only while the taking node is in a grace period.
    /// existing: use the one the node's NFS server is in (it has just
    /// started), else warn that clients cannot reclaim. restart: when not
    /// in grace, restart this node's nfsd for a fresh one — refused when
    /// another export of this node's NFS server (its export table) holds
    /// locks, which a restart would drop.
    #[param(
        short = "Grace period on the taking node",
        default = "existing",
        reloadable
    )]
    pub grace: Grace,

    /// With grace=restart: the seconds the export's clients get to
    /// reclaim their locks, counted from the SM_NOTIFY sent once ip is up
    /// (not from the restart), after which the restarted grace period
    /// ends; it ends earlier once as many locks are back as the export
    /// held when it was released cleanly. Meanwhile new locks on every
    /// export of this node's NFS server wait. lockd keeps it open at most
    /// 240 s after the restart.
    #[param(short = "Reclaim window (seconds)", default = "90", reloadable)]
    pub grace_time: Bounded<5, 240>,

    /// Tickle the export's clients after a start: monitor and stop record
    /// the clients' TCP connections to ip in statd_dir, and once ip is up
    /// on the taking node each recorded connection gets three tickle ACKs
    /// (sequence 0, 0.6 s apart). The client's answer draws a reset from
    /// this node's kernel and it reconnects at once, instead of after its
    /// TCP back-off (seconds, a minute when idle).
    #[param(short = "Tickle clients after a move", default = "true", reloadable)]
    pub tickle: bool,

    /// The node's NFS state directory (where rpc.statd keeps sm/).
    #[param(short = "NFS state directory", default = "/var/lib/nfs", reloadable)]
    pub nfs_state_dir: AbsPath,
}
