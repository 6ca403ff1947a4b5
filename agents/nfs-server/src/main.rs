//! ocf:handoff:nfs-server — a virtual NFS server for one export group.

mod agent;
mod daemons;
mod error;
mod grace;
mod link;
mod namespace;
mod netlink;
mod nfsd;
mod params;

fn main() {
    // The detached helper is this binary, started by start.
    ocf::helper::dispatch(grace::FLAG, grace::main);
    ocf::main(agent::NfsServer)
}
