//! `handoff.mode=serve`: a guest that is one machine of several (a cluster
//! node, a client), driven by the host over a virtio serial port named
//! `handoff`. Each request is one JSON line; each runs in a thread of its
//! own and its answer, tagged with the request's id, is one JSON line back:
//!
//! - `{"id":N,"run":[ARGV...],"timeout_ms":T}`: run a program (argument
//!   vector, no shell) to its end or its time limit; answer `code`,
//!   `stdout`, `stderr`, `ms`;
//! - `{"id":N,"spawn":[ARGV...],"out":PATH}`: start a program in the
//!   background, its output to PATH; answer `pid`;
//! - `{"id":N,"freeze":true}`: stop every process of the machine with
//!   SIGSTOP, this server last (a hung node: its kernel still runs, its
//!   programs do not).

use std::io::{BufRead, BufReader, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::sys;

/// The port's device, found by its name in sysfs.
fn port() -> Option<std::path::PathBuf> {
    for _ in 0..100 {
        for e in std::fs::read_dir("/sys/class/virtio-ports")
            .into_iter()
            .flatten()
            .flatten()
        {
            let name = std::fs::read_to_string(e.path().join("name")).unwrap_or_default();
            if name.trim() == "handoff" {
                return Some(std::path::Path::new("/dev").join(e.file_name()));
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

fn answer(id: u64, mut v: serde_json::Value) -> String {
    v["id"] = id.into();
    v.to_string()
}

fn argv(v: &serde_json::Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn run(v: &serde_json::Value) -> serde_json::Value {
    let args = argv(&v["run"]);
    let Some((program, rest)) = args.split_first() else {
        return serde_json::json!({"code": -1, "stdout": "", "stderr": "no program", "ms": 0.0});
    };
    let limit = Duration::from_millis(v["timeout_ms"].as_u64().unwrap_or(120_000));
    let mut cmd = std::process::Command::new(program);
    cmd.args(rest);
    let d = sys::run_for(&mut cmd, limit);
    serde_json::json!({"code": d.code, "stdout": d.stdout, "stderr": d.stderr, "ms": d.ms()})
}

fn spawn(v: &serde_json::Value) -> serde_json::Value {
    let args = argv(&v["spawn"]);
    let out = v["out"].as_str().unwrap_or("/dev/null");
    let Some((program, rest)) = args.split_first() else {
        return serde_json::json!({"error": "no program"});
    };
    let file = match std::fs::File::create(out) {
        Ok(f) => f,
        Err(e) => return serde_json::json!({"error": format!("{out}: {e}")}),
    };
    let err = match file.try_clone() {
        Ok(f) => f,
        Err(e) => return serde_json::json!({"error": e.to_string()}),
    };
    match std::process::Command::new(program)
        .args(rest)
        .stdin(std::process::Stdio::null())
        .stdout(file)
        .stderr(err)
        .spawn()
    {
        Ok(child) => serde_json::json!({"pid": child.id()}),
        Err(e) => serde_json::json!({"error": format!("{program}: {e}")}),
    }
}

/// SIGSTOP every user process but PID 1 (which only reaps) and this one,
/// then this one.
fn freeze() -> ! {
    let me = std::process::id() as i32;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        // Kernel threads have no command line.
        let user = std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty());
        if pid > 1 && pid != me && user {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGSTOP,
            );
        }
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(me),
        nix::sys::signal::Signal::SIGSTOP,
    );
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// The entry point of `handoff-vmtest --serve`.
pub fn main() {
    let Some(dev) = port() else {
        println!("serve: no virtio port named handoff");
        return;
    };
    let open = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&dev);
    let (reader, writer) = match open.and_then(|f| Ok((f.try_clone()?, f))) {
        Ok(pair) => pair,
        Err(e) => {
            println!("serve: {}: {e}", dev.display());
            return;
        }
    };
    if let Some(name) = super::cmdline("handoff.name") {
        let _ = nix::unistd::sethostname(&name);
    }
    let writer = Arc::new(Mutex::new(writer));
    println!("HANDOFF-SERVING {}", dev.display());
    let mut reader = BufReader::new(reader);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(n) if n > 0 => {}
            // The host is not connected (yet, or any more): nothing to read.
            _ => {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        }
        let Ok(req) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let id = req["id"].as_u64().unwrap_or(0);
        if req["freeze"].as_bool() == Some(true) {
            freeze();
        }
        let writer = writer.clone();
        std::thread::spawn(move || {
            let reply = if req.get("spawn").is_some() {
                spawn(&req)
            } else {
                run(&req)
            };
            let text = answer(id, reply);
            let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(w, "{text}");
            let _ = w.flush();
        });
    }
}
