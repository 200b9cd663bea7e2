//! Network topologies the tests build for themselves from network namespaces (veth pairs, a
//! bridge, NAT with nftables): the traffic stays inside namespaces the test made. Needs root,
//! iproute2 and nftables; without them the helpers panic rather than let a test pass untested.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Why a namespace helper could not run, for the panic messages.
const NEEDS: &str = "network-namespace tests need root and iproute2 (`ip netns`)";

/// Runs `program args`, panicking (with what the tests need) when it cannot be started.
fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{NEEDS}: cannot run `{program}`: {e}"))
}

/// Runs `program args`, panicking with its stderr (and `hint`) when it fails.
fn run_ok(program: &str, args: &[&str], hint: &str) {
    let o = run(program, args);
    assert!(
        o.status.success(),
        "`{program} {}` failed{hint}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr).trim()
    );
}

/// A network namespace of its own, deleted on drop (the processes in it are their owners' to end).
pub struct Netns {
    /// Its name for `ip netns` (`ct<pid>-<n>-<tag>`).
    pub name: String,
}

impl Netns {
    /// A new namespace with its loopback up; `tag` (short) says what it is in the name.
    pub fn new(tag: &str) -> Netns {
        // Tests run as threads of one process: the pid and a counter keep names unique.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("ct{}-{}-{tag}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        // A namespace already so named was left by a killed run whose pid was ours: stale.
        if std::path::Path::new("/run/netns").join(&name).exists() {
            let _ = run("ip", &["netns", "delete", &name]);
        }
        run_ok("ip", &["netns", "add", &name], &format!(" ({NEEDS})"));
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// Runs `ip -n <name> args`, panicking with its stderr on failure.
    pub fn ip(&self, args: &[&str]) {
        let mut all = vec!["-n", self.name.as_str()];
        all.extend_from_slice(args);
        run_ok("ip", &all, "");
    }

    /// A command running `program` inside the namespace (`ip netns exec <name> program`).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `args` inside the namespace; its output, whether it succeeded or not.
    pub fn exec(&self, args: &[&str]) -> Output {
        let (program, rest) = args.split_first().expect("a command to run in the namespace");
        self.command(program).args(rest).output().unwrap_or_else(|e| panic!("{NEEDS}: cannot run `ip netns exec`: {e}"))
    }

    /// Sets the sysctl `key` (e.g. `net.ipv4.ip_forward`) to `value` inside the namespace.
    pub fn sysctl(&self, key: &str, value: &str) {
        // /proc/sys/net is the opener's namespace's; writing it needs no sysctl binary (procps).
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        let o = self.exec(&["sh", "-c", "printf %s \"$1\" > \"$2\"", "sh", value, &path]);
        assert!(
            o.status.success(),
            "sysctl {key}={value} in {} failed: {}",
            self.name,
            String::from_utf8_lossy(&o.stderr).trim()
        );
    }

    /// Turns IPv4 forwarding on: the namespace routes between its links.
    pub fn forward(&self) {
        self.sysctl("net.ipv4.ip_forward", "1");
    }

    /// Adds the default route through the gateway `via`.
    pub fn default_route(&self, via: &str) {
        self.ip(&["route", "add", "default", "via", via]);
    }

    /// Masquerades what leaves through `out_if` (source NAT to that link's address, as a home
    /// router does), with an nftables nat table inside the namespace.
    pub fn masquerade(&self, out_if: &str) {
        // `add table` and `add chain` are no-ops when they exist: a second link adds a rule.
        let chain = "add chain ip nat postrouting { type nat hook postrouting priority 100 ; }";
        let rule = format!("add rule ip nat postrouting oifname \"{out_if}\" masquerade");
        for cmd in ["add table ip nat", chain, &rule] {
            let o = self.exec(&["nft", cmd]);
            assert!(
                o.status.success(),
                "nft {cmd} in {} failed (NAT topologies need nftables: scripts/system-deps.sh installs it): {}",
                self.name,
                String::from_utf8_lossy(&o.stderr).trim()
            );
        }
    }

    /// Adds the bridge `name` (with the address `cidr`, if any) and brings it up.
    pub fn bridge(&self, name: &str, cidr: Option<&str>) {
        // No multicast snooping: the bridge floods every group to every port, whoever joined.
        self.ip(&["link", "add", name, "type", "bridge", "mcast_snooping", "0"]);
        if let Some(cidr) = cidr {
            self.ip(&["addr", "add", cidr, "dev", name]);
        }
        self.ip(&["link", "set", name, "up"]);
    }

    /// Makes the link `iface` a port of the bridge `bridge` and brings it up.
    pub fn enslave(&self, iface: &str, bridge: &str) {
        self.ip(&["link", "set", iface, "master", bridge]);
        self.ip(&["link", "set", iface, "up"]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting a namespace deletes its veth ends, and with them their peers elsewhere.
        let _ = Command::new("ip").args(["netns", "delete", &self.name]).output();
    }
}

/// Joins `a` and `b` with a veth pair, `a_if` in `a` and `b_if` in `b`, with the addresses
/// `a_cidr` and `b_cidr` (if any), both up.
pub fn link(a: &Netns, a_if: &str, a_cidr: Option<&str>, b: &Netns, b_if: &str, b_cidr: Option<&str>) {
    a.ip(&["link", "add", a_if, "type", "veth", "peer", "name", b_if, "netns", &b.name]);
    for (ns, iface, cidr) in [(a, a_if, a_cidr), (b, b_if, b_cidr)] {
        if let Some(cidr) = cidr {
            ns.ip(&["addr", "add", cidr, "dev", iface]);
        }
        ns.ip(&["link", "set", iface, "up"]);
    }
}

/// Hosts on one Ethernet segment: a switch (bridge) and a namespace per host.
pub struct Lan {
    /// The namespace holding the bridge `br0`.
    pub switch: Netns,
    /// The hosts, each with `eth0` on the bridge.
    pub hosts: Vec<Netns>,
    /// The hosts' addresses (10.77.0.10, .11, …), in the order of `hosts`.
    pub ips: Vec<String>,
}

/// A LAN of `nodes` hosts at 10.77.0.(10+i)/24, multicast (mDNS) flowing between them.
pub fn lan(nodes: usize) -> Lan {
    let switch = Netns::new("sw");
    switch.bridge("br0", None);
    let mut hosts = Vec::new();
    let mut ips = Vec::new();
    for i in 0..nodes {
        let host = Netns::new(&format!("h{i}"));
        let ip = format!("10.77.0.{}", 10 + i);
        let port = format!("p{i}");
        link(&host, "eth0", Some(&format!("{ip}/24")), &switch, &port, None);
        switch.enslave(&port, "br0");
        // Multicast needs a route to leave by; the default route lets a node pick its address.
        host.ip(&["route", "add", "224.0.0.0/4", "dev", "eth0"]);
        host.ip(&["route", "add", "default", "dev", "eth0"]);
        hosts.push(host);
        ips.push(ip);
    }
    Lan { switch, hosts, ips }
}

/// Two hosts behind two NATs, joined by an "internet" where a relay runs.
pub struct Nats {
    /// The internet: 10.99.1.1/24 towards NAT A, 10.99.2.1/24 towards NAT B, routing between.
    pub wan: Netns,
    /// NAT A: 10.99.1.2 outside, 192.168.1.1 inside, masquerading.
    pub nat_a: Netns,
    /// NAT B: 10.99.2.2 outside, 192.168.2.1 inside, masquerading.
    pub nat_b: Netns,
    /// Host A, 192.168.1.2 behind NAT A.
    pub a: Netns,
    /// Host B, 192.168.2.2 behind NAT B.
    pub b: Netns,
    /// Where a relay in `wan` binds: 10.99.1.1.
    pub relay_ip: String,
    /// Host A's private address.
    pub a_ip: String,
    /// Host B's private address.
    pub b_ip: String,
}

/// Hosts A and B each behind its own masquerading NAT, reaching each other only through the
/// internet namespace (no route to either private network there).
pub fn two_nats() -> Nats {
    let wan = Netns::new("wan");
    wan.forward();
    let nat_a = Netns::new("nata");
    let nat_b = Netns::new("natb");
    let a = Netns::new("a");
    let b = Netns::new("b");
    for (nat, host, n) in [(&nat_a, &a, 1), (&nat_b, &b, 2)] {
        link(&wan, &format!("wan{n}"), Some(&format!("10.99.{n}.1/24")), nat, "wan0", Some(&format!("10.99.{n}.2/24")));
        link(nat, "lan0", Some(&format!("192.168.{n}.1/24")), host, "eth0", Some(&format!("192.168.{n}.2/24")));
        nat.forward();
        nat.default_route(&format!("10.99.{n}.1"));
        nat.masquerade("wan0");
        host.default_route(&format!("192.168.{n}.1"));
    }
    Nats {
        wan,
        nat_a,
        nat_b,
        a,
        b,
        relay_ip: "10.99.1.1".into(),
        a_ip: "192.168.1.2".into(),
        b_ip: "192.168.2.2".into(),
    }
}
