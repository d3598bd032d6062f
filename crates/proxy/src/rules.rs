//! The rules, as `iptables-restore` input: a pure function of the Service ports, laid out like
//! kube-proxy's iptables mode with every chain name under one prefix, so several proxies (one
//! per test cluster) can share a host and each removes exactly what it installed.
//!
//! nat: PREROUTING and OUTPUT jump to `P-SERVICES`, which matches each ClusterIP:port to its
//! `P-SVC-…` chain (and local addresses to `P-NODEPORTS` → `P-EXT-…` → `P-SVC-…`). A SVC chain
//! marks traffic that needs SNAT and picks an endpoint's `P-SEP-…` chain at random (`-m
//! statistic`, or `-m recent` for ClientIP affinity); the SEP chain DNATs. `P-POSTROUTING`
//! masquerades marked packets. filter: ports without endpoints are rejected.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use crate::model::ServicePort;

/// The packet mark meaning "masquerade me" (kube-proxy's bit). Every proxy on a host uses the
/// same bit, which is harmless: a marked packet needs SNAT whichever proxy marked it.
pub const MASQUERADE_MARK: &str = "0x4000";
/// What a client of a port without endpoints gets: "connection refused" at once, rather than
/// a timeout (upstream's choice too).
const REJECT: &str = "REJECT --reject-with icmp-port-unreachable";
/// iptables' limit on chain names.
const MAX_CHAIN_NAME: usize = 28;
/// The longest prefix: leaves `-SVC-` and 13 hash characters (65 bits) within the limit.
pub const MAX_PREFIX: usize = 10;

/// How the rules are laid out on this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleConfig {
    /// Starts every chain name (`PREFIX-SERVICES`, `PREFIX-SVC-…`): 1-10 of A-Z and 0-9.
    pub prefix: String,
    /// Pod IPs come from here; traffic to a ClusterIP from anywhere else (the host, other
    /// hosts) is masqueraded so replies come back through this node. None masquerades all.
    pub cluster_cidr: Option<String>,
}

/// Whether `prefix` can start chain names: 1 to [`MAX_PREFIX`] of A-Z and 0-9 (no `-`, so one
/// prefix's chains never look like another's).
pub fn valid_prefix(prefix: &str) -> bool {
    (1..=MAX_PREFIX).contains(&prefix.len())
        && prefix.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// `a.b.c.d/n` as an address and prefix length.
pub fn parse_cidr(cidr: &str) -> Option<(std::net::Ipv4Addr, u8)> {
    let (ip, bits) = cidr.split_once('/')?;
    Some((ip.parse().ok()?, bits.parse().ok().filter(|bits| *bits <= 32)?))
}

/// A prefix for `seed` (e.g. the node name): `CP` and 8 hash characters.
pub fn prefix_for(seed: &str) -> String {
    format!("CP{}", &hash32(seed)[..8])
}

/// The chains and rules of one sync; compare two to know whether anything changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    filter_chains: Vec<String>,
    filter_rules: Vec<String>,
    nat_chains: Vec<String>,
    nat_rules: Vec<String>,
}

impl Ruleset {
    /// `iptables-restore --noflush` input that replaces every chain of this ruleset (declaring a
    /// chain flushes it) and deletes the chains of `previous` this one no longer has.
    pub fn restore_text(&self, previous: Option<&Ruleset>) -> String {
        let mut text = String::new();
        for (table, chains, rules, old) in [
            ("filter", &self.filter_chains, &self.filter_rules, previous.map(|p| &p.filter_chains)),
            ("nat", &self.nat_chains, &self.nat_rules, previous.map(|p| &p.nat_chains)),
        ] {
            let current: BTreeSet<&String> = chains.iter().collect();
            let stale: Vec<&String> =
                old.into_iter().flatten().filter(|c| !current.contains(c)).collect();
            let _ = writeln!(text, "*{table}");
            for chain in chains.iter().chain(stale.iter().copied()) {
                let _ = writeln!(text, ":{chain} - [0:0]");
            }
            for rule in rules {
                let _ = writeln!(text, "{rule}");
            }
            for chain in stale {
                let _ = writeln!(text, "-X {chain}");
            }
            text.push_str("COMMIT\n");
        }
        text
    }
}

/// Chain names under one prefix.
struct Chains<'a>(&'a str);

impl Chains<'_> {
    fn fixed(&self, name: &str) -> String {
        format!("{}-{name}", self.0)
    }

    /// `PREFIX-KIND-HASH`, as long as iptables allows.
    fn hashed(&self, kind: &str, key: &str) -> String {
        let room = MAX_CHAIN_NAME.saturating_sub(self.0.len() + kind.len() + 2);
        let hash = hash32(key);
        format!("{}-{kind}-{}", self.0, &hash[..room.min(hash.len())])
    }

    fn service(&self, port: &ServicePort) -> String {
        self.hashed("SVC", &port_key(port))
    }

    fn external(&self, port: &ServicePort) -> String {
        self.hashed("EXT", &port_key(port))
    }

    fn endpoint(&self, port: &ServicePort, endpoint: &crate::model::Endpoint) -> String {
        self.hashed("SEP", &format!("{}{endpoint}", port_key(port)))
    }
}

fn port_key(port: &ServicePort) -> String {
    format!("{}/{}", port.id(), port.protocol.iptables_name())
}

/// The names of the chains every ruleset has.
struct FixedChains {
    services: String,
    nodeports: String,
    postrouting: String,
    mark_masq: String,
    external_services: String,
    forward: String,
}

impl FixedChains {
    fn new(chains: &Chains<'_>) -> Self {
        Self {
            services: chains.fixed("SERVICES"),
            nodeports: chains.fixed("NODEPORTS"),
            postrouting: chains.fixed("POSTROUTING"),
            mark_masq: chains.fixed("MARK-MASQ"),
            external_services: chains.fixed("EXTERNAL-SERVICES"),
            forward: chains.fixed("FORWARD"),
        }
    }
}

/// The rules for `ports`.
pub fn render(ports: &[ServicePort], config: &RuleConfig) -> Ruleset {
    let chains = Chains(&config.prefix);
    let fixed = FixedChains::new(&chains);
    let FixedChains { services, nodeports, postrouting, mark_masq, external_services, forward } =
        &fixed;
    let mut set = Ruleset {
        filter_chains: vec![services.clone(), external_services.clone(), forward.clone()],
        nat_chains: vec![
            services.clone(),
            nodeports.clone(),
            postrouting.clone(),
            mark_masq.clone(),
        ],
        ..Ruleset::default()
    };
    set.filter_rules.extend([
        format!(
            "-A {forward} -m comment --comment \"forward marked service traffic\" -m mark --mark {MASQUERADE_MARK}/{MASQUERADE_MARK} -j ACCEPT"
        ),
        format!("-A {forward} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"),
    ]);
    set.nat_rules.extend([
        format!("-A {mark_masq} -j MARK --or-mark {MASQUERADE_MARK}"),
        format!("-A {postrouting} -m mark ! --mark {MASQUERADE_MARK}/{MASQUERADE_MARK} -j RETURN"),
        // Cleared first so a packet that is re-routed is not masqueraded twice.
        format!("-A {postrouting} -j MARK --xor-mark {MASQUERADE_MARK}"),
        format!(
            "-A {postrouting} -m comment --comment \"service traffic requiring SNAT\" -j MASQUERADE"
        ),
    ]);
    for port in ports {
        if port.endpoints.is_empty() {
            reject(&mut set, port, &fixed);
        } else {
            route(&mut set, port, &chains, &fixed, config);
        }
    }
    set.nat_rules.push(format!(
        "-A {services} ! -d 127.0.0.0/8 -m comment --comment \"node ports; must be the last rule of this chain\" -m addrtype --dst-type LOCAL -j {nodeports}"
    ));
    set
}

/// `-p tcp -m tcp --dport N`, for `port`'s protocol.
fn port_match(port: &ServicePort, number: u16) -> String {
    let proto = port.protocol.iptables_name();
    format!("-p {proto} -m {proto} --dport {number}")
}

/// A port without endpoints: its ClusterIP and NodePort refuse connections.
fn reject(set: &mut Ruleset, port: &ServicePort, fixed: &FixedChains) {
    let (id, services) = (port.id(), &fixed.services);
    set.filter_rules.push(format!(
        "-A {services} -d {}/32 {} -m comment --comment \"{id} has no endpoints\" -j {REJECT}",
        port.cluster_ip,
        port_match(port, port.port)
    ));
    if let Some(node_port) = port.node_port {
        set.filter_rules.push(format!(
            "-A {} -m addrtype --dst-type LOCAL {} -m comment --comment \"{id} has no endpoints\" -j {REJECT}",
            fixed.external_services,
            port_match(port, node_port),
        ));
    }
}

/// A port with endpoints: its ClusterIP (and NodePort) lead to a SVC chain that picks one.
fn route(
    set: &mut Ruleset,
    port: &ServicePort,
    chains: &Chains<'_>,
    fixed: &FixedChains,
    config: &RuleConfig,
) {
    let (id, mark_masq) = (port.id(), &fixed.mark_masq);
    let proto = port.protocol.iptables_name();
    let cluster = format!("-d {}/32 {}", port.cluster_ip, port_match(port, port.port));
    let svc = chains.service(port);
    set.nat_chains.push(svc.clone());
    set.nat_rules.push(format!(
        "-A {} {cluster} -m comment --comment \"{id} cluster IP\" -j {svc}",
        fixed.services
    ));
    let from_outside = match &config.cluster_cidr {
        Some(cidr) => format!("! -s {cidr} "),
        None => String::new(),
    };
    set.nat_rules.push(format!(
        "-A {svc} {from_outside}{cluster} -m comment --comment \"{id} cluster IP\" -j {mark_masq}"
    ));
    if let Some(node_port) = port.node_port {
        let ext = chains.external(port);
        set.nat_chains.push(ext.clone());
        set.nat_rules.extend([
            format!(
                "-A {} {} -m comment --comment \"{id}\" -j {ext}",
                fixed.nodeports,
                port_match(port, node_port)
            ),
            // Traffic from outside arrives at a node address; replies must come back here.
            format!(
                "-A {ext} -m comment --comment \"masquerade traffic for {id} external destinations\" -j {mark_masq}"
            ),
            format!("-A {ext} -j {svc}"),
        ]);
    }
    let seps: Vec<String> = port.endpoints.iter().map(|e| chains.endpoint(port, e)).collect();
    if let Some(seconds) = port.affinity_seconds {
        for (endpoint, sep) in port.endpoints.iter().zip(&seps) {
            set.nat_rules.push(format!(
                "-A {svc} -m comment --comment \"{id} -> {endpoint}\" -m recent --name {sep} --rcheck --seconds {seconds} --reap -j {sep}"
            ));
        }
    }
    let count = seps.len();
    for (i, (endpoint, sep)) in port.endpoints.iter().zip(&seps).enumerate() {
        // Each rule takes 1/(endpoints left) of what reaches it: uniform overall.
        let statistic = if i + 1 < count {
            format!(" -m statistic --mode random --probability {:.10}", 1.0 / (count - i) as f64)
        } else {
            String::new()
        };
        set.nat_rules.push(format!(
            "-A {svc} -m comment --comment \"{id} -> {endpoint}\"{statistic} -j {sep}"
        ));
    }
    for (endpoint, sep) in port.endpoints.iter().zip(&seps) {
        set.nat_chains.push(sep.clone());
        let remember = match port.affinity_seconds {
            Some(_) => format!(" -m recent --name {sep} --set"),
            None => String::new(),
        };
        set.nat_rules.extend([
            // Hairpin: a pod reaching itself through its Service must see the node as the
            // source, or it would answer itself directly.
            format!("-A {sep} -s {}/32 -m comment --comment \"{id}\" -j {mark_masq}", endpoint.ip),
            format!(
                "-A {sep} -p {proto} -m comment --comment \"{id}\"{remember} -m {proto} -j DNAT --to-destination {endpoint}"
            ),
        ]);
    }
}

/// A rule in a built-in chain that leads into this proxy's chains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hook {
    pub table: &'static str,
    pub chain: &'static str,
    /// The rule's arguments after `-A CHAIN` (or `-C`, `-I`, `-D`).
    pub rule: Vec<String>,
}

/// The jumps from the built-in chains into this proxy's chains.
pub fn hooks(prefix: &str) -> Vec<Hook> {
    let chains = Chains(prefix);
    let comment = format!("capstan proxy {prefix}");
    let hook = |table, chain, new_only: bool, target: &str| {
        let mut rule: Vec<String> = Vec::new();
        if new_only {
            rule.extend(["-m", "conntrack", "--ctstate", "NEW"].map(String::from));
        }
        rule.extend(["-m".into(), "comment".into(), "--comment".into(), comment.clone()]);
        rule.extend(["-j".into(), chains.fixed(target)]);
        Hook { table, chain, rule }
    };
    vec![
        hook("nat", "PREROUTING", false, "SERVICES"),
        hook("nat", "OUTPUT", false, "SERVICES"),
        hook("nat", "POSTROUTING", false, "POSTROUTING"),
        hook("filter", "INPUT", true, "EXTERNAL-SERVICES"),
        hook("filter", "FORWARD", true, "EXTERNAL-SERVICES"),
        hook("filter", "FORWARD", true, "SERVICES"),
        hook("filter", "FORWARD", false, "FORWARD"),
        hook("filter", "OUTPUT", true, "SERVICES"),
    ]
}

/// What `prefix` left in one table of `iptables-save` output: its chains, and the rules of
/// other chains that jump into them (as arguments after `-A`, ready for `-D`).
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Leftovers {
    pub chains: Vec<String>,
    pub jumps: Vec<Vec<String>>,
}

pub fn leftovers(saved: &str, prefix: &str) -> Leftovers {
    let owned = format!("{prefix}-");
    let mut found = Leftovers::default();
    for line in saved.lines() {
        if let Some(chain) = line.strip_prefix(':').and_then(|l| l.split_whitespace().next()) {
            if chain.starts_with(&owned) {
                found.chains.push(chain.to_owned());
            }
        } else if line.starts_with("-A ") {
            let words = split_rule(line);
            let from_owned = words.get(1).is_some_and(|chain| chain.starts_with(&owned));
            let jumps_in = words
                .windows(2)
                .any(|pair| matches!(pair[0].as_str(), "-j" | "-g") && pair[1].starts_with(&owned));
            if jumps_in && !from_owned {
                found.jumps.push(words[1..].to_vec());
            }
        }
    }
    found
}

/// `iptables-restore --noflush` input that flushes and deletes `chains` of `table`.
pub fn removal_text(table: &str, chains: &[String]) -> String {
    let mut text = format!("*{table}\n");
    for chain in chains {
        let _ = writeln!(text, ":{chain} - [0:0]");
    }
    for chain in chains {
        let _ = writeln!(text, "-X {chain}");
    }
    text.push_str("COMMIT\n");
    text
}

/// Splits an `iptables-save` rule into words, honouring its double quotes and `\"` escapes.
fn split_rule(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let (mut quoted, mut in_word) = (false, false);
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' if quoted => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// FNV-1a of `key` in base32 (RFC 4648 letters): 13 characters, stable across builds.
fn hash32(key: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in key.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (0..13).map(|i| ALPHABET[((hash >> (i * 5)) & 31) as usize] as char).collect()
}

#[cfg(test)]
mod tests;
