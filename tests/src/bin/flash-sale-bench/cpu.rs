//! Where the machine's CPU went during a scenario: the service, the load tool itself,
//! the database, Redis, the broker, everything else, and what stayed idle — read from
//! `/proc` (Linux) before and after. On this 2-core machine the load tool shares the
//! cores with what it measures, so "µs of CPU per request" by process is the figure
//! that says what bounds a rate: when idle is near zero, the rate is the machine's
//! cores divided by the sum of those costs.

/// Clock ticks per second of `/proc` CPU times (`USER_HZ`, 100 on every Linux ABI).
const TICKS_PER_SECOND: f64 = 100.0;

/// The process groups CPU time is split into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Group {
    Service,
    Bench,
    Database,
    Redis,
    Broker,
}

impl Group {
    pub(crate) const ALL: [Self; 5] = [
        Self::Service,
        Self::Bench,
        Self::Database,
        Self::Redis,
        Self::Broker,
    ];

    pub(crate) fn title(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Bench => "load tool",
            Self::Database => "database",
            Self::Redis => "Redis",
            Self::Broker => "broker",
        }
    }

    /// The group of a process by its command name (`/proc/PID/comm`).
    fn of_command(comm: &str) -> Option<Self> {
        match comm {
            "mariadbd" | "mysqld" | "postgres" => Some(Self::Database),
            "redis-server" => Some(Self::Redis),
            c if c.starts_with("rocketmq") => Some(Self::Broker),
            _ => None,
        }
    }
}

/// CPU seconds by group, and the machine's busy and idle seconds (all cores).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Sample {
    groups: [f64; 5],
    machine_busy: f64,
    machine_idle: f64,
}

/// CPU seconds of one process (all its threads), from `/proc/PID/stat`.
fn process_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line; 12 and 13 after the ')'.
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / TICKS_PER_SECOND)
}

/// The machine's busy and idle CPU seconds, from the first line of `/proc/stat`.
fn machine_seconds() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let ticks: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal …
    let idle = ticks.get(3)? + ticks.get(4).unwrap_or(&0.0);
    let busy = ticks.iter().take(8).sum::<f64>() - idle;
    Some((busy / TICKS_PER_SECOND, idle / TICKS_PER_SECOND))
}

impl Sample {
    /// Now, with `service` the service's process id (when known).
    pub(crate) fn take(service: Option<u32>) -> Self {
        let mut sample = Self::default();
        let service = service.map(|pid| pid.to_string());
        let me = std::process::id().to_string();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return sample;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            let group = if Some(pid) == service.as_deref() {
                Some(Group::Service)
            } else if pid == me {
                Some(Group::Bench)
            } else {
                std::fs::read_to_string(entry.path().join("comm"))
                    .ok()
                    .and_then(|comm| Group::of_command(comm.trim()))
            };
            if let Some(group) = group
                && let Some(seconds) = process_seconds(pid)
            {
                sample.groups[group as usize] += seconds;
            }
        }
        if let Some((busy, idle)) = machine_seconds() {
            sample.machine_busy = busy;
            sample.machine_idle = idle;
        }
        sample
    }
}

/// CPU used between two samples, per request of a scenario.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Use {
    /// µs of CPU per request, by [`Group`].
    pub(crate) per_request_us: [f64; 5],
    /// µs per request of every other process (and the kernel's own work).
    pub(crate) other_us: f64,
    /// Share of the machine's CPU time left idle.
    pub(crate) idle: f64,
}

impl Use {
    /// The CPU between `before` and `after`, spread over `requests`.
    pub(crate) fn between(before: &Sample, after: &Sample, requests: u64) -> Self {
        let n = requests.max(1) as f64;
        let mut per_request_us = [0.0; 5];
        for (i, slot) in per_request_us.iter_mut().enumerate() {
            *slot = (after.groups[i] - before.groups[i]).max(0.0) * 1e6 / n;
        }
        let busy = after.machine_busy - before.machine_busy;
        let idle = after.machine_idle - before.machine_idle;
        let grouped: f64 = per_request_us.iter().sum::<f64>() * n / 1e6;
        Self {
            per_request_us,
            other_us: (busy - grouped).max(0.0) * 1e6 / n,
            idle: if busy + idle > 0.0 {
                idle / (busy + idle)
            } else {
                0.0
            },
        }
    }

    /// µs of CPU per request of `group`.
    pub(crate) fn of(&self, group: Group) -> f64 {
        self.per_request_us[group as usize]
    }

    /// µs of CPU per request, every process together.
    pub(crate) fn total_us(&self) -> f64 {
        self.per_request_us.iter().sum::<f64>() + self.other_us
    }

    /// One line: µs per request by group, then the idle share.
    pub(crate) fn describe(&self) -> String {
        let mut parts: Vec<String> = Group::ALL
            .iter()
            .filter(|&&g| self.of(g) >= 0.5)
            .map(|&g| format!("{} {:.0}", g.title(), self.of(g)))
            .collect();
        parts.push(format!("other {:.0}", self.other_us));
        format!(
            "CPU µs/request: {} (total {:.0}); idle {:.0}%",
            parts.join(", "),
            self.total_us(),
            self.idle * 100.0
        )
    }
}
