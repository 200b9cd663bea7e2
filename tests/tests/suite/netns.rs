//! The network-namespace topologies alone (no nodes): the LAN carries multicast (what mDNS
//! discovery needs), the NATs masquerade towards the relay and keep A and B apart. UDP sockets
//! inside a namespace are Python subprocesses under `ip netns exec`.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Stdio};

use continuum_tests::netns::{lan, two_nats, Netns};
use continuum_tests::stderr;

/// Binds UDP `host:port` (joining the multicast `group` unless empty), prints `ready`, then
/// prints each datagram's source address and echoes it back, until 10 s pass without one.
const LISTEN: &str = r#"
import socket, struct, sys
host, port, group = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port))
if group:
    mreq = struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton("0.0.0.0"))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
s.settimeout(10)
print("ready", flush=True)
try:
    while True:
        data, source = s.recvfrom(1500)
        print(source[0], flush=True)
        s.sendto(data, source)
except socket.timeout:
    pass
"#;

/// Sends one datagram to `ip:port` and prints who echoed it within 2 s, or nothing.
const SEND: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(b"ping", (sys.argv[1], int(sys.argv[2])))
try:
    print(s.recvfrom(1500)[1][0])
except OSError:
    pass
"#;

/// A UDP echo listener running inside a namespace (killed on drop).
struct Listener {
    child: Child,
    lines: BufReader<ChildStdout>,
}

impl Listener {
    /// Listens on `host:port` in `ns` (in the multicast `group` if any), once it is ready.
    fn start(ns: &Netns, host: &str, port: u16, group: Option<&str>) -> Listener {
        let mut child = ns
            .command("python3")
            .args(["-c", LISTEN, host, &port.to_string(), group.unwrap_or("")])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start python3 in the namespace");
        let mut lines = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut ready = String::new();
        lines.read_line(&mut ready).expect("read the listener");
        assert_eq!(ready.trim(), "ready", "the listener in {} did not start", ns.name);
        Listener { child, lines }
    }

    /// The source address of the next datagram it heard (it gives up after 10 s of silence).
    fn next(&mut self) -> Option<String> {
        let mut line = String::new();
        self.lines.read_line(&mut line).expect("read the listener");
        Some(line.trim().to_string()).filter(|l| !l.is_empty())
    }

    /// Stops it; the sources of everything it heard and was not asked about yet.
    fn heard(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut rest = Vec::new();
        while let Some(source) = self.next() {
            rest.push(source);
        }
        rest
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a datagram from `ns` to `ip:port`; who echoed it, if anyone did.
fn send(ns: &Netns, ip: &str, port: u16) -> Option<String> {
    let o = ns.exec(&["python3", "-c", SEND, ip, &port.to_string()]);
    assert!(o.status.success(), "sending from {} failed: {}", ns.name, stderr(&o));
    Some(String::from_utf8_lossy(&o.stdout).trim().to_string()).filter(|s| !s.is_empty())
}

#[test]
fn lan_carries_unicast_and_mdns_multicast_between_hosts() {
    let lan = lan(2);
    let (a, b) = (&lan.hosts[0], &lan.hosts[1]);

    let mut listener = Listener::start(b, "0.0.0.0", 4000, None);
    assert_eq!(send(a, &lan.ips[1], 4000).as_deref(), Some(lan.ips[1].as_str()), "no unicast from A to B");
    assert_eq!(listener.next().as_deref(), Some(lan.ips[0].as_str()));
    drop(listener);

    // mDNS: the group 224.0.0.251, port 5353, through the bridge.
    let mut listener = Listener::start(b, "0.0.0.0", 5353, Some("224.0.0.251"));
    assert_eq!(send(a, "224.0.0.251", 5353).as_deref(), Some(lan.ips[1].as_str()), "no multicast from A to B");
    assert_eq!(listener.next().as_deref(), Some(lan.ips[0].as_str()));
}

#[test]
fn nats_reach_the_relay_masqueraded_with_no_direct_path() {
    let nats = two_nats();

    // Both reach the relay's address, each seen as its NAT's outside address.
    let mut relay = Listener::start(&nats.wan, &nats.relay_ip, 3478, None);
    assert_eq!(
        send(&nats.a, &nats.relay_ip, 3478).as_deref(),
        Some(nats.relay_ip.as_str()),
        "A cannot reach the relay"
    );
    assert_eq!(relay.next().as_deref(), Some("10.99.1.2"), "A's datagram was not masqueraded");
    assert_eq!(
        send(&nats.b, &nats.relay_ip, 3478).as_deref(),
        Some(nats.relay_ip.as_str()),
        "B cannot reach the relay"
    );
    assert_eq!(relay.next().as_deref(), Some("10.99.2.2"), "B's datagram was not masqueraded");
    drop(relay);

    // Neither private address is reachable from the other side, nor is an unopened NAT port.
    let b_side = Listener::start(&nats.b, "0.0.0.0", 4000, None);
    assert_eq!(send(&nats.a, &nats.b_ip, 4000), None, "A reached B's private address");
    assert_eq!(send(&nats.a, "10.99.2.2", 4000), None, "A reached B through its NAT unasked");
    assert_eq!(b_side.heard(), Vec::<String>::new(), "B heard A directly");
    let a_side = Listener::start(&nats.a, "0.0.0.0", 4000, None);
    assert_eq!(send(&nats.b, &nats.a_ip, 4000), None, "B reached A's private address");
    assert_eq!(a_side.heard(), Vec::<String>::new(), "A heard B directly");
}
