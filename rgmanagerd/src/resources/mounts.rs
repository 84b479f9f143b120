//! The mount table (`/proc/self/mounts`) and device identity, for the `fs` agent.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

/// One line of the mount table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct MountEntry {
    /// What is mounted (a device path, `tmpfs`, `server:/export`...).
    pub source: String,
    /// Where.
    pub target: PathBuf,
    /// File system type.
    pub fstype: String,
    /// Mount options.
    pub options: String,
}

impl MountEntry {
    /// Mounted read-only.
    pub fn read_only(&self) -> bool {
        self.options.split(',').any(|o| o == "ro")
    }
}

/// Parses the mount table; malformed lines are skipped (the kernel writes it, but it is
/// text and we never want to panic on it).
pub(crate) fn parse_mounts(text: &str) -> Vec<MountEntry> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split(' ');
            let (source, target, fstype, options) = (f.next()?, f.next()?, f.next()?, f.next()?);
            if source.is_empty() || target.is_empty() {
                return None;
            }
            Some(MountEntry {
                source: unescape(source),
                target: PathBuf::from(unescape(target)),
                fstype: unescape(fstype),
                options: unescape(options),
            })
        })
        .collect()
}

/// Undoes the kernel's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134`
/// backslash); anything else is kept as written.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                let v = d.iter().fold(0u32, |v, c| v * 8 + u32::from(c - b'0'));
                match u8::try_from(v) {
                    Ok(byte) => out.push(byte),
                    Err(_) => out.extend_from_slice(&b[i..i + 4]),
                }
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Reads `/proc/self/mounts`.
pub(crate) fn read_mounts() -> std::io::Result<Vec<MountEntry>> {
    std::fs::read_to_string("/proc/self/mounts").map(|t| parse_mounts(&t))
}

/// The mount on top at `target` (the last entry for it: later mounts cover earlier ones).
pub(crate) fn top_mount<'m>(mounts: &'m [MountEntry], target: &Path) -> Option<&'m MountEntry> {
    mounts.iter().rev().find(|m| m.target == target)
}

/// How the mount table will name a mountpoint: symlinks resolved when it exists, else the
/// path with `.`, `//` and trailing slashes removed.
pub(crate) fn canonical_mountpoint(mountpoint: &Path) -> PathBuf {
    std::fs::canonicalize(mountpoint).unwrap_or_else(|_| {
        mountpoint
            .components()
            .filter(|c| *c != Component::CurDir)
            .collect()
    })
}

/// The device number of a block device named by path, `LABEL=` or `UUID=`; `None` when the
/// name is not a block device here (tmpfs, NFS, an image file), and then only the mountpoint
/// can identify the mount.
pub(crate) fn block_device(name: &str) -> Option<u64> {
    let path = if let Some(label) = name.strip_prefix("LABEL=") {
        Path::new("/dev/disk/by-label").join(label)
    } else if let Some(uuid) = name.strip_prefix("UUID=") {
        Path::new("/dev/disk/by-uuid").join(uuid.to_ascii_lowercase())
    } else if name.starts_with('/') {
        PathBuf::from(name)
    } else {
        return None;
    };
    let meta = std::fs::metadata(path).ok()?;
    meta.file_type().is_block_device().then(|| meta.rdev())
}

/// Whether `entry` is the mount of the configured device. A configured block device must
/// match the mounted one; any other device name matches on the mountpoint alone.
pub(crate) fn same_device(configured: Option<u64>, entry: &MountEntry) -> bool {
    match configured {
        None => true,
        Some(dev) => block_device(&entry.source) == Some(dev),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mount_lines_parse_with_octal_escapes() {
        let t = "proc /proc proc rw,nosuid 0 0\n\
                 /dev/sdb1 /srv/my\\040data ext4 ro,relatime 0 0\n\
                 garbage\n\
                 tmpfs /srv/a\\134b tmpfs rw 0 0\n";
        let m = parse_mounts(t);
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].target, PathBuf::from("/srv/my data"));
        assert!(m[1].read_only());
        assert!(!m[0].read_only());
        assert_eq!(m[2].target, PathBuf::from("/srv/a\\b"));
    }

    #[test]
    fn the_last_mount_at_a_target_is_on_top() {
        let m =
            parse_mounts("/dev/a /x ext4 rw 0 0\ntmpfs /x tmpfs rw 0 0\n/dev/b /y ext4 rw 0 0\n");
        assert_eq!(top_mount(&m, Path::new("/x")).unwrap().source, "tmpfs");
        assert!(top_mount(&m, Path::new("/z")).is_none());
    }

    #[test]
    fn unescape_keeps_what_is_not_an_escape() {
        assert_eq!(unescape("a\\0b"), "a\\0b");
        assert_eq!(unescape("a\\777"), "a\\777", "out of byte range");
        assert_eq!(unescape("\\011x\\"), "\tx\\");
        assert_eq!(
            canonical_mountpoint(Path::new("/nonexistent/rgm/./mnt/")),
            PathBuf::from("/nonexistent/rgm/mnt")
        );
    }

    #[test]
    fn only_block_devices_identify_a_mount() {
        assert_eq!(block_device("tmpfs"), None);
        assert_eq!(block_device("/etc/hostname"), None, "a regular file");
        assert_eq!(block_device("server:/export"), None);
        let entry = &parse_mounts("tmpfs /x tmpfs rw 0 0")[0];
        assert!(same_device(None, entry));
        assert!(!same_device(Some(0x801), entry));
    }

    proptest! {
        #[test]
        fn mount_parsing_never_panics(text in "(.|\n){0,300}", field in "[\\\\0-9a-z]{0,20}") {
            let _ = parse_mounts(&text);
            let _ = unescape(&field);
        }
    }
}
