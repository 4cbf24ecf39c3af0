//! Who, where and when: the facts every manifest and event records for the audit trail.
//!
//! The store must say which user on which host in which process made each change, and when.
//! None of this needs libc: the user comes from the usual environment variables (falling back to
//! the numeric uid in `/proc/self/status`), the host from `HOSTNAME` or the kernel's
//! `/proc/sys/kernel/hostname`, the time from `SystemTime` formatted as RFC 3339 in UTC by our
//! own few lines of calendar arithmetic (no date crate needed for one format).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Who made a change, from where, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    /// Login name (or `uid:N` when no name is known).
    pub user: String,
    /// Host name.
    pub host: String,
    /// Process id.
    pub pid: u32,
    /// RFC 3339 UTC timestamp with microseconds, e.g. `2026-05-01T12:00:00.123456Z`.
    pub time: String,
}

impl Actor {
    /// The current user, host, process and time.
    pub fn now() -> Self {
        Self {
            user: user(),
            host: host(),
            pid: std::process::id(),
            time: rfc3339(SystemTime::now()),
        }
    }
}

/// The login name of the current user.
pub fn user() -> String {
    for var in ["USER", "LOGNAME", "USERNAME"] {
        if let Ok(v) = std::env::var(var) {
            let v = clean(&v);
            if !v.is_empty() {
                return v;
            }
        }
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines() {
            if let Some(rest) = line.strip_prefix("Uid:") {
                if let Some(uid) = rest.split_whitespace().next() {
                    return format!("uid:{uid}");
                }
            }
        }
    }
    "unknown".to_string()
}

/// The host name.
pub fn host() -> String {
    for var in ["HOSTNAME", "COMPUTERNAME"] {
        if let Ok(v) = std::env::var(var) {
            let v = clean(&v);
            if !v.is_empty() {
                return v;
            }
        }
    }
    for path in ["/proc/sys/kernel/hostname", "/etc/hostname"] {
        if let Ok(v) = std::fs::read_to_string(path) {
            let v = clean(&v);
            if !v.is_empty() {
                return v;
            }
        }
    }
    "unknown".to_string()
}

/// Drops control characters and bounds the length: these strings land in JSON and in tables.
fn clean(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(128)
        .collect()
}

/// Formats a time as RFC 3339 in UTC with microsecond precision.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let micros = d.subsec_micros();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, dd) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{dd:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Seconds since the Unix epoch, as a float (for ages and grace periods).
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// Days since 1970-01-01 to a (year, month, day) civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        // 2000-02-29T12:34:56.789Z, a leap day.
        let t = UNIX_EPOCH + Duration::from_millis(951_827_696_789);
        assert_eq!(rfc3339(t), "2000-02-29T12:34:56.789000Z");
        // 2038-01-19T03:14:08Z, one second past i32 time.
        let t = UNIX_EPOCH + Duration::from_secs(2_147_483_648);
        assert_eq!(rfc3339(t), "2038-01-19T03:14:08.000000Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_767_225_599); // 2025-12-31T23:59:59Z
        assert_eq!(rfc3339(t), "2025-12-31T23:59:59.000000Z");
    }

    #[test]
    fn actor_is_filled_in() {
        let a = Actor::now();
        assert!(!a.user.is_empty() && !a.host.is_empty());
        assert_eq!(a.pid, std::process::id());
        assert!(a.time.ends_with('Z'));
    }
}
