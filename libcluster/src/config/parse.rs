//! From text to model: XML well-formedness (roxmltree), then typed attribute reading with a
//! diagnostic for every malformed, missing or unknown piece.
//!
//! The element readers live in [`read`](super::read) and [`read_rm`](super::read_rm); this
//! file holds what they share: positions, attribute access and value parsing.

use roxmltree::{Document, Node, ParsingOptions};

use super::diag::{Origin, Pos, Report};

/// Parses `text` as XML. A malformed document gives one error at the parser's position.
pub(crate) fn xml<'i>(text: &'i str, report: &mut Report) -> Option<Document<'i>> {
    let opts = ParsingOptions {
        allow_dtd: false,
        ..ParsingOptions::default()
    };
    match Document::parse_with_options(text, opts) {
        Ok(doc) => Some(doc),
        Err(e) => {
            let (pos, message) = describe_xml_error(text, &e);
            report.error(pos, message);
            None
        }
    }
}

/// Position of byte offset `byte` in `text`, as roxmltree counts (characters, 1-based).
pub(crate) fn pos_in(text: &str, byte: usize) -> Pos {
    // Errors come without a document, so `Document::text_pos_at` is out of reach here.
    let line = text[..byte.min(text.len())]
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1;
    let start = text[..byte.min(text.len())]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let col = text[start..byte.min(text.len())].chars().count() + 1;
    Pos::new(
        u32::try_from(line).unwrap_or(u32::MAX),
        u32::try_from(col).unwrap_or(u32::MAX),
    )
}

/// A plain sentence for each well-formedness error, and where it is.
fn describe_xml_error(text: &str, e: &roxmltree::Error) -> (Pos, String) {
    use roxmltree::Error as E;
    let at = |p: roxmltree::TextPos| Pos::new(p.row, p.col);
    let end = pos_in(text, text.len());
    let shown = |b: u8| match b {
        b'\n' => "a line break".to_string(),
        b' ' => "a space".to_string(),
        b if b.is_ascii_graphic() => format!("`{}`", b as char),
        b => format!("byte 0x{b:02x}"),
    };
    match e {
        E::UnexpectedCloseTag(expected, actual, p) => (
            at(*p),
            format!("closing tag </{actual}> does not match the open element <{expected}>; expected </{expected}>"),
        ),
        E::InvalidChar(b'>', actual, p) if closing_tag_before(text, *p).is_some() => {
            let name = closing_tag_before(text, *p).unwrap_or_default();
            let msg = format!(
                "malformed closing tag `</{name}`: {} follows the name, but a closing tag is just `</{name}>` \
                 (an empty element is written `<{name}/>`)",
                shown(*actual)
            );
            (at(*p), msg)
        }
        E::InvalidChar(b'"' | b'\'', b'<', p) => {
            (at(*p), "an attribute value is not closed: `<` comes before its closing quote".into())
        }
        E::InvalidChar(expected, actual, p) => (
            at(*p),
            format!("malformed XML: expected `{}` but found {}", *expected as char, shown(*actual)),
        ),
        E::InvalidChar2(expected, actual, p) => {
            (at(*p), format!("malformed XML: expected {expected} but found {}", shown(*actual)))
        }
        E::InvalidString(expected, p) => (at(*p), format!("malformed XML: expected `{expected}` here")),
        E::InvalidName(p) => (at(*p), "malformed XML: a valid element or attribute name was expected here".into()),
        E::DuplicatedAttribute(name, p) => (at(*p), format!("attribute `{name}` appears twice on this element")),
        E::InvalidAttributeValue(p) => {
            (at(*p), "an attribute value contains a raw `<`; write it as `&lt;`".into())
        }
        E::MalformedEntityReference(p) => {
            (at(*p), "a raw `&` must be written as `&amp;` (or start an entity like `&lt;`)".into())
        }
        E::UnknownEntityReference(name, p) => (
            at(*p),
            format!("unknown entity `&{name};`; only &amp; &lt; &gt; &quot; &apos; and character references are defined"),
        ),
        E::NonXmlChar(c, p) => (at(*p), format!("character U+{:04X} is not allowed in XML", u32::from(*c))),
        E::InvalidComment(p) => (at(*p), "a comment may not contain `--` or end with `-`".into()),
        E::UnexpectedDeclaration(p) => {
            (at(*p), "the `<?xml ...?>` declaration may only appear once, at the very start".into())
        }
        E::UnknownNamespace(prefix, p) => (at(*p), format!("namespace prefix `{prefix}` is not declared")),
        E::NoRootNode => (end, "the file holds no XML element; expected <cluster>".into()),
        E::UnclosedRootNode | E::UnexpectedEndOfStream => {
            (end, "the file ends before all elements are closed".into())
        }
        E::DtdDetected => {
            let p = text.find("<!DOCTYPE").map_or(Pos::new(1, 1), |b| pos_in(text, b));
            (p, "a DOCTYPE is not allowed in cluster.conf".into())
        }
        other => (at(other.pos()), format!("malformed XML: {}", strip_position(&other.to_string()))),
    }
}

/// The element name when the text before `p` on its line ends in `</name` (plus blanks).
fn closing_tag_before(text: &str, p: roxmltree::TextPos) -> Option<&str> {
    let line = text
        .split('\n')
        .nth(usize::try_from(p.row).ok()?.checked_sub(1)?)?;
    let end = line
        .char_indices()
        .nth(usize::try_from(p.col).ok()?.checked_sub(1)?)
        .map_or(line.len(), |(i, _)| i);
    let before = line[..end].trim_end();
    let start = before.rfind("</")?;
    let name = &before[start + 2..];
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "_-.:".contains(c));
    valid.then_some(name)
}

/// roxmltree's messages end with " at LINE:COL"; ours carry the position separately.
fn strip_position(msg: &str) -> &str {
    match msg.rfind(" at ") {
        Some(i) if msg[i + 4..].chars().all(|c| c.is_ascii_digit() || c == ':') => &msg[..i],
        _ => msg,
    }
}

/// How a boolean attribute is read, following the original tool that reads it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Flag {
    /// Read with `atoi`: any integer, non-zero = on. `yes`/`on`/`true` would silently be
    /// *off* in the original, so they are rejected; `no`/`off`/`false` are accepted as off.
    Numeric,
    /// Accepts 1/0, yes/no, on/off, true/false (case-insensitive) and integers.
    Words,
}

/// One element being read: its node and where it and its attributes are.
pub(crate) struct El<'a, 'i> {
    pub node: Node<'a, 'i>,
    pub origin: Origin,
}

impl El<'_, '_> {
    /// The element name.
    pub fn tag(&self) -> &str {
        self.node.tag_name().name()
    }

    /// `<tag>`, for messages.
    pub fn shown(&self) -> String {
        format!("<{}>", self.tag())
    }
}

/// Reads attributes and child elements, reporting problems as it goes.
pub(crate) struct Reader<'r> {
    pub report: &'r mut Report,
}

impl<'r> Reader<'r> {
    pub fn new(report: &'r mut Report) -> Reader<'r> {
        Reader { report }
    }

    /// Position of a byte offset of the document.
    pub fn pos(&self, doc: &Document<'_>, byte: usize) -> Pos {
        let p = doc.text_pos_at(byte);
        Pos::new(p.row, p.col)
    }

    /// Starts reading `node`: records positions, warns about stray text and, when `known`
    /// is given, about attributes not in it (`None` = free-form attributes).
    pub fn open<'a, 'i>(&mut self, node: Node<'a, 'i>, known: Option<&[&str]>) -> El<'a, 'i> {
        let doc = node.document();
        let mut origin = Origin::at(self.pos(doc, node.range().start));
        for a in node.attributes() {
            let p = self.pos(doc, a.range().start);
            origin.set_attr(a.name(), p);
            if let Some(known) = known {
                if !known.contains(&a.name()) {
                    let msg = format!(
                        "unknown attribute `{}` on <{}>; ignored",
                        a.name(),
                        node.tag_name().name()
                    );
                    self.report.warn(p, msg);
                }
            }
        }
        for t in node.children().filter(|c| c.is_text()) {
            let s = t.text().unwrap_or("").trim();
            if !s.is_empty() {
                let p = self.pos(
                    doc,
                    t.range().start + t.text().unwrap_or("").find(s).unwrap_or(0),
                );
                let shown: String = s.chars().take(40).collect();
                self.report.warn(
                    p,
                    format!(
                        "text `{shown}` inside <{}> is ignored: cluster.conf keeps settings in attributes \
                         (a stray `>` may have closed the tag early)",
                        node.tag_name().name()
                    ),
                );
            }
        }
        El { node, origin }
    }

    /// The element children of `el`.
    pub fn children<'a, 'i>(&self, el: &El<'a, 'i>) -> Vec<Node<'a, 'i>> {
        el.node.children().filter(|c| c.is_element()).collect()
    }

    /// Warns that `child` of `parent` is not understood.
    pub fn unknown_element(&mut self, child: Node<'_, '_>, parent: &El<'_, '_>) {
        let p = self.pos(child.document(), child.range().start);
        let msg = format!(
            "unknown element <{}> inside {}; ignored",
            child.tag_name().name(),
            parent.shown()
        );
        self.report.warn(p, msg);
    }

    /// Reports a second occurrence of an element that may appear once. Returns whether
    /// `child` is the first (and should be read).
    pub fn first(
        &mut self,
        seen: &mut Vec<String>,
        child: Node<'_, '_>,
        parent: &El<'_, '_>,
    ) -> bool {
        let tag = child.tag_name().name().to_string();
        if seen.contains(&tag) {
            let p = self.pos(child.document(), child.range().start);
            self.report.error(
                p,
                format!(
                    "<{tag}> appears more than once inside {}; only one is allowed",
                    parent.shown()
                ),
            );
            false
        } else {
            seen.push(tag);
            true
        }
    }

    /// The raw value of attribute `name`.
    pub fn str(&self, el: &El<'_, '_>, name: &str) -> Option<String> {
        el.node.attribute(name).map(str::to_string)
    }

    /// A required, non-empty attribute; missing or empty is an error (and `""` is returned).
    pub fn required(&mut self, el: &El<'_, '_>, name: &str) -> String {
        match el.node.attribute(name) {
            Some(v) if !v.trim().is_empty() => v.to_string(),
            Some(_) => {
                self.report.error(
                    el.origin.attr(name),
                    format!("`{name}` on {} is empty", el.shown()),
                );
                String::new()
            }
            None => {
                let msg = format!("{} has no `{name}` attribute; it is required", el.shown());
                self.report.error(el.origin.element(), msg);
                String::new()
            }
        }
    }

    /// An integer attribute whose value must fit `lo..=hi` (the range of its type).
    pub fn int<T: TryFrom<i64>>(
        &mut self,
        el: &El<'_, '_>,
        name: &str,
        lo: i64,
        hi: i64,
    ) -> Option<T> {
        let raw = el.node.attribute(name)?;
        match parse_int(raw) {
            Some(v) if (lo..=hi).contains(&v) => T::try_from(v).ok(),
            parsed => {
                let what = if parsed.is_some() {
                    "is out of range for"
                } else {
                    "is not a valid value for"
                };
                let msg =
                    format!("`{raw}` {what} `{name}`: expected a whole number from {lo} to {hi}");
                self.report.error(el.origin.attr(name), msg);
                None
            }
        }
    }

    /// A non-negative 32-bit integer attribute.
    pub fn u32(&mut self, el: &El<'_, '_>, name: &str) -> Option<u32> {
        self.int(el, name, 0, i64::from(u32::MAX))
    }

    /// A port number attribute.
    pub fn u16(&mut self, el: &El<'_, '_>, name: &str) -> Option<u16> {
        self.int(el, name, 0, i64::from(u16::MAX))
    }

    /// A boolean attribute, read as the original tool reads it.
    pub fn flag(&mut self, el: &El<'_, '_>, name: &str, style: Flag) -> Option<bool> {
        let raw = el.node.attribute(name)?;
        let v = raw.trim().to_ascii_lowercase();
        if let Some(n) = parse_int(&v) {
            return Some(n != 0);
        }
        let word = match v.as_str() {
            "yes" | "on" | "true" => Some(true),
            "no" | "off" | "false" => Some(false),
            _ => None,
        };
        match (word, style) {
            (Some(true), Flag::Numeric) => {
                let msg = format!(
                    "`{name}=\"{raw}\"` would mean off: the original reads `{name}` as a number, \
                     so anything but a non-zero number is 0; write {name}=\"1\""
                );
                self.report.error(el.origin.attr(name), msg);
                None
            }
            (Some(b), _) => Some(b),
            (None, _) => {
                let accepted = if style == Flag::Numeric {
                    "1 or 0"
                } else {
                    "1/0, yes/no, on/off or true/false"
                };
                let msg = format!("`{raw}` is not a valid value for `{name}`: expected {accepted}");
                self.report.error(el.origin.attr(name), msg);
                None
            }
        }
    }

    /// An attribute with a fixed set of values; `parse` maps a value to its variant.
    pub fn choice<T>(
        &mut self,
        el: &El<'_, '_>,
        name: &str,
        parse: impl Fn(&str) -> Option<T>,
        expected: &str,
    ) -> Option<T> {
        let raw = el.node.attribute(name)?;
        let v = parse(raw.trim());
        if v.is_none() {
            let msg = format!("`{raw}` is not a valid value for `{name}`: expected {expected}");
            self.report.error(el.origin.attr(name), msg);
        }
        v
    }

    /// An IP address attribute.
    pub fn ip(&mut self, el: &El<'_, '_>, name: &str) -> Option<std::net::IpAddr> {
        self.choice(el, name, |s| s.parse().ok(), "an IPv4 or IPv6 address")
    }

    /// Every attribute except those in `skip`, in document order.
    pub fn args(&self, el: &El<'_, '_>, skip: &[&str]) -> Vec<(String, String)> {
        el.node
            .attributes()
            .filter(|a| !skip.contains(&a.name()))
            .map(|a| (a.name().to_string(), a.value().to_string()))
            .collect()
    }
}

/// A strict decimal integer: optional sign, digits, surrounding blanks allowed.
pub(crate) fn parse_int(s: &str) -> Option<i64> {
    let t = s.trim();
    let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_int_is_strict() {
        assert_eq!(parse_int(" 42 "), Some(42));
        assert_eq!(parse_int("-1"), Some(-1));
        assert_eq!(parse_int("+7"), Some(7));
        for bad in ["", "-", "4x", "0x10", "1.0", "1 2", "99999999999999999999"] {
            assert_eq!(parse_int(bad), None, "{bad}");
        }
    }

    #[test]
    fn positions_count_characters_from_one() {
        let text = "ab\nçd<x";
        assert_eq!(pos_in(text, 0), Pos::new(1, 1));
        assert_eq!(pos_in(text, 3), Pos::new(2, 1));
        assert_eq!(pos_in(text, text.find('<').unwrap()), Pos::new(2, 3));
        assert_eq!(pos_in(text, 999), Pos::new(2, 5));
    }

    #[test]
    fn xml_errors_become_one_positioned_sentence() {
        let mut r = Report::new("f");
        assert!(xml("<cluster>\n  </rm>\n</cluster>", &mut r).is_none());
        let d = r.finish().unwrap_err();
        assert_eq!(d.all().len(), 1);
        assert_eq!(d.first_error().pos(), Pos::new(2, 3));
        assert!(
            d.first_error().message.contains("</rm>"),
            "{}",
            d.first_error().message
        );
    }

    #[test]
    fn truncated_file_is_reported_at_its_end() {
        let mut r = Report::new("f");
        assert!(xml("<cluster>\n<cman/>\n", &mut r).is_none());
        assert_eq!(r.finish().unwrap_err().first_error().pos(), Pos::new(3, 1));
    }

    #[test]
    fn empty_file_and_doctype_are_rejected() {
        let mut r = Report::new("f");
        assert!(xml("", &mut r).is_none());
        assert!(r
            .finish()
            .unwrap_err()
            .first_error()
            .message
            .contains("no XML element"));
        let mut r = Report::new("f");
        assert!(xml("<?xml version=\"1.0\"?>\n<!DOCTYPE c []>\n<c/>", &mut r).is_none());
        assert_eq!(r.finish().unwrap_err().first_error().pos(), Pos::new(2, 1));
    }

    #[test]
    fn a_closing_tag_with_a_slash_after_its_name_is_explained() {
        let mut r = Report::new("f");
        assert!(xml("<rm>\n  </resources/>\n</rm>", &mut r).is_none());
        let d = r.finish().unwrap_err();
        assert_eq!(d.first_error().pos(), Pos::new(2, 14));
        assert!(
            d.first_error()
                .message
                .starts_with("malformed closing tag `</resources`"),
            "{}",
            d.first_error().message
        );
    }

    #[test]
    fn roxmltree_positions_suffix_is_stripped() {
        assert_eq!(
            strip_position("invalid ExternalID at 3:4"),
            "invalid ExternalID"
        );
        assert_eq!(strip_position("look at this"), "look at this");
    }
}
