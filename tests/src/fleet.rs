//! Machines of their own: several qemu guests, each with its own kernel,
//! booting the same cached image on the host's root (handoff.root=host, as
//! cluster_vm does), on networks of their own (Linux bridges of tap
//! devices in a network namespace this module makes, so that nothing
//! leaves it), sharing raw disk images (share-rw), each driven through a
//! virtio serial port (see guest::serve). A machine can be powered off,
//! booted again, and cut from a network.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::guest::sys::Done;
use crate::util::run_ok;
use crate::vm::{self, Image, Machine};

/// A network namespace holding the machines' networks (bridges) and their
/// cables (tap devices). qemu runs inside it.
pub struct Net {
    /// Its name.
    pub ns: String,
}

impl Net {
    /// A namespace with one bridge per name in `bridges`.
    pub fn new(tag: &str, bridges: &[&str]) -> Net {
        let ns = format!("hf{}{tag}", std::process::id() % 100_000);
        let _ = Command::new("ip").args(["netns", "del", &ns]).status();
        run_ok(Command::new("ip").args(["netns", "add", &ns]));
        let net = Net { ns };
        net.ip(&["link", "set", "lo", "up"]);
        for b in bridges {
            net.ip(&["link", "add", b, "type", "bridge"]);
            net.ip(&["link", "set", b, "up"]);
        }
        net
    }

    fn ip(&self, args: &[&str]) {
        run_ok(Command::new("ip").arg("-n").arg(&self.ns).args(args));
    }

    /// A tap device plugged into `bridge`.
    pub fn tap(&self, name: &str, bridge: &str) {
        self.ip(&["tuntap", "add", "dev", name, "mode", "tap"]);
        self.ip(&["link", "set", name, "master", bridge, "up"]);
    }

    /// Plug a machine's cable in or pull it out (the tap's bridge port).
    pub fn cable(&self, tap: &str, connected: bool) {
        self.ip(&["link", "set", tap, if connected { "up" } else { "down" }]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}

/// What a machine is made of.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Its name (host name, log names).
    pub name: String,
    /// Memory in MiB.
    pub memory_mib: u32,
    /// Virtual CPUs.
    pub cpus: u32,
    /// Network cards in order (eth0, eth1...): tap device and MAC.
    pub nics: Vec<(String, String)>,
    /// Disks in order (vda, vdb...), shared with the other machines that
    /// have them.
    pub disks: Vec<PathBuf>,
}

/// The answers of a machine's server, by request id.
#[derive(Default)]
struct Answers {
    map: Mutex<HashMap<u64, serde_json::Value>>,
    ready: Condvar,
}

/// One running machine.
pub struct Vm {
    /// Its spec.
    pub spec: Spec,
    child: Child,
    console: Arc<Mutex<String>>,
    port: Mutex<Option<UnixStream>>,
    answers: Arc<Answers>,
    next: Mutex<u64>,
    /// When its qemu started.
    pub booted: Instant,
}

/// The image, the per-run overlay and the networks the machines share.
pub struct Fleet {
    image: Image,
    initrd: PathBuf,
    accel: &'static str,
    dir: PathBuf,
    /// Their networks.
    pub net: Net,
}

impl Fleet {
    /// Build (or reuse) the image, stage the overlay in `dir`, and make the
    /// networks.
    pub fn new(dir: &Path, bridges: &[&str]) -> Fleet {
        let image = vm::base_image();
        let ov = vm::overlay(dir, &[]);
        let accel = if vm::kvm_works(&image, &ov) {
            "kvm"
        } else {
            "tcg"
        };
        let initrd = dir.join("fleet.cpio");
        vm::join_initrd(&image, &ov, &initrd);
        Fleet {
            image,
            initrd,
            accel,
            dir: dir.to_owned(),
            net: Net::new("fl", bridges),
        }
    }

    /// "kvm" or "tcg".
    pub fn accel(&self) -> &'static str {
        self.accel
    }

    /// Boot a machine; returns once its command server answers.
    pub fn boot(&self, spec: &Spec) -> Vm {
        let sock = self.dir.join(format!("{}.sock", spec.name));
        let vm = self.launch(spec, &sock);
        if vm.connect(&sock) {
            return vm;
        }
        // Under TCG the kernel sometimes dies in its first seconds (seen:
        // an int3 oops in run_timer_softirq while booting node1 again after
        // its crash), before the guest ran anything: that says nothing of
        // what is tested, so the machine boots once more, and says so.
        eprintln!(
            "{}'s kernel panicked while booting, before the guest started; booting it again",
            spec.name
        );
        let first = vm.console();
        drop(vm); // powers it off
        let vm = self.launch(spec, &sock);
        assert!(
            vm.connect(&sock),
            "{} panicked while booting, twice; its consoles:\n{first}\n--\n{}",
            spec.name,
            vm.console()
        );
        vm
    }

    /// Start a machine's qemu.
    fn launch(&self, spec: &Spec, sock: &Path) -> Vm {
        let machine = Machine {
            host_root: true,
            memory_mib: spec.memory_mib,
            cpus: spec.cpus,
        };
        let args = format!(
            "handoff.root=host handoff.mode=serve handoff.name={}",
            spec.name
        );
        let mut cmd = vm::qemu(&self.image, &self.initrd, self.accel, &args, machine);
        for (i, (tap, mac)) in spec.nics.iter().enumerate() {
            cmd.arg("-netdev")
                .arg(format!("tap,id=n{i},ifname={tap},script=no,downscript=no"))
                .arg("-device")
                .arg(format!("virtio-net-pci,netdev=n{i},mac={mac}"));
        }
        for (i, d) in spec.disks.iter().enumerate() {
            // Written through to the image at once, so that another
            // machine's kernel reads what this one's acknowledged.
            cmd.arg("-drive")
                .arg(format!(
                    "file={},if=none,id=d{i},format=raw,cache=directsync,file.locking=off",
                    d.display()
                ))
                .arg("-device")
                .arg(format!("virtio-blk-pci,drive=d{i},share-rw=on"));
        }
        let _ = std::fs::remove_file(sock);
        cmd.args(["-device", "virtio-serial-pci"])
            .arg("-chardev")
            .arg(format!(
                "socket,id=ctl,path={},server=on,wait=off",
                sock.display()
            ))
            .args(["-device", "virtserialport,chardev=ctl,name=handoff"]);
        // Inside the networks' namespace, where the taps are.
        let program = cmd.get_program().to_owned();
        let qemu_args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.net.ns])
            .arg(program)
            .args(qemu_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("qemu-system-x86_64 (install qemu-system-x86)");
        let console = Arc::new(Mutex::new(String::new()));
        let out = child.stdout.take().expect("stdout");
        let (log, name) = (console.clone(), spec.name.clone());
        // Also a file, as it comes, for a reader while the test runs.
        let mut file =
            std::fs::File::create(self.dir.join(format!("{}-console.log", spec.name))).ok();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if std::env::var_os("HANDOFF_VM_ECHO").is_some() {
                    eprintln!("{name}: {line}");
                }
                if let Some(f) = file.as_mut() {
                    let _ = writeln!(f, "{line}");
                }
                let mut l = log.lock().unwrap_or_else(|e| e.into_inner());
                l.push_str(&line);
                l.push('\n');
            }
        });
        Vm {
            spec: spec.clone(),
            child,
            console,
            port: Mutex::new(None),
            answers: Arc::new(Answers::default()),
            next: Mutex::new(0),
            booted: Instant::now(),
        }
    }
}

impl Vm {
    /// Its console so far.
    pub fn console(&self) -> String {
        self.console
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Wait for the guest's server, then connect to its port; false when
    /// the kernel oopsed or panicked before the guest started.
    fn connect(&self, sock: &Path) -> bool {
        let until = Instant::now() + Duration::from_secs(600);
        loop {
            let console = self.console();
            if console.contains("HANDOFF-SERVING") {
                break;
            }
            let died = console.contains("Kernel panic") || console.contains("Oops:");
            if died && !console.contains("HANDOFF-") {
                return false;
            }
            assert!(
                Instant::now() < until,
                "{} did not boot; its console:\n{}",
                self.spec.name,
                self.console()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        let stream = UnixStream::connect(sock)
            .unwrap_or_else(|e| panic!("{}: {}: {e}", self.spec.name, sock.display()));
        let reader = stream.try_clone().expect("port");
        let answers = self.answers.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(reader).lines().map_while(Result::ok) {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                    continue;
                };
                let id = v["id"].as_u64().unwrap_or(0);
                answers
                    .map
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(id, v);
                answers.ready.notify_all();
            }
        });
        *self.port.lock().unwrap_or_else(|e| e.into_inner()) = Some(stream);
        true
    }

    /// Send a request; its answer, or None when none came within `limit`
    /// (the machine is gone, frozen or cut off).
    fn request(&self, mut req: serde_json::Value, limit: Duration) -> Option<serde_json::Value> {
        let id = {
            let mut n = self.next.lock().unwrap_or_else(|e| e.into_inner());
            *n += 1;
            *n
        };
        req["id"] = id.into();
        {
            let mut port = self.port.lock().unwrap_or_else(|e| e.into_inner());
            let stream = port.as_mut()?;
            writeln!(stream, "{req}").ok()?;
        }
        let until = Instant::now() + limit;
        let mut map = self.answers.map.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(v) = map.remove(&id) {
                return Some(v);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            map = self
                .answers
                .ready
                .wait_timeout(map, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Run a program in the machine, at most `limit`.
    pub fn run_for(&self, argv: &[&str], limit: Duration) -> Done {
        let req = serde_json::json!({"run": argv, "timeout_ms": limit.as_millis() as u64});
        match self.request(req, limit + Duration::from_secs(30)) {
            Some(v) => Done {
                code: v["code"].as_i64().unwrap_or(-1) as i32,
                stdout: v["stdout"].as_str().unwrap_or_default().to_owned(),
                stderr: v["stderr"].as_str().unwrap_or_default().to_owned(),
                took: Duration::from_secs_f64(v["ms"].as_f64().unwrap_or(0.0) / 1000.0),
            },
            None => Done {
                code: -3,
                stdout: String::new(),
                stderr: format!("{} did not answer", self.spec.name),
                took: limit,
            },
        }
    }

    /// Run a program in the machine (at most two minutes).
    pub fn run(&self, argv: &[&str]) -> Done {
        self.run_for(argv, Duration::from_secs(120))
    }

    /// Run a program in the machine; panic unless it succeeds.
    #[track_caller]
    pub fn ok(&self, argv: &[&str]) -> String {
        let d = self.run(argv);
        assert!(
            d.code == 0,
            "{}: {argv:?} failed ({}): {} {}",
            self.spec.name,
            d.code,
            d.stdout,
            d.stderr
        );
        d.stdout
    }

    /// Write a file in the machine.
    #[track_caller]
    pub fn write(&self, path: &str, content: &str) {
        self.ok(&["/handoff/bin/handoff-vmtest", "--write", path, content]);
    }

    /// Start a program in the background, its output to `out` in the
    /// machine; its PID.
    pub fn spawn(&self, argv: &[&str], out: &str) -> Option<u32> {
        let req = serde_json::json!({"spawn": argv, "out": out});
        let v = self.request(req, Duration::from_secs(60))?;
        v["pid"].as_u64().map(|p| p as u32)
    }

    /// Stop every process in the machine (its kernel goes on).
    pub fn freeze(&self) {
        // No answer comes: the server stops itself last.
        let _ = self.request(
            serde_json::json!({"freeze": true}),
            Duration::from_millis(500),
        );
    }

    /// Whether its qemu still runs (a fenced machine's has ended: the
    /// guest's reset ends it, -no-reboot).
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Pull the plug: end qemu at once, no shutdown in the guest.
    pub fn power_off(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        *self.port.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl Drop for Vm {
    fn drop(&mut self) {
        self.power_off();
    }
}
