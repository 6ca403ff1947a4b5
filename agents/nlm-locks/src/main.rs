//! ocf:handoff:nlm-locks — the NLM locks of one exported filesystem.

mod agent;
mod backend;
mod error;
mod grace;
mod locks;
mod nsm;
mod params;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // The detached notifier is this binary, started by start.
    if args.get(1).is_some_and(|a| a == "--notify") {
        let rest: Vec<String> = args[2..]
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        std::process::exit(nsm::notifier_main(&rest));
    }
    ocf::main(agent::NlmLocks)
}
