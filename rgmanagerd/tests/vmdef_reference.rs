//! The definition files in tests/data, read the way the daemon reads them: by vm name
//! from the vm resource's `path`, then mapped onto a QEMU command line.

use std::path::{Path, PathBuf};

use rgmanagerd::driver::qemu::args::{command_line, ArgOptions, HostFacts, MappingNote, VmPaths};
use rgmanagerd::vmdef::{self, DefError, DefFormat};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

#[test]
fn the_reference_deployments_guest_file_is_found_by_name_and_maps_onto_qemu() {
    let path = format!("/etc/xen:{}", data().display());
    let parsed = vmdef::load_for_vm("station182.example.com", &path).unwrap();
    assert_eq!(parsed.warnings, []);
    let def = parsed.def;
    assert_eq!(def.format, DefFormat::Xm);
    let paths = VmPaths::new(Path::new("/run/cluster/vms"), &def.name);
    let cmd = command_line(
        &def,
        &paths,
        &ArgOptions::default(),
        &HostFacts::default(),
        None,
    );
    let line = cmd.args.join(" ");
    assert!(line.contains("-m 280M -smp 1"), "{line}");
    assert!(
        line.contains(
            "-drive file=/var/lib/xen/images/station182.example.com-disk0,format=raw,\
             if=virtio,media=disk,cache=none"
        ),
        "{line}"
    );
    assert!(line.contains("-nic none"), "{line}");
    let notes: Vec<String> = cmd.notes.iter().map(ToString::to_string).collect();
    assert_eq!(
        notes,
        [
            "vif mac=00:16:3e:00:01:82 bridge=xenbr1: no such bridge here, the nic is left out",
            "`bootloader` has no qemu equivalent and is unused",
            "`vfb` has no qemu equivalent and is unused",
        ]
    );
}

#[test]
fn a_list_missing_its_bracket_is_reported_at_the_next_key() {
    let e = vmdef::load_for_vm("broken", &data().display().to_string()).unwrap_err();
    let DefError::Parse(p) = &e else {
        panic!("{e}")
    };
    assert_eq!((p.pos.line, p.pos.col), (6, 1), "{e}");
    assert!(
        e.to_string()
            .ends_with("broken.cfg:6:1: expected `,` or a closing bracket, found name `vif`"),
        "{e}"
    );
}

#[test]
fn the_plain_qemu_format_reads_and_maps() {
    let parsed = vmdef::load_for_vm("q1", &data().display().to_string()).unwrap();
    assert_eq!(parsed.warnings, []);
    let def = parsed.def;
    assert_eq!(def.format, DefFormat::Qemu);
    let facts = HostFacts {
        bridges: ["br0".to_string()].into(),
    };
    let paths = VmPaths::new(Path::new("/run/cluster/vms"), &def.name);
    let cmd = command_line(&def, &paths, &ArgOptions::default(), &facts, None);
    let line = cmd.args.join(" ");
    for want in [
        "-machine q35,accel=kvm:tcg",
        "-cpu max",
        "-smp 2",
        "-drive file=/images/q1.qcow2,format=qcow2,if=virtio,media=disk,cache=none",
        "-drive file=/images/seed.iso,format=raw,if=ide,index=2,media=cdrom,cache=none,readonly=on",
        "-nic bridge,br=br0,model=virtio-net-pci,mac=52:54:00:12:34:56",
        "-no-reboot",
    ] {
        assert!(line.contains(want), "{want} not in {line}");
    }
    assert!(line.ends_with("-device virtio-rng-pci"), "{line}");
    assert_eq!(cmd.notes, Vec::<MappingNote>::new());
}
