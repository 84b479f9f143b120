//! From `key = value` assignments to a [`VmDef`]: types, ranges, disk and vif entries.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::syntax::{Assignment, Item, Pos, Value};
use super::{
    DefFormat, Disk, DiskBackend, DiskFormat, DiskMode, Lifecycle, Nic, ParseError, Parsed,
    Problem, VmDef, Warning, WarningKind,
};

/// Keys of Xen guest files that QEMU has no use for; kept in `extra`.
const XEN_ONLY: &[&str] = &[
    "acpi",
    "apic",
    "boot",
    "bootargs",
    "bootloader",
    "builder",
    "cmdline",
    "cpu_cap",
    "cpu_weight",
    "cpus",
    "device_model",
    "extra",
    "kernel",
    "keymap",
    "localtime",
    "monitor",
    "nographic",
    "on_xend_start",
    "on_xend_stop",
    "pae",
    "pci",
    "ramdisk",
    "root",
    "sdl",
    "serial",
    "shadow_memory",
    "soundhw",
    "stdvga",
    "type",
    "usb",
    "usbdevice",
    "vfb",
    "vnc",
    "vncconsole",
    "vncdisplay",
    "vnclisten",
    "vncunused",
];

/// Largest memory we accept, in MiB (16 TiB).
const MEMORY_MAX_MIB: i64 = 16 * 1024 * 1024;
/// Largest vcpu count we accept.
const VCPUS_MAX: i64 = 4096;

struct Builder<'a> {
    file: &'a str,
    warnings: Vec<Warning>,
}

impl Builder<'_> {
    fn err(&self, pos: Pos, problem: Problem) -> ParseError {
        ParseError::new(self.file, pos, problem)
    }

    fn warn(&mut self, pos: Pos, kind: WarningKind) {
        self.warnings.push(Warning {
            file: self.file.to_string(),
            pos,
            kind,
        });
    }

    fn string<'v>(&self, key: &str, item: &'v Item) -> Result<&'v str, ParseError> {
        match &item.value {
            Value::Str(s) => Ok(s),
            other => Err(self.wrong_type(key, "a string", other, item.pos)),
        }
    }

    fn wrong_type(&self, key: &str, expected: &'static str, found: &Value, pos: Pos) -> ParseError {
        self.err(
            pos,
            Problem::WrongType {
                key: key.to_string(),
                expected,
                found: found.kind(),
            },
        )
    }

    fn int(&self, key: &str, item: &Item, min: i64, max: i64) -> Result<u32, ParseError> {
        let v = match &item.value {
            Value::Int(v) => *v,
            // xm files written by tools sometimes quote numbers.
            other @ Value::Str(s) => match s.trim().parse::<i64>() {
                Ok(v) => v,
                Err(_) => return Err(self.wrong_type(key, "an integer", other, item.pos)),
            },
            other => return Err(self.wrong_type(key, "an integer", other, item.pos)),
        };
        if v < min || v > max {
            return Err(self.err(
                item.pos,
                Problem::OutOfRange {
                    key: key.to_string(),
                    value: v,
                    min,
                    max,
                },
            ));
        }
        u32::try_from(v).map_err(|_| {
            self.err(
                item.pos,
                Problem::OutOfRange {
                    key: key.to_string(),
                    value: v,
                    min,
                    max,
                },
            )
        })
    }

    fn strings<'v>(&self, key: &str, item: &'v Item) -> Result<Vec<(Pos, &'v str)>, ParseError> {
        match &item.value {
            Value::List(items) => items
                .iter()
                .map(|i| self.string(key, i).map(|s| (i.pos, s)))
                .collect(),
            // A single string where a list is expected is common in hand-written files.
            Value::Str(s) => Ok(vec![(item.pos, s.as_str())]),
            other => Err(self.wrong_type(key, "a list of strings", other, item.pos)),
        }
    }

    fn lifecycle(&self, key: &str, item: &Item) -> Result<Lifecycle, ParseError> {
        let s = self.string(key, item)?;
        Lifecycle::from_name(s).ok_or_else(|| {
            self.err(
                item.pos,
                Problem::BadLifecycle {
                    key: key.to_string(),
                    value: s.to_string(),
                },
            )
        })
    }
}

/// Builds a definition from parsed assignments. Later assignments of a key win.
pub(super) fn build(
    file: &str,
    text: &str,
    assignments: &[Assignment],
    format: DefFormat,
) -> Result<Parsed, ParseError> {
    let mut b = Builder {
        file,
        warnings: Vec::new(),
    };
    let mut def = VmDef::new("");
    def.format = format;
    let mut seen: BTreeMap<&str, Pos> = BTreeMap::new();
    let mut have_name = false;
    for a in assignments {
        let key = a.key.as_str();
        if seen.insert(key, a.pos).is_some() {
            b.warn(a.pos, WarningKind::DuplicateKey(a.key.clone()));
        }
        let v = &a.value;
        match key {
            "name" => {
                let name = b.string(key, v)?;
                if !name_is_usable(name) {
                    return Err(b.err(v.pos, Problem::BadName(name.to_string())));
                }
                def.name = name.to_string();
                have_name = true;
            }
            "uuid" => {
                let uuid = b.string(key, v)?;
                if !uuid_is_valid(uuid) {
                    return Err(b.err(v.pos, Problem::BadUuid(uuid.to_string())));
                }
                def.uuid = Some(uuid.to_ascii_lowercase());
            }
            "memory" => def.memory_mib = b.int(key, v, 1, MEMORY_MAX_MIB)?,
            "maxmem" => def.maxmem_mib = Some(b.int(key, v, 1, MEMORY_MAX_MIB)?),
            "vcpus" => def.vcpus = b.int(key, v, 1, VCPUS_MAX)?,
            "on_poweroff" => def.on_poweroff = b.lifecycle(key, v)?,
            "on_reboot" => def.on_reboot = b.lifecycle(key, v)?,
            "on_crash" => def.on_crash = b.lifecycle(key, v)?,
            "machine" => def.machine = Some(b.string(key, v)?.to_string()),
            "cpu" => def.cpu = Some(b.string(key, v)?.to_string()),
            "qemu_args" => {
                def.qemu_args = b
                    .strings(key, v)?
                    .into_iter()
                    .map(|(_, s)| s.to_string())
                    .collect();
            }
            "disk" => {
                def.disks.clear();
                for (pos, entry) in b.strings(key, v)? {
                    let disk = parse_disk(entry).map_err(|reason| {
                        b.err(
                            pos,
                            Problem::BadDisk {
                                entry: entry.to_string(),
                                reason,
                            },
                        )
                    })?;
                    if def.disks.iter().any(|d| d.target == disk.target) {
                        return Err(b.err(pos, Problem::DuplicateTarget(disk.target)));
                    }
                    def.disks.push(disk);
                }
            }
            "vif" => {
                def.nics.clear();
                for (pos, entry) in b.strings(key, v)? {
                    let (nic, unmapped) = parse_vif(entry).map_err(|reason| {
                        b.err(
                            pos,
                            Problem::BadVif {
                                entry: entry.to_string(),
                                reason,
                            },
                        )
                    })?;
                    for k in unmapped {
                        b.warn(pos, WarningKind::UnmappedVifKey(k));
                    }
                    def.nics.push(nic);
                }
            }
            k if XEN_ONLY.contains(&k) => {
                if format == DefFormat::Qemu {
                    b.warn(a.pos, WarningKind::XenOnlyKey(a.key.clone()));
                }
                def.extra.insert(a.key.clone(), v.value.clone());
            }
            _ => {
                b.warn(a.pos, WarningKind::UnknownKey(a.key.clone()));
                def.extra.insert(a.key.clone(), v.value.clone());
            }
        }
    }
    if !have_name {
        return Err(b.err(end_of(text), Problem::MissingKey("name")));
    }
    Ok(Parsed {
        def,
        warnings: b.warnings,
    })
}

fn end_of(text: &str) -> Pos {
    let lines = text.split('\n').count();
    let last = text.rsplit('\n').next().unwrap_or("");
    Pos {
        line: u32::try_from(lines).unwrap_or(u32::MAX),
        col: u32::try_from(last.chars().count() + 1).unwrap_or(u32::MAX),
    }
}

/// Whether a guest name can name files and QEMU processes: letters, digits, `.`, `-`,
/// `_`, `+`, `@`, `:` excluded (it separates `path` entries), not starting with `.`.
pub fn name_is_usable(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+' | '@'))
}

fn uuid_is_valid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| c.is_ascii_hexdigit()))
}

fn mac_is_valid(s: &str) -> bool {
    let octets: Vec<&str> = s.split(':').collect();
    octets.len() == 6
        && octets
            .iter()
            .all(|o| o.len() == 2 && o.chars().all(|c| c.is_ascii_hexdigit()))
}

/// `PREFIX:PATH,TARGET,MODE`, e.g. `tap:aio:/images/vm1.img,xvda,w`.
fn parse_disk(entry: &str) -> Result<Disk, &'static str> {
    let parts: Vec<&str> = entry.split(',').map(str::trim).collect();
    let [spec, target, mode] = parts[..] else {
        return Err("expected PREFIX:PATH,TARGET,MODE (three comma-separated fields)");
    };
    let (backend, format, path) = split_disk_prefix(spec)?;
    let mut target = target.strip_prefix("ioemu:").unwrap_or(target);
    let mut cdrom = false;
    if let Some(t) = target.strip_suffix(":cdrom") {
        target = t;
        cdrom = true;
    } else if let Some(t) = target.strip_suffix(":disk") {
        target = t;
    }
    if target.is_empty() || !target.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err("the target must be a device name like xvda, hda or vda");
    }
    let mode = match mode {
        "w" | "rw" => DiskMode::ReadWrite,
        "r" | "ro" => DiskMode::ReadOnly,
        "w!" => DiskMode::SharedWrite,
        _ => return Err("the mode must be w, r or w!"),
    };
    let path = if backend == DiskBackend::Phy && !path.is_empty() && !path.starts_with('/') {
        // xm reads `phy:sdb` as /dev/sdb.
        PathBuf::from(format!("/dev/{path}"))
    } else {
        PathBuf::from(path)
    };
    if path.as_os_str().is_empty() && !cdrom {
        return Err("the path is empty (only a :cdrom drive may be empty)");
    }
    if !path.as_os_str().is_empty() && !path.is_absolute() {
        return Err("the path must be absolute");
    }
    Ok(Disk {
        path,
        target: target.to_string(),
        mode,
        format,
        backend,
        cdrom,
    })
}

fn split_disk_prefix(spec: &str) -> Result<(DiskBackend, DiskFormat, &str), &'static str> {
    if let Some(rest) = spec
        .strip_prefix("tap:")
        .or_else(|| spec.strip_prefix("tap2:"))
    {
        // blktap: `tap:DRIVER:PATH`, where DRIVER may itself be `tapdisk:aio`.
        let rest = rest.strip_prefix("tapdisk:").unwrap_or(rest);
        let (driver, path) = rest
            .split_once(':')
            .ok_or("tap: needs a driver, as in tap:aio:/path")?;
        let format = match driver {
            "aio" | "sync" | "ram" => DiskFormat::Raw,
            "qcow" => DiskFormat::Qcow,
            "qcow2" => DiskFormat::Qcow2,
            "vmdk" => DiskFormat::Vmdk,
            _ => return Err("unknown tap driver (aio, sync, qcow, qcow2, vmdk)"),
        };
        return Ok((DiskBackend::Tap, format, path));
    }
    let prefixes = [
        ("file:", DiskBackend::File, DiskFormat::Raw),
        ("phy:", DiskBackend::Phy, DiskFormat::Raw),
        ("raw:", DiskBackend::Plain, DiskFormat::Raw),
        ("qcow2:", DiskBackend::Plain, DiskFormat::Qcow2),
        ("qcow:", DiskBackend::Plain, DiskFormat::Qcow),
        ("vmdk:", DiskBackend::Plain, DiskFormat::Vmdk),
    ];
    for (prefix, backend, format) in prefixes {
        if let Some(path) = spec.strip_prefix(prefix) {
            return Ok((backend, format, path));
        }
    }
    Ok((DiskBackend::Plain, DiskFormat::Raw, spec))
}

/// `mac=...,bridge=...,model=...`; returns the unmapped keys too.
fn parse_vif(entry: &str) -> Result<(Nic, Vec<String>), &'static str> {
    let mut nic = Nic::default();
    let mut unmapped = Vec::new();
    for part in entry.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or("expected key=value pairs separated by commas")?;
        let (k, v) = (k.trim(), v.trim());
        match k {
            "mac" => {
                if !mac_is_valid(v) {
                    return Err("mac must be six hex octets like 00:16:3e:00:01:82");
                }
                nic.mac = Some(v.to_ascii_lowercase());
            }
            "bridge" if v.is_empty() => return Err("bridge is empty"),
            "bridge" => nic.bridge = Some(v.to_string()),
            "model" => nic.model = Some(v.to_string()),
            _ => {
                unmapped.push(k.to_string());
                nic.extra.push((k.to_string(), v.to_string()));
            }
        }
    }
    Ok((nic, unmapped))
}

/// The name of a libvirt domain XML file: the text of its first `<name>` element.
pub(super) fn libvirt_name(file: &str, text: &str) -> Result<Parsed, ParseError> {
    let name = text
        .split_once("<name>")
        .and_then(|(_, rest)| rest.split_once("</name>"))
        .map(|(n, _)| n.trim());
    match name {
        Some(n) if name_is_usable(n) => {
            let mut def = VmDef::new(n);
            def.format = DefFormat::LibvirtXml;
            Ok(Parsed {
                def,
                warnings: Vec::new(),
            })
        }
        Some(n) => Err(ParseError::new(
            file,
            Pos { line: 1, col: 1 },
            Problem::BadName(n.to_string()),
        )),
        None => Err(ParseError::new(
            file,
            end_of(text),
            Problem::MissingKey("name"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::{parse, parse_text};
    use super::*;
    use proptest::prelude::*;

    /// The guest file of the reference deployment, section 8.2.
    const STATION182: &str = r#"name = "station182.example.com"
uuid = "0d64fcd5-9f51-1f53-855e-fb0fb81df160"
maxmem = 280
memory = 280
vcpus = 1
bootloader = "/usr/bin/pygrub"
on_poweroff = "destroy"
on_reboot = "restart"
on_crash = "restart"
vfb = [ "type=vnc,vncunused=1" ]
disk = [ "tap:aio:/var/lib/xen/images/station182.example.com-disk0,xvda,w" ]
vif = [ "mac=00:16:3e:00:01:82,bridge=xenbr1" ]
"#;

    #[test]
    fn the_reference_guest_file_reads_completely_without_warnings() {
        let p = parse(STATION182).unwrap();
        assert_eq!(p.warnings, []);
        let d = p.def;
        assert_eq!(d.name, "station182.example.com");
        assert_eq!(
            d.uuid.as_deref(),
            Some("0d64fcd5-9f51-1f53-855e-fb0fb81df160")
        );
        assert_eq!((d.memory_mib, d.maxmem_mib, d.vcpus), (280, Some(280), 1));
        assert_eq!(d.on_poweroff, Lifecycle::Destroy);
        assert_eq!(d.on_crash, Lifecycle::Restart);
        assert_eq!(
            d.disks,
            [Disk {
                path: "/var/lib/xen/images/station182.example.com-disk0".into(),
                target: "xvda".into(),
                mode: DiskMode::ReadWrite,
                format: DiskFormat::Raw,
                backend: DiskBackend::Tap,
                cdrom: false,
            }]
        );
        assert_eq!(d.nics[0].mac.as_deref(), Some("00:16:3e:00:01:82"));
        assert_eq!(d.nics[0].bridge.as_deref(), Some("xenbr1"));
        assert!(d.extra.contains_key("bootloader") && d.extra.contains_key("vfb"));
    }

    #[test]
    fn disk_prefixes_modes_and_targets_are_understood() {
        let cases = [
            (
                "file:/i/a.img,hda,w",
                DiskBackend::File,
                DiskFormat::Raw,
                "/i/a.img",
            ),
            (
                "phy:sdb1,xvdb,r",
                DiskBackend::Phy,
                DiskFormat::Raw,
                "/dev/sdb1",
            ),
            (
                "tap:qcow2:/i/b,xvdc,w!",
                DiskBackend::Tap,
                DiskFormat::Qcow2,
                "/i/b",
            ),
            (
                "tap:tapdisk:aio:/i/c,xvdd,w",
                DiskBackend::Tap,
                DiskFormat::Raw,
                "/i/c",
            ),
            (
                "qcow2:/i/d.qcow2,vda,w",
                DiskBackend::Plain,
                DiskFormat::Qcow2,
                "/i/d.qcow2",
            ),
            ("/i/e,vdb,ro", DiskBackend::Plain, DiskFormat::Raw, "/i/e"),
        ];
        for (entry, backend, format, path) in cases {
            let d = parse_disk(entry).unwrap();
            assert_eq!((d.backend, d.format), (backend, format), "{entry}");
            assert_eq!(d.path, PathBuf::from(path), "{entry}");
        }
        let cd = parse_disk(",ioemu:hdc:cdrom,r").unwrap();
        assert!(cd.cdrom && cd.path.as_os_str().is_empty());
        assert_eq!((cd.target.as_str(), cd.mode), ("hdc", DiskMode::ReadOnly));
        assert_eq!(
            parse_disk("file:/i/a,xvda,w!").unwrap().mode,
            DiskMode::SharedWrite
        );
    }

    #[test]
    fn bad_disk_and_vif_entries_are_errors_at_the_entry() {
        let text = "name = 'a'\ndisk = [ 'file:/a,xvda,w',\n  'file:/b,xvdb' ]\n";
        let e = parse(text).unwrap_err();
        assert_eq!(e.pos, Pos { line: 3, col: 3 });
        assert!(e.to_string().contains("three comma-separated"), "{e}");
        for bad in [
            "tap:/a,xvda,w",
            "tap:zzz:/a,xvda,w",
            "file:a,xvda,w",
            "/a,,w",
            "/a,xvda,x",
        ] {
            assert!(parse_disk(bad).is_err(), "{bad}");
        }
        let e = parse("name = 'a'\nvif = [ 'mac=00:16:3e:00:01,bridge=br0' ]\n").unwrap_err();
        assert!(e.to_string().starts_with("<input>:2:9: vif entry"), "{e}");
        assert!(parse("name='a'\nvif=['bridge']\n").is_err());
        let e = parse("name='a'\ndisk=['/a,xvda,w','/b,xvda,r']\n").unwrap_err();
        assert_eq!(e.problem, Problem::DuplicateTarget("xvda".into()));
    }

    #[test]
    fn types_ranges_and_required_name_are_checked() {
        let e = parse("name = 'a'\nmemory = 'lots'\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "<input>:2:10: memory must be an integer, found a string"
        );
        let e = parse("name = 'a'\nvcpus = 0\n").unwrap_err();
        assert!(e.to_string().contains("out of range 1..=4096"), "{e}");
        let e = parse("memory = 64\n").unwrap_err();
        assert_eq!(e.to_string(), "<input>:2:1: required key `name` is missing");
        assert!(parse("name = '../etc'\n").is_err());
        assert!(parse("name = 'a'\nuuid = '1234'\n").is_err());
        assert!(parse("name = 'a'\non_crash = 'explode'\n").is_err());
        assert_eq!(parse("name='a'\nmemory='96'\n").unwrap().def.memory_mib, 96);
    }

    #[test]
    fn unknown_and_duplicate_keys_warn_and_are_kept() {
        let p = parse("name = 'a'\nfrobnicate = [1, 2]\nmemory = 64\nmemory = 96\n").unwrap();
        assert_eq!(p.def.memory_mib, 96);
        let kinds: Vec<&WarningKind> = p.warnings.iter().map(|w| &w.kind).collect();
        assert_eq!(
            kinds,
            [
                &WarningKind::UnknownKey("frobnicate".into()),
                &WarningKind::DuplicateKey("memory".into())
            ]
        );
        assert_eq!(
            p.warnings[0].to_string(),
            "<input>:2:1: warning: unknown key `frobnicate` kept but unused"
        );
        assert!(p.def.extra.contains_key("frobnicate"));
    }

    #[test]
    fn the_qemu_format_reads_qemu_keys_and_flags_xen_only_keys() {
        let text = "name = 'q1'\nmachine = 'q35'\ncpu = 'max'\n\
                    qemu_args = ['-device', 'virtio-rng-pci']\nbootloader = '/usr/bin/pygrub'\n";
        let p = parse_text("q1.qemu", text, DefFormat::Qemu).unwrap();
        assert_eq!(p.def.format, DefFormat::Qemu);
        assert_eq!(p.def.machine.as_deref(), Some("q35"));
        assert_eq!(p.def.qemu_args, ["-device", "virtio-rng-pci"]);
        assert_eq!(
            p.warnings[0].kind,
            WarningKind::XenOnlyKey("bootloader".into())
        );
    }

    #[test]
    fn a_libvirt_file_yields_its_domain_name() {
        let p = parse_text(
            "v.xml",
            "<domain type='kvm'>\n  <name>v1</name>\n</domain>\n",
            DefFormat::LibvirtXml,
        )
        .unwrap();
        assert_eq!(
            (p.def.name.as_str(), p.def.format),
            ("v1", DefFormat::LibvirtXml)
        );
        assert!(parse_text("v.xml", "<domain/>", DefFormat::LibvirtXml).is_err());
    }

    proptest! {
        #[test]
        fn parsing_arbitrary_text_never_panics(text in ".{0,400}") {
            let _ = parse(&text);
            let _ = parse_text("f.qemu", &text, DefFormat::Qemu);
        }

        #[test]
        fn parsing_xm_shaped_noise_never_panics(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("name"), Just("disk"), Just("vif"), Just("memory"), Just(" = "),
                    Just("["), Just("]"), Just("("), Just(")"), Just(","), Just("\n"),
                    Just("'tap:aio:/a,xvda,w'"), Just("\"mac=00:16:3e:00:00:01\""), Just("#c"),
                    Just("-"), Just("12"), Just("0x"), Just("'"), Just("\\"), Just(";"),
                    Just("\"x\""), Just("True"),
                ],
                0..60,
            )
        ) {
            let text: String = parts.concat();
            if let Err(e) = parse(&text) {
                // Every error names a position inside the text (or just past its end).
                let lines = u32::try_from(text.split('\n').count()).unwrap_or(u32::MAX);
                prop_assert!(e.pos.line >= 1 && e.pos.line <= lines, "{e}");
            }
        }

        #[test]
        fn a_generated_definition_reads_back_its_values(
            memory in 1u32..65536, vcpus in 1u32..64, n in 0usize..4,
            name in "[a-z][a-z0-9.-]{0,20}",
        ) {
            let disks: Vec<String> = (0..n).map(|i| format!("'tap:aio:/img/{name}-{i},xvd{},w'", (b'a' + i as u8) as char)).collect();
            let text = format!(
                "name = \"{name}\"\nmemory = {memory}\nvcpus = {vcpus}\ndisk = [\n  {}\n]\n",
                disks.join(",\n  ")
            );
            let p = parse(&text).unwrap();
            prop_assert_eq!(p.def.name, name);
            prop_assert_eq!((p.def.memory_mib, p.def.vcpus, p.def.disks.len()), (memory, vcpus, n));
        }
    }
}
