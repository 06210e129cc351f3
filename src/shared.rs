//! What all workers share for the life of the process: the configuration,
//! the targets and their bitmaps, the shutdown and reload events, every
//! worker's counters and the access log sink. Made once before the workers
//! start and leaked, so that each holds a `&'static Shared`.

use crate::access_log::Sink;
use crate::balance::HealthBitmap;
use crate::config::defaults::MAX_EJECTION;
use crate::config::Config;
use crate::health::Rules;
use crate::metrics::Metrics;
use crate::signals::Events;
use crate::targets::reload::Reloads;
use crate::targets::Targets;

/// State shared by all workers for the life of the process.
pub struct Shared {
    pub config: Config,
    /// The targets and their health bitmap.
    pub targets: Targets,
    /// Shutdown and reload, raised by signals.
    pub events: Events,
    /// Reloads of `--targets-file` waiting for their turn.
    pub reloads: Reloads,
    /// Every worker's counters, when `--admin` serves them.
    pub metrics: Option<Metrics>,
    /// Where access log lines go, when `--access-log` is on.
    pub access_log: Option<Sink>,
}

impl Shared {
    pub fn new(config: Config, workers: usize) -> std::io::Result<Shared> {
        let rules = Rules {
            rise: config.rise,
            fall: config.fall,
            eject_base: config.eject_time,
            eject_max: MAX_EJECTION,
            slow_start: config.slow_start,
        };
        let targets = Targets::with_rules(
            config.backends.clone(),
            config.file_targets.clone(),
            config.max_targets,
            rules,
        );
        let metrics = config
            .admin
            .map(|_| Metrics::new(workers, targets.capacity()));
        let access_log = config.access_log.as_ref().map(Sink::open).transpose()?;
        Ok(Shared {
            config,
            targets,
            events: Events::default(),
            reloads: Reloads::default(),
            metrics,
            access_log,
        })
    }

    /// The health bitmap.
    #[inline]
    pub fn health(&self) -> &HealthBitmap {
        &self.targets.health
    }
}
