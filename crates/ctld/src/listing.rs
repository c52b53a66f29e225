//! Text output of `tessera ctl list-tablets`, byte-for-byte the line format
//! Vitess's clients print so scripts written against them (awk on the
//! columns) keep working.

use tessera_topo::Tablet;

/// What Vitess prints for a missing keyspace, shard or term start time.
const NULL: &str = "<null>";

/// `alias keyspace shard type agent-addr mysql-addr [] term-start`, e.g.
/// `zone1-0000000100 commerce 0 primary 127.0.0.1:15100 127.0.0.1:17100 [] 2024-05-02T11:48:50Z`.
/// `primary_term_start_ms` is the start of the tablet's term as primary;
/// None (or 0) prints `<null>` as Vitess does for every non-primary.
pub fn tablet_line(tablet: &Tablet, primary_term_start_ms: Option<u64>) -> String {
    let or_null = |s: &str| {
        if s.is_empty() {
            NULL.to_string()
        } else {
            s.to_string()
        }
    };
    let term_start = match primary_term_start_ms {
        Some(ms) if ms >= 1000 => rfc3339_utc(ms / 1000),
        _ => NULL.to_string(),
    };
    // Tablet records carry no tags yet; the column stays for awk compatibility.
    format!(
        "{} {} {} {} {} {} [] {}",
        tablet.alias,
        or_null(&tablet.keyspace),
        or_null(&tablet.shard),
        tablet.tablet_type,
        or_null(&tablet.agent_addr),
        tablet.mysql_addr(),
        term_start
    )
}

/// Seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339_utc(unix_seconds: u64) -> String {
    let days = unix_seconds / 86_400;
    let secs_of_day = unix_seconds % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    )
}

/// Gregorian date of a day count since 1970-01-01, by counting whole
/// 400-year eras (146 097 days each) and then years within the era, with
/// years starting in March so the leap day falls at the end.
fn civil_from_days(days_since_epoch: u64) -> (u64, u64, u64) {
    // Shift the epoch to 0000-03-01 so eras and years start after a leap day.
    let z = days_since_epoch + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_topo::{TabletAlias, TabletType};

    fn tablet(uid: u32, tablet_type: TabletType) -> Tablet {
        Tablet {
            format: 1,
            alias: TabletAlias::new("zone1", uid),
            hostname: "localhost".into(),
            keyspace: "commerce".into(),
            shard: "0".into(),
            tablet_type,
            mysql_host: "127.0.0.1".into(),
            mysql_port: 17000 + uid as u16,
            agent_addr: format!("127.0.0.1:{}", 15000 + uid),
            db_name: "vt_commerce".into(),
            primary_term: 0,
            needs_reseed: false,
        }
    }

    #[test]
    fn formats_like_vitess() {
        assert_eq!(
            tablet_line(&tablet(100, TabletType::Primary), Some(1_714_650_530_641)),
            "zone1-0000000100 commerce 0 primary 127.0.0.1:15100 127.0.0.1:17100 [] 2024-05-02T11:48:50Z"
        );
        assert_eq!(
            tablet_line(&tablet(101, TabletType::Replica), None),
            "zone1-0000000101 commerce 0 replica 127.0.0.1:15101 127.0.0.1:17101 [] <null>"
        );
        let mut unassigned = tablet(102, TabletType::Spare);
        unassigned.keyspace.clear();
        unassigned.shard.clear();
        assert_eq!(
            tablet_line(&unassigned, Some(0)),
            "zone1-0000000102 <null> <null> spare 127.0.0.1:15102 127.0.0.1:17102 [] <null>"
        );
    }

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_utc(1_695_919_069), "2023-09-28T16:37:49Z");
        assert_eq!(rfc3339_utc(4_102_444_799), "2099-12-31T23:59:59Z");
        assert_eq!(rfc3339_utc(1_709_251_199), "2024-02-29T23:59:59Z");
    }
}
