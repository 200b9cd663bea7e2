//! Test helper: a host process that appends to its event log (the data dir given as the
//! argument) from several threads as fast as it can. Two threads wait for the commit and print
//! each sequence number; two wait only until the entry is durable (in the journal, as a call's
//! audit entry does) and print `durable <thread> <n>`. The crash test kills it with SIGKILL and
//! checks every printed entry survived.

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
                    let subject = format!("thread-{t}");
                    let payload = serde_json::json!({ "n": n, "pad": "x".repeat(64) });
                    let line = if t < 2 {
                        log.append("burst.write", &subject, &payload)?.to_string()
                    } else {
                        log.record("burst.durable", &subject, &payload)?.wait()?;
                        format!("durable {t} {n}")
                    };
                    let mut out = std::io::stdout().lock();
                    writeln!(out, "{line}")?;
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
