//! SIGUSR2: the balancer starts its own successor, as nginx does for a
//! binary upgrade: the program at the path it was started by (`argv[0]`,
//! which names the new binary once a package has replaced the file; not
//! `/proc/self/exe`, which still names the old one), with the same flags and
//! `--upgrade-from` its own `--upgrade-socket`. Started by this process, the
//! successor stays in its systemd unit (and tells systemd its pid with
//! `MAINPID=`).

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

use crate::shared::Shared;

/// Starts a successor each time SIGUSR2 is raised. Runs on worker 0 for the
/// life of the process.
pub async fn on_signal(shared: &'static Shared) {
    let mut seen = 0;
    loop {
        seen = shared.events.upgrade.after(seen).await;
        if shared.events.shutdown.count() > 0 {
            return;
        }
        match &shared.config.upgrade_socket {
            Some(socket) => start(socket),
            None => log!(
                warn,
                "upgrade: SIGUSR2 needs --upgrade-socket to hand the listeners over; ignored"
            ),
        }
    }
}

/// The successor's command line: ours, with `--upgrade-from` ours to offer.
pub fn successor_args(args: &[OsString], socket: &Path) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len() + 2);
    let mut skip_value = false;
    for arg in args {
        if skip_value {
            skip_value = false;
            continue;
        }
        if arg == "--upgrade-from" {
            skip_value = true;
            continue;
        }
        if arg.to_string_lossy().starts_with("--upgrade-from=") {
            continue;
        }
        out.push(arg.clone());
    }
    out.push("--upgrade-from".into());
    out.push(socket.as_os_str().to_owned());
    out
}

/// Starts the successor, and a thread that reaps it and says if it failed
/// (then this process goes on serving).
fn start(socket: &Path) {
    let mut argv = std::env::args_os();
    let Some(program) = argv.next() else {
        log!(error, "upgrade: no program path to start a successor from");
        return;
    };
    let args: Vec<OsString> = argv.collect();
    let mut command = Command::new(&program);
    command.args(successor_args(&args, socket));
    match command.spawn() {
        Ok(mut child) => {
            let pid = child.id();
            log!(
                info,
                "upgrade: started {} as process {pid}",
                Path::new(&program).display()
            );
            let _ = std::thread::Builder::new()
                .name("successor".into())
                .spawn(move || match child.wait() {
                    Ok(status) if status.success() => {}
                    Ok(status) => log!(
                        warn,
                        "upgrade: process {pid} exited ({status}); still serving"
                    ),
                    Err(e) => log!(warn, "upgrade: cannot wait for process {pid}: {e}"),
                });
        }
        Err(e) => log!(
            error,
            "upgrade: cannot start {}: {e}; still serving",
            Path::new(&program).display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_successor_takes_over_from_our_socket_with_our_flags() {
        let socket = Path::new("/run/lb/up.sock");
        assert_eq!(
            successor_args(
                &os(&["-p", "80", "--upgrade-socket", "/run/lb/up.sock"]),
                socket
            ),
            os(&[
                "-p",
                "80",
                "--upgrade-socket",
                "/run/lb/up.sock",
                "--upgrade-from",
                "/run/lb/up.sock"
            ])
        );
        // An --upgrade-from of our own (we were a successor) is replaced.
        assert_eq!(
            successor_args(
                &os(&["--upgrade-from", "/old", "-p", "80", "--upgrade-from=/x"]),
                socket
            ),
            os(&["-p", "80", "--upgrade-from", "/run/lb/up.sock"])
        );
    }
}
