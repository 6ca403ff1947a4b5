//! Running an agent the way Pacemaker's executor does: a clean
//! environment, OCF_RESKEY_* parameters, one action argument.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::sandbox::Sandbox;
use crate::util::agent_bin;

/// The result of one action.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Outcome {
    /// The `ocf-exit-reason:` text, if any.
    pub fn reason(&self) -> Option<&str> {
        self.stderr
            .lines()
            .find_map(|l| l.strip_prefix("ocf-exit-reason:"))
    }

    /// Panic unless the exit code is `code`.
    #[track_caller]
    pub fn expect(&self, code: i32, what: &str) -> &Self {
        assert_eq!(
            self.code, code,
            "{what}: expected exit {code}, got {}\nstdout: {}\nstderr: {}",
            self.code, self.stdout, self.stderr
        );
        self
    }
}

/// An agent with its parameters, bound to a sandbox.
#[derive(Clone)]
pub struct AgentCmd {
    bin: PathBuf,
    nsenter: Vec<String>,
    params: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
}

impl AgentCmd {
    /// Agent `name` (a binary in the build directory) run inside `sb`.
    pub fn new(sb: &Sandbox, name: &str) -> Self {
        let mut nsenter = vec!["-t".to_owned(), sb.pid().to_string(), "-m".to_owned()];
        if sb.command("true").get_args().any(|a| a == "-n") {
            nsenter.push("-n".to_owned());
        }
        Self::with_nsenter(name, nsenter)
    }

    /// Agent `name` run through nsenter with these namespace options.
    pub fn with_nsenter(name: &str, nsenter: Vec<String>) -> Self {
        let mut env = BTreeMap::new();
        env.insert("OCF_ROOT".into(), "/usr/lib/ocf".into());
        env.insert("OCF_RESOURCE_INSTANCE".into(), format!("test-{name}"));
        env.insert("HA_LOGFACILITY".into(), "none".into());
        env.insert(
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        );
        Self {
            bin: agent_bin(name),
            nsenter,
            params: BTreeMap::new(),
            env,
        }
    }

    /// The same command, running the ClusterLabs agent `name` (Debian's
    /// resource-agents) instead: for side-by-side checks.
    pub fn clusterlabs(mut self, name: &str) -> Self {
        self.bin = PathBuf::from("/usr/lib/ocf/resource.d/heartbeat").join(name);
        self.env
            .insert("OCF_RESOURCE_INSTANCE".into(), format!("test-{name}"));
        self
    }

    /// Set a parameter (OCF_RESKEY_<name>).
    pub fn param(mut self, name: &str, value: impl ToString) -> Self {
        self.params.insert(name.to_owned(), value.to_string());
        self
    }

    /// Remove a parameter.
    pub fn unset(mut self, name: &str) -> Self {
        self.params.remove(name);
        self
    }

    /// Set another environment variable.
    pub fn env(mut self, name: &str, value: impl ToString) -> Self {
        self.env.insert(name.to_owned(), value.to_string());
        self
    }

    /// Remove an environment variable.
    pub fn unset_env(mut self, name: &str) -> Self {
        self.env.remove(name);
        self
    }

    /// The command for an action (extra arguments go before it).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("nsenter");
        cmd.args(&self.nsenter).arg("--").arg(&self.bin).args(args);
        cmd.env_clear().envs(&self.env);
        for (k, v) in &self.params {
            cmd.env(format!("OCF_RESKEY_{k}"), v);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Run an action to completion.
    pub fn run(&self, action: &str) -> Outcome {
        self.run_args(&[action])
    }

    /// Run with explicit arguments (CLI mode).
    pub fn run_args(&self, args: &[&str]) -> Outcome {
        let out = self
            .command(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin.display()));
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Start an action without waiting for it.
    pub fn spawn(&self, action: &str) -> Child {
        self.command(&[action])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn agent")
    }
}

/// One row of a bad-input table: parameters changed from a good base
/// ("-" unsets one), and the exit code and reason validate-all and start
/// must both give.
pub struct BadInput {
    /// What the row tries.
    pub name: &'static str,
    /// The parameters it changes.
    pub set: &'static [(&'static str, &'static str)],
    /// The expected exit code.
    pub code: i32,
    /// Text the exit reason must contain.
    pub reason: &'static str,
}

impl BadInput {
    /// Run validate-all and start with this row's parameters on `base`;
    /// panic unless both give the code and the reason and `state` (what
    /// the agent could change) reads the same before and after. Then, as
    /// for a resource never started here, stop must succeed and a probe
    /// find it stopped, changing nothing either.
    #[track_caller]
    pub fn check(&self, base: &AgentCmd, state: impl Fn() -> String) {
        let mut a = base.clone();
        for (k, v) in self.set {
            a = if *v == "-" { a.unset(k) } else { a.param(k, v) };
        }
        never_started(&a, self.name, &state);
        for action in ["validate-all", "start"] {
            let before = state();
            let out = a.run(action);
            assert_eq!(
                out.code, self.code,
                "{}: {action}: {}",
                self.name, out.stderr
            );
            let reason = out.reason().unwrap_or_else(|| {
                panic!("{}: {action}: no exit reason: {}", self.name, out.stderr)
            });
            assert!(
                reason.contains(self.reason),
                "{}: {action}: {reason:?} lacks {:?}",
                self.name,
                self.reason
            );
            assert_eq!(
                state(),
                before,
                "{}: {action} changed the system",
                self.name
            );
        }
    }
}

/// Stop and probe `a`, a resource never started here (whatever its
/// parameters): stop succeeds and the probe says not running (as
/// ocf-rarun answers an invalid environment), and neither changes `state`.
#[track_caller]
pub fn never_started(a: &AgentCmd, name: &str, state: &dyn Fn() -> String) {
    let before = state();
    let stop = a.run("stop");
    assert_eq!(
        stop.code, 0,
        "{name}: stop of a resource never started here: {}",
        stop.stderr
    );
    let probe = a
        .clone()
        .unset_env("OCF_RESKEY_CRM_meta_interval")
        .run("monitor");
    assert_eq!(
        probe.code, 7,
        "{name}: probe of a resource never started here: {}",
        probe.stderr
    );
    assert_eq!(state(), before, "{name}: stop or probe changed the system");
}
