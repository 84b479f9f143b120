//! Finding a vm's definition in its `path` directories, as rgmanager's vm.sh does.

use std::path::{Path, PathBuf};

use super::{format_of, load, DefError, DefFormat, Parsed};

/// A definition file found for a vm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The file.
    pub path: PathBuf,
    /// Its format, from the name.
    pub format: DefFormat,
}

/// File names tried in each directory, in order.
fn candidates(name: &str) -> [String; 4] {
    [
        name.to_string(),
        format!("{name}.cfg"),
        format!("{name}.qemu"),
        format!("{name}.xml"),
    ]
}

/// Looks for `NAME`, `NAME.cfg`, `NAME.qemu`, then `NAME.xml` in each `:`-separated
/// directory of `path`, in order; the first regular file found wins. vm.sh searched
/// `NAME` and `NAME.xml`; the `.cfg` and `.qemu` names are ours.
pub fn find(name: &str, path: &str) -> Result<Found, DefError> {
    let dirs: Vec<PathBuf> = path
        .split(':')
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .collect();
    // A name with a slash would escape the directory.
    if !name.contains('/') && !name.is_empty() {
        for dir in &dirs {
            for file in candidates(name) {
                let candidate = dir.join(file);
                if candidate.is_file() {
                    let format = format_of(&candidate);
                    return Ok(Found {
                        path: candidate,
                        format,
                    });
                }
            }
        }
    }
    Err(DefError::NotFound {
        name: name.to_string(),
        dirs,
    })
}

/// Finds and loads vm `name`'s definition from `path`; the file must define that name.
pub fn load_for_vm(name: &str, path: &str) -> Result<Parsed, DefError> {
    let found = find(name, path)?;
    let parsed = load(&found.path)?;
    if parsed.def.name != name {
        return Err(DefError::NameMismatch {
            path: found.path,
            expected: name.to_string(),
            found: parsed.def.name,
        });
    }
    Ok(parsed)
}

/// Whether `dir` holds a definition for `name` (used by tests and diagnostics).
pub fn exists_in(dir: &Path, name: &str) -> bool {
    candidates(name).iter().any(|f| dir.join(f).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vmdef-lookup-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn lookup_follows_path_order_then_name_order() {
        let base = tempdir("order");
        let (a, b) = (base.join("a"), base.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("vm1"), "name = 'vm1'\n").unwrap();
        std::fs::write(a.join("vm1.qemu"), "name = 'vm1'\n").unwrap();
        std::fs::write(a.join("vm1.xml"), "<name>vm1</name>").unwrap();
        let path = format!("{}::{}", a.display(), b.display());
        let found = find("vm1", &path).unwrap();
        assert_eq!(found.path, a.join("vm1.qemu"));
        assert_eq!(found.format, DefFormat::Qemu);
        assert!(exists_in(&b, "vm1") && !exists_in(&b, "vm2"));
        let parsed = load_for_vm("vm1", &path).unwrap();
        assert_eq!(
            parsed.def.source.as_deref(),
            Some(a.join("vm1.qemu").as_path())
        );
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn a_missing_definition_names_every_directory_searched() {
        let e = find("ghost", "/nonexistent/one:/nonexistent/two").unwrap_err();
        assert_eq!(
            e.to_string(),
            "no definition for vm \"ghost\" (ghost, ghost.cfg, ghost.qemu or ghost.xml) in \
             path \"/nonexistent/one:/nonexistent/two\""
        );
        assert!(find("../etc/passwd", "/").is_err());
    }

    #[test]
    fn a_file_defining_another_guest_is_rejected() {
        let dir = tempdir("mismatch");
        std::fs::write(dir.join("vm1.cfg"), "name = 'vm2'\n").unwrap();
        let e = load_for_vm("vm1", &dir.display().to_string()).unwrap_err();
        assert!(matches!(e, DefError::NameMismatch { .. }), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
