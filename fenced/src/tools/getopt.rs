//! A small GNU-getopt-like reader: short options cluster (`-vv`, `-Uv`), an option's
//! argument is attached (`-t5`) or the next word, options and words mix in any order, `--`
//! ends options; long options are `--name` or `--name=value` / `--name value`.

use std::fmt;

/// A command line the tool cannot use. Displayed as the message to print after the tool's
/// name; the caller adds the usage hint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// One item of a command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Item {
    /// A short option, with its argument if it takes one.
    Short(char, Option<String>),
    /// A long option (without `--`), with its argument if it takes one.
    Long(String, Option<String>),
    /// A word that is not an option.
    Word(String),
}

/// Splits `args`: `short_flags` take no argument, `short_args` take one; `long_flags` and
/// `long_args` likewise.
pub(crate) fn items(
    args: &[String],
    short_flags: &str,
    short_args: &str,
    long_flags: &[&str],
    long_args: &[&str],
) -> Result<Vec<Item>, UsageError> {
    let mut out = Vec::new();
    let mut it = args.iter();
    let mut words_only = false;
    while let Some(arg) = it.next() {
        if words_only || arg == "-" || !arg.starts_with('-') {
            out.push(Item::Word(arg.clone()));
        } else if arg == "--" {
            words_only = true;
        } else if let Some(long) = arg.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (long, None),
            };
            if long_flags.contains(&name) {
                if attached.is_some() {
                    return Err(UsageError(format!(
                        "option '--{name}' doesn't allow an argument"
                    )));
                }
                out.push(Item::Long(name.into(), None));
            } else if long_args.contains(&name) {
                let value = match attached {
                    Some(v) => v,
                    None => it.next().cloned().ok_or_else(|| {
                        UsageError(format!("option '--{name}' requires an argument"))
                    })?,
                };
                out.push(Item::Long(name.into(), Some(value)));
            } else {
                return Err(UsageError(format!("unrecognized option '--{name}'")));
            }
        } else {
            let chars: Vec<char> = arg[1..].chars().collect();
            let mut i = 0;
            while i < chars.len() {
                let c = chars[i];
                if short_flags.contains(c) {
                    out.push(Item::Short(c, None));
                } else if short_args.contains(c) {
                    let rest: String = chars[i + 1..].iter().collect();
                    let value = if rest.is_empty() {
                        it.next().cloned().ok_or_else(|| {
                            UsageError(format!("option requires an argument -- '{c}'"))
                        })?
                    } else {
                        rest
                    };
                    out.push(Item::Short(c, Some(value)));
                    break;
                } else {
                    return Err(UsageError(format!("invalid option -- '{c}'")));
                }
                i += 1;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn short_options_cluster_and_take_attached_or_next_arguments() {
        let got = items(
            &argv("-vvn x -t5 -q 3 word --json --config=a -- -v"),
            "vn",
            "tq",
            &["json"],
            &["config"],
        )
        .unwrap();
        assert_eq!(
            got,
            vec![
                Item::Short('v', None),
                Item::Short('v', None),
                Item::Short('n', None),
                Item::Word("x".into()),
                Item::Short('t', Some("5".into())),
                Item::Short('q', Some("3".into())),
                Item::Word("word".into()),
                Item::Long("json".into(), None),
                Item::Long("config".into(), Some("a".into())),
                Item::Word("-v".into()),
            ]
        );
    }

    #[test]
    fn unknown_options_and_missing_arguments_are_refused() {
        assert!(items(&argv("-x"), "v", "", &[], &[]).is_err());
        assert!(items(&argv("-t"), "", "t", &[], &[]).is_err());
        assert!(items(&argv("--nope"), "", "", &[], &[]).is_err());
        assert!(items(&argv("--config"), "", "", &[], &["config"]).is_err());
        assert!(items(&argv("--json=1"), "", "", &["json"], &[]).is_err());
    }
}
