//! A LAN of network namespaces: hosts with one interface (eth0) each,
//! joined by a bridge in a switch namespace, on 192.0.2.0/24 and
//! 2001:db8::/64. Nothing leaves the namespaces created here.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use crate::agent::AgentCmd;
use crate::util::run_ok;

/// One host.
pub struct Host {
    /// Its short name.
    pub name: String,
    /// Its network namespace (under /run/netns).
    pub netns: String,
    /// Its IPv4 address on eth0.
    pub v4: String,
    /// Its IPv6 address on eth0.
    pub v6: String,
    /// The name of its port on the switch.
    pub port: String,
}

impl Host {
    /// `ip -n NETNS ARGS`, whatever its status.
    pub fn ip(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .arg("-n")
            .arg(&self.netns)
            .args(args)
            .output()
            .expect("ip")
    }

    /// `ip -n NETNS ARGS`, which must succeed; its stdout.
    pub fn ip_ok(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(
            &run_ok(Command::new("ip").arg("-n").arg(&self.netns).args(args)).stdout,
        )
        .into_owned()
    }

    /// A command run in the host's network namespace.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.netns, program]);
        c
    }

    /// An agent run in the host's network namespace.
    pub fn agent(&self, name: &str) -> AgentCmd {
        AgentCmd::with_nsenter(name, vec![format!("--net=/run/netns/{}", self.netns)])
    }

    /// eth0's MAC address.
    pub fn mac(&self) -> String {
        let out = self.ip_ok(&["-o", "link", "show", "eth0"]);
        out.split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .unwrap_or_default()
            .to_owned()
    }

    /// The addresses of eth0, one per line (`ip -o addr`), without
    /// lifetimes and with flags, for before/after comparisons.
    pub fn addresses(&self) -> Vec<String> {
        self.ip_ok(&["-o", "addr", "show", "dev", "eth0"])
            .lines()
            .map(|l| l.split(" valid_lft").next().unwrap_or(l).trim().to_owned())
            .collect()
    }

    /// The routing tables, for before/after comparisons.
    pub fn routes(&self) -> String {
        format!(
            "{}{}",
            self.ip_ok(&["-4", "route", "show", "table", "all"]),
            self.ip_ok(&["-6", "route", "show", "table", "main"])
        )
    }

    /// The MAC this host's neighbour table has for `ip`, if any.
    pub fn neighbour(&self, ip: &str) -> Option<String> {
        let out = self.ip_ok(&["neigh", "show", ip]);
        out.split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)
            .map(str::to_owned)
    }
}

/// The LAN.
pub struct Lan {
    /// The hosts, in the order given.
    pub hosts: Vec<Host>,
    /// The switch namespace.
    pub switch: String,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

fn ip(args: &[&str]) {
    run_ok(Command::new("ip").args(args));
}

impl Lan {
    /// Hosts `names` get 192.0.2.1, .2, ... and 2001:db8::1, ::2, ...
    pub fn new(names: &[&str]) -> Self {
        let tag = format!(
            "hl{}x{}",
            std::process::id() % 100000,
            SEQ.fetch_add(1, Ordering::SeqCst)
        );
        let switch = format!("{tag}sw");
        ip(&["netns", "add", &switch]);
        ip(&["-n", &switch, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &switch, "link", "set", "br0", "up"]);
        let mut hosts = Vec::new();
        for (i, name) in names.iter().enumerate() {
            let netns = format!("{tag}{name}");
            let port = format!("p{i}");
            ip(&["netns", "add", &netns]);
            ip(&["-n", &netns, "link", "set", "lo", "up"]);
            ip(&[
                "link", "add", "eth0", "netns", &netns, "type", "veth", "peer", "name", &port,
                "netns", &switch,
            ]);
            ip(&["-n", &switch, "link", "set", &port, "master", "br0", "up"]);
            let v4 = format!("192.0.2.{}", i + 1);
            let v6 = format!("2001:db8::{}", i + 1);
            ip(&[
                "-n",
                &netns,
                "addr",
                "add",
                &format!("{v4}/24"),
                "dev",
                "eth0",
            ]);
            ip(&[
                "-n",
                &netns,
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                "eth0",
                "nodad",
            ]);
            ip(&["-n", &netns, "link", "set", "eth0", "up"]);
            hosts.push(Host {
                name: name.to_string(),
                netns,
                v4,
                v6,
                port,
            });
        }
        Lan { hosts, switch }
    }

    /// A host by name.
    pub fn host(&self, name: &str) -> &Host {
        self.hosts.iter().find(|h| h.name == name).expect("host")
    }

    /// `ip -n SWITCH ARGS`, which must succeed.
    pub fn switch_ip(&self, args: &[&str]) {
        run_ok(Command::new("ip").arg("-n").arg(&self.switch).args(args));
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        for h in &self.hosts {
            let _ = Command::new("ip").args(["netns", "del", &h.netns]).status();
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.switch])
            .status();
    }
}

/// Packets captured with tcpdump on a host's eth0.
pub struct Capture {
    child: std::process::Child,
}

/// One captured packet: its time (seconds) and tcpdump's line.
#[derive(Clone, Debug)]
pub struct Packet {
    /// Capture time, seconds since the epoch.
    pub at: f64,
    /// tcpdump's description.
    pub line: String,
}

impl Host {
    /// Capture up to `count` packets matching a pcap filter, starting now.
    pub fn capture(&self, filter: &str, count: usize) -> Capture {
        use std::io::BufRead;
        let mut child = self
            .command("tcpdump")
            .args([
                "-i",
                "eth0",
                "-nn",
                "-e",
                "-l",
                "-tt",
                "-c",
                &count.to_string(),
            ])
            .arg(filter)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("tcpdump");
        // tcpdump says "listening on eth0" once its capture is armed.
        let stderr = child.stderr.take().expect("stderr");
        let mut reader = std::io::BufReader::new(stderr);
        let mut seen = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                panic!("tcpdump did not start: {seen}");
            }
            seen.push_str(&line);
            if line.contains("listening on") {
                break;
            }
        }
        Capture { child }
    }
}

impl Capture {
    /// The packets captured until `count` arrived or `timeout` passed.
    pub fn finish(mut self, timeout: std::time::Duration) -> Vec<Packet> {
        use std::io::Read;
        let end = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < end {
            if self.child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        );
        let _ = self.child.wait();
        let mut out = String::new();
        if let Some(mut s) = self.child.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        out.lines()
            .filter_map(|l| {
                let (t, rest) = l.split_once(' ')?;
                Some(Packet {
                    at: t.parse().ok()?,
                    line: rest.to_owned(),
                })
            })
            .collect()
    }
}
