//! ocf:handoff:nlm-locks — the NLM locks of one exported filesystem.

mod agent;
mod backend;
mod error;
mod grace;
mod kmod;
mod notifier;
mod params;

fn main() {
    // The detached notifier is this binary, started by start.
    ocf::helper::dispatch(notifier::NOTIFY, notifier::notifier_main);
    ocf::main(agent::NlmLocks)
}
