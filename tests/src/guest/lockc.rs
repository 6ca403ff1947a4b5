//! The NFS client's lock users, run inside the client's namespaces:
//!
//! - `--lock hold PATH`: take a whole-file write lock, print HELD, keep it;
//! - `--lock many PATH N`: take N separate one-byte locks, print HELD N;
//! - `--lock try PATH`: take and release a lock, print the milliseconds;
//! - `--lock loop PATH STOPFILE`: take and release locks until STOPFILE
//!   exists, then print a JSON summary (count, errors, latencies, and the
//!   latencies over time, thinned, for a plot);
//! - `--lock write PATH BYTES SEED` / `--lock verify PATH BYTES SEED`:
//!   write (and fsync) and check deterministic content;
//! - `--lock open PATH`: open read-only, read it, print OPEN, keep it open
//!   (an NFSv4 server may hand out a read delegation for it);
//! - `--lock probe PATH`: ask for a lock without waiting for a conflicting
//!   one; print GRANTED (and release it) or REFUSED;
//! - `--lock journal PATH STOPFILE`: every 100 ms write the next 4 KiB
//!   record and fsync it, until STOPFILE exists; then print a JSON summary
//!   with the last record whose fsync returned (acknowledged) and the
//!   longest wait;
//! - `--lock check-journal PATH LAST`: check records 0 to LAST.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg};

fn flock(kind: i16, start: i64, len: i64) -> libc::flock {
    let mut l = zero_flock();
    l.l_type = kind;
    l.l_whence = libc::SEEK_SET as i16;
    l.l_start = start;
    l.l_len = len;
    l
}

/// A zeroed flock, built field by field (no unsafe zeroing).
fn zero_flock() -> libc::flock {
    libc::flock {
        l_type: 0,
        l_whence: 0,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

fn lock(f: &std::fs::File, start: i64, len: i64) -> nix::Result<()> {
    fcntl(
        f,
        FcntlArg::F_SETLKW(&flock(libc::F_WRLCK as i16, start, len)),
    )
    .map(|_| ())
}

fn unlock(f: &std::fs::File, start: i64, len: i64) -> nix::Result<()> {
    fcntl(
        f,
        FcntlArg::F_SETLK(&flock(libc::F_UNLCK as i16, start, len)),
    )
    .map(|_| ())
}

fn open(path: &str) -> std::fs::File {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .unwrap_or_else(|e| {
            println!("ERROR open {path}: {e}");
            std::process::exit(1)
        })
}

fn forever() -> ! {
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// xorshift64*, the deterministic content of data files.
fn stream(seed: u64, n: usize) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..n)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            (x.wrapping_mul(0x2545F4914F6CDD1D) >> 56) as u8
        })
        .collect()
}

/// Entry point of `--lock`; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    match a.as_slice() {
        ["hold", path] => {
            let f = open(path);
            match lock(&f, 0, 0) {
                Ok(()) => {
                    println!("HELD");
                    let _ = std::io::stdout().flush();
                    forever()
                }
                Err(e) => {
                    println!("ERROR {e}");
                    1
                }
            }
        }
        ["many", path, n] => {
            let f = open(path);
            let n: i64 = n.parse().unwrap_or(1);
            for i in 0..n {
                if let Err(e) = lock(&f, i * 2, 1) {
                    println!("ERROR at {i}: {e}");
                    return 1;
                }
            }
            println!("HELD {n}");
            let _ = std::io::stdout().flush();
            forever()
        }
        ["try", path] => {
            let f = open(path);
            let t = Instant::now();
            let r = lock(&f, 0, 0).and_then(|()| unlock(&f, 0, 0));
            println!(
                "{} {}",
                if r.is_ok() { "OK" } else { "ERROR" },
                t.elapsed().as_secs_f64() * 1000.0
            );
            i32::from(r.is_err())
        }
        ["loop", path, stop] => {
            let f = open(path);
            let mut lat = Vec::new();
            let mut errors = 0u64;
            // When the slowest operation started, to line it up with logs.
            let mut slowest = (0.0f64, String::new());
            let mut series = Series::default();
            while !std::path::Path::new(stop).exists() {
                let (t, at) = (Instant::now(), std::time::SystemTime::now());
                if lock(&f, 0, 1).and_then(|()| unlock(&f, 0, 1)).is_err() {
                    errors += 1;
                }
                let ms = t.elapsed().as_secs_f64() * 1000.0;
                if ms > slowest.0 {
                    slowest = (ms, humantime::format_rfc3339_millis(at).to_string());
                }
                series.add(at, ms);
                lat.push(ms);
                std::thread::sleep(Duration::from_millis(5));
            }
            lat.sort_by(|x, y| x.total_cmp(y));
            let pct = |p: f64| {
                lat.get(((lat.len() as f64 - 1.0) * p) as usize)
                    .copied()
                    .unwrap_or(0.0)
            };
            let v = serde_json::json!({
                "count": lat.len(), "errors": errors,
                "median_ms": pct(0.5), "p99_ms": pct(0.99), "max_ms": lat.last().copied().unwrap_or(0.0),
                "slowest_at": slowest.1, "series": series.points,
            });
            println!("{v}");
            0
        }
        ["write", path, n, seed] => {
            let data = stream(seed.parse().unwrap_or(1), n.parse().unwrap_or(0));
            let mut f = open(path);
            match f.write_all(&data).and_then(|()| f.sync_all()) {
                Ok(()) => {
                    println!("WROTE {}", data.len());
                    0
                }
                Err(e) => {
                    println!("ERROR {e}");
                    1
                }
            }
        }
        ["verify", path, n, seed] => {
            let want = stream(seed.parse().unwrap_or(1), n.parse().unwrap_or(0));
            let mut got = Vec::new();
            if let Err(e) = open(path).read_to_end(&mut got) {
                println!("ERROR {e}");
                return 1;
            }
            match got.iter().zip(&want).position(|(a, b)| a != b) {
                None if got.len() == want.len() => {
                    println!("SAME {}", got.len());
                    0
                }
                None => {
                    println!("DIFFERENT length {} not {}", got.len(), want.len());
                    1
                }
                Some(i) => {
                    println!("DIFFERENT at byte {i}");
                    1
                }
            }
        }
        ["open", path] => {
            let mut f = match OpenOptions::new().read(true).open(path) {
                Ok(f) => f,
                Err(e) => {
                    println!("ERROR open {path}: {e}");
                    return 1;
                }
            };
            let mut buf = Vec::new();
            if let Err(e) = f.read_to_end(&mut buf) {
                println!("ERROR read {path}: {e}");
                return 1;
            }
            println!("OPEN");
            let _ = std::io::stdout().flush();
            forever()
        }
        ["probe", path] => {
            let f = open(path);
            let asked = fcntl(&f, FcntlArg::F_SETLK(&flock(libc::F_WRLCK as i16, 0, 0)));
            match asked {
                Ok(_) => {
                    let _ = unlock(&f, 0, 0);
                    println!("GRANTED");
                    0
                }
                Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EACCES) => {
                    println!("REFUSED");
                    0
                }
                Err(e) => {
                    println!("ERROR {e}");
                    1
                }
            }
        }
        ["journal", path, stop] => journal(path, stop),
        ["check-journal", path, last] => check_journal(path, last.parse().unwrap_or(0)),
        _ => {
            println!("usage: --lock hold|many|try|loop|write|verify|open|probe|journal|check-journal ...");
            2
        }
    }
}

/// Operations' latencies over time, thinned for a plot: the slowest
/// operation that began in each 250 ms, as [start in Unix ms, ms].
#[derive(Default)]
struct Series {
    points: Vec<(u64, f64)>,
}

impl Series {
    const BUCKET_MS: u64 = 250;

    fn add(&mut self, at: std::time::SystemTime, ms: f64) {
        let unix = at
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let ms = (ms * 10.0).round() / 10.0;
        match self.points.last_mut() {
            Some(last) if last.0 / Self::BUCKET_MS == unix / Self::BUCKET_MS => {
                if ms > last.1 {
                    *last = (unix, ms);
                }
            }
            _ => self.points.push((unix, ms)),
        }
    }
}

/// The journal's record size.
const RECORD: usize = 4096;

/// Record `n` of a journal: its number, then bytes derived from it.
fn record(n: u64) -> Vec<u8> {
    let mut r = n.to_le_bytes().to_vec();
    r.extend(stream(n + 1, RECORD - 8));
    r
}

fn journal(path: &str, stop: &str) -> i32 {
    use std::os::unix::fs::FileExt;
    let f = open(path);
    let (mut n, mut errors, mut acked) = (0u64, 0u64, None::<u64>);
    let mut slowest = (0.0f64, String::new());
    let mut series = Series::default();
    while !std::path::Path::new(stop).exists() {
        let (t, at) = (Instant::now(), std::time::SystemTime::now());
        match f
            .write_all_at(&record(n), n * RECORD as u64)
            .and_then(|()| f.sync_data())
        {
            Ok(()) => {
                acked = Some(n);
                n += 1;
            }
            Err(_) => errors += 1,
        }
        let ms = t.elapsed().as_secs_f64() * 1000.0;
        if ms > slowest.0 {
            slowest = (ms, humantime::format_rfc3339_millis(at).to_string());
        }
        series.add(at, ms);
        std::thread::sleep(Duration::from_millis(100));
    }
    let v = serde_json::json!({
        "records": n, "errors": errors, "last_acked": acked,
        "max_ms": slowest.0, "slowest_at": slowest.1, "series": series.points,
    });
    println!("{v}");
    0
}

fn check_journal(path: &str, last: u64) -> i32 {
    let mut got = Vec::new();
    if let Err(e) = open(path).read_to_end(&mut got) {
        println!("ERROR {e}");
        return 1;
    }
    for n in 0..=last {
        let at = n as usize * RECORD;
        if got.get(at..at + RECORD) != Some(record(n).as_slice()) {
            println!("DIFFERENT record {n} of 0..={last}");
            return 1;
        }
    }
    println!("SAME {} records", last + 1);
    0
}
