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

/// Starts the balancer through `wrapper` (a command that ends by running
/// its arguments), listening on 127.0.0.1 and a free port.
fn start_behind(wrapper: &[&str], args: &[&str]) -> Balancer {
    let mut full: Vec<&str> = wrapper[1..].to_vec();
    full.push(balancer_program().to_str().unwrap());
    full.extend(["--bind", "127.0.0.1", "-p", "0"]);
    full.extend_from_slice(args);
    Balancer::start_with(Path::new(wrapper[0]), &full)
}

/// Sets a running process's open file limit (soft and hard).
fn set_open_files(pid: u32, limit: u64) {
    let lim = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: prlimit reads `lim`, a valid local, and writes nothing (the
    // old-limit pointer is null); `pid` is our child, not yet reaped.
    let rc = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &lim,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// The soft and hard "Max open files" of a process.
fn open_files(pid: u32) -> (String, String) {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    (fields[3].to_string(), fields[4].to_string())
}

#[test]
fn accept_errors_back_off_instead_of_spinning() {
    let target = Backend::start("a");
    let lb = start_balancer(&[&target], &[]);
    // A descriptor limit low enough to run out of with a few connections,
    // set once it runs (at start it would have fitted its cap under it).
    set_open_files(lb.pid(), 40);

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

/// CPUs in a `Cpus_allowed_list` such as `0-3,6`.
fn cpu_list(text: &str) -> Vec<usize> {
    text.trim()
        .split(',')
        .flat_map(|part| match part.split_once('-') {
            Some((a, b)) => (a.parse().unwrap()..=b.parse().unwrap()).collect::<Vec<usize>>(),
            None => vec![part.parse().unwrap()],
        })
        .collect()
}

/// The CPUs a thread of `pid` may run on (`tid == pid`: the main thread).
fn allowed_cpus(pid: u32, tid: &str) -> Vec<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("Cpus_allowed_list:"))
        .unwrap();
    cpu_list(line.split_once(':').unwrap().1)
}

/// (thread name, CPUs it may run on) for every thread named `worker-N`.
fn workers(pid: u32) -> Vec<(String, Vec<usize>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let tid = entry.unwrap().file_name().into_string().unwrap();
        let comm = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).unwrap();
        if comm.starts_with("worker-") {
            found.push((comm.trim().to_string(), allowed_cpus(pid, &tid)));
        }
    }
    found.sort();
    found
}

#[test]
fn pins_each_worker_to_one_core() {
    let target = Backend::start("a");
    let lb = start_balancer(&[&target], &["--workers", "2"]);
    let allowed = allowed_cpus(lb.pid(), &lb.pid().to_string());
    let found = workers(lb.pid());
    assert_eq!(found.len(), 2, "{found:?}");
    for (i, (name, cpus)) in found.iter().enumerate() {
        assert_eq!(name, &format!("worker-{i}"));
        assert_eq!(
            cpus,
            &vec![allowed[i % allowed.len()]],
            "{name} pinned to {cpus:?}"
        );
    }
}

#[test]
fn runs_one_worker_per_core_it_may_use_by_default() {
    let target = Backend::start("a");
    let addr = target.addr().to_string();
    let lb = Balancer::start(&["-b", &addr]);
    let cores = allowed_cpus(lb.pid(), &lb.pid().to_string()).len();
    assert!(
        lb.log_contains(&format!("with {cores} workers")),
        "{:?}",
        lb.log()
    );
    assert_eq!(workers(lb.pid()).len(), cores);

    // Under `taskset -c 0` only one core is allowed: one worker.
    let pinned = start_behind(&["taskset", "-c", "0"], &["-b", &addr]);
    assert!(pinned.log_contains("with 1 workers"), "{:?}", pinned.log());
}

#[test]
fn listens_with_a_backlog_well_above_1024() {
    let target = Backend::start("a");
    let lb = start_balancer(&[&target], &[]);
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // For a listening socket, `ss` shows the backlog as Send-Q.
    let out = std::process::Command::new("ss")
        .args(["-ltnH", &format!("sport = :{}", lb.addr().port())])
        .output()
        .expect("ss (iproute2) is needed for this test");
    let text = String::from_utf8_lossy(&out.stdout);
    let backlog: u32 = text
        .split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("no listener in {text:?}"))
        .parse()
        .unwrap();
    assert_eq!(backlog, somaxconn.min(65_535), "ss says: {text}");
}

#[test]
fn raises_the_soft_open_file_limit_to_the_hard_one() {
    let target = Backend::start("a");
    let target_addr = target.addr().to_string();
    let lb = start_behind(
        &["/bin/sh", "-c", "ulimit -S -n 256 && exec \"$0\" \"$@\""],
        &["-b", &target_addr, "--workers", "1"],
    );
    let (soft, hard) = open_files(lb.pid());
    assert_eq!(soft, hard, "soft limit {soft} left below the hard {hard}");
    assert_ne!(soft, "256");
}

#[test]
fn lowers_max_connections_to_fit_the_open_file_limit_and_says_so() {
    let target = Backend::start("a");
    let target_addr = target.addr().to_string();
    let lb = start_behind(
        &["/bin/sh", "-c", "ulimit -n 200 && exec \"$0\" \"$@\""],
        &[
            "-b",
            &target_addr,
            "--workers",
            "1",
            "--health-interval",
            "60s",
        ],
    );
    // 200 descriptors, 64 kept aside, 128 pooled connections (at most half
    // of the rest, 68), three per client connection: (200 - 64 - 68) / 3.
    let line = lb.startup_line();
    assert!(
        line.contains("--max-connections lowered to 22 to fit the open file limit (200)"),
        "{line}"
    );
    let mut clients: Vec<Client> = (0..22).map(|_| Client::connect(lb.addr())).collect();
    for c in &mut clients {
        assert_eq!(c.request("GET", "/", &[], b"").status, 200);
    }
    let r = get(lb.addr(), "/");
    assert_eq!(r.status, 503, "the 23rd connection: {r:?}");
}
