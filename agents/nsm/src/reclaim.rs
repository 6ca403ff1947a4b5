//! The reclaim window of a takeover: the grace period the moved export's
//! clients get to reclaim their locks, counted from the moment they are
//! told to (SM_NOTIFY, sent once the export's address is up), not from the
//! server's start, and closed early once every lock is back.
//!
//! NLM gives a server no "done" message: a client's lockd just sends its
//! reclaims. What can be known is how many locks come back. A clean
//! release leaves on the export how many byte-range locks the kernel held
//! for its clients ([`record_release`]; nothing changes after the address
//! went down), and the taking node closes the window as soon as as many
//! are held again. After a crash nothing says how many there were, and the
//! window stays open for its whole length. NFSv4.1+ clients do say it
//! (RECLAIM_COMPLETE), and with client tracking the kernel ends NFSv4's
//! grace by itself; callers pass that in as `others_done`.
//!
//! The count is by owner (lockd and nfsd threads). In a PID namespace those
//! threads are invisible and their locks are counted with every other
//! unseen owner's: an upper bound on both sides of a move, so the window
//! can only close later than it could, never early.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use systables::locks::{self, Dev};

/// The record of a clean release, beside statd's records on the export.
const RELEASED: &str = "handoff-released";

#[derive(serde::Serialize, serde::Deserialize)]
struct Released {
    /// Byte-range locks held for the export's clients when it was
    /// released (NLM's and NFSv4's).
    client_locks: usize,
}

/// Record, durably, that the export was released cleanly while the
/// kernel held `client_locks` byte-range locks on it for its clients.
pub fn record_release(state_dir: &Path, client_locks: usize) -> std::io::Result<()> {
    let text = serde_json::to_vec(&Released { client_locks })?;
    crate::replace_durably(state_dir, RELEASED, &text)
}

/// Take the record of a clean release: it holds for the one start that
/// follows it, so it is removed (durably) before that start serves.
pub fn take_release(state_dir: &Path) -> Option<usize> {
    let path = state_dir.join(RELEASED);
    let bytes = std::fs::read(&path).ok()?;
    std::fs::remove_file(&path).ok()?;
    File::open(state_dir).and_then(|d| d.sync_all()).ok()?;
    serde_json::from_slice::<Released>(&bytes)
        .ok()
        .map(|r| r.client_locks)
}

/// What the lock-count side of a reclaim window waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// No client is recorded: nothing comes back.
    Nothing,
    /// A clean release left this many locks on this device.
    Locks(Dev, usize),
    /// Clients are recorded but not their locks (the export's last node
    /// crashed): the window stays open for its whole length.
    Unknown,
}

impl Expect {
    /// From the clients statd recorded and the record of a clean release.
    pub fn from(dev: Dev, clients: usize, released: Option<usize>) -> Expect {
        match (clients, released) {
            (0, _) | (_, Some(0)) => Expect::Nothing,
            (_, Some(n)) => Expect::Locks(dev, n),
            (_, None) => Expect::Unknown,
        }
    }

    /// As a helper's argument.
    pub fn to_arg(self) -> String {
        match self {
            Expect::Nothing => "nothing".into(),
            Expect::Locks((maj, min), n) => format!("{maj}:{min}:{n}"),
            Expect::Unknown => "unknown".into(),
        }
    }

    /// From a helper's argument.
    pub fn from_arg(s: &str) -> Option<Expect> {
        match s {
            "nothing" => Some(Expect::Nothing),
            "unknown" => Some(Expect::Unknown),
            _ => {
                let mut it = s.split(':').map(str::parse::<u64>);
                let (Some(Ok(maj)), Some(Ok(min)), Some(Ok(n)), None) =
                    (it.next(), it.next(), it.next(), it.next())
                else {
                    return None;
                };
                Some(Expect::Locks(
                    (u32::try_from(maj).ok()?, u32::try_from(min).ok()?),
                    usize::try_from(n).ok()?,
                ))
            }
        }
    }
}

/// How a reclaim window closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// Every client reclaimed, this long after the window opened.
    AllBack(Duration),
    /// The window's length passed.
    TimeUp,
}

/// Wait from `opened` until `length` has passed, or until every client is
/// back: the locks `expect`ed are held again and `others_done` (NFSv4's
/// grace over, say) is true. The lock table is read with a growing pause (0.1 to 1 s):
/// each read waits for an RCU grace period in the kernel.
pub fn wait(
    opened: Instant,
    length: Duration,
    expect: Expect,
    others_done: impl Fn() -> bool,
) -> Closed {
    let end = opened + length;
    let mut nlm_back = !matches!(expect, Expect::Locks(..) | Expect::Unknown);
    let mut pause = Duration::from_millis(100);
    let mut next_read = Instant::now();
    loop {
        let now = Instant::now();
        if now >= end {
            return Closed::TimeUp;
        }
        if let Expect::Locks(dev, n) = expect {
            if !nlm_back && now >= next_read {
                nlm_back = locks::held_on(&[dev])
                    .first()
                    .is_some_and(|h| h.client_locks() >= n);
                next_read = now + pause;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
        }
        if nlm_back && others_done() {
            return Closed::AllBack(now.saturating_duration_since(opened));
        }
        std::thread::sleep(Duration::from_millis(100).min(end - now));
    }
}

/// lockd's longest grace period: the kernel caps nlm_grace_period there.
pub const LOCKD_GRACE_MAX: u64 = 240;

const NLM_GRACE_PERIOD: &str = "/proc/sys/fs/nfs/nlm_grace_period";
/// Serialises the agents that set lockd's grace, node-wide.
const GRACE_LOCK: &str = "/run/handoff/lockd-grace.lock";

/// lockd reads its grace length from one setting of the whole kernel,
/// when it starts in a namespace. [`LockdGrace::hold`] sets it for one
/// start: no other handoff agent on the node changes it meanwhile, and it
/// is put back afterwards. Open it in the node's mount namespace (the
/// lock file is in its /run); it keeps working after entering a server's.
pub struct LockdGrace {
    lock: File,
    setting: File,
}

/// lockd's grace set for one start; dropping it puts the setting back.
pub struct HeldGrace<'a> {
    _lock: nix::fcntl::Flock<File>,
    setting: &'a File,
    previous: Vec<u8>,
}

impl LockdGrace {
    /// Open the setting and the node's lock file.
    pub fn open() -> std::io::Result<LockdGrace> {
        if let Some(dir) = Path::new(GRACE_LOCK).parent() {
            std::fs::create_dir_all(dir)?;
        }
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(GRACE_LOCK)?;
        let setting = OpenOptions::new()
            .read(true)
            .write(true)
            .open(NLM_GRACE_PERIOD)?;
        Ok(LockdGrace { lock, setting })
    }

    /// Take the node's lock and set lockd's next grace to `secs` (at most
    /// [`LOCKD_GRACE_MAX`]) until the result is dropped.
    pub fn hold(&self, secs: u64) -> std::io::Result<HeldGrace<'_>> {
        // Blocks while another agent starts its nfsd (milliseconds).
        let lock =
            nix::fcntl::Flock::lock(self.lock.try_clone()?, nix::fcntl::FlockArg::LockExclusive)
                .map_err(|(_, e)| std::io::Error::from(e))?;
        let mut setting = &self.setting;
        let mut previous = Vec::new();
        setting.rewind()?;
        setting.read_to_end(&mut previous)?;
        setting.rewind()?;
        setting.write_all(format!("{}\n", secs.min(LOCKD_GRACE_MAX)).as_bytes())?;
        Ok(HeldGrace {
            _lock: lock,
            setting: &self.setting,
            previous,
        })
    }
}

impl Drop for HeldGrace<'_> {
    fn drop(&mut self) {
        let mut setting = self.setting;
        let _ = setting.rewind();
        let _ = setting.write_all(&self.previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expectations_round_trip_as_arguments() {
        for e in [
            Expect::Nothing,
            Expect::Unknown,
            Expect::Locks((254, 3), 17),
        ] {
            assert_eq!(Expect::from_arg(&e.to_arg()), Some(e));
        }
        for bad in ["", "1:2", "1:2:3:4", "a:b:c", "-1:0:0"] {
            assert_eq!(Expect::from_arg(bad), None, "{bad}");
        }
    }

    #[test]
    fn what_a_start_expects() {
        let dev = (8, 1);
        assert_eq!(Expect::from(dev, 0, Some(5)), Expect::Nothing);
        assert_eq!(Expect::from(dev, 2, Some(0)), Expect::Nothing);
        assert_eq!(Expect::from(dev, 2, Some(5)), Expect::Locks(dev, 5));
        assert_eq!(Expect::from(dev, 2, None), Expect::Unknown);
    }

    #[test]
    fn a_release_record_holds_for_one_start() {
        let dir = std::env::temp_dir().join(format!("nsm-release-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(take_release(&dir), None);
        record_release(&dir, 3).unwrap();
        assert_eq!(take_release(&dir), Some(3));
        assert_eq!(take_release(&dir), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_window_without_nlm_clients_closes_when_the_others_are_done() {
        let t = Instant::now();
        let closed = wait(t, Duration::from_secs(30), Expect::Nothing, || true);
        assert!(matches!(closed, Closed::AllBack(d) if d < Duration::from_secs(5)));
        let closed = wait(
            Instant::now(),
            Duration::from_millis(300),
            Expect::Nothing,
            || false,
        );
        assert_eq!(closed, Closed::TimeUp);
        let closed = wait(
            Instant::now(),
            Duration::from_millis(300),
            Expect::Unknown,
            || true,
        );
        assert_eq!(closed, Closed::TimeUp);
    }

    proptest::proptest! {
        #[test]
        fn any_argument_parses_without_panic(s in "[0-9:a-z-]{0,30}|\\PC{0,20}") {
            if let Some(e) = Expect::from_arg(&s) {
                proptest::prop_assert_eq!(Expect::from_arg(&e.to_arg()), Some(e));
            }
        }

        #[test]
        fn every_expectation_round_trips(maj: u32, min: u32, n: usize) {
            let e = Expect::Locks((maj, min), n);
            proptest::prop_assert_eq!(Expect::from_arg(&e.to_arg()), Some(e));
        }

        // A damaged record (a crash mid-write on another filesystem, say)
        // is no record: the window then stays open its whole length.
        #[test]
        fn a_release_record_of_any_bytes_is_taken_without_panic(
            b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            n: usize,
        ) {
            let dir = std::env::temp_dir().join(format!("nsm-release-any-{}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
            let _ = std::fs::write(dir.join(RELEASED), &b);
            let got = take_release(&dir);
            let want = serde_json::from_slice::<Released>(&b).ok().map(|r| r.client_locks);
            proptest::prop_assert_eq!(got, want);
            proptest::prop_assert!(!dir.join(RELEASED).exists());
            let _ = record_release(&dir, n);
            proptest::prop_assert_eq!(take_release(&dir), Some(n));
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
