use super::*;
use crate::model::{Endpoint, Protocol, ServicePort};

fn config() -> RuleConfig {
    RuleConfig { prefix: "T1".into(), cluster_cidr: Some("10.42.0.0/16".into()) }
}

fn port(endpoints: &[&str]) -> ServicePort {
    ServicePort {
        namespace: "shop".into(),
        service: "web".into(),
        port_name: "http".into(),
        protocol: Protocol::Tcp,
        cluster_ip: "10.43.0.9".parse().unwrap(),
        port: 80,
        node_port: None,
        affinity_seconds: None,
        endpoints: endpoints
            .iter()
            .map(|e| {
                let (ip, port) = e.split_once(':').unwrap();
                Endpoint { ip: ip.parse().unwrap(), port: port.parse().unwrap() }
            })
            .collect(),
    }
}

fn lines(ruleset: &Ruleset) -> Vec<String> {
    ruleset.restore_text(None).lines().map(str::to_owned).collect()
}

#[test]
fn one_endpoint_renders_like_kube_proxy() {
    let text = render(&[port(&["10.42.0.5:8080"])], &config()).restore_text(None);
    let svc = Chains("T1").service(&port(&[]));
    let sep =
        Chains("T1").endpoint(&port(&[]), &"10.42.0.5:8080".parse::<EndpointText>().unwrap().0);
    let expected = format!(
        "*filter
:T1-SERVICES - [0:0]
:T1-EXTERNAL-SERVICES - [0:0]
:T1-FORWARD - [0:0]
-A T1-FORWARD -m comment --comment \"forward marked service traffic\" -m mark --mark 0x4000/0x4000 -j ACCEPT
-A T1-FORWARD -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
COMMIT
*nat
:T1-SERVICES - [0:0]
:T1-NODEPORTS - [0:0]
:T1-POSTROUTING - [0:0]
:T1-MARK-MASQ - [0:0]
:{svc} - [0:0]
:{sep} - [0:0]
-A T1-MARK-MASQ -j MARK --or-mark 0x4000
-A T1-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A T1-POSTROUTING -j MARK --xor-mark 0x4000
-A T1-POSTROUTING -m comment --comment \"service traffic requiring SNAT\" -j MASQUERADE
-A T1-SERVICES -d 10.43.0.9/32 -p tcp -m tcp --dport 80 -m comment --comment \"shop/web:http cluster IP\" -j {svc}
-A {svc} ! -s 10.42.0.0/16 -d 10.43.0.9/32 -p tcp -m tcp --dport 80 -m comment --comment \"shop/web:http cluster IP\" -j T1-MARK-MASQ
-A {svc} -m comment --comment \"shop/web:http -> 10.42.0.5:8080\" -j {sep}
-A {sep} -s 10.42.0.5/32 -m comment --comment \"shop/web:http\" -j T1-MARK-MASQ
-A {sep} -p tcp -m comment --comment \"shop/web:http\" -m tcp -j DNAT --to-destination 10.42.0.5:8080
-A T1-SERVICES ! -d 127.0.0.0/8 -m comment --comment \"node ports; must be the last rule of this chain\" -m addrtype --dst-type LOCAL -j T1-NODEPORTS
COMMIT
"
    );
    assert_eq!(text, expected);
}

/// Parses `ip:port` for tests.
struct EndpointText(Endpoint);

impl std::str::FromStr for EndpointText {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        let (ip, port) = s.split_once(':').ok_or(())?;
        Ok(Self(Endpoint { ip: ip.parse().map_err(|_| ())?, port: port.parse().map_err(|_| ())? }))
    }
}

#[test]
fn endpoints_are_chosen_uniformly_by_decreasing_probabilities() {
    let cases: [(&[&str], &[&str]); 3] = [
        (&["10.42.0.1:80"], &[]),
        (&["10.42.0.1:80", "10.42.0.2:80"], &["0.5000000000"]),
        (
            &["10.42.0.1:80", "10.42.0.2:80", "10.42.0.3:80", "10.42.0.4:80"],
            &["0.2500000000", "0.3333333333", "0.5000000000"],
        ),
    ];
    for (endpoints, expected) in cases {
        let rules = lines(&render(&[port(endpoints)], &config()));
        let probabilities: Vec<&str> = rules
            .iter()
            .filter_map(|r| r.split("--probability ").nth(1))
            .map(|rest| rest.split(' ').next().unwrap())
            .collect();
        assert_eq!(probabilities, expected, "{endpoints:?}");
        let picks = rules.iter().filter(|r| r.contains(" -> ") && r.contains("-SVC-")).count();
        assert_eq!(picks, endpoints.len(), "one pick per endpoint: {endpoints:?}");
    }
}

#[test]
fn a_port_without_endpoints_is_rejected_in_filter_and_has_no_nat_chain() {
    let mut no_endpoints = port(&[]);
    no_endpoints.node_port = Some(30080);
    let rules = lines(&render(&[no_endpoints], &config()));
    assert!(rules.contains(&"-A T1-SERVICES -d 10.43.0.9/32 -p tcp -m tcp --dport 80 -m comment --comment \"shop/web:http has no endpoints\" -j REJECT --reject-with icmp-port-unreachable".to_owned()), "{rules:#?}");
    assert!(rules.contains(&"-A T1-EXTERNAL-SERVICES -m addrtype --dst-type LOCAL -p tcp -m tcp --dport 30080 -m comment --comment \"shop/web:http has no endpoints\" -j REJECT --reject-with icmp-port-unreachable".to_owned()), "{rules:#?}");
    assert!(!rules.iter().any(|r| r.contains("-SVC-") || r.contains("DNAT")), "{rules:#?}");
}

#[test]
fn node_ports_masquerade_and_lead_to_the_service_chain() {
    let mut with_node_port = port(&["10.42.0.5:8080"]);
    with_node_port.node_port = Some(30080);
    let svc = Chains("T1").service(&with_node_port);
    let ext = Chains("T1").external(&with_node_port);
    let rules = lines(&render(&[with_node_port], &config()));
    for expected in [
        format!(
            "-A T1-NODEPORTS -p tcp -m tcp --dport 30080 -m comment --comment \"shop/web:http\" -j {ext}"
        ),
        format!(
            "-A {ext} -m comment --comment \"masquerade traffic for shop/web:http external destinations\" -j T1-MARK-MASQ"
        ),
        format!("-A {ext} -j {svc}"),
    ] {
        assert!(rules.contains(&expected), "missing {expected}:\n{rules:#?}");
    }
    assert!(rules.last().is_some_and(|r| r == "COMMIT"));
    let last_rule = &rules[rules.len() - 2];
    assert!(last_rule.ends_with("-j T1-NODEPORTS"), "the node-port jump comes last: {last_rule}");
}

#[test]
fn client_ip_affinity_checks_and_sets_the_recent_list_of_each_endpoint() {
    let mut sticky = port(&["10.42.0.1:80", "10.42.0.2:80"]);
    sticky.affinity_seconds = Some(60);
    let rules = lines(&render(&[sticky.clone()], &config()));
    for endpoint in &sticky.endpoints {
        let sep = Chains("T1").endpoint(&sticky, endpoint);
        let check = format!("-m recent --name {sep} --rcheck --seconds 60 --reap -j {sep}");
        let set = format!(
            "-A {sep} -p tcp -m comment --comment \"shop/web:http\" -m recent --name {sep} --set -m tcp -j DNAT --to-destination {endpoint}"
        );
        assert!(rules.iter().any(|r| r.ends_with(&check)), "missing {check}");
        assert!(rules.contains(&set), "missing {set}");
    }
    // The affinity checks come before the random picks.
    let first_check = rules.iter().position(|r| r.contains("--rcheck")).unwrap();
    let first_pick = rules.iter().position(|r| r.contains("--probability")).unwrap();
    assert!(first_check < first_pick);
}

#[test]
fn without_a_cluster_cidr_all_service_traffic_is_masqueraded() {
    let config = RuleConfig { cluster_cidr: None, ..config() };
    let rules = lines(&render(&[port(&["10.42.0.5:8080"])], &config));
    let mark =
        rules.iter().find(|r| r.contains("-SVC-") && r.ends_with("-j T1-MARK-MASQ")).unwrap();
    assert!(!mark.contains("! -s"), "{mark}");
}

#[test]
fn chains_that_went_away_are_flushed_and_deleted() {
    let before = render(&[port(&["10.42.0.1:80", "10.42.0.2:80"])], &config());
    let after = render(&[port(&["10.42.0.1:80"])], &config());
    let gone =
        Chains("T1").endpoint(&port(&[]), &"10.42.0.2:80".parse::<EndpointText>().unwrap().0);
    let text = after.restore_text(Some(&before));
    assert!(text.contains(&format!(":{gone} - [0:0]\n")), "{text}");
    assert!(text.contains(&format!("-X {gone}\nCOMMIT\n")), "{text}");
    assert_eq!(text.matches("-X ").count(), 1, "{text}");
    assert!(!after.restore_text(Some(&after)).contains("-X "));
    assert_ne!(before, after);
    assert_eq!(after, render(&[port(&["10.42.0.1:80"])], &config()), "rendering is deterministic");
}

#[test]
fn chain_names_fit_iptables_and_carry_the_prefix() {
    let long = RuleConfig { prefix: "ABCDEFGHIJ".into(), ..config() };
    let mut port = port(&["10.42.0.1:80"]);
    port.node_port = Some(30000);
    let text = render(&[port], &long).restore_text(None);
    for chain in text.lines().filter_map(|l| l.strip_prefix(':')) {
        let name = chain.split(' ').next().unwrap();
        assert!(name.len() <= 28, "{name} is too long");
        assert!(name.starts_with("ABCDEFGHIJ-"), "{name}");
    }
}

#[test]
fn prefixes_are_short_upper_case_words() {
    for (prefix, valid) in [
        ("CP1", true),
        ("ABCDEFGHIJ", true),
        ("", false),
        ("ABCDEFGHIJK", false),
        ("cp", false),
        ("C-P", false),
    ] {
        assert_eq!(valid_prefix(prefix), valid, "{prefix:?}");
    }
    assert!(valid_prefix(&prefix_for("node-a")));
    assert_ne!(prefix_for("node-a"), prefix_for("node-b"));
}

#[test]
fn hooks_jump_from_the_built_in_chains_to_the_prefixed_ones() {
    let hooks = hooks("T1");
    let nat_output = hooks.iter().find(|h| h.table == "nat" && h.chain == "OUTPUT").unwrap();
    assert_eq!(
        nat_output.rule,
        ["-m", "comment", "--comment", "capstan proxy T1", "-j", "T1-SERVICES"]
    );
    assert!(hooks.iter().all(|h| h.rule.last().unwrap().starts_with("T1-")));
}

#[test]
fn leftovers_are_the_prefixs_chains_and_the_jumps_into_them() {
    let saved = "# Generated by iptables-save
*nat
:PREROUTING ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:DOCKER - [0:0]
:T1-SERVICES - [0:0]
:T1-SVC-ABC - [0:0]
:T12-SERVICES - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT -m comment --comment \"capstan proxy T1\" -j T1-SERVICES
-A OUTPUT -m comment --comment \"capstan proxy T12\" -j T12-SERVICES
-A OUTPUT -m comment --comment \"say \\\"hi\\\"\" -j T1-SERVICES
-A T1-SERVICES -d 10.43.0.9/32 -j T1-SVC-ABC
COMMIT
";
    let found = leftovers(saved, "T1");
    assert_eq!(found.chains, ["T1-SERVICES", "T1-SVC-ABC"]);
    assert_eq!(
        found.jumps,
        [
            vec!["OUTPUT", "-m", "comment", "--comment", "capstan proxy T1", "-j", "T1-SERVICES"],
            vec!["OUTPUT", "-m", "comment", "--comment", "say \"hi\"", "-j", "T1-SERVICES"],
        ]
    );
    assert_eq!(
        removal_text("nat", &found.chains),
        "*nat\n:T1-SERVICES - [0:0]\n:T1-SVC-ABC - [0:0]\n-X T1-SERVICES\n-X T1-SVC-ABC\nCOMMIT\n"
    );
}
