//! The machine a report was measured on, in one line: CPU model, cores, memory, kernel.

/// A one-line description, from `/proc`; what cannot be read is left out.
pub fn describe() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name").and_then(|rest| rest.split_once(':')).map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(String::new(), |kib| format!(", {:.0} GiB memory", kib / (1024.0 * 1024.0)));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map_or(String::new(), |k| format!(", Linux {}", k.trim()));
    format!("{model}, {cores} cores{memory_gib}{kernel}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn it_names_the_cores() {
        let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
        assert!(super::describe().contains(&format!(", {cores} cores")), "{}", super::describe());
    }
}
