//! The metadata XML, rendered from the agent's declaration.
//!
//! The XML validates against resource-agents' `ra-api-1.dtd` (what
//! ocf-tester checks) and is what Pacemaker and pcs read. That DTD predates
//! OCF 1.1, so the OCF 1.1 notions are said in ways all three accept:
//! - `<version>1.0</version>` and the legacy `reload` action: Pacemaker then
//!   reloads on changes to non-unique parameters; the agent refuses a reload
//!   that touches a parameter which is not reloadable, and Pacemaker
//!   restarts the resource instead (see `runner::reload`).
//! - a unique group of one parameter is `unique="1"`; larger groups and
//!   reloadability are stated in the longdesc;
//! - deprecation is pcs's OCF 1.0 form (`deprecated="1"`, and `obsoletes` on
//!   the replacement), declared for the DTD in the document's internal subset.

use std::io;

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::Writer;

use crate::agent::AgentInfo;
use crate::param::ParamSpec;

/// The metadata XML of an agent.
pub fn render(info: &AgentInfo, specs: &[ParamSpec]) -> String {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    // Writing into a Vec cannot fail.
    let _ = write_doc(&mut w, info, specs);
    let mut out = String::from_utf8_lossy(&w.into_inner()).into_owned();
    out.push('\n');
    out
}

/// The longdesc of a parameter with the notions the DTD cannot carry.
pub fn param_longdesc(spec: &ParamSpec, specs: &[ParamSpec]) -> String {
    let mut text = spec.longdesc.to_owned();
    let mut notes = Vec::new();
    if !spec.choices.is_empty() {
        notes.push(format!("Allowed values: {}.", spec.choices.join(", ")));
    }
    if let Some(group) = spec.unique_group {
        let others: Vec<&str> = specs
            .iter()
            .filter(|s| s.unique_group == Some(group) && s.name != spec.name)
            .map(|s| s.name)
            .collect();
        if !others.is_empty() {
            notes.push(format!(
                "Unique together with {} across resources of this agent.",
                others.join(", ")
            ));
        }
    }
    if spec.reloadable {
        notes.push("Changing it takes effect without a restart (reload).".to_owned());
    }
    if let Some(dep) = spec.deprecated {
        notes.push(format!("Deprecated: {}", dep.note));
    }
    if !notes.is_empty() {
        text.push_str("\n\n");
        text.push_str(&notes.join("\n"));
    }
    text
}

fn unique_alone(spec: &ParamSpec, specs: &[ParamSpec]) -> bool {
    spec.unique_group
        .is_some_and(|g| specs.iter().filter(|s| s.unique_group == Some(g)).count() == 1)
}

fn write_doc(w: &mut Writer<Vec<u8>>, info: &AgentInfo, specs: &[ParamSpec]) -> io::Result<()> {
    w.write_event(Event::Decl(BytesDecl::new("1.0", None, None)))?;
    let deprecation = specs.iter().any(|s| s.deprecated.is_some());
    let doctype = if deprecation {
        "resource-agent SYSTEM \"ra-api-1.dtd\" [\n<!ATTLIST parameter deprecated (0|1) \"0\" obsoletes CDATA #IMPLIED>\n]"
    } else {
        "resource-agent SYSTEM \"ra-api-1.dtd\""
    };
    w.write_event(Event::DocType(BytesText::from_escaped(doctype)))?;

    let mut root = BytesStart::new("resource-agent");
    root.push_attribute(("name", info.name));
    root.push_attribute(("version", info.version));
    w.write_event(Event::Start(root))?;
    w.create_element("version")
        .write_text_content(BytesText::new("1.0"))?;
    desc(w, "longdesc", info.longdesc)?;
    desc(w, "shortdesc", info.shortdesc)?;

    w.write_event(Event::Start(BytesStart::new("parameters")))?;
    for spec in specs {
        let mut p = BytesStart::new("parameter");
        p.push_attribute(("name", spec.name));
        p.push_attribute(("unique", if unique_alone(spec, specs) { "1" } else { "0" }));
        p.push_attribute(("required", if spec.required { "1" } else { "0" }));
        if spec.deprecated.is_some() {
            p.push_attribute(("deprecated", "1"));
        }
        let replaced: Vec<&str> = specs
            .iter()
            .filter(|s| s.deprecated.and_then(|d| d.replaced_with) == Some(spec.name))
            .map(|s| s.name)
            .collect();
        if let Some(old) = replaced.first() {
            p.push_attribute(("obsoletes", *old));
        }
        w.write_event(Event::Start(p))?;
        desc(w, "longdesc", &param_longdesc(spec, specs))?;
        desc(w, "shortdesc", spec.shortdesc)?;
        let mut c = BytesStart::new("content");
        c.push_attribute(("type", spec.content.ocf_name()));
        if let Some(d) = spec.default {
            c.push_attribute(("default", d));
        }
        w.write_event(Event::Empty(c))?;
        w.write_event(Event::End(BytesEnd::new("parameter")))?;
    }
    w.write_event(Event::End(BytesEnd::new("parameters")))?;

    w.write_event(Event::Start(BytesStart::new("actions")))?;
    for a in info.actions {
        let mut e = BytesStart::new("action");
        e.push_attribute(("name", a.metadata_name()));
        e.push_attribute(("timeout", format!("{}s", a.timeout_secs).as_str()));
        if let Some(i) = a.interval_secs {
            e.push_attribute(("interval", format!("{i}s").as_str()));
        }
        if let Some(d) = a.depth {
            e.push_attribute(("depth", d.to_string().as_str()));
        }
        w.write_event(Event::Empty(e))?;
    }
    w.write_event(Event::End(BytesEnd::new("actions")))?;
    w.write_event(Event::End(BytesEnd::new("resource-agent")))
}

fn desc(w: &mut Writer<Vec<u8>>, tag: &str, text: &str) -> io::Result<()> {
    w.create_element(tag)
        .with_attribute(("lang", "en"))
        .write_text_content(BytesText::new(text))?;
    Ok(())
}
