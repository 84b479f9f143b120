//! The agent calls a node's `<fence>` section describes: methods in order, devices in order,
//! each device's name=value arguments.
//!
//! ```text
//!  victim name ──lookup_node──▶ clusternode (cluster.conf spelling)
//!                                    │
//!     <fence><method>×≤8 ──────────▶ MethodPlan { index, name, devices }
//!            <device>×≤8 ──────────▶ DeviceCall { agent, args }   (or a config error)
//!  <unfence><device> ──unfence_plan▶ DeviceCall ...                (no methods)
//! ```
//!
//! This copies libfence (spec/fencing.md §1.6):
//! - methods are tried in document order, at most [`MAX_FENCE_METHODS`]; inside a method every
//!   device must succeed, at most [`MAX_FENCE_DEVICES`], and the first failing device ends the
//!   method. Further methods or devices are never run (validation warns about them);
//! - libfence finds a method's devices by the method's *name*, so when two methods share a
//!   name the second runs the first one's devices (validation warns about that as well);
//! - an agent's input is, one `name=value` line each: the `<device>` attributes except `name`,
//!   `nodename=<victim>` unless the device gave one, then the `<fencedevice>` attributes except
//!   `name` (`agent=` included, first: the model keeps it apart from the other attributes, and
//!   agents ignore it). The text is limited to [`MAX_ARGS_LEN`] bytes, NUL included.
//!
//! A device that cannot be run (no such `<fencedevice>`, arguments too long, a value with a
//! newline) is not a [`PlanError`]: it stays in the plan with a [`DeviceCall::config_error`],
//! fails its method when reached and lets the next method run, as libfence does.

use crate::config::defaults::{MAX_FENCE_DEVICES, MAX_FENCE_METHODS};
use crate::config::{ClusterConf, ClusterNode, DeviceRef};
use std::fmt;

/// libfence's argument buffer, NUL included: the text may be one byte shorter.
pub const MAX_ARGS_LEN: usize = 4096;

/// The method name `unfence_plan` gives its calls (unfence devices have no method).
pub const UNFENCE_METHOD: &str = "unfence";

/// Why no plan could be made for a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PlanError {
    /// No `<clusternode>` matches the name, not even by short name.
    UnknownNode {
        /// The name asked for.
        name: String,
    },
    /// The name only matches by short name, and more than one node does.
    AmbiguousNode {
        /// The name asked for.
        name: String,
        /// The matching cluster.conf names, in document order.
        candidates: Vec<String>,
    },
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PlanError::UnknownNode { name } => {
                write!(f, "node `{name}` is not a clusternode of cluster.conf")
            }
            PlanError::AmbiguousNode { name, candidates } => write!(
                f,
                "node `{name}` matches several clusternodes by short name: {}",
                candidates.join(", ")
            ),
        }
    }
}

impl std::error::Error for PlanError {}

/// The result of one device call, with libfence's codes (`libfence.h`) and texts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeviceResult {
    /// The agent exited with status 0.
    Success,
    /// The agent exited non-zero, was killed, or timed out.
    AgentError,
    /// The agent could not be started (not found, not executable, no resources).
    ForkError,
    /// The configuration could not be read.
    Ccs,
    /// The node has no fence method.
    NoMethod,
    /// The method lists no device.
    NoDevice,
    /// The device's `<fencedevice>` (and so its agent) is missing.
    ConfigAgent,
    /// The device's arguments cannot be passed (too long, or a value holds a line break).
    ConfigArgs,
    /// A method could not be read.
    ConfigMethod,
    /// A device could not be read.
    ConfigDevice,
}

impl DeviceResult {
    /// Every result, in code order.
    pub const ALL: [DeviceResult; 10] = [
        DeviceResult::Success,
        DeviceResult::AgentError,
        DeviceResult::ForkError,
        DeviceResult::Ccs,
        DeviceResult::NoMethod,
        DeviceResult::NoDevice,
        DeviceResult::ConfigAgent,
        DeviceResult::ConfigArgs,
        DeviceResult::ConfigMethod,
        DeviceResult::ConfigDevice,
    ];

    /// libfence's numeric code (`FENCE_RESULT_*`, 1..=10).
    pub fn code(self) -> i32 {
        match self {
            DeviceResult::Success => 1,
            DeviceResult::AgentError => 2,
            DeviceResult::ForkError => 3,
            DeviceResult::Ccs => 4,
            DeviceResult::NoMethod => 5,
            DeviceResult::NoDevice => 6,
            DeviceResult::ConfigAgent => 7,
            DeviceResult::ConfigArgs => 8,
            DeviceResult::ConfigMethod => 9,
            DeviceResult::ConfigDevice => 10,
        }
    }

    /// The result with libfence code `code`.
    pub fn from_code(code: i32) -> Option<DeviceResult> {
        DeviceResult::ALL.into_iter().find(|r| r.code() == code)
    }

    /// The text fenced and fence_node print after `result:`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceResult::Success => "success",
            DeviceResult::AgentError => "error from agent",
            DeviceResult::ForkError => "error from fork",
            DeviceResult::Ccs => "error from ccs",
            DeviceResult::NoMethod => "error no method",
            DeviceResult::NoDevice => "error no device",
            DeviceResult::ConfigAgent => "error config agent",
            DeviceResult::ConfigArgs => "error config args",
            DeviceResult::ConfigMethod => "error config method",
            DeviceResult::ConfigDevice => "error config device",
        }
    }

    /// The text for a raw code, `error unknown` for codes libfence does not define.
    pub fn text_for_code(code: i32) -> &'static str {
        DeviceResult::from_code(code).map_or("error unknown", DeviceResult::as_str)
    }

    /// Whether this is [`DeviceResult::Success`].
    pub fn is_success(self) -> bool {
        self == DeviceResult::Success
    }
}

impl fmt::Display for DeviceResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One agent call: which device of which method, the agent and its input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCall {
    /// The method's position, 0-based (as log lines print it).
    pub method_index: usize,
    /// The device's position in its method, 0-based.
    pub device_index: usize,
    /// The method's name ([`UNFENCE_METHOD`] for unfencing).
    pub method: String,
    /// The `<fencedevice>` name.
    pub device: String,
    /// The agent executable (`<fencedevice agent=>`); empty when the device is missing.
    pub agent: String,
    /// The agent's input lines, in order.
    pub args: Vec<(String, String)>,
    /// Set when the call cannot be made: the result it ends with, without running anything.
    pub config_error: Option<DeviceResult>,
}

impl DeviceCall {
    /// The agent's stdin: one `name=value\n` line per argument.
    pub fn args_text(&self) -> String {
        args_text(&self.args)
    }

    /// The arguments as `fence_node -vv` prints them: the stdin text with each newline
    /// replaced by a space.
    pub fn args_line(&self) -> String {
        self.args_text().replace('\n', " ")
    }

    /// The agent as log lines name it: `none` when there is none.
    pub fn agent_label(&self) -> &str {
        if self.agent.is_empty() {
            "none"
        } else {
            &self.agent
        }
    }

    /// `<action> <victim> dev <m>.<d> agent <agent> result: <text>`, the line fenced logs
    /// and `fence_node -v` prints for this call (`action` is `fence` or `unfence`).
    pub fn result_line(&self, action: &str, victim: &str, result: DeviceResult) -> String {
        result_line(
            action,
            victim,
            self.method_index,
            self.device_index,
            self.agent_label(),
            result,
        )
    }
}

/// `<action> <victim> dev <m>.<d> agent <agent> result: <text>` (indexes 0-based).
pub fn result_line(
    action: &str,
    victim: &str,
    method_index: usize,
    device_index: usize,
    agent: &str,
    result: DeviceResult,
) -> String {
    format!("{action} {victim} dev {method_index}.{device_index} agent {agent} result: {result}")
}

/// One `<method>`: its devices, all of which must succeed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MethodPlan {
    /// Position, 0-based.
    pub index: usize,
    /// `name`.
    pub name: String,
    /// The calls, in order. Empty: the method fails with [`DeviceResult::NoDevice`].
    pub devices: Vec<DeviceCall>,
}

/// The `name=value\n` text of `args`.
pub fn args_text(args: &[(String, String)]) -> String {
    let mut text = String::new();
    for (name, value) in args {
        text.push_str(name);
        text.push('=');
        text.push_str(value);
        text.push('\n');
    }
    text
}

/// Finds the `<clusternode>` `name` means, as `ccs_lookup_nodename` does: the exact name,
/// then the name ignoring ASCII case, then an `<altname>`, then the short names (the part
/// before the first dot) of both sides. A short-name match must be unique.
pub fn lookup_node<'c>(conf: &'c ClusterConf, name: &str) -> Result<&'c ClusterNode, PlanError> {
    let nodes = &conf.clusternodes;
    let found = nodes
        .iter()
        .find(|n| n.name == name)
        .or_else(|| nodes.iter().find(|n| n.name.eq_ignore_ascii_case(name)))
        .or_else(|| {
            nodes.iter().find(|n| {
                n.altname
                    .as_ref()
                    .is_some_and(|a| a.name.eq_ignore_ascii_case(name))
            })
        });
    if let Some(node) = found {
        return Ok(node);
    }
    let short = short_name(name);
    let matches: Vec<&ClusterNode> = nodes
        .iter()
        .filter(|n| !short.is_empty() && short_name(&n.name).eq_ignore_ascii_case(short))
        .collect();
    match matches.as_slice() {
        [] => Err(PlanError::UnknownNode { name: name.into() }),
        [one] => Ok(one),
        many => Err(PlanError::AmbiguousNode {
            name: name.into(),
            candidates: many.iter().map(|n| n.name.clone()).collect(),
        }),
    }
}

fn short_name(name: &str) -> &str {
    name.split('.').next().unwrap_or(name)
}

/// The fencing plan for `node` (any spelling [`lookup_node`] accepts): its methods in
/// order, each with its device calls. No methods: an empty plan, which fails with
/// [`DeviceResult::NoMethod`] (the "fence manually" configuration).
pub fn fence_plan(conf: &ClusterConf, node: &str) -> Result<Vec<MethodPlan>, PlanError> {
    let node = lookup_node(conf, node)?;
    let methods = &node.fence[..node.fence.len().min(MAX_FENCE_METHODS)];
    Ok(methods
        .iter()
        .enumerate()
        .map(|(index, method)| {
            // libfence selects the devices with method[@name="M"]: the first method of
            // that name supplies them.
            let source = methods
                .iter()
                .find(|m| m.name == method.name)
                .unwrap_or(method);
            let devices = source
                .devices
                .iter()
                .take(MAX_FENCE_DEVICES)
                .enumerate()
                .map(|(d, dev)| device_call(conf, &node.name, index, d, &method.name, dev))
                .collect();
            MethodPlan {
                index,
                name: method.name.clone(),
                devices,
            }
        })
        .collect())
}

/// The unfencing plan for `node`: its `<unfence>` devices in order (all are run, whatever
/// their results), as method 0 named [`UNFENCE_METHOD`]. Empty: nothing to unfence.
pub fn unfence_plan(conf: &ClusterConf, node: &str) -> Result<Vec<DeviceCall>, PlanError> {
    let node = lookup_node(conf, node)?;
    Ok(node
        .unfence
        .iter()
        .take(MAX_FENCE_DEVICES)
        .enumerate()
        .map(|(d, dev)| device_call(conf, &node.name, 0, d, UNFENCE_METHOD, dev))
        .collect())
}

fn device_call(
    conf: &ClusterConf,
    victim: &str,
    method_index: usize,
    device_index: usize,
    method: &str,
    dev: &DeviceRef,
) -> DeviceCall {
    let mut call = DeviceCall {
        method_index,
        device_index,
        method: method.into(),
        device: dev.name.clone(),
        agent: String::new(),
        args: Vec::new(),
        config_error: None,
    };
    let Some(fd) = conf.fencedevice(&dev.name) else {
        call.config_error = Some(DeviceResult::ConfigAgent);
        return call;
    };
    if fd.agent.is_empty() {
        call.config_error = Some(DeviceResult::ConfigAgent);
        return call;
    }
    call.agent = fd.agent.clone();
    let mut args: Vec<(String, String)> = dev
        .args
        .iter()
        .filter(|(n, _)| n != "name")
        .cloned()
        .collect();
    if !args.iter().any(|(n, _)| n == "nodename") {
        args.push(("nodename".into(), victim.into()));
    }
    args.push(("agent".into(), fd.agent.clone()));
    args.extend(fd.args.iter().filter(|(n, _)| n != "name").cloned());
    // A line break would smuggle in another argument line; a NUL would end C strings.
    let unsafe_text = args
        .iter()
        .any(|(n, v)| n.contains(['\n', '\r', '\0', '=']) || v.contains(['\n', '\r', '\0']));
    if unsafe_text || args_text(&args).len() >= MAX_ARGS_LEN {
        call.config_error = Some(DeviceResult::ConfigArgs);
    }
    call.args = args;
    call
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, FenceDevice, FenceMethod};
    use proptest::prelude::*;

    const REFERENCE: &str = include_str!("../../../docs/examples/dom0cluster1.conf");

    fn reference() -> ClusterConf {
        config::parse(REFERENCE, "dom0cluster1.conf")
            .expect("the reference config parses")
            .config
    }

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn conf_with(node: ClusterNode, devices: Vec<FenceDevice>) -> ClusterConf {
        ClusterConf {
            name: "c".into(),
            config_version: 1,
            clusternodes: vec![node],
            fencedevices: devices,
            ..ClusterConf::default()
        }
    }

    fn device(name: &str, args: &[(&str, &str)]) -> DeviceRef {
        DeviceRef {
            name: name.into(),
            args: pairs(args),
            ..DeviceRef::default()
        }
    }

    fn fencedevice(name: &str, agent: &str, args: &[(&str, &str)]) -> FenceDevice {
        FenceDevice {
            name: name.into(),
            agent: agent.into(),
            args: pairs(args),
            ..FenceDevice::default()
        }
    }

    fn method(name: &str, devices: Vec<DeviceRef>) -> FenceMethod {
        FenceMethod {
            name: name.into(),
            devices,
            ..FenceMethod::default()
        }
    }

    fn node(name: &str, fence: Vec<FenceMethod>) -> ClusterNode {
        ClusterNode {
            name: name.into(),
            nodeid: crate::NodeId(1),
            fence,
            ..ClusterNode::default()
        }
    }

    #[test]
    fn reference_config_tries_the_apc_switch_then_manual_fencing() {
        let plan = fence_plan(&reference(), "station200.example.com").unwrap();
        assert_eq!(plan.len(), 2);
        let apc = &plan[0].devices[0];
        assert_eq!((plan[0].index, plan[0].name.as_str()), (0, "1"));
        assert_eq!(
            (apc.method_index, apc.device_index, apc.agent.as_str()),
            (0, 0, "fence_apc")
        );
        assert_eq!(apc.config_error, None);
        assert_eq!(
            apc.args_text(),
            "port=1\nswitch=1\nnodename=station200.example.com\nagent=fence_apc\n\
             hostname=172.16.73.12\nlogin=fenceuser\npasswd=PASSWORD\n"
        );
        let manual = &plan[1].devices[0];
        assert_eq!((plan[1].index, plan[1].name.as_str()), (1, "2"));
        assert_eq!(manual.agent, "fence_manual");
        // The device's own nodename= is kept and no second one is added.
        assert_eq!(
            manual.args_text(),
            "nodename=station200.example.com\nagent=fence_manual\n"
        );
    }

    #[test]
    fn reference_config_second_node_uses_its_own_outlet() {
        let plan = fence_plan(&reference(), "station201.example.com").unwrap();
        let apc = &plan[0].devices[0];
        assert_eq!(apc.device, "fence_station201");
        assert_eq!(
            apc.args_line(),
            "port=2 switch=1 nodename=station201.example.com agent=fence_apc \
             hostname=172.16.73.13 login=fenceuser passwd=PASSWORD "
        );
    }

    #[test]
    fn lookup_accepts_case_and_short_names_and_answers_the_conf_spelling() {
        let conf = reference();
        for asked in [
            "station200.example.com",
            "STATION200.example.COM",
            "station200",
            "station200.other.domain",
        ] {
            assert_eq!(
                lookup_node(&conf, asked).unwrap().name,
                "station200.example.com",
                "{asked}"
            );
        }
        let plan = fence_plan(&conf, "Station201").unwrap();
        assert_eq!(
            plan[0].devices[0].arg_value("nodename"),
            "station201.example.com"
        );
        assert_eq!(
            lookup_node(&conf, "station202"),
            Err(PlanError::UnknownNode {
                name: "station202".into()
            })
        );
        assert!(matches!(
            lookup_node(&conf, ""),
            Err(PlanError::UnknownNode { .. })
        ));
    }

    #[test]
    fn a_short_name_matching_two_nodes_is_refused() {
        let mut conf = conf_with(node("a.one", vec![]), vec![]);
        conf.clusternodes.push(node("a.two", vec![]));
        assert_eq!(
            lookup_node(&conf, "a"),
            Err(PlanError::AmbiguousNode {
                name: "a".into(),
                candidates: vec!["a.one".into(), "a.two".into()],
            })
        );
        // An exact name still wins.
        assert_eq!(lookup_node(&conf, "a.two").unwrap().name, "a.two");
    }

    #[test]
    fn fencedevice_attributes_come_after_device_attributes_so_they_win() {
        let conf = conf_with(
            node(
                "n1",
                vec![method(
                    "m",
                    vec![device("d", &[("action", "on"), ("port", "3")])],
                )],
            ),
            vec![fencedevice(
                "d",
                "fence_x",
                &[("action", "off"), ("ipaddr", "h")],
            )],
        );
        let call = &fence_plan(&conf, "n1").unwrap()[0].devices[0];
        assert_eq!(
            call.args,
            pairs(&[
                ("action", "on"),
                ("port", "3"),
                ("nodename", "n1"),
                ("agent", "fence_x"),
                ("action", "off"),
                ("ipaddr", "h"),
            ])
        );
    }

    #[test]
    fn missing_fencedevice_is_a_config_agent_error_in_place() {
        let conf = conf_with(
            node(
                "n1",
                vec![
                    method("1", vec![device("gone", &[])]),
                    method("2", vec![device("d", &[])]),
                ],
            ),
            vec![fencedevice("d", "fence_x", &[])],
        );
        let plan = fence_plan(&conf, "n1").unwrap();
        let gone = &plan[0].devices[0];
        assert_eq!(gone.config_error, Some(DeviceResult::ConfigAgent));
        assert_eq!(
            gone.result_line("fence", "n1", DeviceResult::ConfigAgent),
            "fence n1 dev 0.0 agent none result: error config agent"
        );
        assert_eq!(plan[1].devices[0].config_error, None);
    }

    #[test]
    fn arguments_at_the_buffer_limit_are_a_config_args_error() {
        // "agent=fence_x\n" (14) + "nodename=n1\n" (12) + "k=" + value + "\n".
        let fixed = 14 + 12 + 3;
        let plan_for = |len: usize| {
            let value = "v".repeat(len - fixed);
            let conf = conf_with(
                node("n1", vec![method("m", vec![device("d", &[])])]),
                vec![fencedevice("d", "fence_x", &[("k", &value)])],
            );
            let call = fence_plan(&conf, "n1").unwrap()[0].devices[0].clone();
            assert_eq!(call.args_text().len(), len);
            call.config_error
        };
        assert_eq!(plan_for(MAX_ARGS_LEN - 1), None);
        assert_eq!(plan_for(MAX_ARGS_LEN), Some(DeviceResult::ConfigArgs));
    }

    #[test]
    fn a_value_with_a_line_break_cannot_smuggle_an_argument() {
        let conf = conf_with(
            node(
                "n1",
                vec![method("m", vec![device("d", &[("port", "1\naction=on")])])],
            ),
            vec![fencedevice("d", "fence_x", &[])],
        );
        let call = &fence_plan(&conf, "n1").unwrap()[0].devices[0];
        assert_eq!(call.config_error, Some(DeviceResult::ConfigArgs));
    }

    #[test]
    fn only_eight_methods_and_eight_devices_are_planned() {
        let devices: Vec<DeviceRef> = (0..10).map(|_| device("d", &[])).collect();
        let methods: Vec<FenceMethod> = (0..10)
            .map(|i| method(&i.to_string(), devices.clone()))
            .collect();
        let conf = conf_with(node("n1", methods), vec![fencedevice("d", "fence_x", &[])]);
        let plan = fence_plan(&conf, "n1").unwrap();
        assert_eq!(plan.len(), MAX_FENCE_METHODS);
        assert!(plan.iter().all(|m| m.devices.len() == MAX_FENCE_DEVICES));
        let last = &plan[7].devices[7];
        assert_eq!((last.method_index, last.device_index), (7, 7));
    }

    #[test]
    fn a_repeated_method_name_runs_the_first_methods_devices() {
        let conf = conf_with(
            node(
                "n1",
                vec![
                    method("same", vec![device("a", &[])]),
                    method("same", vec![device("b", &[])]),
                ],
            ),
            vec![
                fencedevice("a", "fence_a", &[]),
                fencedevice("b", "fence_b", &[]),
            ],
        );
        let plan = fence_plan(&conf, "n1").unwrap();
        assert_eq!(plan[1].devices[0].agent, "fence_a");
        assert_eq!(plan[1].devices[0].method_index, 1);
    }

    #[test]
    fn no_methods_is_an_empty_plan_and_unfence_lists_its_devices() {
        let mut n = node("n1", vec![]);
        n.unfence = vec![device("d", &[("action", "on")]), device("e", &[])];
        let conf = conf_with(n, vec![fencedevice("d", "fence_scsi", &[])]);
        assert!(fence_plan(&conf, "n1").unwrap().is_empty());
        let calls = unfence_plan(&conf, "n1").unwrap();
        assert_eq!(calls.len(), 2);
        assert_eq!(
            calls[0].args_text(),
            "action=on\nnodename=n1\nagent=fence_scsi\n"
        );
        assert_eq!(
            calls[0].result_line("unfence", "n1", DeviceResult::Success),
            "unfence n1 dev 0.0 agent fence_scsi result: success"
        );
        assert_eq!(calls[1].device_index, 1);
        assert_eq!(calls[1].config_error, Some(DeviceResult::ConfigAgent));
    }

    #[test]
    fn result_texts_are_libfences() {
        let texts: Vec<(i32, &str)> = DeviceResult::ALL
            .iter()
            .map(|r| (r.code(), r.as_str()))
            .collect();
        assert_eq!(
            texts,
            vec![
                (1, "success"),
                (2, "error from agent"),
                (3, "error from fork"),
                (4, "error from ccs"),
                (5, "error no method"),
                (6, "error no device"),
                (7, "error config agent"),
                (8, "error config args"),
                (9, "error config method"),
                (10, "error config device"),
            ]
        );
        assert_eq!(DeviceResult::text_for_code(0), "error unknown");
        assert_eq!(DeviceResult::text_for_code(11), "error unknown");
    }

    impl DeviceCall {
        fn arg_value(&self, name: &str) -> &str {
            self.args
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or("")
        }
    }

    proptest! {
        #[test]
        fn every_result_code_roundtrips(code in any::<i32>()) {
            match DeviceResult::from_code(code) {
                Some(r) => prop_assert_eq!(r.code(), code),
                None => prop_assert!(!(1..=10).contains(&code)),
            }
        }

        #[test]
        fn args_text_has_one_line_per_argument_and_nodename_once(
            dev_args in proptest::collection::vec(("[a-z]{1,8}", "[ -~]{0,16}"), 0..6),
            fd_args in proptest::collection::vec(("[a-z]{1,8}", "[ -~]{0,16}"), 0..6),
        ) {
            let dev_args: Vec<(String, String)> =
                dev_args.into_iter().filter(|(n, _)| n != "name").collect();
            let fd_args: Vec<(String, String)> =
                fd_args.into_iter().filter(|(n, _)| n != "name").collect();
            let conf = ClusterConf {
                clusternodes: vec![ClusterNode {
                    name: "victim".into(),
                    fence: vec![FenceMethod {
                        name: "m".into(),
                        devices: vec![DeviceRef { name: "d".into(), args: dev_args.clone(), ..DeviceRef::default() }],
                        ..FenceMethod::default()
                    }],
                    ..ClusterNode::default()
                }],
                fencedevices: vec![FenceDevice { name: "d".into(), agent: "fence_x".into(), args: fd_args.clone(), ..FenceDevice::default() }],
                ..ClusterConf::default()
            };
            let call = fence_plan(&conf, "victim").unwrap()[0].devices[0].clone();
            let text = call.args_text();
            prop_assert_eq!(text.lines().count(), call.args.len());
            prop_assert_eq!(&call.args[..dev_args.len()], &dev_args[..]);
            let own_nodename = dev_args.iter().any(|(n, _)| n == "nodename");
            let added = call.args[..call.args.len() - fd_args.len()].iter().filter(|(n, _)| n == "nodename").count();
            prop_assert_eq!(added, dev_args.iter().filter(|(n, _)| n == "nodename").count() + usize::from(!own_nodename));
            prop_assert!(!call.args.iter().any(|(n, _)| n == "name"));
            prop_assert_eq!(call.config_error, None);
        }
    }
}
