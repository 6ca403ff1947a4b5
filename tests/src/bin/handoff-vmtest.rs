//! The NFS test VM's init and scenario runner (see `handoff_tests::guest`).

fn main() {
    handoff_tests::guest::main()
}
