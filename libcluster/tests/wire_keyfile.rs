//! Key files on disk: permissions, sizes, atomic writes. Each test works in its own
//! directory under the system temp dir and removes it afterwards.

use libcluster::wire::{write_key_file, ClusterKey, KeyError, KEY_LEN_MAX};
use std::error::Error as _;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// A fresh directory, removed on drop (also when the test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "libcluster-wire-keyfile-{}-{test}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, bytes).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn key_file_with_mode_0600_is_accepted_whole() {
    let dir = TempDir::new("accept");
    let bytes: Vec<u8> = (0..=255u8).collect();
    let path = dir.file("authkey", &bytes, 0o600);
    let key = ClusterKey::load(&path).unwrap();
    assert_eq!(key.as_bytes(), &bytes[..]);
}

#[test]
fn group_permissions_are_allowed() {
    let dir = TempDir::new("group");
    let path = dir.file("authkey", b"0123456789abcdef", 0o640);
    assert!(ClusterKey::load(&path).is_ok());
}

#[test]
fn any_permission_for_other_users_is_refused_with_the_fix() {
    let dir = TempDir::new("world");
    for mode in [0o644, 0o604, 0o602, 0o601, 0o607] {
        let path = dir.file("authkey", b"0123456789abcdef", mode);
        match ClusterKey::load(&path) {
            Err(e @ KeyError::WorldReadable { .. }) => {
                let text = e.to_string();
                assert!(text.contains(&format!("{mode:04o}")), "{text}");
                assert!(
                    text.contains(&format!("chmod 600 {}", path.display())),
                    "{text}"
                );
            }
            other => panic!("mode {mode:o}: {other:?}"),
        }
    }
}

#[test]
fn short_key_file_is_refused_naming_the_file() {
    let dir = TempDir::new("short");
    let path = dir.file("authkey", b"tooshort", 0o600);
    match ClusterKey::load(&path) {
        Err(e @ KeyError::TooShort { .. }) => {
            assert!(matches!(&e, KeyError::TooShort { path: Some(p), len: 8 } if *p == path));
            assert!(e.to_string().contains(&path.display().to_string()));
        }
        other => panic!("{other:?}"),
    }
    let empty = dir.file("empty", b"", 0o600);
    assert!(matches!(
        ClusterKey::load(&empty),
        Err(KeyError::TooShort { len: 0, .. })
    ));
}

#[test]
fn oversized_key_file_is_refused() {
    let dir = TempDir::new("long");
    let path = dir.file("authkey", &vec![7u8; KEY_LEN_MAX + 100], 0o600);
    assert!(matches!(
        ClusterKey::load(&path),
        Err(KeyError::TooLong { path: Some(_), .. })
    ));
    let path = dir.file("exact", &vec![7u8; KEY_LEN_MAX], 0o600);
    assert!(ClusterKey::load(&path).is_ok());
}

#[test]
fn missing_key_file_is_not_found() {
    let dir = TempDir::new("missing");
    let path = dir.0.join("nope");
    match ClusterKey::load(&path) {
        Err(e @ KeyError::NotFound { .. }) => {
            assert_eq!(
                e.to_string(),
                format!("key file {} does not exist", path.display())
            )
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn directory_as_key_file_is_an_io_error_with_source() {
    let dir = TempDir::new("isdir");
    match ClusterKey::load(&dir.0) {
        Err(e @ KeyError::Io { .. }) => assert!(e.source().is_some()),
        // A directory's mode (0755 from create_dir_all) already gives others access.
        Err(KeyError::WorldReadable { .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn loaded_key_debug_hides_the_bytes() {
    let dir = TempDir::new("debug");
    let path = dir.file("authkey", b"VERY-SECRET-BYTES", 0o600);
    let key = ClusterKey::load(&path).unwrap();
    let shown = format!("{key:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(!shown.contains("86, 69"), "{shown}"); // "VE" as a byte list
}

#[test]
fn written_key_file_has_mode_0600_and_loads_back() {
    let dir = TempDir::new("write");
    let path = dir.0.join("authkey");
    let key = ClusterKey::from_bytes(b"a key written by keygen".to_vec()).unwrap();
    write_key_file(&path, &key).unwrap();
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(ClusterKey::load(&path).unwrap(), key);
}

#[test]
fn writing_replaces_an_existing_key_and_leaves_no_temporary() {
    let dir = TempDir::new("replace");
    let path = dir.file("authkey", b"old key old key old key", 0o644);
    let key = ClusterKey::from_bytes(b"new key new key new key".to_vec()).unwrap();
    write_key_file(&path, &key).unwrap();
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(fs::read(&path).unwrap(), key.as_bytes());
    let names: Vec<_> = fs::read_dir(&dir.0)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("authkey")]);
}

#[test]
fn writing_into_a_missing_directory_is_an_io_error_naming_the_file() {
    let dir = TempDir::new("nodir");
    let path = dir.0.join("missing/authkey");
    let key = ClusterKey::from_bytes(vec![1; 32]).unwrap();
    match write_key_file(&path, &key) {
        Err(e @ KeyError::Io { .. }) => {
            assert!(e
                .to_string()
                .starts_with(&format!("key file {}: ", path.display())));
            assert!(e.source().is_some());
        }
        other => panic!("{other:?}"),
    }
}
