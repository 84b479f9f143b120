//! Source positions and the diagnostics the parser and validator report.

use std::fmt;
use std::io;

/// A 1-based line and column (in characters) in the source file.
///
/// `Pos::default()` (0:0) marks a model that was built in code, not read from a file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    /// Line, counting from 1.
    pub line: u32,
    /// Column in characters, counting from 1.
    pub col: u32,
}

impl Pos {
    /// The position `line:col`.
    pub fn new(line: u32, col: u32) -> Pos {
        Pos { line, col }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.col)
    }
}

/// Where an element and each of its attributes appeared in the source.
///
/// Every `Origin` compares equal to every other one, so that two models compare by
/// content alone: `parse(to_xml(c)) == c` holds although the positions differ.
#[derive(Clone, Debug, Default)]
pub struct Origin {
    element: Pos,
    attrs: Vec<(String, Pos)>,
}

impl Origin {
    /// An origin for an element at `element`, with no attribute positions yet.
    pub(crate) fn at(element: Pos) -> Origin {
        Origin {
            element,
            attrs: Vec::new(),
        }
    }

    /// Records the position of attribute `name`.
    pub(crate) fn set_attr(&mut self, name: &str, pos: Pos) {
        self.attrs.push((name.to_string(), pos));
    }

    /// Position of the element's start tag (`<`).
    pub fn element(&self) -> Pos {
        self.element
    }

    /// Position of attribute `name`, or of the element when the attribute is absent.
    pub fn attr(&self, name: &str) -> Pos {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map_or(self.element, |(_, p)| *p)
    }
}

impl PartialEq for Origin {
    fn eq(&self, _other: &Origin) -> bool {
        true
    }
}

impl Eq for Origin {}

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The file is rejected.
    Error,
    /// The file is accepted; the message explains a consequence or an ignored part.
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem found in a configuration file, at a position, in a plain sentence.
///
/// Displays as `FILE:LINE:COL: error: message` (or `warning:`), the format compilers use,
/// so editors and scripts can jump to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file name as given to [`parse`](super::parse) or [`load`](super::load).
    pub file: String,
    /// Line, 1-based (0 for a model built in code).
    pub line: u32,
    /// Column in characters, 1-based (0 for a model built in code).
    pub col: u32,
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong and, where it helps, what follows from it.
    pub message: String,
}

impl Diagnostic {
    /// The position as a [`Pos`].
    pub fn pos(&self) -> Pos {
        Pos::new(self.line, self.col)
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}: {}",
            self.file, self.line, self.col, self.severity, self.message
        )
    }
}

/// Why a configuration was rejected: at least one error, plus the warnings found so far,
/// in source order. The configuration itself is discarded.
#[derive(Debug)]
pub struct Diagnostics {
    items: Vec<Diagnostic>,
    io: Option<io::Error>,
}

impl Diagnostics {
    /// Every diagnostic, errors and warnings, ordered by position.
    pub fn all(&self) -> &[Diagnostic] {
        &self.items
    }

    /// The errors, ordered by position. Never empty.
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items.iter().filter(|d| d.severity == Severity::Error)
    }

    /// The warnings, ordered by position.
    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.items
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }

    /// The first error in source order.
    pub fn first_error(&self) -> &Diagnostic {
        // `Report::finish` and `Diagnostics::io` only build a value holding an error.
        self.errors().next().unwrap_or(&self.items[0])
    }

    /// A rejection because the file could not be read at all.
    pub(crate) fn io(file: &str, message: String, source: io::Error) -> Diagnostics {
        let d = Diagnostic {
            file: file.to_string(),
            line: 1,
            col: 1,
            severity: Severity::Error,
            message,
        };
        Diagnostics {
            items: vec![d],
            io: Some(source),
        }
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostics {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.io
            .as_ref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Collects diagnostics for one file while it is parsed and validated.
///
/// At most one error is kept per position: the first one. A malformed or missing value is
/// reported where it is, and the rules that then see its placeholder (an empty name, node id
/// 0) point at the same place, so their follow-on errors are dropped.
#[derive(Debug)]
pub(crate) struct Report {
    file: String,
    items: Vec<Diagnostic>,
    /// Where a rule about an element absent from the file points (the root element), so
    /// that a diagnostic read from a file always names a line and column inside it.
    fallback: Pos,
}

impl Report {
    pub(crate) fn new(file: &str) -> Report {
        Report {
            file: file.to_string(),
            items: Vec::new(),
            fallback: Pos::default(),
        }
    }

    /// Diagnostics about elements the file does not contain point at `pos` from now on.
    pub(crate) fn set_fallback(&mut self, pos: Pos) {
        self.fallback = pos;
    }

    pub(crate) fn error(&mut self, pos: Pos, message: impl Into<String>) {
        let pos = self.placed(pos);
        let taken = self
            .items
            .iter()
            .any(|d| d.severity == Severity::Error && d.pos() == pos);
        if !taken {
            self.push(pos, Severity::Error, message.into());
        }
    }

    pub(crate) fn warn(&mut self, pos: Pos, message: impl Into<String>) {
        self.push(pos, Severity::Warning, message.into());
    }

    fn placed(&self, pos: Pos) -> Pos {
        if pos == Pos::default() {
            self.fallback
        } else {
            pos
        }
    }

    fn push(&mut self, pos: Pos, severity: Severity, message: String) {
        let pos = self.placed(pos);
        self.items.push(Diagnostic {
            file: self.file.clone(),
            line: pos.line,
            col: pos.col,
            severity,
            message,
        });
    }

    /// Everything reported, ordered by position (stable: same-position items keep report order).
    pub(crate) fn into_sorted(mut self) -> Vec<Diagnostic> {
        self.items.sort_by_key(|d| d.pos());
        self.items
    }

    /// Everything reported, as a rejection; `why` is added at 1:1 if no error was reported.
    pub(crate) fn reject(mut self, why: &str) -> Diagnostics {
        if !self.items.iter().any(|d| d.severity == Severity::Error) {
            self.error(Pos::new(1, 1), why);
        }
        Diagnostics {
            items: self.into_sorted(),
            io: None,
        }
    }

    /// `Ok(warnings)` when no error was reported, else the whole list.
    pub(crate) fn finish(self) -> Result<Vec<Diagnostic>, Diagnostics> {
        let items = self.into_sorted();
        if items.iter().any(|d| d.severity == Severity::Error) {
            Err(Diagnostics { items, io: None })
        } else {
            Ok(items)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostic_displays_as_file_line_col_severity_message() {
        let d = Diagnostic {
            file: "cluster.conf".into(),
            line: 51,
            col: 14,
            severity: Severity::Error,
            message: "bad".into(),
        };
        assert_eq!(d.to_string(), "cluster.conf:51:14: error: bad");
        let w = Diagnostic {
            severity: Severity::Warning,
            ..d
        };
        assert_eq!(w.to_string(), "cluster.conf:51:14: warning: bad");
    }

    #[test]
    fn origins_always_compare_equal_but_keep_positions() {
        let mut a = Origin::at(Pos::new(3, 5));
        a.set_attr("nodeid", Pos::new(3, 30));
        let b = Origin::default();
        assert_eq!(a, b);
        assert_eq!(a.attr("nodeid"), Pos::new(3, 30));
        assert_eq!(
            a.attr("votes"),
            Pos::new(3, 5),
            "absent attribute falls back to the element"
        );
    }

    #[test]
    fn report_keeps_only_the_first_error_per_position_and_sorts() {
        let mut r = Report::new("f");
        r.error(Pos::new(4, 1), "second line");
        r.error(Pos::new(2, 7), "first");
        r.error(Pos::new(2, 7), "follow-on");
        r.warn(Pos::new(2, 7), "a warning may share the place");
        let all = r.finish().unwrap_err();
        let msgs: Vec<&str> = all.all().iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            msgs,
            ["first", "a warning may share the place", "second line"]
        );
        assert_eq!(all.first_error().message, "first");
        assert_eq!(all.errors().count(), 2);
        assert_eq!(all.warnings().count(), 1);
    }

    #[test]
    fn report_with_only_warnings_is_accepted() {
        let mut r = Report::new("f");
        r.warn(Pos::new(1, 1), "w");
        assert_eq!(r.finish().unwrap().len(), 1);
    }

    #[test]
    fn io_rejection_exposes_its_source() {
        use std::error::Error;
        let e = Diagnostics::io("x.conf", "cannot read".into(), io::Error::other("boom"));
        assert!(e.source().is_some());
        assert_eq!(e.to_string(), "x.conf:1:1: error: cannot read");
    }
}
