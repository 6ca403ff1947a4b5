//! ocf:handoff:fs — mounts one local block filesystem for an export group.

mod agent;
mod device;
mod error;
mod fsck;
mod health;
mod kernel;
mod mount;
mod params;
mod probe;
mod users;

fn main() {
    ocf::main(agent::Fs::default())
}
