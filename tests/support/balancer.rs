//! [`Balancer`]: the `load-balancer` binary as a child process, with its
//! output collected line by line and its listening address read from it.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long the balancer may take to report its address, and how long
/// [`Balancer::run`] lets it run.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// What the balancer prints once it listens; the address follows it.
pub const LISTENING: &str = "listening on ";

/// What the start-up line says just before the admin endpoint's address.
pub const ADMIN_ON: &str = "; admin on ";

/// The binary under test.
pub fn balancer_program() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_load-balancer"))
}

/// A running balancer. Dropping it kills and reaps the process.
pub struct Balancer {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    status: Option<ExitStatus>,
}

/// A finished run of a program.
#[derive(Debug)]
pub struct RunOutput {
    pub status: ExitStatus,
    /// The exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Balancer {
    /// Starts the balancer with `--bind 127.0.0.1 -p 0` and then `args`, and
    /// waits until it reports where it listens.
    pub fn start(args: &[&str]) -> Balancer {
        let mut full = vec!["--bind", "127.0.0.1", "-p", "0"];
        full.extend_from_slice(args);
        Balancer::start_with(balancer_program(), &full)
    }

    /// Starts `program` with exactly `args`; waits ([`START_TIMEOUT`]) for a
    /// line of output containing `listening on ADDR` and takes `ADDR` (up to
    /// the next space). Panics, showing the output, if the program exits
    /// first or the deadline passes.
    pub fn start_with(program: &Path, args: &[&str]) -> Balancer {
        Balancer::start_with_env(program, args, &[])
    }

    /// [`Balancer::start`] with extra environment variables.
    pub fn start_env(env: &[(&str, &str)], args: &[&str]) -> Balancer {
        let mut full = vec!["--bind", "127.0.0.1", "-p", "0"];
        full.extend_from_slice(args);
        Balancer::start_with_env(balancer_program(), &full, env)
    }

    /// [`Balancer::start_with`] with extra environment variables.
    pub fn start_with_env(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Balancer {
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let log = Arc::new(Mutex::new(Vec::new()));
        let readers = [
            collect_lines(child.stderr.take(), &log, "[lb] "),
            collect_lines(child.stdout.take(), &log, "[lb:stdout] "),
        ];
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let addr = listening_addr(&lock(&log));
            if let Some(addr) = addr {
                return Balancer {
                    child,
                    addr,
                    log,
                    status: None,
                };
            }
            if let Some(status) = child.try_wait().expect("try_wait") {
                // Let the readers take in the last lines before showing them.
                let drained = Instant::now() + Duration::from_secs(2);
                super::wait_until(drained, || readers.iter().all(|r| r.is_finished()));
                panic!(
                    "{} {args:?} exited ({status}) before reporting `{LISTENING}ADDR`; output:\n{}",
                    program.display(),
                    lock(&log).join("\n")
                );
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} {args:?} did not report `{LISTENING}ADDR` within {START_TIMEOUT:?}; output:\n{}",
                    program.display(),
                    lock(&log).join("\n")
                );
            }
            thread::sleep(super::POLL_INTERVAL);
        }
    }

    /// Runs the balancer with exactly `args` (nothing prepended) to completion.
    pub fn run(args: &[&str]) -> RunOutput {
        Balancer::run_with(balancer_program(), args)
    }

    /// Runs `program` with `args` to completion, panicking with what it
    /// printed if it takes longer than [`START_TIMEOUT`].
    pub fn run_with(program: &Path, args: &[&str]) -> RunOutput {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let stdout = read_all(child.stdout.take());
        let stderr = read_all(child.stderr.take());
        let deadline = Instant::now() + START_TIMEOUT;
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{} {args:?} still running after {START_TIMEOUT:?}; stderr:\n{}\nstdout:\n{}",
                    program.display(),
                    stderr.join().unwrap_or_default(),
                    stdout.join().unwrap_or_default()
                );
            }
            thread::sleep(super::POLL_INTERVAL);
        };
        RunOutput {
            status,
            code: status.code(),
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        }
    }

    /// Where the balancer listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Every line it printed so far (stderr and stdout, as they arrived).
    pub fn log(&self) -> Vec<String> {
        lock(&self.log).clone()
    }

    /// The start-up line (the one that says where it listens).
    pub fn startup_line(&self) -> String {
        self.log()
            .into_iter()
            .find(|l| l.contains(LISTENING))
            .expect("the harness found the start-up line")
    }

    /// Where the admin endpoint listens (`--admin`), from the start-up line.
    pub fn admin_addr(&self) -> SocketAddr {
        let line = self.startup_line();
        let at = line
            .find(ADMIN_ON)
            .unwrap_or_else(|| panic!("no `{ADMIN_ON}` in the start-up line {line:?}"));
        let token = line[at + ADMIN_ON.len()..]
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .trim_end_matches([',', ';', '.']);
        token
            .parse()
            .unwrap_or_else(|e| panic!("cannot parse the admin address in {line:?}: {e}"))
    }

    pub fn log_contains(&self, needle: &str) -> bool {
        lock(&self.log).iter().any(|line| line.contains(needle))
    }

    /// Waits until a line containing `needle` has been printed.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        super::wait_for(timeout, || self.log_contains(needle))
    }

    /// Asserts a line containing `needle` is printed within `timeout`.
    #[track_caller]
    pub fn expect_log(&self, needle: &str, timeout: Duration) {
        assert!(
            self.wait_for_log(needle, timeout),
            "no `{needle}` in {:#?}",
            self.log()
        );
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the process, which must still be running (not
    /// reaped by [`Balancer::wait_exit`] or [`Balancer::kill`]).
    #[track_caller]
    pub fn signal(&self, signal: libc::c_int) {
        assert!(
            self.status.is_none(),
            "signal {signal} to a balancer that has exited"
        );
        let pid = libc::pid_t::try_from(self.child.id()).expect("pid fits pid_t");
        // SAFETY: kill(2) takes two integers and touches no memory of ours.
        // The child is not reaped yet (`status` is None), so the pid still
        // names it and not some other process.
        let rc = unsafe { libc::kill(pid, signal) };
        assert_eq!(
            rc,
            0,
            "kill({pid}, {signal}): {}",
            std::io::Error::last_os_error()
        );
    }

    /// Sends SIGTERM (graceful shutdown); see [`Balancer::wait_exit`].
    pub fn terminate(&self) {
        if self.status.is_none() {
            self.signal(libc::SIGTERM);
        }
    }

    /// Waits up to `timeout` for the process to exit; its status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if self.status.is_none() {
                self.status = self.child.try_wait().expect("try_wait");
            }
            if self.status.is_some() || Instant::now() >= deadline {
                return self.status;
            }
            thread::sleep(super::POLL_INTERVAL);
        }
    }

    /// Kills (SIGKILL) and reaps the process. Idempotent.
    pub fn kill(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            self.status = self.child.wait().ok();
        }
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The address in the first `listening on ADDR` line, if any.
fn listening_addr(lines: &[String]) -> Option<SocketAddr> {
    let line = lines.iter().find(|line| line.contains(LISTENING))?;
    let rest = &line[line.find(LISTENING)? + LISTENING.len()..];
    let token = rest.split_whitespace().next().unwrap_or_default();
    let token = token.trim_end_matches([',', ';', '.']);
    Some(
        token
            .parse()
            .unwrap_or_else(|e| panic!("cannot parse the address in {line:?}: {e}")),
    )
}

/// Reads `pipe` line by line into `log`, echoing each line to the test's
/// stderr (captured by the test harness, shown on failure).
fn collect_lines(
    pipe: Option<impl Read + Send + 'static>,
    log: &Arc<Mutex<Vec<String>>>,
    prefix: &'static str,
) -> thread::JoinHandle<()> {
    let log = Arc::clone(log);
    thread::spawn(move || {
        let Some(pipe) = pipe else { return };
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line)
                        .trim_end_matches(['\r', '\n'])
                        .to_string();
                    eprintln!("{prefix}{text}");
                    lock(&log).push(text);
                }
            }
        }
    })
}

fn read_all(pipe: Option<impl Read + Send + 'static>) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        String::from_utf8_lossy(&bytes).into_owned()
    })
}
