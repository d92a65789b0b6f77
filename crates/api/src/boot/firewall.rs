//! Whether this machine's firewall may block the boot server's ports, found at its start with
//! no more privilege than the boot server has: the nftables ruleset when `nft` can read it (root,
//! or `CAP_NET_ADMIN`), else ufw's settings file, else firewalld through `firewall-cmd`. Each
//! finding is a warning that says how to open the ports.

use std::process::Command;

use serde_json::Value;

/// A port the boot server needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Port {
    pub udp: bool,
    pub port: u16,
}

impl std::fmt::Display for Port {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.port, if self.udp { "udp" } else { "tcp" })
    }
}

/// The ports of a boot server: DHCP (67 and 4011 for proxy DHCP) unless DHCP is off, TFTP
/// unless it is off (0), and HTTP.
pub(crate) fn needed_ports(dhcp: bool, tftp_port: u16, http_port: u16) -> Vec<Port> {
    let mut ports = Vec::new();
    if dhcp {
        ports.extend([Port { udp: true, port: 67 }, Port { udp: true, port: 4011 }]);
    }
    if tftp_port != 0 {
        ports.push(Port { udp: true, port: tftp_port });
    }
    ports.push(Port { udp: false, port: http_port });
    ports
}

/// Warnings about this machine's firewall for `ports` on `interface` (the one machines boot on,
/// when known): none when nothing is in the way, or when no firewall can be read.
pub(crate) fn warnings(ports: &[Port], interface: Option<&str>) -> Vec<String> {
    let open = how_to_open(ports);
    if let Ok(out) = Command::new("nft").args(["-j", "list", "ruleset"]).output()
        && out.status.success()
        && let Ok(ruleset) = serde_json::from_slice::<Value>(&out.stdout)
    {
        return blocked_by_nftables(&ruleset, ports, interface)
            .into_iter()
            .map(|(chain, blocked)| {
                format!(
                    "this machine's firewall (nftables chain {chain}, policy drop) may block {}: machines could not reach the boot server. {open}",
                    list(&blocked)
                )
            })
            .collect();
    }
    if std::fs::read_to_string("/etc/ufw/ufw.conf").is_ok_and(|c| c.lines().any(|l| l.trim() == "ENABLED=yes")) {
        return vec![format!(
            "ufw is on (its rules need root to read): unless it allows {}, machines cannot reach the boot server. {open}",
            list(ports)
        )];
    }
    if let Ok(out) = Command::new("firewall-cmd").arg("--list-all").output()
        && out.status.success()
    {
        let text = String::from_utf8_lossy(&out.stdout);
        let blocked: Vec<Port> = ports.iter().copied().filter(|p| !firewalld_allows(&text, *p)).collect();
        if !blocked.is_empty() {
            return vec![format!(
                "firewalld's zone does not allow {}: machines could not reach the boot server. {open}",
                list(&blocked)
            )];
        }
    }
    Vec::new()
}

fn list(ports: &[Port]) -> String {
    ports.iter().map(Port::to_string).collect::<Vec<_>>().join(", ")
}

fn how_to_open(ports: &[Port]) -> String {
    let of = |udp: bool| ports.iter().filter(|p| p.udp == udp).map(|p| p.port.to_string()).collect::<Vec<_>>();
    let (udp, tcp) = (of(true), of(false));
    let mut ufw = Vec::new();
    if !udp.is_empty() {
        ufw.push(format!("sudo ufw allow {}/udp", udp.join(",")));
    }
    if !tcp.is_empty() {
        ufw.push(format!("sudo ufw allow {}/tcp", tcp.join(",")));
    }
    let firewalld: Vec<String> = ports.iter().map(|p| format!("--add-port={p}")).collect();
    format!(
        "Open them: `{}`, or `sudo firewall-cmd {}`, or an nftables rule such as `udp dport {{ {} }} accept` in that chain",
        ufw.join(" && "),
        firewalld.join(" "),
        udp.join(", ")
    )
}

/// For each input chain whose policy drops, the ports no accept rule in it lets in on
/// `interface`: a rule naming the port, or a rule accepting everything that comes in on that
/// interface (`iifname "eth0" accept`, `iif eth0 accept`, sets and `eth*` wildcards). A rule for
/// another interface lets nothing in on this one; with no interface known, an interface-only rule
/// counts for nothing and a port rule for every interface.
pub(crate) fn blocked_by_nftables(
    ruleset: &Value,
    ports: &[Port],
    interface: Option<&str>,
) -> Vec<(String, Vec<Port>)> {
    let items = ruleset["nftables"].as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for chain in items.iter().filter_map(|i| i.get("chain")) {
        if chain["hook"] != "input" || chain["policy"] != "drop" {
            continue;
        }
        let (family, table, name) = (&chain["family"], &chain["table"], &chain["name"]);
        let accepted: Vec<Port> = items
            .iter()
            .filter_map(|i| i.get("rule"))
            .filter(|r| &r["family"] == family && &r["table"] == table && &r["chain"] == name)
            .filter(|r| r["expr"].as_array().is_some_and(|e| e.iter().any(|x| x.get("accept").is_some())))
            .flat_map(|r| accepted_ports(&r["expr"], ports, interface))
            .collect();
        let blocked: Vec<Port> =
            ports.iter().copied().filter(|p| !accepted.iter().any(|a| a.port == p.port && a.udp == p.udp)).collect();
        if !blocked.is_empty() {
            out.push((
                format!(
                    "{} {} {}",
                    family.as_str().unwrap_or("?"),
                    table.as_str().unwrap_or("?"),
                    name.as_str().unwrap_or("?")
                ),
                blocked,
            ));
        }
    }
    out
}

/// The ports of `wanted` an accept rule lets in on `interface`: those its `dport` matches name
/// (numbers, sets, ranges), or all of them when the rule matches nothing but the input interface.
fn accepted_ports(expr: &Value, wanted: &[Port], interface: Option<&str>) -> Vec<Port> {
    let matches: Vec<&Value> = expr.as_array().into_iter().flatten().filter_map(|x| x.get("match")).collect();
    let on_interface: Vec<&Value> = matches
        .iter()
        .copied()
        .filter(|m| matches!(m["left"]["meta"]["key"].as_str(), Some("iifname" | "iif")))
        .collect();
    if !on_interface.is_empty() {
        let Some(interface) = interface else { return Vec::new() };
        let names = |m: &Value| -> Vec<String> {
            match m["right"]["set"].as_array() {
                Some(set) => set.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
                None => m["right"].as_str().map(str::to_owned).into_iter().collect(),
            }
        };
        let names_it = |pattern: &str| match pattern.strip_suffix('*') {
            Some(prefix) => interface.starts_with(prefix),
            None => pattern == interface,
        };
        let ours = on_interface.iter().all(|m| match m["op"].as_str() {
            Some("==") | Some("in") => names(m).iter().any(|n| names_it(n)),
            Some("!=") => !names(m).iter().any(|n| names_it(n)),
            _ => false,
        });
        if !ours {
            return Vec::new();
        }
        if matches.len() == on_interface.len() {
            return wanted.to_vec();
        }
    }
    let mut out = Vec::new();
    for m in matches {
        let payload = &m["left"]["payload"];
        if payload["field"] != "dport" || m["op"] != "==" {
            continue;
        }
        let udp = match payload["protocol"].as_str() {
            Some("udp") => true,
            Some("tcp") => false,
            _ => continue,
        };
        let right = &m["right"];
        let mut add = |v: &Value| {
            if let Some(p) = v.as_u64() {
                out.push(Port { udp, port: p as u16 });
            } else if let Some([a, b]) = v["range"].as_array().map(Vec::as_slice) {
                for p in a.as_u64().unwrap_or(1)..=b.as_u64().unwrap_or(0).min(65535) {
                    out.push(Port { udp, port: p as u16 });
                }
            }
        };
        match right["set"].as_array() {
            Some(set) => set.iter().for_each(&mut add),
            None => add(right),
        }
    }
    out
}

/// Whether `firewall-cmd --list-all` text allows `port` (as a port or a known service).
fn firewalld_allows(text: &str, port: Port) -> bool {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|r| r.split_whitespace().map(str::to_owned).collect()))
            .unwrap_or_else(Vec::new)
    };
    let services: Vec<String> = field("services:");
    let ports: Vec<String> = field("ports:");
    let service = match (port.udp, port.port) {
        (true, 67) => Some("dhcp"),
        (true, 69) => Some("tftp"),
        (true, 4011) => Some("proxy-dhcp"),
        (false, 80) => Some("http"),
        _ => None,
    };
    service.is_some_and(|s| services.iter().any(|x| x == s)) || ports.iter().any(|p| *p == port.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ruleset(rules: &str) -> Value {
        serde_json::from_str(&format!(
            r#"{{"nftables": [{{"metainfo": {{"version": "1.0.6"}}}}, {{"table": {{"family": "inet", "name": "f"}}}},
            {{"chain": {{"family": "inet", "table": "f", "name": "input", "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}}}}
            {rules}]}}"#
        ))
        .expect("json")
    }

    #[test]
    fn a_dropping_input_chain_blocks_the_ports_it_does_not_accept() {
        let ports = needed_ports(true, 69, 8080);
        let rules = r#", {"rule": {"family": "inet", "table": "f", "chain": "input", "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": {"set": [67, 4011]}}}, {"accept": null}]}},
            {"rule": {"family": "inet", "table": "f", "chain": "input", "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": {"range": [8000, 8100]}}}, {"accept": null}]}},
            {"rule": {"family": "inet", "table": "f", "chain": "input", "expr": [
            {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 69}}, {"drop": null}]}}"#;
        let blocked = blocked_by_nftables(&ruleset(rules), &ports, Some("eth0"));
        assert_eq!(blocked, [("inet f input".to_owned(), vec![Port { udp: true, port: 69 }])]);
        assert_eq!(blocked_by_nftables(&ruleset(""), &ports, Some("eth0"))[0].1.len(), 4);
        // An accepting policy blocks nothing.
        let open = serde_json::json!({"nftables": [{"chain": {"family": "inet", "table": "f", "name": "input", "hook": "input", "policy": "accept"}}]});
        assert!(blocked_by_nftables(&open, &ports, Some("eth0")).is_empty());
    }

    fn interface_rule(op: &str, right: &str, more: &str) -> String {
        format!(
            r#", {{"rule": {{"family": "inet", "table": "f", "chain": "input", "expr": [
            {{"match": {{"op": "{op}", "left": {{"meta": {{"key": "iifname"}}}}, "right": {right}}}}}{more}, {{"accept": null}}]}}}}"#
        )
    }

    #[test]
    fn a_rule_accepting_the_whole_interface_opens_every_port_on_it_only() {
        let ports = needed_ports(true, 69, 8080);
        // `iifname "eth0" accept`: everything on eth0.
        let rules = ruleset(&interface_rule("==", r#""eth0""#, ""));
        assert!(blocked_by_nftables(&rules, &ports, Some("eth0")).is_empty());
        assert_eq!(blocked_by_nftables(&rules, &ports, Some("eth1"))[0].1.len(), 4);
        assert_eq!(blocked_by_nftables(&rules, &ports, None)[0].1.len(), 4, "an unknown interface is not assumed");
        // Sets, wildcards and negations.
        let set = ruleset(&interface_rule("==", r#"{"set": ["lan0", "enp*"]}"#, ""));
        assert!(blocked_by_nftables(&set, &ports, Some("enp3s0")).is_empty());
        assert!(!blocked_by_nftables(&set, &ports, Some("wlan0")).is_empty());
        let not_wan = ruleset(&interface_rule("!=", r#""wan0""#, ""));
        assert!(blocked_by_nftables(&not_wan, &ports, Some("eth0")).is_empty());
        assert!(!blocked_by_nftables(&not_wan, &ports, Some("wan0")).is_empty());
        // `iif lo udp dport 67 accept` opens 67 on lo, nothing on eth0.
        let dport =
            r#", {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 67}}"#;
        let lo = ruleset(&interface_rule("==", r#""lo""#, dport));
        assert_eq!(blocked_by_nftables(&lo, &ports, Some("lo"))[0].1.len(), 3);
        assert_eq!(blocked_by_nftables(&lo, &ports, Some("eth0"))[0].1.len(), 4);
    }

    #[test]
    fn firewalld_services_and_ports_count() {
        let text = "public (active)\n  services: dhcp ssh tftp\n  ports: 4011/udp 8080/tcp\n";
        assert!(needed_ports(true, 69, 8080).into_iter().all(|p| firewalld_allows(text, p)));
        assert!(!firewalld_allows("  services: ssh\n  ports:\n", Port { udp: true, port: 67 }));
    }

    #[test]
    fn the_advice_names_every_port() {
        let advice = how_to_open(&needed_ports(true, 69, 8080));
        assert!(advice.contains("sudo ufw allow 67,4011,69/udp && sudo ufw allow 8080/tcp"), "{advice}");
        assert!(advice.contains("--add-port=8080/tcp"), "{advice}");
    }
}
