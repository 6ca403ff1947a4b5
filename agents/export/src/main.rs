//! ocf:handoff:export — one NFS export entry of an export group.

mod agent;
mod error;
mod exportfs;
mod params;
mod rmtab;

fn main() {
    ocf::main(agent::Export)
}
