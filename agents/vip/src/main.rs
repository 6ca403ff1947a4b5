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
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // The detached announcer is this binary, started by start or monitor.
    if args.get(1).is_some_and(|a| a == "--announce") {
        let rest: Vec<String> = args[2..]
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        std::process::exit(announce::child_main(&rest));
    }
    ocf::main(agent::Vip)
}
