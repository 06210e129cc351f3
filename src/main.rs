//! `load-balancer -p <port> -b <host:port> ...`: parse the flags, then hand
//! over to the runtime. Exit status 2 for a command-line mistake, 1 when the
//! balancer cannot start.

use std::process::ExitCode;

use load_balancer::config::{parse_args, usage, Command};

fn main() -> ExitCode {
    match parse_args(std::env::args_os().skip(1)) {
        Ok(Command::Help) => {
            print!("{}", usage());
            ExitCode::SUCCESS
        }
        Ok(Command::Version) => {
            println!("load-balancer {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
        Ok(Command::Run(config)) => match load_balancer::runtime::run(*config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("load-balancer: {e}");
                ExitCode::from(1)
            }
        },
        Err(e) => {
            eprintln!("load-balancer: {e}");
            ExitCode::from(2)
        }
    }
}
