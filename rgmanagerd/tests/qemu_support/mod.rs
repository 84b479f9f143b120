//! Shared by the real-QEMU tests: a lab directory with guest files and disk images, and
//! a guard that kills every QEMU started under it (by PID) even when a test fails.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rgmanagerd::driver::qemu::{QemuDriver, QemuOptions};
use rgmanagerd::vmdef::{self, VmDef};

/// Whether QEMU is here. Absent: a failure when CI=true, else a skip with the reason.
pub fn qemu_present(test: &str) -> bool {
    let ok = Command::new("qemu-system-x86_64")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{test}: qemu-system-x86_64 is required in CI");
        }
        eprintln!("{test}: skipped: qemu-system-x86_64 is not installed");
    }
    ok
}

/// A directory for one test; dropping it kills its QEMUs and removes it.
pub struct Lab {
    pub dir: PathBuf,
}

impl Lab {
    pub fn new(tag: &str) -> Lab {
        // Short paths: QMP socket paths must fit a unix socket address.
        let dir = std::env::temp_dir().join(format!("rgq-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("defs")).unwrap();
        Lab { dir }
    }

    /// A driver keeping its VMs under `lab/NODE` (one per simulated host).
    pub fn driver(&self, node: &str) -> QemuDriver {
        self.driver_with(node, QemuOptions::default())
    }

    /// A driver with options of the test's choosing (the quit timeout stays generous).
    pub fn driver_with(&self, node: &str, opts: QemuOptions) -> QemuDriver {
        let opts = QemuOptions {
            quit_timeout: Duration::from_secs(10),
            ..opts
        };
        QemuDriver::new(self.dir.join(node), opts).unwrap()
    }

    /// Writes the xm-style lab guest `name` with a 1 MiB raw disk, and loads it the way
    /// the daemon will: by name from the vm's `path`.
    pub fn guest(&self, name: &str) -> VmDef {
        let disk = self.dir.join(format!("{name}.img"));
        let f = std::fs::File::create(&disk).unwrap();
        f.set_len(1 << 20).unwrap();
        let text = include_str!("../data/labvm.cfg")
            .replace("@NAME@", name)
            .replace("@DISK@", &disk.display().to_string());
        std::fs::write(self.dir.join("defs").join(format!("{name}.cfg")), text).unwrap();
        let path = format!("/nonexistent:{}", self.dir.join("defs").display());
        let parsed = vmdef::load_for_vm(name, &path).unwrap();
        for w in &parsed.warnings {
            eprintln!("{w}");
        }
        parsed.def
    }
}

/// The PIDs of QEMUs whose pidfiles lie under `dir` and whose command line names `dir`.
pub fn qemu_pids_under(dir: &Path) -> Vec<i32> {
    let mut pids = Vec::new();
    let Ok(nodes) = std::fs::read_dir(dir) else {
        return pids;
    };
    for node in nodes.flatten() {
        let Ok(vms) = std::fs::read_dir(node.path()) else {
            continue;
        };
        for vm in vms.flatten() {
            let Ok(text) = std::fs::read_to_string(vm.path().join("qemu.pid")) else {
                continue;
            };
            let Ok(pid) = text.trim().parse::<i32>() else {
                continue;
            };
            if pid > 1 && process_alive_with(pid, dir) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// Whether `pid` lives (not a zombie) with `marker` in its command line.
pub fn process_alive_with(pid: i32, marker: &Path) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, r)| r.trim_start().chars().next());
    if matches!(state, None | Some('Z' | 'X')) {
        return false;
    }
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let m = marker.as_os_str().as_encoded_bytes();
    cmdline.windows(m.len()).any(|w| w == m)
}

impl Drop for Lab {
    fn drop(&mut self) {
        for pid in qemu_pids_under(&self.dir) {
            eprintln!("cleanup: killing leftover qemu {pid}");
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
