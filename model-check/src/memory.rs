//! The memory budget of a search (`--memory`): how it is set and how it is
//! shared between the visited set and the BFS frontier.
//!
//! A search never asks the kernel for more than the budget on purpose: the
//! frontier moves to disk when it would not fit beside the visited set, the
//! visited set spills to sorted runs on disk past its share (so does a
//! liveness graph's index; its edges are on disk from the start), and a
//! search that still outgrows the budget (a liveness graph's columns, its
//! cycle analysis) stops with verdict *unknown* and a message — instead of
//! being killed.

use serde::Serialize;

#[derive(Clone, Debug, Serialize)]
pub struct Budget {
    pub bytes: u64,
    /// Where the number came from, for the report.
    pub origin: String,
}

impl Budget {
    /// `--memory SIZE` if given, else half of the machine's memory (or of
    /// the cgroup's limit, when lower): the other half is left to the rest
    /// of the machine and to what the budget does not count (allocator
    /// slack, the history cache, code).
    pub fn new(given: Option<u64>) -> Budget {
        if let Some(bytes) = given {
            return Budget {
                bytes,
                origin: "--memory".into(),
            };
        }
        match (physical_memory(), cgroup_limit()) {
            (Some(p), Some(c)) if c < p => Budget {
                bytes: c / 2,
                origin: "half of the cgroup's memory limit".into(),
            },
            (Some(p), _) => Budget {
                bytes: p / 2,
                origin: "half of physical memory".into(),
            },
            (None, _) => Budget {
                bytes: 4 << 30,
                origin: "default (physical memory unknown)".into(),
            },
        }
    }

    /// What is kept back for memory the budget does not track: one eighth,
    /// at least 64 MiB.
    fn reserve(&self) -> u64 {
        (self.bytes / 8).max(64 << 20)
    }

    /// The visited set may take up to five eighths of RAM; past that it
    /// spills to disk (`visited::Table::spill_to_disk`).
    pub fn table_max(&self) -> u64 {
        self.bytes / 8 * 5
    }

    /// RAM the frontier may hold beside a visited set of `table` bytes: a
    /// quarter of the budget, less once the set crowds it.
    pub fn frontier_ram_max(&self, table: u64) -> u64 {
        (self.bytes / 4).min(self.bytes.saturating_sub(self.reserve() + table))
    }
}

/// A `Key:  N kB` field of a /proc file, in bytes (Linux).
pub(crate) fn proc_field(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text
        .lines()
        .find(|l| l.strip_prefix(key).is_some_and(|r| r.starts_with(':')))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The resident set size now.
pub fn resident() -> Option<u64> {
    proc_field("/proc/self/status", "VmRSS")
}

/// Why a search must stop, if the resident memory it added (since the
/// process held `baseline`) exceeds `budget`: the backstop for what the
/// budget's shares do not count (the history cache, a liveness graph,
/// allocator slack). `states` is how many the search holds, for the
/// message.
pub fn over_budget(budget: &Budget, baseline: u64, states: u64) -> Option<String> {
    let used = resident()?.saturating_sub(baseline);
    (used > budget.bytes).then(|| {
        format!(
            "out of memory budget: the search holds {} for {states} states, more than the {} budget ({}); \
             raise --memory or tighten the check's bound",
            crate::search::format_bytes(used),
            crate::search::format_bytes(budget.bytes),
            budget.origin
        )
    })
}

/// `MemTotal` from `/proc/meminfo`.
fn physical_memory() -> Option<u64> {
    proc_field("/proc/meminfo", "MemTotal")
}

/// The cgroup v2 memory limit, if one is set.
fn cgroup_limit() -> Option<u64> {
    std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Parses a size: a number with an optional unit (`K`, `M`, `G`, `T`, with
/// or without `iB`/`B`; all binary) — `4GiB`, `512M`, `1.5G`. A bare
/// number is bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size (examples: 4GiB, 512M, 1.5G)"))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => return Err(format!("`{other}` is not a size unit (use K, M, G or T)")),
    };
    let bytes = n * (1u64 << shift) as f64;
    if !bytes.is_finite() || bytes < (1 << 20) as f64 || bytes > (1u64 << 50) as f64 {
        return Err(format!("memory budget `{s}` is out of range (1 MiB to 1 PiB)"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!(parse_size("4GiB"), Ok(4 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1.5G"), Ok(3 << 29));
        assert_eq!(parse_size("2097152"), Ok(2 << 20));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("1K").is_err(), "below 1 MiB");
    }

    #[test]
    fn shares_add_up_to_the_budget() {
        let b = Budget::new(Some(8 << 30));
        assert_eq!(b.table_max(), 5 << 30);
        assert_eq!(b.frontier_ram_max(0), 2 << 30);
        // A large table squeezes the frontier: table + frontier + reserve
        // never exceed the budget.
        for table in [0, 1 << 30, 5 << 30, 7 << 30, 9 << 30] {
            assert!(table.min(b.table_max()) + b.frontier_ram_max(table) + b.reserve() <= b.bytes);
        }
        assert!(Budget::new(None).bytes > 0);
    }
}
