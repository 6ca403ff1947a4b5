//! Runs one invocation: parse, dispatch to the agent, map the outcome to an
//! exit code, print the exit reason, log.

use std::collections::BTreeMap;
use std::ffi::OsString;

use crate::action::Action;
use crate::agent::{Agent, Ctx, Facts};
use crate::cli::{self, Invocation, Parsed};
use crate::deadline::Deadline;
use crate::env;
use crate::exit::{OcfError, Result, Status};
use crate::log::Logger;
use crate::param::{self, EnvSource, MapSource, ParamSpec, Params, Source};
use crate::{manpage, metadata};

/// The `main` of an agent binary.
pub fn main<A: Agent>(agent: A) -> ! {
    let code = run(&agent, std::env::args_os().collect());
    std::process::exit(code)
}

/// Run one invocation and return its exit code.
pub fn run<A: Agent>(agent: &A, args: Vec<OsString>) -> i32 {
    let info = &A::INFO;
    let specs = A::Params::SPECS;
    let inv = match cli::parse(info, specs, args) {
        Parsed::Run(inv) => inv,
        Parsed::Print(text) => {
            print!("{text}");
            return 0;
        }
        Parsed::Exit(code) => return code,
    };
    match inv.action {
        Action::MetaData => {
            print!("{}", metadata::render(info, specs));
            return 0;
        }
        Action::Usage => {
            println!("{}", cli::usage(info.name));
            return 0;
        }
        _ => {}
    }

    let instance = inv
        .instance
        .clone()
        .or_else(env::instance)
        .unwrap_or_else(|| info.name.to_owned());
    let log = Logger::from_env(info.name, &instance);
    let check_level = match &inv.check_level {
        Some(raw) => env::parse_check_level(raw),
        None => env::check_level(),
    };
    let ctx = Ctx {
        provider: info.provider,
        agent: info.name,
        instance,
        action: inv.action,
        check_level: *check_level.as_ref().unwrap_or(&0),
        deadline: Deadline::new(
            inv.timeout
                .or_else(env::timeout)
                .unwrap_or_else(|| info.default_timeout(inv.action)),
        ),
        probe: inv.action == Action::Monitor && !inv.interactive && env::interval().is_none(),
        log,
        state_dir: env::rsctmp(),
    };
    let src = MapSource {
        values: inv.values.clone(),
        fallback: EnvSource,
    };
    let outcome = check_level.and_then(|_| execute(agent, &ctx, &src));
    report(&ctx, &inv, outcome)
}

fn execute<A: Agent>(agent: &A, ctx: &Ctx, src: &dyn Source) -> Result<Facts> {
    let specs = A::Params::SPECS;
    if ctx.action.changes_system() && !nix::unistd::geteuid().is_root() {
        return Err(OcfError::perm(format!(
            "{} must run as root (it changes mounts, addresses or kernel state)",
            ctx.action
        )));
    }
    if matches!(ctx.action, Action::Start | Action::ValidateAll) {
        let unknown = param::unknown_env_params(specs);
        if let Some(name) = unknown.first() {
            let known: Vec<&str> = specs.iter().map(|s| s.name).collect();
            return Err(OcfError::configured(format!(
                "unknown parameter '{name}' (OCF_RESKEY_{name}); this agent knows: {}",
                known.join(", ")
            )));
        }
    }
    let params = match A::Params::from_source(src) {
        Ok(p) => p,
        Err(e) => return invalid_env(ctx, e),
    };
    if matches!(ctx.action, Action::Start | Action::ValidateAll) {
        warn_deprecated(ctx, specs, src);
    }
    match ctx.action {
        Action::ValidateAll => agent.validate(ctx, &params).map(|()| Facts::new()),
        Action::Start => {
            agent.validate(ctx, &params)?;
            agent.start(ctx, &params)?;
            record(ctx, specs, src);
            Ok(Facts::new())
        }
        Action::Stop => {
            agent.stop(ctx, &params)?;
            if let Err(e) = ctx.state("params").remove() {
                ctx.log
                    .warn(format!("could not remove the parameter record: {e}"));
            }
            Ok(Facts::new())
        }
        Action::Monitor => agent.monitor(ctx, &params),
        Action::Reload => {
            refuse_unreloadable(ctx, specs, src)?;
            agent.reload(ctx, &params)?;
            record(ctx, specs, src);
            Ok(Facts::new())
        }
        Action::MetaData | Action::Usage => Ok(Facts::new()),
    }
}

/// What an action answers when its parameters do not parse, as
/// ocf-rarun's handle_invalid_env does, but only where that cannot hide a
/// running resource: with no start recorded for this instance on this
/// node, nothing of it runs here, so a stop has nothing to do (a failed
/// stop would get the node fenced) and a probe finds it stopped. A start
/// recorded here means the resource may run with other parameters: every
/// action then reports the configuration error. (A start that failed is
/// not recorded, so that a refused start changes nothing; Pacemaker stops
/// it right after, with the parameters it started with.)
fn invalid_env(ctx: &Ctx, e: OcfError) -> Result<Facts> {
    let probe = ctx.action == Action::Monitor && ctx.probe;
    if !(ctx.action == Action::Stop || probe) {
        return Err(e);
    }
    let started_here = match ctx.state("params").read() {
        Ok(found) => found.is_some(),
        // Unknown: assume the worst.
        Err(_) => true,
    };
    if started_here {
        return Err(e);
    }
    if probe {
        return Err(OcfError::not_running(format!(
            "{}; no start of this resource is recorded on this node: not running",
            e.reason
        )));
    }
    ctx.log.info(format!(
        "{}; no start of this resource is recorded on this node, so nothing of it runs here: stopped",
        e.reason
    ));
    Ok(Facts::new())
}

/// Say which deprecated parameters a configuration still sets.
fn warn_deprecated(ctx: &Ctx, specs: &[ParamSpec], src: &dyn Source) {
    for s in specs {
        if let (Some(dep), Some(_)) = (s.deprecated, src.raw(s.name).filter(|v| !v.is_empty())) {
            ctx.log
                .warn(format!("parameter {} is deprecated: {}", s.name, dep.note));
        }
    }
}

fn raw_values(specs: &[ParamSpec], src: &dyn Source) -> BTreeMap<String, String> {
    specs
        .iter()
        .filter_map(|s| {
            src.raw(s.name)
                .filter(|v| !v.is_empty())
                .map(|v| (s.name.to_owned(), v))
        })
        .collect()
}

/// Remember the parameters a resource runs with, so that a reload can tell
/// what changed.
fn record(ctx: &Ctx, specs: &[ParamSpec], src: &dyn Source) {
    let values = raw_values(specs, src);
    let json = serde_json::to_vec(&values).unwrap_or_default();
    if let Err(e) = ctx.state("params").write(&json) {
        ctx.log.warn(format!(
            "could not record the parameters in {}: {e}; a later reload cannot tell what changed",
            ctx.state("params").path().display()
        ));
    }
}

/// With OCF 1.0 metadata Pacemaker reloads on any change to a non-unique
/// parameter. A change that needs a restart is refused here, and the failed
/// reload makes Pacemaker restart the resource, in order with its group.
fn refuse_unreloadable(ctx: &Ctx, specs: &[ParamSpec], src: &dyn Source) -> Result<()> {
    let recorded = match ctx.state("params").read() {
        Ok(Some(bytes)) => serde_json::from_slice::<BTreeMap<String, String>>(&bytes).ok(),
        Ok(None) => None,
        Err(e) => {
            ctx.log
                .warn(format!("could not read the parameter record: {e}"));
            None
        }
    };
    let Some(old) = recorded else {
        ctx.log
            .warn("no record of the running parameters; applying the reloadable ones");
        return Ok(());
    };
    let new = raw_values(specs, src);
    let changed: Vec<&ParamSpec> = specs
        .iter()
        .filter(|s| old.get(s.name) != new.get(s.name))
        .collect();
    let blocked: Vec<String> = changed
        .iter()
        .filter(|s| !s.reloadable)
        .map(|s| {
            format!(
                "{} ({} -> {})",
                s.name,
                old.get(s.name).map(String::as_str).unwrap_or("unset"),
                new.get(s.name).map(String::as_str).unwrap_or("unset")
            )
        })
        .collect();
    if !blocked.is_empty() {
        return Err(OcfError::generic(format!(
            "cannot reload a change of {}: it needs a restart, which the cluster does after this failed reload",
            blocked.join(", ")
        )));
    }
    let names: Vec<&str> = changed.iter().map(|s| s.name).collect();
    ctx.log.info(format!(
        "reloading changed parameters: {}",
        names.join(", ")
    ));
    Ok(())
}

fn report(ctx: &Ctx, inv: &Invocation, outcome: Result<Facts>) -> i32 {
    let ms = ctx.deadline.elapsed().as_secs_f64() * 1000.0;
    let (status, reason, facts) = match outcome {
        Ok(facts) => {
            if ctx.action.changes_system() {
                ctx.log
                    .info(format!("{} succeeded in {ms:.1} ms", ctx.action));
            }
            (Status::Success, None, facts)
        }
        Err(e) => {
            // A probe finding nothing is the expected answer, not a failure.
            let quiet =
                e.status == Status::NotRunning && ctx.action == Action::Monitor && ctx.probe;
            if quiet {
                ctx.log.debug(&e.reason);
            } else {
                eprintln!("{}{}", env::exit_reason_prefix(), e.reason);
                ctx.log.err_not_stderr(format!(
                    "{} failed with {} in {ms:.1} ms: {}",
                    ctx.action, e.status, e.reason
                ));
            }
            (e.status, Some(e.reason), Facts::new())
        }
    };
    if inv.json {
        let facts: serde_json::Map<String, serde_json::Value> = facts
            .0
            .into_iter()
            .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v)))
            .collect();
        let doc = serde_json::json!({
            "agent": ctx.agent,
            "instance": ctx.instance,
            "action": ctx.action.name(),
            "rc": status.code(),
            "status": if status == Status::Success && ctx.action == Action::Monitor { "running" } else { status.name() },
            "reason": reason,
            "facts": facts,
            "elapsed_ms": (ms * 1000.0).round() / 1000.0,
        });
        println!("{doc}");
    }
    status.code().into()
}

/// The man page of an agent (for the installer).
pub fn man_page<A: Agent>() -> String {
    manpage::render(&A::INFO, A::Params::SPECS)
}
