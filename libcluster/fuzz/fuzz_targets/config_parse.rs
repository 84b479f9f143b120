//! Feeds arbitrary text to the cluster.conf parser and validator.
//!
//! Property: nothing panics; every diagnostic points inside the text (line and column
//! exist); a configuration that parses survives the writer: parse(to_xml(c)) == c.
#![no_main]

use libcluster::config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let lines = text.split('\n').count() as u32;
    let inside = |d: &config::Diagnostic| {
        assert!(d.line >= 1 && d.line <= lines.max(1) && d.col >= 1, "{d} outside the text");
    };
    match config::parse(text, "fuzz.conf") {
        Ok(parsed) => {
            parsed.warnings.iter().for_each(inside);
            let again = config::parse(&config::to_xml(&parsed.config), "fuzz.conf")
                .expect("what the writer prints parses");
            assert_eq!(again.config, parsed.config);
        }
        Err(diags) => diags.all().iter().for_each(inside),
    }
});
