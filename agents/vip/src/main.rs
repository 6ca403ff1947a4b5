//! ocf:handoff:vip — a virtual IPv4/IPv6 address for an export group.

mod agent;
mod announce;
mod arp;
mod error;
mod findif;
mod ndisc;
mod netlink;
mod netns;
mod packet;
mod params;

fn main() {
    // The detached announcer is this binary, started by start or monitor.
    ocf::helper::dispatch(announce::FLAG, announce::child_main);
    ocf::main(agent::Vip)
}
