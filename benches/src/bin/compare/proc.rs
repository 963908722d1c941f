//! Readings from /proc: CPU time (the system's, a process's, this process's own), peak RSS and machine facts.
//! The parsers are pure functions over the file text, so that they can be tested without /proc.

use std::time::Duration;

/// Clock ticks per second in everything /proc reports in ticks (USER_HZ; fixed at 100 for user space on Linux,
/// whatever the kernel's own HZ).
pub(crate) const USER_HZ: f64 = 100.0;

/// Busy ticks of the whole machine from the aggregate `cpu` line of /proc/stat: user + nice + system + irq +
/// softirq + steal. Idle and iowait are not busy; guest time is already inside user, so it is not added again.
/// Steal is busy on purpose: on a virtual machine it is the neighbours' load, which slows us just the same.
pub(crate) fn parse_stat_busy(stat: &str) -> Option<u64> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let fields: Vec<u64> = line.split_whitespace().skip(1).map(|f| f.parse().ok()).collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    let at = |i: usize| fields.get(i).copied().unwrap_or(0);
    if fields.len() < 4 {
        return None;
    }
    Some(at(0) + at(1) + at(2) + at(5) + at(6) + at(7))
}

/// utime + stime, in ticks, from the text of `/proc/<pid>/stat` (which already sums all threads of the process,
/// the exited ones included).
pub(crate) fn parse_pid_stat_cpu(stat: &str) -> Option<u64> {
    let rest = after_comm(stat)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of proc(5); the first field after the command name is field 3.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// The fields after the command name, which is in parentheses and may itself hold spaces and parentheses.
fn after_comm(stat: &str) -> Option<&str> {
    stat.get(stat.rfind(')')? + 1..)
}

/// The busy ticks of the machine now.
pub(crate) fn system_busy() -> Option<u64> {
    parse_stat_busy(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// The CPU ticks a process has used so far; `None` once it is gone.
pub(crate) fn pid_cpu(pid: u32) -> Option<u64> {
    parse_pid_stat_cpu(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// This process's CPU time: the run time of its threads from /proc/self/task/*/schedstat (nanoseconds), or the
/// coarse utime + stime ticks when per-thread figures are not there. Threads that already exited are missing
/// from the per-thread sum, which is why the child keeps its worker threads alive until its window is read.
pub(crate) fn self_cpu_time() -> Option<Duration> {
    let threads = std::fs::read_dir("/proc/self/task").ok().map(|dir| {
        dir.filter_map(Result::ok)
            .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
            .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .sum::<u64>()
    });
    if let Some(ns) = threads.filter(|&ns| ns > 0) {
        return Some(Duration::from_nanos(ns));
    }
    let ticks = pid_cpu(std::process::id())?;
    Some(Duration::from_secs_f64(ticks as f64 / USER_HZ))
}

/// The value in KiB of a `Key:   1234 kB` line of `/proc/<pid>/status`.
pub(crate) fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.strip_prefix(key).is_some_and(|r| r.starts_with(':')))?;
    line[key.len() + 1..].split_whitespace().next()?.parse().ok()
}

/// Peak resident set of this process so far (VmHWM), in KiB.
pub(crate) fn peak_rss_kib() -> Option<u64> {
    parse_status_kib(&std::fs::read_to_string("/proc/self/status").ok()?, "VmHWM")
}

/// Facts about the machine for the report: CPUs, model and kernel.
#[derive(Debug, Clone)]
pub(crate) struct Machine {
    /// CPUs this process may use.
    pub(crate) nproc: usize,
    /// The first `model name` of /proc/cpuinfo.
    pub(crate) model: String,
    /// The kernel release.
    pub(crate) kernel: String,
}

impl Machine {
    /// Reads the facts; what cannot be read is "unknown".
    pub(crate) fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            model: parse_model_name(&cpuinfo).unwrap_or_else(|| "unknown".into()),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .map_or_else(|_| "unknown".into(), |k| k.trim().to_owned()),
        }
    }
}

/// The first `model name` in the text of /proc/cpuinfo.
fn parse_model_name(cpuinfo: &str) -> Option<String> {
    let line = cpuinfo.lines().find(|l| l.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  88814 7 10078 93022 746 3 173 356 11 0\n\
                        cpu0 43386 0 4901 47838 205 0 71 177 0 0\n\
                        intr 1 2 3\n";

    #[test]
    fn busy_is_user_nice_system_irq_softirq_steal() {
        assert_eq!(parse_stat_busy(STAT), Some(88814 + 7 + 10078 + 3 + 173 + 356));
    }

    #[test]
    fn busy_reads_short_old_lines_and_rejects_garbage() {
        assert_eq!(parse_stat_busy("cpu  10 1 2 100\n"), Some(13));
        assert_eq!(parse_stat_busy("cpu0 1 2 3 4\n"), None);
        assert_eq!(parse_stat_busy("cpu  1 x 3 4\n"), None);
        assert_eq!(parse_stat_busy("cpu  1 2\n"), None);
    }

    #[test]
    fn pid_stat_sums_utime_and_stime_past_an_odd_command_name() {
        let stat = "4242 (we ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 3 0 1000 0 0";
        assert_eq!(parse_pid_stat_cpu(stat), Some(325));
        assert_eq!(parse_pid_stat_cpu("4242 (x) S 1"), None);
    }

    #[test]
    fn status_values_by_exact_key() {
        let status = "Name:\tcompare\nVmHWMX:\t1 kB\nVmHWM:\t   51234 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(51234));
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(100));
        assert_eq!(parse_status_kib(status, "VmPeak"), None);
    }

    #[test]
    fn model_name_is_the_first() {
        let info = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: other\n";
        assert_eq!(parse_model_name(info).as_deref(), Some("AMD EPYC 7B13"));
    }
}
