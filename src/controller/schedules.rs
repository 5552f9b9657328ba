//! The checks' schedule of objects whose last checks changed nothing else,
//! kept in memory in place of a status write ([`crate::plan::Conclusion`]'s
//! `keep_schedule`): the count of checks in the stage, when the last ran and
//! when the next is due. A pass lays it over the status it read, so pacing
//! and attempt counting go on as if it had been written.
//!
//! A kept schedule holds only over the status it was kept over (the same
//! written `lastCheckTime`): once the status is written again, by this
//! controller or anyone, it is dropped. Lost with the process, it costs at
//! most a few early checks: the written schedule is at most a resync old.

use std::collections::HashMap;
use std::sync::Mutex;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::api::MappedDomainStatus;

#[derive(Debug, Clone, PartialEq)]
struct Schedule {
    /// The written status's `lastCheckTime` this schedule goes over.
    over: Option<Time>,
    checks: Option<i32>,
    last_check_time: Option<Time>,
    next_check_time: Option<Time>,
}

/// Kept schedules by object uid.
#[derive(Debug, Default)]
pub struct Schedules(Mutex<HashMap<String, Schedule>>);

impl Schedules {
    /// `written` with the schedule kept for the object laid over it, when
    /// one is kept over this very status; None otherwise (and a schedule
    /// kept over an older status is dropped).
    pub fn overlaid(
        &self,
        uid: &str,
        written: Option<&MappedDomainStatus>,
    ) -> Option<MappedDomainStatus> {
        let written = written?;
        let mut kept = self.0.lock().unwrap();
        let schedule = kept.get(uid)?;
        if schedule.over != written.last_check_time {
            kept.remove(uid);
            return None;
        }
        Some(MappedDomainStatus {
            checks: schedule.checks,
            last_check_time: schedule.last_check_time.clone(),
            next_check_time: schedule.next_check_time.clone(),
            ..written.clone()
        })
    }

    /// Keeps `next`'s schedule in place of writing it over `written`.
    pub fn keep(&self, uid: &str, written: Option<&MappedDomainStatus>, next: &MappedDomainStatus) {
        let schedule = Schedule {
            over: written.and_then(|s| s.last_check_time.clone()),
            checks: next.checks,
            last_check_time: next.last_check_time.clone(),
            next_check_time: next.next_check_time.clone(),
        };
        self.0.lock().unwrap().insert(uid.to_owned(), schedule);
    }

    /// Drops the object's schedule: its status was written, or it is gone.
    pub fn forget(&self, uid: &str) {
        self.0.lock().unwrap().remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn at(secs: i64) -> Option<Time> {
        Some(Time(Timestamp::from_second(1_800_000_000 + secs).unwrap()))
    }

    fn scheduled(checks: i32, last: i64) -> MappedDomainStatus {
        MappedDomainStatus {
            checks: Some(checks),
            last_check_time: at(last),
            next_check_time: at(last + 10),
            ..MappedDomainStatus::default()
        }
    }

    #[test]
    fn a_kept_schedule_holds_over_the_status_it_was_kept_over_only() {
        let schedules = Schedules::default();
        let written = scheduled(1, 0);
        assert_eq!(schedules.overlaid("a", Some(&written)), None);
        schedules.keep("a", Some(&written), &scheduled(2, 10));
        assert_eq!(
            schedules.overlaid("a", Some(&written)),
            Some(scheduled(2, 10))
        );
        assert_eq!(schedules.overlaid("b", Some(&written)), None);
        // written again since: the kept one is dropped
        let rewritten = scheduled(3, 20);
        assert_eq!(schedules.overlaid("a", Some(&rewritten)), None);
        assert_eq!(schedules.overlaid("a", Some(&written)), None, "dropped");
        schedules.keep("a", Some(&written), &scheduled(2, 10));
        schedules.forget("a");
        assert_eq!(schedules.overlaid("a", Some(&written)), None);
    }
}
