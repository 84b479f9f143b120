//! The nftables side of partitions: the rule set written into a node's namespace, and
//! reading it back from `nft -j list table inet clusterlab`.
//!
//! A node's table has two base chains with policy accept: `input` drops packets whose
//! source is a peer that must not be heard, `output` drops packets to a peer that must not
//! be reached (the sender then gets EPERM). Rules match IPv4 addresses only: the
//! namespaces have IPv6 turned off. ARP is not filtered (the inet family does not see it),
//! so neighbours stay resolved across a partition and healing is immediate.

use super::NFT_TABLE;
use serde_json::Value;
use std::net::Ipv4Addr;

/// Which base chain a rule is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Chain {
    /// Drops packets from the address.
    Input,
    /// Drops packets to the address.
    Output,
}

/// The `nft -f -` script that replaces the table with one that drops packets from
/// `drop_from` and to `drop_to`. The `table` line before `delete table` makes the delete
/// succeed when the table does not exist yet; the whole script is one transaction.
pub(crate) fn ruleset(drop_from: &[Ipv4Addr], drop_to: &[Ipv4Addr]) -> String {
    let mut s = format!("table inet {NFT_TABLE}\ndelete table inet {NFT_TABLE}\n");
    s += &format!("table inet {NFT_TABLE} {{\n");
    for (chain, hook, field, addrs) in [
        ("input", "input", "saddr", drop_from),
        ("output", "output", "daddr", drop_to),
    ] {
        s += &format!("\tchain {chain} {{\n");
        s += &format!("\t\ttype filter hook {hook} priority 0; policy accept;\n");
        for a in addrs {
            s += &format!("\t\tip {field} {a} drop\n");
        }
        s += "\t}\n";
    }
    s + "}\n"
}

/// The (chain, address) of every drop rule in a JSON listing of the table. Anything that
/// is not a rule this module writes is an error, so a hand-made rule is never misread.
pub(crate) fn parse_listing(json: &str) -> Result<Vec<(Chain, Ipv4Addr)>, String> {
    let doc: Value = serde_json::from_str(json).map_err(|e| format!("not JSON: {e}"))?;
    let items = doc
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or("no \"nftables\" array")?;
    let mut out = Vec::new();
    for rule in items.iter().filter_map(|i| i.get("rule")) {
        let chain = match rule.get("chain").and_then(Value::as_str) {
            Some("input") => Chain::Input,
            Some("output") => Chain::Output,
            other => return Err(format!("a rule in an unexpected chain {other:?}")),
        };
        let expr = rule
            .get("expr")
            .and_then(Value::as_array)
            .ok_or("a rule without expressions")?;
        let [m, verdict] = expr.as_slice() else {
            return Err(format!("an unexpected rule: {rule}"));
        };
        if verdict.get("drop").is_none() {
            return Err(format!("a rule that does not drop: {rule}"));
        }
        let m = m
            .get("match")
            .ok_or_else(|| format!("an unexpected rule: {rule}"))?;
        let payload = m.pointer("/left/payload");
        let field = payload.and_then(|p| p.get("field")).and_then(Value::as_str);
        let proto = payload
            .and_then(|p| p.get("protocol"))
            .and_then(Value::as_str);
        let want = match chain {
            Chain::Input => "saddr",
            Chain::Output => "daddr",
        };
        if proto != Some("ip")
            || field != Some(want)
            || m.get("op").and_then(Value::as_str) != Some("==")
        {
            return Err(format!("an unexpected match in chain {chain:?}: {m}"));
        }
        let right = m.get("right").ok_or("a match without a right side")?;
        let values: Vec<&Value> = match right.get("set").and_then(Value::as_array) {
            Some(set) => set.iter().collect(),
            None => vec![right],
        };
        for v in values {
            let addr = v
                .as_str()
                .and_then(|s| s.parse::<Ipv4Addr>().ok())
                .ok_or_else(|| format!("not an IPv4 address: {v}"))?;
            out.push((chain, addr));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `nft -j list table inet clusterlab` of nftables 1.0.6 (Debian 12), after a script
    /// with one rule per address and one with an anonymous set.
    const LISTING: &str = r#"{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"table": {"family": "inet", "name": "clusterlab", "handle": 1}}, {"chain": {"family": "inet", "table": "clusterlab", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}}, {"chain": {"family": "inet", "table": "clusterlab", "name": "output", "handle": 2, "type": "filter", "hook": "output", "prio": 0, "policy": "accept"}}, {"rule": {"family": "inet", "table": "clusterlab", "chain": "input", "handle": 3, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "10.250.77.2"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "clusterlab", "chain": "output", "handle": 4, "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": {"set": ["10.250.77.3", "10.250.77.254"]}}}, {"drop": null}]}}]}"#;

    #[test]
    fn a_listing_of_our_rules_reads_back_as_chain_and_address() {
        let got = parse_listing(LISTING).unwrap();
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            got,
            vec![
                (Chain::Input, a("10.250.77.2")),
                (Chain::Output, a("10.250.77.3")),
                (Chain::Output, a("10.250.77.254")),
            ]
        );
    }

    #[test]
    fn an_empty_table_has_no_rules() {
        let empty = LISTING.split(", {\"rule\"").next().unwrap().to_string() + "]}";
        assert_eq!(parse_listing(&empty).unwrap(), vec![]);
    }

    #[test]
    fn rules_we_did_not_write_are_refused_not_misread() {
        for (from, to) in [
            ("\"drop\": null", "\"accept\": null"),
            ("\"field\": \"saddr\"", "\"field\": \"daddr\""),
            ("\"chain\": \"input\", \"handle\": 3", "\"chain\": \"forward\", \"handle\": 3"),
            ("\"right\": \"10.250.77.2\"", "\"right\": \"10.250.77.0/24\""),
            ("\"op\": \"==\", \"left\": {\"payload\": {\"protocol\": \"ip\", \"field\": \"saddr\"", "\"op\": \"!=\", \"left\": {\"payload\": {\"protocol\": \"ip\", \"field\": \"saddr\""),
        ] {
            let changed = LISTING.replacen(from, to, 1);
            assert_ne!(changed, LISTING, "{from}");
            assert!(parse_listing(&changed).is_err(), "{to}");
        }
        assert!(parse_listing("not json").is_err());
        assert!(parse_listing("{}").is_err());
    }

    #[test]
    fn the_script_replaces_the_table_and_drops_each_address() {
        let a = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        let s = ruleset(&[a("10.250.1.2")], &[a("10.250.1.3"), a("10.250.1.254")]);
        assert!(s.starts_with("table inet clusterlab\ndelete table inet clusterlab\n"));
        assert!(s.contains("chain input {\n\t\ttype filter hook input priority 0; policy accept;\n\t\tip saddr 10.250.1.2 drop\n\t}"));
        assert!(s.contains("ip daddr 10.250.1.3 drop\n\t\tip daddr 10.250.1.254 drop\n"));
        assert_eq!(ruleset(&[], &[]).matches("drop\n").count(), 0);
    }
}
