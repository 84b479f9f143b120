//! POSIX/GNU `getopt` as the original tools used it, plus `--long` options of our own.
//!
//! Short options cluster (`-qe vm:a`), an argument may be attached (`-evm:a`) or the next
//! word, words that are not options are skipped over (GNU permutation) and `--` ends the
//! options. Every event comes out in command-line order, because the original tools act on
//! some options the moment getopt returns them (`clusvcadm -l` locks and exits).

/// One thing getopt returned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opt {
    /// A short option, with its argument if the spec gives it one.
    Short(char, Option<String>),
    /// A long option of ours (`--name` or `--name=value` / `--name value`).
    Long(String, Option<String>),
    /// An option the spec does not know: getopt's `invalid option -- 'x'`.
    Invalid(char),
    /// An unknown long option.
    InvalidLong(String),
    /// An option that needs an argument came last: `option requires an argument -- 'x'`.
    MissingArgument(String),
}

impl Opt {
    /// The message GNU getopt prints to stderr for an error event, if this is one.
    pub fn error_message(&self, program: &str) -> Option<String> {
        match self {
            Opt::Invalid(c) => Some(format!("{program}: invalid option -- '{c}'")),
            Opt::InvalidLong(name) => Some(format!("{program}: unrecognized option '--{name}'")),
            Opt::MissingArgument(name) if name.chars().count() == 1 => Some(format!(
                "{program}: option requires an argument -- '{name}'"
            )),
            Opt::MissingArgument(name) => {
                Some(format!("{program}: option '--{name}' requires an argument"))
            }
            _ => None,
        }
    }
}

/// Splits `args` (without the program name) by a getopt `spec` (`"e:d:lq"`: a letter
/// followed by `:` takes an argument) and a list of long options (`("json", false)`,
/// `("runtime-dir", true)`: name and whether it takes an argument). Operands are dropped.
pub fn getopt(args: &[String], spec: &str, long: &[(&str, bool)]) -> Vec<Opt> {
    let takes_arg = |c: char| -> Option<bool> {
        let mut chars = spec.chars().peekable();
        while let Some(x) = chars.next() {
            let arg = chars.peek() == Some(&':');
            if arg {
                chars.next();
            }
            if x == c && c != ':' {
                return Some(arg);
            }
        }
        None
    };
    let mut out = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let word = &args[i];
        i += 1;
        if word == "--" {
            break;
        }
        if let Some(rest) = word.strip_prefix("--") {
            let (name, inline) = match rest.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (rest, None),
            };
            match long.iter().find(|(n, _)| *n == name) {
                None => out.push(Opt::InvalidLong(name.to_string())),
                Some((_, false)) => out.push(Opt::Long(name.to_string(), None)),
                Some((_, true)) => match inline {
                    Some(v) => out.push(Opt::Long(name.to_string(), Some(v))),
                    None if i < args.len() => {
                        out.push(Opt::Long(name.to_string(), Some(args[i].clone())));
                        i += 1;
                    }
                    None => out.push(Opt::MissingArgument(name.to_string())),
                },
            }
            continue;
        }
        let Some(cluster) = word.strip_prefix('-').filter(|c| !c.is_empty()) else {
            continue; // an operand: the original tools take none
        };
        for (at, c) in cluster.char_indices() {
            match takes_arg(c) {
                None => out.push(Opt::Invalid(c)),
                Some(false) => out.push(Opt::Short(c, None)),
                Some(true) => {
                    let attached = &cluster[at + c.len_utf8()..];
                    if !attached.is_empty() {
                        out.push(Opt::Short(c, Some(attached.to_string())));
                    } else if i < args.len() {
                        out.push(Opt::Short(c, Some(args[i].clone())));
                        i += 1;
                    } else {
                        out.push(Opt::MissingArgument(c.to_string()));
                    }
                    break;
                }
            }
        }
    }
    out
}

/// C's `atoi`: optional blanks, an optional sign, then digits; 0 if none; saturating.
pub fn atoi(s: &str) -> i64 {
    let s = s.trim_start();
    let (neg, digits) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut n: i64 = 0;
    for b in digits.bytes().take_while(u8::is_ascii_digit) {
        n = n.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg {
        -n
    } else {
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn short(c: char, a: Option<&str>) -> Opt {
        Opt::Short(c, a.map(String::from))
    }

    #[test]
    fn clustered_options_and_attached_arguments_split_like_getopt() {
        let got = getopt(&words("-qe vm:a -mnode2 -F"), "e:m:qF", &[]);
        assert_eq!(
            got,
            vec![
                short('q', None),
                short('e', Some("vm:a")),
                short('m', Some("node2")),
                short('F', None)
            ]
        );
    }

    #[test]
    fn operands_are_skipped_and_double_dash_ends_options() {
        let got = getopt(&words("stray -l other -- -e x"), "le:", &[]);
        assert_eq!(got, vec![short('l', None)]);
    }

    #[test]
    fn unknown_and_argumentless_options_are_reported_in_order() {
        let got = getopt(&words("-z -e"), "e:", &[]);
        assert_eq!(
            got,
            vec![Opt::Invalid('z'), Opt::MissingArgument("e".into())]
        );
        assert_eq!(
            got[0].error_message("clustat").unwrap(),
            "clustat: invalid option -- 'z'"
        );
        assert_eq!(
            got[1].error_message("clustat").unwrap(),
            "clustat: option requires an argument -- 'e'"
        );
    }

    #[test]
    fn long_options_take_inline_or_next_word_arguments() {
        let long = [("json", false), ("runtime-dir", true)];
        let got = getopt(
            &words("--json --runtime-dir=/a --runtime-dir /b --nope --runtime-dir"),
            "x",
            &long,
        );
        assert_eq!(
            got,
            vec![
                Opt::Long("json".into(), None),
                Opt::Long("runtime-dir".into(), Some("/a".into())),
                Opt::Long("runtime-dir".into(), Some("/b".into())),
                Opt::InvalidLong("nope".into()),
                Opt::MissingArgument("runtime-dir".into()),
            ]
        );
    }

    #[test]
    fn a_colon_is_never_an_option() {
        assert_eq!(getopt(&words("-:"), "e:", &[]), vec![Opt::Invalid(':')]);
    }

    #[test]
    fn atoi_reads_a_leading_number_like_c() {
        assert_eq!(atoi("5"), 5);
        assert_eq!(atoi("  -3x"), -3);
        assert_eq!(atoi("abc"), 0);
        assert_eq!(atoi(""), 0);
        assert_eq!(atoi("99999999999999999999999"), i64::MAX);
    }
}
