//! `fenced`: not built yet; see the project's issues. This crate only reserves its place in the workspace.
