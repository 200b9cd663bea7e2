//! How the `continuum` process holds memory (host/src/process.rs): no transparent huge pages,
//! which had each thread's heap hold 2 MiB pages it barely used (docs/performance.md, "Memory").

use continuum_tests::{cli, plugin_dir, stderr, TestNode};

/// A `/proc/<pid>/…` field's value, e.g. `THP_enabled` of `status`.
fn proc_field(pid: u32, file: &str, field: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/{file}")).expect("read /proc");
    let line =
        text.lines().find(|l| l.starts_with(&format!("{field}:"))).unwrap_or_else(|| panic!("{field} in {file}"));
    line[field.len() + 1..].trim().to_string()
}

#[test]
fn a_serving_node_holds_no_transparent_huge_pages() {
    let node = TestNode::start(|d| {
        let o = cli(d, &["plugin", "install", plugin_dir("text").to_str().unwrap(), "--allow", "all"]);
        assert!(o.status.success(), "{}", stderr(&o));
    });
    // Calls through the node: its call threads allocate and instantiate.
    for _ in 0..20 {
        let o = node.cli(&["run", "text/stats", "--text", "a few words to count"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert_eq!(proc_field(node.pid(), "status", "THP_enabled"), "0", "the node did not turn huge pages off");
    assert_eq!(proc_field(node.pid(), "smaps_rollup", "AnonHugePages"), "0 kB");
}
