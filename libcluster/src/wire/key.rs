//! The cluster key: the secret every node holds, read from a key file.
//!
//! A key file holds raw bytes, used whole as the HMAC-SHA-256 key (like cman's `keyfile`,
//! any content works). Files are refused when other users may read them, and written with
//! mode 0600 by an atomic rename. These are the only file operations in libcluster; the
//! protocol cores never touch files.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// The shortest key accepted, in bytes.
pub const KEY_LEN_MIN: usize = 16;
/// The longest key accepted, in bytes (the size of `dd bs=4k count=1`).
pub const KEY_LEN_MAX: usize = 4096;
/// The size of keys made by [`ClusterKey::generate`]: HMAC-SHA-256's 64-byte block. HMAC uses
/// a key up to one block as it is and hashes a longer one down to 32 bytes, so more random
/// bytes add nothing.
pub const KEY_LEN_GENERATED: usize = 64;

/// The shared secret that authenticates every frame of the cluster.
///
/// Debug shows the length only, never the bytes. Equality is compared in constant time.
#[derive(Clone)]
pub struct ClusterKey {
    bytes: Vec<u8>,
    /// HMAC state already keyed, cloned per frame so a long key is not rehashed every time.
    mac: Hmac<Sha256>,
}

impl ClusterKey {
    /// A key from raw bytes: [`KEY_LEN_MIN`]`..=`[`KEY_LEN_MAX`] of them.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<ClusterKey, KeyError> {
        let len = bytes.len();
        if len < KEY_LEN_MIN {
            return Err(KeyError::TooShort { path: None, len });
        }
        if len > KEY_LEN_MAX {
            return Err(KeyError::TooLong { path: None, len });
        }
        // HMAC accepts keys of any length, so this cannot fail; map it anyway rather than panic.
        let mac = Hmac::<Sha256>::new_from_slice(&bytes)
            .map_err(|_| KeyError::TooShort { path: None, len })?;
        Ok(ClusterKey { bytes, mac })
    }

    /// Reads a key file: the whole file is the key.
    ///
    /// Refuses a file whose mode grants any permission to other users (`chmod 600 FILE`
    /// fixes it), a file shorter than [`KEY_LEN_MIN`] or longer than [`KEY_LEN_MAX`] bytes.
    /// The mode is checked on the opened file, so a rename in between cannot swap it.
    pub fn load(path: &Path) -> Result<ClusterKey, KeyError> {
        let io_err = |source: io::Error| {
            if source.kind() == io::ErrorKind::NotFound {
                KeyError::NotFound {
                    path: path.to_path_buf(),
                }
            } else {
                KeyError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        };
        let file = fs::File::open(path).map_err(io_err)?;
        let mode = file.metadata().map_err(io_err)?.mode() & 0o7777;
        if mode & 0o007 != 0 {
            return Err(KeyError::WorldReadable {
                path: path.to_path_buf(),
                mode,
            });
        }
        // Read one byte past the limit so an oversized file (or /dev/zero) is detected
        // without reading all of it.
        let mut bytes = Vec::with_capacity(KEY_LEN_MAX + 1);
        file.take(KEY_LEN_MAX as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(io_err)?;
        ClusterKey::from_bytes(bytes).map_err(|e| e.with_path(path))
    }

    /// A fresh key of [`KEY_LEN_GENERATED`] bytes from `rng`, which must be a
    /// cryptographically secure generator (the operating system's, for `cman_tool keygen`).
    pub fn generate(rng: &mut impl rand::RngCore) -> ClusterKey {
        let mut bytes = vec![0u8; KEY_LEN_GENERATED];
        rng.fill_bytes(&mut bytes);
        match ClusterKey::from_bytes(bytes) {
            Ok(key) => key,
            Err(e) => unreachable!("KEY_LEN_GENERATED is within the key limits: {e}"),
        }
    }

    /// The raw key bytes, e.g. to write them with [`write_key_file`].
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// A keyed HMAC-SHA-256 ready to be fed a frame.
    pub(crate) fn mac(&self) -> Hmac<Sha256> {
        self.mac.clone()
    }
}

impl PartialEq for ClusterKey {
    fn eq(&self, other: &ClusterKey) -> bool {
        // ct_eq on slices of different length is false; the length itself is not secret.
        bool::from(self.bytes.ct_eq(&other.bytes))
    }
}

impl Eq for ClusterKey {}

impl fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ClusterKey({} bytes)", self.bytes.len())
    }
}

impl Drop for ClusterKey {
    fn drop(&mut self) {
        // Best effort: overwrite the key before the allocation is freed. black_box keeps the
        // writes from being optimised away in practice; the keyed HMAC state is not wiped.
        self.bytes.iter_mut().for_each(|b| *b = 0);
        std::hint::black_box(&self.bytes);
    }
}

/// Writes `key` to `path` with mode 0600, atomically.
///
/// The bytes go to a temporary file beside `path` (created exclusively with mode 0600),
/// which is synced and renamed over `path`; the directory is then synced. A reader sees the
/// old file or the new one, never a partial key. An existing key file is replaced; asking
/// before that is the caller's business.
pub fn write_key_file(path: &Path, key: &ClusterKey) -> Result<(), KeyError> {
    crate::files::write_atomic(path, key.as_bytes(), 0o600).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Why a cluster key could not be made, loaded or written. In every case no key is in use
/// yet: the daemon refuses to start (or the tool exits) and nothing was sent.
#[derive(Debug)]
pub enum KeyError {
    /// The key file does not exist. The daemon cannot authenticate traffic and refuses to start.
    NotFound {
        /// The key file looked for.
        path: PathBuf,
    },
    /// Reading or writing the key file failed. No key was loaded or written.
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The key is shorter than [`KEY_LEN_MIN`] bytes. It is not used.
    TooShort {
        /// The key file, when the key came from one.
        path: Option<PathBuf>,
        /// The key's length in bytes.
        len: usize,
    },
    /// The key is longer than [`KEY_LEN_MAX`] bytes. It is not used.
    TooLong {
        /// The key file, when the key came from one.
        path: Option<PathBuf>,
        /// The key's length in bytes (for a file, reading stopped one byte past the limit).
        len: usize,
    },
    /// The key file grants some permission to other users. It is not read.
    WorldReadable {
        /// The key file.
        path: PathBuf,
        /// Its permission bits (`mode & 0o7777`).
        mode: u32,
    },
}

impl KeyError {
    fn with_path(self, p: &Path) -> KeyError {
        match self {
            KeyError::TooShort { path: None, len } => KeyError::TooShort {
                path: Some(p.to_path_buf()),
                len,
            },
            KeyError::TooLong { path: None, len } => KeyError::TooLong {
                path: Some(p.to_path_buf()),
                len,
            },
            other => other,
        }
    }
}

/// "key file /etc/cluster/x" or "cluster key".
struct Subject<'a>(&'a Option<PathBuf>);

impl fmt::Display for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(p) => write!(f, "key file {}", p.display()),
            None => f.write_str("cluster key"),
        }
    }
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::NotFound { path } => write!(f, "key file {} does not exist", path.display()),
            KeyError::Io { path, source } => write!(f, "key file {}: {source}", path.display()),
            KeyError::TooShort { path, len } => write!(
                f,
                "{} is {len} bytes, a cluster key needs at least {KEY_LEN_MIN}",
                Subject(path)
            ),
            KeyError::TooLong { path, .. } => write!(
                f,
                "{} is over the {KEY_LEN_MAX}-byte limit for a cluster key",
                Subject(path)
            ),
            KeyError::WorldReadable { path, mode } => write!(
                f,
                "key file {p} has mode {mode:04o}, which lets other users access it; \
                 run chmod 600 {p}",
                p = path.display()
            ),
        }
    }
}

impl std::error::Error for KeyError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KeyError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_xoshiro::Xoshiro256PlusPlus;

    #[test]
    fn key_length_limits_are_inclusive() {
        assert!(ClusterKey::from_bytes(vec![1; KEY_LEN_MIN]).is_ok());
        assert!(ClusterKey::from_bytes(vec![1; KEY_LEN_MAX]).is_ok());
        assert!(matches!(
            ClusterKey::from_bytes(vec![1; KEY_LEN_MIN - 1]),
            Err(KeyError::TooShort {
                path: None,
                len: 15
            })
        ));
        assert!(matches!(
            ClusterKey::from_bytes(vec![1; KEY_LEN_MAX + 1]),
            Err(KeyError::TooLong {
                path: None,
                len: 4097
            })
        ));
    }

    #[test]
    fn debug_shows_the_length_but_not_the_bytes() {
        let key = ClusterKey::from_bytes(b"SECRETSECRETSECRET".to_vec()).unwrap();
        let shown = format!("{key:?} {key:#?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(!shown.contains("83"), "{shown}"); // 'S' as a decimal byte
        assert!(shown.contains("18 bytes"), "{shown}");
    }

    #[test]
    fn generate_is_deterministic_for_a_seed_and_differs_between_seeds() {
        let a = ClusterKey::generate(&mut Xoshiro256PlusPlus::seed_from_u64(1));
        let b = ClusterKey::generate(&mut Xoshiro256PlusPlus::seed_from_u64(1));
        let c = ClusterKey::generate(&mut Xoshiro256PlusPlus::seed_from_u64(2));
        assert_eq!(a.as_bytes().len(), KEY_LEN_GENERATED);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn error_messages_name_the_file_and_the_fix() {
        let e = KeyError::WorldReadable {
            path: "/etc/cluster/k".into(),
            mode: 0o644,
        };
        assert_eq!(
            e.to_string(),
            "key file /etc/cluster/k has mode 0644, which lets other users access it; \
             run chmod 600 /etc/cluster/k"
        );
        let e = KeyError::TooShort {
            path: Some("/k".into()),
            len: 3,
        };
        assert_eq!(
            e.to_string(),
            "key file /k is 3 bytes, a cluster key needs at least 16"
        );
        let e = KeyError::TooLong {
            path: Some("/k".into()),
            len: 4097,
        };
        assert_eq!(
            e.to_string(),
            "key file /k is over the 4096-byte limit for a cluster key"
        );
    }
}
