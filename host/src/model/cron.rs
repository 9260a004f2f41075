//! Cron expressions, in UTC: when a schedule fires.
//!
//! Five fields, `minute hour day-of-month month day-of-week`, each `*`, a
//! number, a range `a-b`, a step `*/n` or `a-b/n`, or a list of those
//! (`1,15,30-40/5`). Months and weekdays may be named (`jan`, `mon`);
//! Sunday is 0 or 7. When both day fields are restricted a day matches
//! either, as in classic cron. `@hourly`, `@daily`, `@weekly`, `@monthly`
//! and `@yearly` are shorthands. Plain data and arithmetic: no clock is
//! read here.

use super::Millis;

/// A parsed cron expression.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    days_restricted: bool,
    weekdays_restricted: bool,
}

/// Why a cron expression was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid cron expression `{expression}`: {reason}")]
pub struct CronError {
    pub expression: String,
    pub reason: String,
}

const MINUTE_MS: Millis = 60_000;
const DAY_MS: Millis = 86_400_000;
/// How far ahead a next time is looked for (an expression such as
/// `0 0 31 2 *` never matches).
const SEARCH_DAYS: i64 = 366 * 5;

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Cron {
    pub fn parse(expression: &str) -> Result<Self, CronError> {
        let fail = |reason: String| CronError {
            expression: expression.to_string(),
            reason,
        };
        let expanded = match expression.trim() {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let [minute, hour, day, month, weekday] = fields[..] else {
            return Err(fail(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
                fields.len()
            )));
        };
        let minutes = field(minute, 0, 59, &[]).map_err(|r| fail(format!("minute: {r}")))?;
        let hours = field(hour, 0, 23, &[]).map_err(|r| fail(format!("hour: {r}")))?;
        let days = field(day, 1, 31, &[]).map_err(|r| fail(format!("day of month: {r}")))?;
        let months = field(month, 1, 12, &MONTHS).map_err(|r| fail(format!("month: {r}")))?;
        let mut weekdays =
            field(weekday, 0, 7, &WEEKDAYS).map_err(|r| fail(format!("day of week: {r}")))?;
        if weekdays & (1 << 7) != 0 {
            weekdays |= 1; // 7 is Sunday too
        }
        Ok(Self {
            minutes,
            hours: hours as u32,
            days: days as u32,
            months: months as u16,
            weekdays: (weekdays & 0x7f) as u8,
            days_restricted: day != "*",
            weekdays_restricted: weekday != "*",
        })
    }

    /// The first time strictly after `after` (ms since the epoch, UTC) that
    /// the expression matches, on a whole minute; `None` if it matches no
    /// time in the next five years.
    pub fn next_after(&self, after: Millis) -> Option<Millis> {
        let mut t = (after / MINUTE_MS + 1) * MINUTE_MS;
        let last_day = (after / DAY_MS) as i64 + SEARCH_DAYS;
        while ((t / DAY_MS) as i64) <= last_day {
            let day_number = (t / DAY_MS) as i64;
            let (_, month, day) = civil_from_days(day_number);
            let weekday = (day_number + 4).rem_euclid(7) as u32; // 1970-01-01 was a Thursday
            let day_start = day_number as u64 * DAY_MS;
            if !self.day_matches(month, day, weekday) {
                t = day_start + DAY_MS;
                continue;
            }
            let minute_of_day = (t - day_start) / MINUTE_MS;
            let (hour, minute) = ((minute_of_day / 60) as u32, minute_of_day % 60);
            if self.hours & (1 << hour) == 0 {
                t = day_start + u64::from(hour + 1) * 60 * MINUTE_MS;
                continue;
            }
            if self.minutes & (1 << minute) == 0 {
                t += MINUTE_MS;
                continue;
            }
            return Some(t);
        }
        None
    }

    fn day_matches(&self, month: u32, day: u32, weekday: u32) -> bool {
        if self.months & (1 << month) == 0 {
            return false;
        }
        let by_day = self.days & (1 << day) != 0;
        let by_weekday = self.weekdays & (1 << weekday) != 0;
        match (self.days_restricted, self.weekdays_restricted) {
            (true, true) => by_day || by_weekday,
            (true, false) => by_day,
            (false, true) => by_weekday,
            (false, false) => true,
        }
    }
}

/// The values one field allows, as bits (bit `n` = value `n`).
fn field(text: &str, min: u32, max: u32, names: &[&str]) -> Result<u64, String> {
    let mut bits = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step
                    .parse()
                    .map_err(|_| format!("`{step}` is not a step"))?;
                if step == 0 {
                    return Err("a step of 0".into());
                }
                (range, step)
            }
            None => (part, 1),
        };
        let (low, high) = if range == "*" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, names, min)?, value(b, names, min)?)
        } else {
            let v = value(range, names, min)?;
            // `5/15` means from 5 to the end, every 15.
            (v, if part.contains('/') { max } else { v })
        };
        if low < min || high > max || low > high {
            return Err(format!("`{part}` is outside {min}-{max}"));
        }
        let mut v = low;
        while v <= high {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok(bits)
}

fn value(text: &str, names: &[&str], offset: u32) -> Result<u32, String> {
    if let Ok(v) = text.parse::<u32>() {
        return Ok(v);
    }
    let lower = text.to_ascii_lowercase();
    names
        .iter()
        .position(|n| *n == lower)
        .map(|i| i as u32 + offset)
        .ok_or_else(|| format!("`{text}` is not a number"))
}

/// (year, month 1-12, day 1-31) of day `z` since 1970-01-01 (Howard
/// Hinnant's civil-from-days).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Milliseconds of a UTC date and time, for the tests.
    fn at(y: i64, mo: u32, d: u32, h: u64, mi: u64) -> Millis {
        // days_from_civil, the inverse of civil_from_days.
        let y = if mo <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y.rem_euclid(400);
        let mp = if mo > 2 { mo - 3 } else { mo + 9 } as i64;
        let doy = (153 * mp + 2) / 5 + d as i64 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days as u64 * DAY_MS + (h * 60 + mi) * MINUTE_MS
    }

    fn next(expr: &str, from: Millis) -> Millis {
        Cron::parse(expr).unwrap().next_after(from).unwrap()
    }

    #[test]
    fn every_minute_and_steps() {
        let t = at(2026, 12, 7, 10, 30);
        assert_eq!(next("* * * * *", t), t + MINUTE_MS);
        assert_eq!(next("* * * * *", t + 1), t + MINUTE_MS);
        assert_eq!(next("*/15 * * * *", t), at(2026, 12, 7, 10, 45));
        assert_eq!(next("5/20 * * * *", t), at(2026, 12, 7, 10, 45));
        assert_eq!(next("0 */6 * * *", t), at(2026, 12, 7, 12, 0));
    }

    #[test]
    fn days_months_and_weekdays() {
        let t = at(2026, 12, 7, 10, 30); // a Monday
        assert_eq!(next("0 9 * * mon", t), at(2026, 12, 14, 9, 0));
        assert_eq!(next("0 9 * * 0", t), at(2026, 12, 13, 9, 0));
        assert_eq!(next("0 9 * * 7", t), at(2026, 12, 13, 9, 0));
        assert_eq!(next("30 8 1 * *", t), at(2027, 1, 1, 8, 30));
        assert_eq!(next("0 0 29 feb *", t), at(2028, 2, 29, 0, 0));
        assert_eq!(next("@monthly", t), at(2027, 1, 1, 0, 0));
        // Both day fields restricted: either matches.
        assert_eq!(next("0 0 25 * fri", t), at(2026, 12, 11, 0, 0));
    }

    #[test]
    fn impossible_dates_have_no_next_time() {
        let cron = Cron::parse("0 0 31 2 *").unwrap();
        assert_eq!(cron.next_after(at(2026, 1, 1, 0, 0)), None);
    }

    #[test]
    fn malformed_expressions_are_refused_with_the_field_named() {
        for (expr, says) in [
            ("* * * *", "expected 5 fields"),
            ("60 * * * *", "minute"),
            ("* 24 * * *", "hour"),
            ("* * 0 * *", "day of month"),
            ("* * * 13 *", "month"),
            ("* * * * 8", "day of week"),
            ("*/0 * * * *", "step of 0"),
            ("a * * * *", "not a number"),
            ("5-1 * * * *", "outside"),
        ] {
            let e = Cron::parse(expr).unwrap_err();
            assert!(e.to_string().contains(says), "{expr}: {e}");
        }
    }
}
