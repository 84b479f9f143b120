//! `cluster.conf`: the typed model, the parser, the validator and the writer.
//!
//! ```text
//!   text ──roxmltree──▶ well-formed? ──no──▶ Err(one error at the parser's position)
//!                            │ yes
//!                            ▼
//!        read (read.rs, read_rm.rs): typed attributes, unknown names → warnings
//!                            │
//!                            ▼
//!        validate (validate.rs, validate_rm.rs): ranges, cross references, two_node,
//!        quorum disk timing → errors and consequence warnings
//!                            │
//!                 any error? ├──yes──▶ Err(Diagnostics: errors + warnings, by position)
//!                            ▼ no
//!                  Ok(Parsed { config, warnings })
//! ```
//!
//! The format is the original Red Hat Cluster Suite one (reference/ Appendix B); the
//! supported elements, defaults, our extensions (`<cman admin_group>`) and every rule are
//! listed in docs/config.md. Every diagnostic carries file, line and column.
//!
//! ```
//! use libcluster::config;
//! let text = r#"<cluster name="c" config_version="1">
//!   <clusternodes><clusternode name="a" nodeid="1"/></clusternodes>
//! </cluster>"#;
//! let parsed = config::parse(text, "cluster.conf").unwrap();
//! assert_eq!(parsed.config.expected_votes(), 1);
//! assert_eq!(config::parse(&config::to_xml(&parsed.config), "again").unwrap().config, parsed.config);
//! ```

pub mod defaults;
mod diag;
mod model;
mod parse;
mod quorumd;
mod read;
mod read_rm;
mod rm;
mod validate;
mod validate_rm;
mod write;

use std::path::Path;

pub use defaults::DEFAULT_TOKEN_MS;
pub use diag::{Diagnostic, Diagnostics, Origin, Pos, Severity};
pub use model::{
    AltName, ClusterConf, ClusterNode, Cman, DeviceRef, FenceDaemon, FenceDevice, FenceMethod,
    FenceXvmd, Multicast, Totem, Transport,
};
pub use quorumd::{Heuristic, Quorumd, Scheduler};
pub use rm::{
    DependMode, FailoverDomain, FailoverDomainNode, Hypervisor, MigrateMode, Policy, Recovery,
    Resource, Rm, Service, Vm,
};
pub use write::to_xml;

use diag::Report;

/// A configuration that passed validation, with the warnings it produced (source order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The model.
    pub config: ClusterConf,
    /// Unknown or ignored parts and consequences worth knowing; none of them is fatal.
    pub warnings: Vec<Diagnostic>,
}

/// Parses and validates `text`; `file` names it in diagnostics.
pub fn parse(text: &str, file: &str) -> Result<Parsed, Diagnostics> {
    let mut report = Report::new(file);
    let config = parse::xml(text, &mut report)
        .and_then(|doc| read::cluster(&mut parse::Reader::new(&mut report), &doc));
    if let Some(c) = &config {
        report.set_fallback(c.origin.element());
        validate::check(c, &mut report);
    }
    match config {
        Some(config) => Ok(Parsed {
            config,
            warnings: report.finish()?,
        }),
        None => Err(report.reject("the document could not be read")),
    }
}

/// Reads and parses the file at `path`. A file that cannot be read, or is not UTF-8, gives
/// one error naming the file.
pub fn load(path: &Path) -> Result<Parsed, Diagnostics> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path)
        .map_err(|e| Diagnostics::io(&file, format!("cannot read the file: {e}"), e))?;
    match String::from_utf8(bytes) {
        Ok(text) => parse(&text, &file),
        Err(e) => {
            let ok = e.utf8_error().valid_up_to();
            let bytes = e.as_bytes();
            let good = std::str::from_utf8(&bytes[..ok]).unwrap_or_default();
            let bad = bytes.get(ok).copied().unwrap_or_default();
            let mut report = Report::new(&file);
            let msg = format!("byte 0x{bad:02x} is not valid UTF-8; cluster.conf must be UTF-8");
            report.error(parse::pos_in(good, good.len()), msg);
            Err(report.reject("the file is not valid UTF-8"))
        }
    }
}

/// Runs the validation rules over a model built in code (positions are then 0:0).
/// Returns errors and warnings; `file` names the model in them.
pub fn validate(config: &ClusterConf, file: &str) -> Vec<Diagnostic> {
    let mut report = Report::new(file);
    validate::check(config, &mut report);
    report.into_sorted()
}
