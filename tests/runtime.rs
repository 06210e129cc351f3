//! The runtime under pressure: accept errors (EMFILE) back off instead of
//! spinning, and the balancer recovers when descriptors free up.

mod support;
use support::*;

use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

/// CPU time (user + system) the process has used, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

#[test]
fn accept_errors_back_off_instead_of_spinning() {
    let target = Backend::start("a");
    let target_addr = target.addr().to_string();
    let program = balancer_program().to_str().unwrap();
    // A descriptor limit low enough to run out of with a few connections.
    let lb = Balancer::start_with(
        Path::new("/bin/sh"),
        &[
            "-c",
            "ulimit -n 40 && exec \"$0\" \"$@\"",
            program,
            "--bind",
            "127.0.0.1",
            "-p",
            "0",
            "-b",
            &target_addr,
            "--workers",
            "1",
            "--health-interval",
            "60s",
        ],
    );

    // Idle connections until accept fails with EMFILE.
    let mut held = Vec::new();
    let out_of_files = wait_for(Duration::from_secs(10), || {
        for _ in 0..8 {
            if let Ok(s) = TcpStream::connect(lb.addr()) {
                held.push(s);
            }
        }
        lb.log_contains("accept failed")
    });
    assert!(
        out_of_files,
        "no accept error after {} connections",
        held.len()
    );
    assert!(lb.log_contains("Too many open files"), "{:?}", lb.log());

    // While out of descriptors it must not spin: over a second a spinning
    // accept loop burns about 100 ticks; backing off burns next to none.
    let before = cpu_ticks(lb.pid());
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_ticks(lb.pid()) - before;
    assert!(
        used < 30,
        "{used} ticks of CPU in 1 s while out of descriptors"
    );

    // Descriptors free up: it serves again.
    drop(held);
    let served = wait_for(Duration::from_secs(10), || {
        std::panic::catch_unwind(|| get(lb.addr(), "/").status == 200).unwrap_or(false)
    });
    assert!(served, "no answer after descriptors were freed");
}
