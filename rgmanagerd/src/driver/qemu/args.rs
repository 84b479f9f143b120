//! The QEMU command line for a [`VmDef`]: a pure function, so every mapping rule is a
//! unit test. docs/vm-drivers.md has the table.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::vmdef::{DiskMode, Lifecycle, VmDef};

/// The files of one VM in the state directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmPaths {
    /// `STATE_DIR/NAME`.
    pub dir: PathBuf,
    /// `qmp.sock`: control (start, stop, migrate), one operation at a time.
    pub qmp: PathBuf,
    /// `status.sock`: a second QMP monitor for status queries, so they never wait behind
    /// a migration.
    pub status: PathBuf,
    /// `qemu.pid`, written by QEMU.
    pub pidfile: PathBuf,
    /// `qemu.log`: the command line and QEMU's startup messages.
    pub log: PathBuf,
}

impl VmPaths {
    /// The paths for `name` under `state_dir`.
    pub fn new(state_dir: &Path, name: &str) -> VmPaths {
        let dir = state_dir.join(name);
        VmPaths {
            qmp: dir.join("qmp.sock"),
            status: dir.join("status.sock"),
            pidfile: dir.join("qemu.pid"),
            log: dir.join("qemu.log"),
            dir,
        }
    }
}

/// What the host offers that the mapping depends on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// Network bridges present (`/sys/class/net/*/bridge`).
    pub bridges: BTreeSet<String>,
}

/// Settings of the QEMU driver that shape the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgOptions {
    /// `-machine TYPE` when the definition names none.
    pub machine: String,
    /// `accel=` (`kvm:tcg`: KVM when /dev/kvm works, else TCG).
    pub accel: String,
    /// `cache=` of every disk; `none` (O_DIRECT) is what live migration over shared
    /// storage needs.
    pub disk_cache: String,
}

impl Default for ArgOptions {
    fn default() -> ArgOptions {
        ArgOptions {
            machine: "pc".to_string(),
            accel: "kvm:tcg".to_string(),
            disk_cache: "none".to_string(),
        }
    }
}

/// A part of the definition QEMU cannot honour as written; logged at start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MappingNote {
    /// A `vif` whose bridge is absent here (or unnamed): the NIC is left out.
    NicWithoutBridge {
        /// The vif's mac.
        mac: Option<String>,
        /// The vif's bridge.
        bridge: Option<String>,
    },
    /// `maxmem` above `memory`: QEMU gets `memory`, there is no balloon up to maxmem.
    MaxmemIgnored {
        /// memory, MiB.
        memory_mib: u32,
        /// maxmem, MiB.
        maxmem_mib: u32,
    },
    /// A Xen-only or unknown key with no QEMU meaning.
    KeyUnused(String),
    /// A lifecycle action QEMU cannot take; what it does instead.
    Lifecycle {
        /// The key (`on_crash`...).
        key: &'static str,
        /// The value asked for.
        wanted: Lifecycle,
        /// What happens instead.
        instead: &'static str,
    },
}

impl fmt::Display for MappingNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MappingNote::NicWithoutBridge { mac, bridge } => write!(
                f,
                "vif mac={} bridge={}: no such bridge here, the nic is left out",
                mac.as_deref().unwrap_or("-"),
                bridge.as_deref().unwrap_or("-")
            ),
            MappingNote::MaxmemIgnored {
                memory_mib,
                maxmem_mib,
            } => write!(
                f,
                "maxmem {maxmem_mib} MiB is not mapped; the guest gets memory {memory_mib} MiB"
            ),
            MappingNote::KeyUnused(k) => write!(f, "`{k}` has no qemu equivalent and is unused"),
            MappingNote::Lifecycle {
                key,
                wanted,
                instead,
            } => write!(f, "{key} = {}: {instead}", wanted.as_str()),
        }
    }
}

/// The arguments (without the program) and the notes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QemuCommand {
    /// Arguments for qemu-system-x86_64.
    pub args: Vec<String>,
    /// What could not be mapped.
    pub notes: Vec<MappingNote>,
}

/// QEMU option values separate sub-options with `,`; a literal comma is doubled.
fn escape(s: &str) -> String {
    s.replace(',', ",,")
}

fn nic_model(model: Option<&str>) -> &str {
    match model {
        None | Some("virtio" | "virtio-net") => "virtio-net-pci",
        Some(m) => m,
    }
}

/// Builds the command line. `incoming` is the `-incoming` URI on a migration target.
pub fn command_line(
    def: &VmDef,
    paths: &VmPaths,
    opts: &ArgOptions,
    facts: &HostFacts,
    incoming: Option<&str>,
) -> QemuCommand {
    let mut args: Vec<String> = Vec::new();
    let mut notes = Vec::new();
    let mut push = |a: &str, b: String| {
        args.push(a.to_string());
        args.push(b);
    };
    push("-name", format!("guest={}", escape(&def.name)));
    if let Some(uuid) = &def.uuid {
        push("-uuid", uuid.clone());
    }
    let machine = def.machine.as_deref().unwrap_or(&opts.machine);
    push(
        "-machine",
        format!("{},accel={}", escape(machine), escape(&opts.accel)),
    );
    if let Some(cpu) = &def.cpu {
        push("-cpu", cpu.clone());
    }
    push("-m", format!("{}M", def.memory_mib));
    push("-smp", def.vcpus.to_string());
    for sock in [&paths.qmp, &paths.status] {
        push(
            "-qmp",
            format!(
                "unix:{},server=on,wait=off",
                escape(&sock.display().to_string())
            ),
        );
    }
    push("-pidfile", paths.pidfile.display().to_string());
    for flag in [
        "-nodefaults",
        "-no-user-config",
        "-daemonize",
        "-display",
        "none",
        "-serial",
        "none",
        "-monitor",
        "none",
    ] {
        args.push(flag.to_string());
    }
    lifecycle_flags(def, &mut args, &mut notes);
    for disk in &def.disks {
        let iface = if disk.cdrom || disk.target.starts_with("hd") {
            "ide"
        } else {
            "virtio"
        };
        let mut drive = String::new();
        if !disk.path.as_os_str().is_empty() {
            drive.push_str(&format!(
                "file={},format={},",
                escape(&disk.path.display().to_string()),
                disk.format.as_str()
            ));
        }
        drive.push_str(&format!("if={iface}"));
        if iface == "ide" {
            // hda..hdd are the four IDE slots; QEMU numbers them 0..3.
            if let Some(c) = disk
                .target
                .strip_prefix("hd")
                .and_then(|s| s.chars().next())
            {
                if ('a'..='d').contains(&c) {
                    drive.push_str(&format!(",index={}", c as u32 - 'a' as u32));
                }
            }
        }
        drive.push_str(if disk.cdrom {
            ",media=cdrom"
        } else {
            ",media=disk"
        });
        if !disk.path.as_os_str().is_empty() {
            drive.push_str(&format!(",cache={}", escape(&opts.disk_cache)));
        }
        match disk.mode {
            DiskMode::ReadOnly => drive.push_str(",readonly=on"),
            DiskMode::ReadWrite => {}
            // w!: other guests write the same image; QEMU's image locking would refuse.
            DiskMode::SharedWrite => drive.push_str(",file.locking=off"),
        }
        args.push("-drive".to_string());
        args.push(drive);
    }
    let mut nics = 0;
    for nic in &def.nics {
        match &nic.bridge {
            Some(br) if facts.bridges.contains(br) => {
                let mut spec = format!(
                    "bridge,br={},model={}",
                    escape(br),
                    escape(nic_model(nic.model.as_deref()))
                );
                if let Some(mac) = &nic.mac {
                    spec.push_str(&format!(",mac={mac}"));
                }
                args.push("-nic".to_string());
                args.push(spec);
                nics += 1;
            }
            _ => notes.push(MappingNote::NicWithoutBridge {
                mac: nic.mac.clone(),
                bridge: nic.bridge.clone(),
            }),
        }
    }
    if nics == 0 {
        args.push("-nic".to_string());
        args.push("none".to_string());
    }
    if let Some(maxmem) = def.maxmem_mib.filter(|&m| m > def.memory_mib) {
        notes.push(MappingNote::MaxmemIgnored {
            memory_mib: def.memory_mib,
            maxmem_mib: maxmem,
        });
    }
    for key in def.extra.keys() {
        notes.push(MappingNote::KeyUnused(key.clone()));
    }
    if let Some(uri) = incoming {
        args.push("-incoming".to_string());
        args.push(uri.to_string());
    }
    args.extend(def.qemu_args.iter().cloned());
    QemuCommand { args, notes }
}

/// on_poweroff / on_reboot / on_crash onto `-no-shutdown` / `-no-reboot`.
fn lifecycle_flags(def: &VmDef, args: &mut Vec<String>, notes: &mut Vec<MappingNote>) {
    match def.on_poweroff {
        Lifecycle::Destroy => {}
        Lifecycle::Preserve => args.push("-no-shutdown".to_string()),
        wanted => notes.push(MappingNote::Lifecycle {
            key: "on_poweroff",
            wanted,
            instead: "qemu exits when the guest powers off; the cluster's recovery policy decides",
        }),
    }
    match def.on_reboot {
        Lifecycle::Restart => {}
        Lifecycle::Destroy => args.push("-no-reboot".to_string()),
        wanted => notes.push(MappingNote::Lifecycle {
            key: "on_reboot",
            wanted,
            instead: "the guest resets in place",
        }),
    }
    if def.on_crash != Lifecycle::Restart {
        notes.push(MappingNote::Lifecycle {
            key: "on_crash",
            wanted: def.on_crash,
            instead: "qemu cannot see a guest crash (no pvpanic device); the guest's own \
                      panic action applies",
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vmdef::{parse, Nic};

    fn paths() -> VmPaths {
        VmPaths::new(Path::new("/run/vms"), "vm1")
    }

    fn line(def: &VmDef, facts: &HostFacts) -> QemuCommand {
        command_line(def, &paths(), &ArgOptions::default(), facts, None)
    }

    fn has(args: &[String], pair: [&str; 2]) -> bool {
        args.windows(2).any(|w| w[0] == pair[0] && w[1] == pair[1])
    }

    #[test]
    fn the_reference_guest_maps_onto_a_headless_qemu() {
        let def = parse(
            "name = 'station182'\nuuid = '0d64fcd5-9f51-1f53-855e-fb0fb81df160'\n\
             maxmem = 512\nmemory = 280\nvcpus = 2\nbootloader = '/usr/bin/pygrub'\n\
             disk = [ 'tap:aio:/img/s182,xvda,w' ]\n\
             vif = [ 'mac=00:16:3e:00:01:82,bridge=xenbr1' ]\n",
        )
        .unwrap()
        .def;
        let c = line(&def, &HostFacts::default());
        let a = &c.args;
        assert!(has(a, ["-name", "guest=station182"]));
        assert!(has(a, ["-uuid", "0d64fcd5-9f51-1f53-855e-fb0fb81df160"]));
        assert!(has(a, ["-machine", "pc,accel=kvm:tcg"]));
        assert!(has(a, ["-m", "280M"]) && has(a, ["-smp", "2"]));
        assert!(has(
            a,
            ["-qmp", "unix:/run/vms/vm1/qmp.sock,server=on,wait=off"]
        ));
        assert!(has(
            a,
            ["-qmp", "unix:/run/vms/vm1/status.sock,server=on,wait=off"]
        ));
        assert!(has(a, ["-pidfile", "/run/vms/vm1/qemu.pid"]));
        assert!(has(a, ["-display", "none"]) && has(a, ["-serial", "none"]));
        assert!(has(a, ["-monitor", "none"]) && a.contains(&"-nodefaults".to_string()));
        assert!(has(
            a,
            [
                "-drive",
                "file=/img/s182,format=raw,if=virtio,media=disk,cache=none"
            ]
        ));
        assert!(has(a, ["-nic", "none"]));
        assert_eq!(
            c.notes,
            [
                MappingNote::NicWithoutBridge {
                    mac: Some("00:16:3e:00:01:82".into()),
                    bridge: Some("xenbr1".into())
                },
                MappingNote::MaxmemIgnored {
                    memory_mib: 280,
                    maxmem_mib: 512
                },
                MappingNote::KeyUnused("bootloader".into()),
            ]
        );
        assert!(!a.contains(&"-incoming".to_string()));
    }

    #[test]
    fn a_present_bridge_gets_a_virtio_nic_with_the_mac() {
        let mut def = VmDef::new("vm1");
        def.nics.push(Nic {
            mac: Some("00:16:3e:00:00:01".into()),
            bridge: Some("br0".into()),
            ..Nic::default()
        });
        def.nics.push(Nic {
            model: Some("e1000".into()),
            bridge: Some("br0".into()),
            ..Nic::default()
        });
        let facts = HostFacts {
            bridges: ["br0".to_string()].into(),
        };
        let c = line(&def, &facts);
        assert!(has(
            &c.args,
            [
                "-nic",
                "bridge,br=br0,model=virtio-net-pci,mac=00:16:3e:00:00:01"
            ]
        ));
        assert!(has(&c.args, ["-nic", "bridge,br=br0,model=e1000"]));
        assert!(!has(&c.args, ["-nic", "none"]));
        assert_eq!(c.notes, []);
    }

    #[test]
    fn disks_map_modes_interfaces_and_escape_commas() {
        let mut def = parse(
            "name='v'\ndisk=['file:/i/a,hda,r', 'phy:sdb,hdc:cdrom,r', 'qcow2:/i/q,vda,w!']\n",
        )
        .unwrap()
        .def;
        def.disks[0].path = "/i/a,b".into();
        let c = line(&def, &HostFacts::default());
        let drives: Vec<&String> = c
            .args
            .windows(2)
            .filter(|w| w[0] == "-drive")
            .map(|w| &w[1])
            .collect();
        assert_eq!(
            drives,
            [
                "file=/i/a,,b,format=raw,if=ide,index=0,media=disk,cache=none,readonly=on",
                "file=/dev/sdb,format=raw,if=ide,index=2,media=cdrom,cache=none,readonly=on",
                "file=/i/q,format=qcow2,if=virtio,media=disk,cache=none,file.locking=off",
            ]
        );
    }

    #[test]
    fn lifecycle_actions_map_to_flags_or_notes() {
        let mut def = VmDef::new("v");
        def.on_poweroff = Lifecycle::Preserve;
        def.on_reboot = Lifecycle::Destroy;
        def.on_crash = Lifecycle::Destroy;
        let c = line(&def, &HostFacts::default());
        assert!(c.args.contains(&"-no-shutdown".to_string()));
        assert!(c.args.contains(&"-no-reboot".to_string()));
        assert_eq!(c.notes.len(), 1);
        assert!(c.notes[0].to_string().starts_with("on_crash = destroy: "));
        let plain = line(&VmDef::new("v"), &HostFacts::default());
        assert!(!plain
            .args
            .iter()
            .any(|a| a == "-no-reboot" || a == "-no-shutdown"));
        assert_eq!(plain.notes, []);
    }

    #[test]
    fn incoming_and_extra_qemu_args_come_last() {
        let mut def = VmDef::new("v");
        def.qemu_args = vec!["-device".into(), "virtio-rng-pci".into()];
        def.machine = Some("q35".into());
        let c = command_line(
            &def,
            &paths(),
            &ArgOptions::default(),
            &HostFacts::default(),
            Some("tcp:127.0.0.1:4444"),
        );
        let n = c.args.len();
        assert_eq!(
            &c.args[n - 4..],
            [
                "-incoming",
                "tcp:127.0.0.1:4444",
                "-device",
                "virtio-rng-pci"
            ]
        );
        assert!(has(&c.args, ["-machine", "q35,accel=kvm:tcg"]));
    }
}
