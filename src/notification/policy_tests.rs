//! The policy's rules, with the time passed in.

use super::*;
use crate::notification::settings::QuietHours;

fn settings() -> Settings {
    Settings {
        coalesce_ms: 5000,
        ..Settings::default()
    }
}

struct Clock {
    start: Instant,
    ms: u64,
    local: NaiveTime,
}

impl Clock {
    fn new() -> Clock {
        Clock {
            start: Instant::now(),
            ms: 0,
            local: NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
        }
    }
    fn now(&self) -> Now {
        Now {
            mono: self.start + Duration::from_millis(self.ms),
            wall_ms: 1_000_000 + self.ms as i64,
            local: self.local + chrono::Duration::milliseconds(self.ms as i64),
        }
    }
    fn advance(&mut self, ms: u64) -> Now {
        self.ms += ms;
        self.now()
    }
}

fn change(project: &str, name: &str, new: Option<DriftKind>) -> Input {
    Input::Drift(Change {
        project: project.into(),
        profile_root: ".claude".into(),
        name: name.into(),
        artifact_type: "skill".into(),
        new,
        message: String::new(),
    })
}

fn shows(out: &[Out]) -> Vec<&Notice> {
    out.iter()
        .filter_map(|o| match o {
            Out::Show(n) => Some(n),
            Out::Close(_) => None,
        })
        .collect()
}

#[test]
fn changes_within_the_window_make_one_notification() {
    let mut c = Clock::new();
    let mut p = Policy::new(settings());
    p.input(
        change("/w/app", "review-skill", Some(DriftKind::Modified)),
        &c.now(),
    );
    c.advance(1000);
    p.input(
        change("/w/app", "hello", Some(DriftKind::Modified)),
        &c.now(),
    );
    p.input(
        change("/w/app", "helper", Some(DriftKind::Outdated)),
        &c.now(),
    );
    assert!(
        p.poll(&c.now()).is_empty(),
        "nothing before the window ends"
    );
    assert_eq!(
        p.next_wake(&c.now()),
        Some(c.start + Duration::from_millis(5000))
    );
    let out = p.poll(&c.advance(4000));
    let n = shows(&out);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].summary, "app: 3 artifacts drifted");
    assert!(
        n[0].body.contains("review-skill modified, hello modified")
            || n[0]
                .body
                .contains("hello modified, helper outdated, review-skill modified")
    );
    assert!(!n[0].replace);
    assert!(p.poll(&c.advance(10_000)).is_empty());
}

#[test]
fn the_open_notification_is_updated_in_place_until_closed() {
    let mut c = Clock::new();
    let mut p = Policy::new(settings());
    p.input(change("/w/app", "a", Some(DriftKind::Modified)), &c.now());
    assert!(!shows(&p.poll(&c.advance(5000)))[0].replace);
    p.input(change("/w/app", "b", Some(DriftKind::Conflict)), &c.now());
    let out = p.poll(&c.advance(5000));
    let n = shows(&out);
    assert!(n[0].replace);
    assert_eq!(n[0].summary, "app: 2 artifacts drifted");
    assert!(n[0].urgent);
    p.closed("/w/app");
    p.input(change("/w/app", "c", Some(DriftKind::Outdated)), &c.now());
    let out = p.poll(&c.advance(5000));
    let n = shows(&out);
    assert!(!n[0].replace);
    assert_eq!(
        n[0].summary, "app: c outdated",
        "a dismissed notification is not repeated"
    );
}

#[test]
fn returning_to_sync_is_silent_and_cancels_what_was_pending() {
    let mut c = Clock::new();
    let mut p = Policy::new(settings());
    p.input(change("/w/app", "a", Some(DriftKind::Modified)), &c.now());
    c.advance(100);
    p.input(change("/w/app", "a", Some(DriftKind::InSync)), &c.now());
    assert!(p.poll(&c.advance(10_000)).is_empty());
    assert_eq!(p.next_wake(&c.now()), None);
    // Shown, then resolved: the notification is closed rather than left saying a lie.
    p.input(change("/w/app", "a", Some(DriftKind::Modified)), &c.now());
    assert_eq!(shows(&p.poll(&c.advance(5000))).len(), 1);
    p.input(change("/w/app", "a", Some(DriftKind::InSync)), &c.now());
    assert_eq!(p.poll(&c.advance(1)), [Out::Close("/w/app".into())]);
    // When asked for, back-in-sync is told.
    let mut s = settings();
    s.kinds.push(Kind::InSync);
    p.reload(s);
    p.input(change("/w/app", "a", Some(DriftKind::InSync)), &c.now());
    assert_eq!(
        shows(&p.poll(&c.advance(5000)))[0].summary,
        "app: a in sync"
    );
}

#[test]
fn kinds_switch_notifications_on_and_off() {
    let mut c = Clock::new();
    let mut s = settings();
    s.kinds = vec![Kind::Conflict];
    let mut p = Policy::new(s);
    p.input(change("/w/app", "a", Some(DriftKind::Modified)), &c.now());
    p.input(change("/w/app", "b", Some(DriftKind::Removed)), &c.now());
    assert!(p.poll(&c.advance(6000)).is_empty());
    p.input(change("/w/app", "a", Some(DriftKind::Conflict)), &c.now());
    assert_eq!(
        shows(&p.poll(&c.advance(6000)))[0].summary,
        "app: a conflict"
    );
}

#[test]
fn a_burst_raises_at_most_the_rate_limit_and_nothing_is_lost() {
    let mut c = Clock::new();
    let mut p = Policy::new(Settings {
        coalesce_ms: 100,
        ..Settings::default()
    });
    let mut notes = Vec::new();
    for i in 0..40 {
        p.input(
            change("/w/app", &format!("s{i}"), Some(DriftKind::Modified)),
            &c.now(),
        );
        let now = c.advance(13);
        for o in p.poll(&now) {
            notes.push(o);
        }
    }
    for _ in 0..20 {
        let now = c.advance(50);
        notes.extend(p.poll(&now));
    }
    let n = shows(&notes);
    assert_eq!(n.len(), 3, "{n:#?}");
    assert!(!n[0].replace && n[1].replace && n[2].replace);
    // The rest waits for the rate window, then comes in one update listing everything.
    let wake = p.next_wake(&c.now()).expect("held changes");
    let late = p.poll(&c.advance((wake - c.now().mono).as_millis() as u64));
    let n = shows(&late);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].summary, "app: 40 artifacts drifted");
}

#[test]
fn muted_projects_are_skipped_until_the_mute_expires() {
    let mut c = Clock::new();
    let mut s = settings();
    s.mute = vec![PathBuf::from("/w/scratch")];
    let mut p = Policy::new(s);
    p.input(
        change("/w/scratch/x", "a", Some(DriftKind::Conflict)),
        &c.now(),
    );
    assert!(
        p.poll(&c.advance(6000)).is_empty(),
        "a folder mute covers projects below it"
    );
    let now = c.now();
    p.set_mutes(vec![Mute {
        path: PathBuf::from("/w/app"),
        until_ms: Some(now.wall_ms + 60_000),
        from_config: false,
    }]);
    p.input(change("/w/app", "a", Some(DriftKind::Conflict)), &c.now());
    assert!(p.poll(&c.advance(6000)).is_empty());
    assert_eq!(p.mutes(c.now().wall_ms).len(), 2);
    c.advance(60_000);
    assert_eq!(p.mutes(c.now().wall_ms).len(), 1, "expired");
    p.input(change("/w/app", "a", Some(DriftKind::Conflict)), &c.now());
    assert_eq!(shows(&p.poll(&c.advance(6000))).len(), 1);
    // Muting a project with an open notification closes it.
    p.set_mutes(vec![Mute {
        path: PathBuf::from("/w/app"),
        until_ms: None,
        from_config: false,
    }]);
    p.input(change("/w/app", "b", Some(DriftKind::Conflict)), &c.now());
    assert_eq!(p.poll(&c.advance(6000)), [Out::Close("/w/app".into())]);
}

#[test]
fn quiet_hours_hold_everything_then_one_summary() {
    let mut c = Clock::new();
    let mut s = settings();
    s.quiet_hours = Some("11:00-12:01".parse::<QuietHours>().unwrap());
    let mut p = Policy::new(s);
    p.input(change("/w/app", "a", Some(DriftKind::Modified)), &c.now());
    p.input(change("/w/lib", "b", Some(DriftKind::Conflict)), &c.now());
    assert!(p.poll(&c.advance(6000)).is_empty());
    p.input(change("/w/app", "c", Some(DriftKind::Outdated)), &c.now());
    assert!(p.poll(&c.advance(6000)).is_empty());
    assert_eq!(p.held(), 3);
    // Woken when the quiet hours end (12:01, 60 s after the 12:00 start).
    let wake = p.next_wake(&c.now()).unwrap();
    assert_eq!(wake, c.start + Duration::from_secs(60));
    let out = p.poll(&c.advance(48_000));
    let n = shows(&out);
    assert_eq!(n.len(), 1, "{out:#?}");
    assert_eq!(n[0].summary, "During quiet hours: 3 changes in 2 projects");
    assert!(
        n[0].body.contains("app: a modified, c outdated") && n[0].body.contains("lib: b conflict")
    );
    assert!(p.poll(&c.advance(60_000)).is_empty(), "one summary only");
}

#[test]
fn many_projects_at_once_become_one_notification() {
    let mut c = Clock::new();
    let mut p = Policy::new(settings());
    for i in 0..5 {
        p.input(
            change(&format!("/w/p{i}"), "a", Some(DriftKind::Modified)),
            &c.now(),
        );
    }
    let out = p.poll(&c.advance(5000));
    let n = shows(&out);
    assert_eq!(n.len(), 1);
    assert_eq!(n[0].summary, "5 projects drifted");
    assert_eq!(n[0].key, MANY_KEY);
    // The next batch of one project opens its own notification.
    p.input(change("/w/p1", "b", Some(DriftKind::Modified)), &c.now());
    let out = p.poll(&c.advance(5000));
    assert!(!shows(&out)[0].replace);
}

#[test]
fn failed_writes_and_conflict_markers_are_told() {
    let mut c = Clock::new();
    let mut p = Policy::new(settings());
    let w = |id, error: Option<&str>, conflicted| {
        Input::Write(WriteOutcome {
            group: "/w/app".into(),
            id,
            operation: "merge".into(),
            target: "/w/app: .claude/skills/a".into(),
            error: error.map(Into::into),
            conflicted,
        })
    };
    p.input(w(1, None, 0), &c.now());
    assert!(
        p.poll(&c.advance(6000)).is_empty(),
        "a clean write is not news"
    );
    p.input(w(2, None, 2), &c.now());
    let out = p.poll(&c.advance(6000));
    let n = shows(&out);
    assert!(
        n[0].body.contains("left conflict markers in 2 files"),
        "{}",
        n[0].body
    );
    p.closed("/w/app");
    p.input(w(3, Some("locked"), 0), &c.now());
    let out = p.poll(&c.advance(6000));
    assert!(
        shows(&out)[0]
            .body
            .contains("merge (operation 3) failed: locked")
    );
}
