//! Test helper: a host process that appends to its event log (the data dir given as the
//! argument) from several threads as fast as it can, printing each sequence number once its
//! entry is committed. The crash test kills it with SIGKILL and checks every printed entry
//! survived.

use std::io::Write;

use continuum::paths::DataDir;
use continuum::Host;

fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).expect("usage: log_burst <data dir>");
    let host = Host::open(DataDir::at(dir.into())?)?;
    let log = host.core().log().clone();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let log = log.clone();
            std::thread::spawn(move || -> anyhow::Result<()> {
                for n in 0u64.. {
                    let seq = log.append(
                        "burst.write",
                        &format!("thread-{t}"),
                        &serde_json::json!({ "n": n, "pad": "x".repeat(64) }),
                    )?;
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "{seq}")?;
                    out.flush()?;
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().expect("writer thread")?;
    }
    Ok(())
}
