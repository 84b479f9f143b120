//! A node's copy of cluster.conf in the lab: pointed at the lab's own services, and
//! checked to name no address outside the lab.
//!
//! - every `fence_apc` device (and any per-node override of its address or credentials)
//!   gets the lab switch's address, port, login and password; `ssh`/`secure` are dropped
//!   (the simulator speaks telnet);
//! - every IPv4 literal in a quorumd heuristic's program (`ping 192.168.10.254 -c3 -t1`)
//!   becomes the lab host's address;
//! - then [`check_addresses`] refuses the text if any IPv4 literal outside 127.0.0.0/8, the
//!   lab subnet and multicast (224.0.0.0/4, which stays on the lab's bridge) remains.
//!
//! - with fenced in the lab, nodes without a `<fence>` section get the lab's outlet and
//!   manual fencing ([`wire_fencing`]);
//!
//! The outlet that powers a node is the `port` of its first `fence_apc` device (per-node
//! `<device port=>`, else the `<fencedevice port=>`), else its node id.

use crate::state::PowerSwitch;
use libcluster::config::{self, ClusterConf};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

/// The agent whose devices the lab points at its switch.
pub const APC_AGENT: &str = "fence_apc";
/// Login and password of the lab's switch when the configuration names none.
pub const DEFAULT_CREDENTIALS: (&str, &str) = ("apc", "apc");

fn is_apc(agent: &str) -> bool {
    agent.rsplit('/').next() == Some(APC_AGENT)
}

fn apc_devices(conf: &ClusterConf) -> impl Iterator<Item = &config::FenceDevice> {
    conf.fencedevices.iter().filter(|d| is_apc(&d.agent))
}

/// The outlet of each node (by node id) that has a `fence_apc` device with a port. Nodes
/// without one are left out (their outlet is their id). Two nodes on one outlet, or a port
/// that is not an outlet number, are errors.
pub fn node_outlets(conf: &ClusterConf) -> Result<BTreeMap<u32, u32>, String> {
    let mut outlets = BTreeMap::new();
    for n in &conf.clusternodes {
        let port = n
            .fence
            .iter()
            .flat_map(|m| &m.devices)
            .filter_map(|d| {
                let dev = conf.fencedevice(&d.name).filter(|f| is_apc(&f.agent))?;
                d.arg("port").or(dev.arg("port"))
            })
            .next();
        if let Some(port) = port {
            let outlet = port
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|o| (1..=64).contains(o))
                .ok_or_else(|| {
                    format!(
                        "node {}: fence_apc port {port:?} is not an outlet number 1..=64",
                        n.name
                    )
                })?;
            outlets.insert(n.nodeid.0, outlet);
        }
    }
    let mut by_outlet: BTreeMap<u32, u32> = BTreeMap::new();
    for n in &conf.clusternodes {
        let outlet = outlets.get(&n.nodeid.0).copied().unwrap_or(n.nodeid.0);
        if let Some(other) = by_outlet.insert(outlet, n.nodeid.0) {
            return Err(format!(
                "nodes {other} and {} would share outlet {outlet} of the lab's one power switch",
                n.nodeid.0
            ));
        }
    }
    Ok(outlets)
}

/// The switch's login and password: those of the first `fence_apc` device that names
/// them, else [`DEFAULT_CREDENTIALS`].
pub fn switch_credentials(conf: &ClusterConf) -> (String, String) {
    let first = |keys: &[&str]| {
        apc_devices(conf).find_map(|d| keys.iter().find_map(|k| d.arg(k)).map(str::to_string))
    };
    (
        first(&["login", "username"]).unwrap_or(DEFAULT_CREDENTIALS.0.into()),
        first(&["passwd", "password"]).unwrap_or(DEFAULT_CREDENTIALS.1.into()),
    )
}

/// Replaces the value of every key of `keys` present in `args`; adds `keys[0]` if none is.
fn set_arg(args: &mut Vec<(String, String)>, keys: &[&str], value: &str, add: bool) {
    let mut found = false;
    for (k, v) in args.iter_mut() {
        if keys.contains(&k.as_str()) {
            *v = value.to_string();
            found = true;
        }
    }
    if !found && add {
        args.push((keys[0].to_string(), value.to_string()));
    }
}

/// Points one argument list at the switch: `add` says whether missing keys are added
/// (a device) or only present ones rewritten (a per-node override).
fn point_at(args: &mut Vec<(String, String)>, sw: &PowerSwitch, add: bool) {
    set_arg(args, &["ipaddr", "hostname", "ip"], &sw.address, add);
    set_arg(args, &["ipport"], &sw.port.to_string(), add);
    set_arg(args, &["login", "username"], &sw.login, add);
    set_arg(args, &["passwd", "password"], &sw.password, add);
    args.retain(|(k, _)| !matches!(k.as_str(), "ssh" | "secure" | "passwd_script"));
}

/// Every IPv4 literal in `text` replaced by `to`, except those [`allowed`] in a lab.
fn replace_addresses(text: &str, to: Ipv4Addr) -> String {
    let mut out = String::new();
    let mut rest = 0;
    for (start, end, addr) in ipv4_literals(text) {
        out.push_str(&text[rest..start]);
        if allowed(addr, None) {
            out.push_str(&text[start..end]);
        } else {
            out.push_str(&to.to_string());
        }
        rest = end;
    }
    out.push_str(&text[rest..]);
    out
}

/// The fence device the lab adds for its switch.
pub const LAB_APC_DEVICE: &str = "lab-apc";
/// The manual fence device the lab adds as every node's second method.
pub const LAB_MANUAL_DEVICE: &str = "lab-manual";

/// Gives every node that has no `<fence>` section the reference deployment's two methods
/// (reference/ section 7.3): method "1" = its outlet on the lab's APC switch (`reboot`),
/// method "2" = manual fencing. Nodes that already name methods keep them. `outlets` maps
/// node ids to outlets; a node missing there uses its id.
pub fn wire_fencing(conf: &mut ClusterConf, outlets: &BTreeMap<u32, u32>) {
    if conf.clusternodes.iter().all(|n| !n.fence.is_empty()) {
        return;
    }
    let device = |name: &str, agent: &str| config::FenceDevice {
        origin: Default::default(),
        name: name.to_string(),
        agent: agent.to_string(),
        args: Vec::new(),
    };
    if conf.fencedevice(LAB_APC_DEVICE).is_none() {
        conf.fencedevices.push(device(LAB_APC_DEVICE, APC_AGENT));
    }
    if conf.fencedevice(LAB_MANUAL_DEVICE).is_none() {
        conf.fencedevices
            .push(device(LAB_MANUAL_DEVICE, "fence_manual"));
    }
    for n in conf.clusternodes.iter_mut().filter(|n| n.fence.is_empty()) {
        let outlet = outlets.get(&n.nodeid.0).copied().unwrap_or(n.nodeid.0);
        let method = |name: &str, dev: &str, args: Vec<(String, String)>| config::FenceMethod {
            origin: Default::default(),
            name: name.to_string(),
            devices: vec![config::DeviceRef {
                origin: Default::default(),
                name: dev.to_string(),
                args,
            }],
        };
        n.fence = vec![
            method(
                "1",
                LAB_APC_DEVICE,
                vec![("port".into(), outlet.to_string())],
            ),
            method(
                "2",
                LAB_MANUAL_DEVICE,
                vec![("nodename".into(), n.name.clone())],
            ),
        ];
    }
}

/// Writes a small QEMU-able definition (xm syntax: name, uuid, 64 MiB, one vcpu, no disk:
/// no guest OS is needed to start, stop and migrate it) for every `<vm>` into `dir`, the
/// directory every lab host shares. An existing file is kept (a test may have written a
/// richer one).
/// The longest socket path rgmanagerd's QEMU driver makes for a VM: its state directory
/// (`<runtime dir>/vms` in the lab), the VM's name, then `status.sock`.
pub fn vm_socket_path(runtime_dir: &std::path::Path, vm: &str) -> std::path::PathBuf {
    runtime_dir.join("vms").join(vm).join("status.sock")
}

/// Bytes a unix socket address holds for its path (sun_path less its NUL).
const SUN_PATH_MAX: usize = 107;

/// Refuses, before anything starts, a lab whose VM sockets would not fit a unix socket
/// address (a deep `--dir`, long node or VM names): rgmanagerd would fail every start.
pub fn check_vm_socket_paths<'a>(
    conf: &ClusterConf,
    runtime_dirs: impl IntoIterator<Item = &'a std::path::Path>,
) -> Result<(), String> {
    for dir in runtime_dirs {
        for vm in &conf.rm.vms {
            let path = vm_socket_path(dir, &vm.name);
            let len = path.as_os_str().len();
            if len > SUN_PATH_MAX {
                return Err(format!(
                    "vm:{} would need the socket {} ({len} bytes; a unix socket holds \
                     {SUN_PATH_MAX}): put the lab in a shorter directory (--dir)",
                    vm.name,
                    path.display()
                ));
            }
        }
    }
    Ok(())
}

pub fn write_vm_definitions(conf: &ClusterConf, dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for vm in &conf.rm.vms {
        let file = dir.join(&vm.name);
        if file.exists() {
            continue;
        }
        let h = crc32fast::hash(vm.name.as_bytes());
        let uuid = format!(
            "{h:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            h & 0xffff,
            (h >> 4) & 0xfff,
            (h >> 8) & 0xfff,
            u64::from(h) * 7919
        );
        let text = format!(
            "# Written by clusterlab for <vm name=\"{n}\">: a guest with no OS, enough to\n\
             # start, stop, check and live-migrate with QEMU.\n\
             name = \"{n}\"\nuuid = \"{uuid}\"\nmemory = 64\nvcpus = 1\n\
             on_poweroff = \"destroy\"\non_reboot = \"restart\"\non_crash = \"destroy\"\n",
            n = vm.name
        );
        std::fs::write(&file, text).map_err(|e| format!("{}: {e}", file.display()))?;
    }
    Ok(())
}

/// Points every `<vm>`'s `path` at `dir` (the lab's shared definitions).
pub fn point_vms_at(conf: &mut ClusterConf, dir: &std::path::Path) {
    for vm in &mut conf.rm.vms {
        vm.path = Some(dir.display().to_string());
    }
}

/// The configuration rewritten for the lab (see the module doc), as cluster.conf text.
pub fn lab_config(conf: &ClusterConf, sw: &PowerSwitch, host: Ipv4Addr) -> String {
    let mut c = conf.clone();
    let apc: Vec<String> = apc_devices(conf).map(|d| d.name.clone()).collect();
    for d in c.fencedevices.iter_mut().filter(|d| is_apc(&d.agent)) {
        point_at(&mut d.args, sw, true);
    }
    for n in &mut c.clusternodes {
        let refs = n.fence.iter_mut().flat_map(|m| m.devices.iter_mut());
        for d in refs.chain(n.unfence.iter_mut()) {
            if apc.contains(&d.name) {
                point_at(&mut d.args, sw, false);
            }
        }
    }
    if let Some(q) = &mut c.quorumd {
        for h in &mut q.heuristics {
            h.program = replace_addresses(&h.program, host);
        }
    }
    config::to_xml(&c)
}

/// Whether a lab may name `addr`: loopback, multicast, the unspecified address, or inside
/// `subnet` (the lab's own network).
pub fn allowed(addr: Ipv4Addr, subnet: Option<(Ipv4Addr, u8)>) -> bool {
    let in_subnet = subnet.is_some_and(|(net, len)| {
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        u32::from(addr) & mask == u32::from(net) & mask
    });
    addr.is_loopback() || addr.is_multicast() || addr.is_unspecified() || in_subnet
}

/// Every dotted-quad IPv4 literal in `text` as (start, end, address): four decimal parts
/// 0..=255 joined by dots, not part of a longer run of digits and dots.
pub fn ipv4_literals(text: &str) -> Vec<(usize, usize, Ipv4Addr)> {
    let bytes = text.as_bytes();
    let is_part = |b: u8| b.is_ascii_digit() || b == b'.';
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !is_part(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && is_part(bytes[i]) {
            i += 1;
        }
        if let Ok(addr) = text[start..i].parse::<Ipv4Addr>() {
            found.push((start, i, addr));
        }
    }
    found
}

/// Refuses `text` (a lab node's cluster.conf) if it names an IPv4 address a lab host must
/// never reach; the error names the address and its line.
pub fn check_addresses(text: &str, subnet: Option<(Ipv4Addr, u8)>) -> Result<(), String> {
    for (start, _, addr) in ipv4_literals(text) {
        if !allowed(addr, subnet) {
            let line_no = text[..start].matches('\n').count() + 1;
            let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
            let lab = match subnet {
                Some((net, len)) => format!("127.0.0.0/8 and {net}/{len}"),
                None => "127.0.0.0/8".to_string(),
            };
            return Err(format!(
                "names {addr} (line {line_no}: {line}): nothing in a lab may point outside \
                 {lab}; fence_apc devices and quorumd heuristics are pointed at the lab \
                 for you, anything else must be changed in the configuration"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const REFERENCE: &str = include_str!("../../../docs/examples/dom0cluster1.conf");

    fn switch() -> PowerSwitch {
        PowerSwitch {
            address: "10.250.7.254".into(),
            port: 40123,
            login: "fenceuser".into(),
            password: "PASSWORD".into(),
            process: None,
        }
    }

    fn reference() -> ClusterConf {
        config::parse(REFERENCE, "dom0cluster1.conf")
            .unwrap()
            .config
    }

    #[test]
    fn nodes_without_fencing_get_the_lab_outlet_then_manual_and_others_keep_theirs() {
        let mut c = config::parse(&crate::lab::simple_config("t", 3, false, 1), "t.conf")
            .unwrap()
            .config;
        wire_fencing(&mut c, &BTreeMap::from([(2, 7)]));
        let text = lab_config(&c, &switch(), Ipv4Addr::new(10, 250, 7, 254));
        let back = config::parse(&text, "lab.conf")
            .unwrap_or_else(|e| panic!("{e}\n{text}"))
            .config;
        let n2 = back.node_by_id(libcluster::NodeId(2)).unwrap();
        assert_eq!(n2.fence.len(), 2);
        assert_eq!(n2.fence[0].devices[0].name, LAB_APC_DEVICE);
        assert_eq!(n2.fence[0].devices[0].arg("port"), Some("7"));
        assert_eq!(n2.fence[1].devices[0].name, LAB_MANUAL_DEVICE);
        let apc = back.fencedevice(LAB_APC_DEVICE).unwrap();
        assert_eq!(apc.arg("ipaddr"), Some("10.250.7.254"));
        assert_eq!(node_outlets(&back).unwrap().get(&1), Some(&1));
        // The reference config names its own methods: nothing is added.
        let mut r = reference();
        let before = r.clone();
        wire_fencing(&mut r, &BTreeMap::new());
        assert_eq!(r, before);
    }

    #[test]
    fn vm_sockets_that_do_not_fit_a_unix_address_are_refused_before_the_start() {
        let r = reference();
        let short = std::path::PathBuf::from("/tmp/lab/nodes/station201.example.com/run");
        assert_eq!(check_vm_socket_paths(&r, [short.as_path()]), Ok(()));
        // The bench's old default: 111 bytes for station182's status socket.
        let deep = std::path::PathBuf::from(
            "/tmp/clusterlab-bench-31844/bench-failover/nodes/station201.example.com/run",
        );
        let e = check_vm_socket_paths(&r, [short.as_path(), deep.as_path()]).unwrap_err();
        assert!(
            e.starts_with(
                "vm:station182.example.com would need the socket /tmp/clusterlab-bench-31844/"
            ),
            "{e}"
        );
        assert!(e.contains("(114 bytes; a unix socket holds 107)"), "{e}");
    }

    #[test]
    fn the_reference_config_is_rewritten_to_name_only_the_lab() {
        let c = reference();
        let subnet = Some((Ipv4Addr::new(10, 250, 7, 0), 24));
        assert!(check_addresses(REFERENCE, subnet).is_err());
        let text = lab_config(&c, &switch(), Ipv4Addr::new(10, 250, 7, 254));
        check_addresses(&text, subnet).unwrap();
        let back = config::parse(&text, "lab.conf").unwrap().config;
        for d in back.fencedevices.iter().filter(|d| d.agent == "fence_apc") {
            assert_eq!(d.arg("hostname"), Some("10.250.7.254"));
            assert_eq!(d.arg("ipport"), Some("40123"));
            assert_eq!(d.arg("login"), Some("fenceuser"));
            assert_eq!(d.arg("passwd"), Some("PASSWORD"));
        }
        let q = back.quorumd.clone().unwrap();
        assert_eq!(q.heuristics[0].program, "ping 10.250.7.254 -c3 -t1");
        assert_eq!(node_outlets(&back).unwrap(), node_outlets(&c).unwrap());
        assert_eq!(back.clusternodes.len(), 2);
    }

    #[test]
    fn outlets_follow_fence_apc_ports_else_node_ids() {
        assert_eq!(
            node_outlets(&reference()).unwrap(),
            BTreeMap::from([(1, 1), (2, 2)])
        );
        let swapped = REFERENCE
            .replace("port=\"1\"", "port=\"X\"")
            .replace("port=\"2\"", "port=\"1\"")
            .replace("port=\"X\"", "port=\"2\"");
        let c = config::parse(&swapped, "s.conf").unwrap().config;
        assert_eq!(node_outlets(&c).unwrap(), BTreeMap::from([(1, 2), (2, 1)]));
        let plain = crate::lab::simple_config("c", 3, false, 1);
        let c = config::parse(&plain, "p.conf").unwrap().config;
        assert!(node_outlets(&c).unwrap().is_empty());
    }

    #[test]
    fn two_nodes_on_one_outlet_or_a_named_port_are_refused() {
        let same = REFERENCE.replace("port=\"2\"", "port=\"1\"");
        let c = config::parse(&same, "s.conf").unwrap().config;
        assert!(node_outlets(&c).unwrap_err().contains("outlet 1"));
        let named = REFERENCE.replace("port=\"2\"", "port=\"web\"");
        let c = config::parse(&named, "n.conf").unwrap().config;
        assert!(node_outlets(&c).unwrap_err().contains("\"web\""));
    }

    #[test]
    fn credentials_come_from_the_first_fence_apc_device_or_default() {
        assert_eq!(
            switch_credentials(&reference()),
            ("fenceuser".to_string(), "PASSWORD".to_string())
        );
        let plain = crate::lab::simple_config("c", 3, false, 1);
        let c = config::parse(&plain, "p.conf").unwrap().config;
        assert_eq!(switch_credentials(&c), ("apc".into(), "apc".into()));
    }

    #[test]
    fn the_check_names_the_address_and_its_line() {
        let text = "<a>\n<b ip=\"127.0.0.2\" m=\"239.192.0.1\"/>\n<c ipaddr=\"172.16.73.12\"/>\n";
        let e = check_addresses(text, None).unwrap_err();
        assert!(e.contains("172.16.73.12") && e.contains("line 3"), "{e}");
        assert!(check_addresses("version=\"1.0\" 10.250.3.9", None).is_err());
        check_addresses("10.250.3.9", Some((Ipv4Addr::new(10, 250, 3, 0), 24))).unwrap();
        assert!(check_addresses("10.250.4.9", Some((Ipv4Addr::new(10, 250, 3, 0), 24))).is_err());
    }

    proptest! {
        #[test]
        fn every_embedded_address_is_found(a in any::<[u8; 4]>(), pre in "[a-z =\"]{0,8}", post in "[a-z =\"]{0,8}") {
            let addr = Ipv4Addr::from(a);
            let text = format!("{pre}{addr}{post}");
            let found: Vec<Ipv4Addr> = ipv4_literals(&text).into_iter().map(|(_, _, x)| x).collect();
            prop_assert_eq!(found, vec![addr]);
        }

        #[test]
        fn after_replacement_only_allowed_addresses_remain(a in any::<[u8; 4]>(), b in any::<[u8; 4]>()) {
            let text = format!("ping {} -c1; ping {}", Ipv4Addr::from(a), Ipv4Addr::from(b));
            let out = replace_addresses(&text, Ipv4Addr::LOCALHOST);
            prop_assert!(check_addresses(&out, None).is_ok(), "{}", out);
        }
    }
}
