//! The topology the scenarios share, and the client loops that measure it.

use super::*;

/// A lock/unlock loop from the client, until stopped.
pub(crate) struct Loop {
    child: Child,
    stop: String,
}

impl Loop {
    /// On B.
    pub(crate) fn start(client: &Host, tag: &str) -> Loop {
        Loop::on(client, B.mnt, tag)
    }

    /// On the export mounted at `mnt`.
    pub(crate) fn on(client: &Host, mnt: &str, tag: &str) -> Loop {
        Loop::verb(client, "loop", mnt, tag)
    }

    /// Records appended with fsync, each timed, on the export mounted at
    /// `mnt`: the stall its client sees.
    pub(crate) fn journal(client: &Host, mnt: &str, tag: &str) -> Loop {
        Loop::verb(client, "journal", mnt, tag)
    }

    fn verb(client: &Host, verb: &str, mnt: &str, tag: &str) -> Loop {
        let stop = format!("/tmp/stop-{tag}");
        let _ = std::fs::remove_file(&stop);
        let child = lock_cmd(client, &[verb, &format!("{mnt}/{verb}-{tag}"), &stop])
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("loop");
        Loop { child, stop }
    }

    /// Stop it; its summary, without the latencies over time.
    pub(crate) fn finish(self) -> serde_json::Value {
        self.finish_with_series().0
    }

    /// Stop it; its summary and its latencies over time ([Unix ms, ms]).
    pub(crate) fn finish_with_series(mut self) -> (serde_json::Value, serde_json::Value) {
        let _ = std::fs::write(&self.stop, "");
        // A loop stuck on a server that is gone would wait forever.
        if wait_for(CLIENT_LIMIT, || {
            self.child.try_wait().ok().flatten().is_some()
        })
        .is_none()
        {
            let _ = self.child.kill();
        }
        let out = self.child.wait_with_output().expect("loop output");
        let mut v = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        let series = crate::timeline::take_series(&mut v);
        (v, series)
    }
}

/// The topology, shared by the scenarios.
pub struct World {
    pub(crate) node1: Host,
    pub(crate) node2: Host,
    /// A node without an NFS server of its own (virtual servers only).
    pub(crate) node3: Host,
    pub(crate) client: Host,
    pub(crate) holders: Vec<Child>,
}

impl World {
    pub(crate) fn new() -> World {
        topo::bridge();
        for (dev, label) in [(A.dev, "export_a"), (B.dev, "export_b")] {
            sys::ok(&["mkfs.ext4", "-q", "-F", "-L", label, dev]);
        }
        for d in [A.dir, B.dir, A.mnt, B.mnt] {
            let _ = std::fs::create_dir_all(d);
        }
        let node1 = Host::new("node1", "192.0.2.11");
        let node2 = Host::new("node2", "192.0.2.12");
        let node3 = Host::new("node3", "192.0.2.13");
        let client = Host::new("client", "192.0.2.50");
        node1.start_nfs_server(10);
        node2.start_nfs_server(10);
        client.start_nfs_client();
        // The first start of an NFS server is a grace period too.
        let settled = wait_for(Duration::from_secs(30), || {
            !node1.in_grace() && !node2.in_grace()
        });
        check("setup: initial grace periods ended", settled.is_some(), "");
        World {
            node1,
            node2,
            node3,
            client,
            holders: Vec::new(),
        }
    }

    /// Mount the group's export on the client, over NFSv3 through its VIP.
    pub(crate) fn mount(&self, g: &Group) {
        World::mount_v3(&self.client, g);
    }

    /// Mount the group's export on `client` over NFSv3 through its VIP,
    /// at its mount point.
    pub(crate) fn mount_v3(client: &Host, g: &Group) {
        let _ = std::fs::create_dir_all(format!("/proc/{}/root{}", client.pid, g.mnt));
        client.ok(&[
            "mount.nfs",
            &format!("{}:{}", g.vip, g.dir),
            g.mnt,
            "-o",
            "vers=3,proto=tcp",
        ]);
    }

    /// Mount the group's export on `client` over NFSv4.2 through its VIP,
    /// at its mount point with a 4 appended; returns that mount point.
    pub(crate) fn mount_v4(client: &Host, g: &Group) -> String {
        let at = format!("{}4", g.mnt);
        let _ = std::fs::create_dir_all(format!("/proc/{}/root{at}", client.pid));
        client.ok(&[
            "mount.nfs",
            &format!("{}:{}", g.vip, g.dir),
            &at,
            "-o",
            "vers=4.2,proto=tcp",
        ]);
        at
    }

    /// Write (`write`) or check (`verify`) 1 MiB of content made from
    /// `seed` in the group's `data` file, from the client.
    pub(crate) fn data(&self, verb: &str, g: &Group, seed: &str) -> Done {
        self.data_at(verb, &format!("{}/data", g.mnt), seed)
    }

    /// As [`World::data`], at `path`.
    pub(crate) fn data_at(&self, verb: &str, path: &str, seed: &str) -> Done {
        data_on(&self.client, verb, path, seed)
    }

    /// After `g` moved: report the reclaim time and the failover's whole
    /// time (first stop to locks reclaimed; `times` is the first stop, the
    /// end of the takeover and the reclaim after it), and check that the
    /// client reads back its data (written with `seed`) and that its lock
    /// holders never saw an error.
    pub(crate) fn after_takeover(
        &mut self,
        scenario: &str,
        prefix: &str,
        g: &Group,
        seed: &str,
        times: (Instant, Instant, Option<Duration>),
    ) {
        let (t0, taken, reclaimed) = times;
        if let Some(r) = reclaimed {
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            metric(&format!("{prefix}reclaim_after_takeover_ms"), ms(r), "ms");
            let total = t0.elapsed() - (taken.elapsed() - r);
            metric(&format!("{prefix}failover_total_ms"), ms(total), "ms");
        }
        let back = self.data("verify", g, seed);
        check(
            &format!(
                "{scenario}: the client reads back every byte it wrote to {}",
                g.id.to_uppercase()
            ),
            back.code == 0,
            back.stdout.trim(),
        );
        let alive = self
            .holders
            .iter_mut()
            .all(|c| c.try_wait().ok().flatten().is_none());
        check(
            &format!("{scenario}: the client's lock holders never saw an error"),
            alive,
            "",
        );
    }

    pub(crate) fn hold(&mut self, path: &str) -> bool {
        let (child, line) = spawn_ready(
            lock_cmd(&self.client, &["hold", path]),
            Duration::from_secs(60),
        );
        self.holders.push(child);
        line == "HELD"
    }

    /// Keep `path` open for reading from the client (an NFSv4 server may
    /// delegate it).
    pub(crate) fn keep_open(&mut self, path: &str) -> bool {
        let (child, line) = spawn_ready(
            lock_cmd(&self.client, &["open", path]),
            Duration::from_secs(60),
        );
        self.holders.push(child);
        line == "OPEN"
    }
}
