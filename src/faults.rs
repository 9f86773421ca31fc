//! Fault injection for tests: named points where a test build panics or aborts the process
//! when asked, so tests can see what the daemon does when a task dies or the process is
//! killed in the middle of a step.
//!
//! [`point`] does nothing unless the crate is built with the `fault-injection` feature
//! (only test builds enable it, through the package's dev-dependency on itself; a normal or
//! release build compiles every point to nothing) **and** `SKILLMEATD_FAULTS` names the
//! point:
//!
//! ```text
//! SKILLMEATD_FAULTS=live.batch=panic@2,writer.swap=abort
//! ```
//!
//! A comma-separated list of `name=action[@n]`: the action is `panic` (the thread unwinds,
//! as a bug would make it), `abort` (the process sends itself `SIGKILL`: it dies at once,
//! exactly as under `kill -9`), `hang` (the thread never returns, as a step blocked on a
//! file that never answers would), `slow` (the step takes 100 ms longer, as on a loaded
//! disk) or `skip` (an optional capability is treated as missing; see [`skipped`]), and it
//! fires the `n`-th time the point is reached (default: the first; `skip` and `slow` from
//! the `n`-th on). A crash test names a step and a count to stop a write at any
//! step.
//!
//! Points: `live.batch` (each batch of the live worker, the first reconcile included);
//! `history.import` (each archive an import opens); `history.bulk` (each deployment base
//! or first-seen content the history recorder records in the background); the steps of a write (see
//! [`crate::writer`]): `write.staged`, `write.parked`,
//! `write.recorded`, `write.aside`, `write.swapped`, `write.synced`; the steps of an
//! operation (see [`crate::operations`]): `op.reserved`, `op.snapshot`, `op.touched`,
//! `op.committed`, `op.recorded`, `op.finished`. Every write and operation step also counts
//! as the point [`STEP`], so `step=abort@7` stops a write-back at its seventh step,
//! whichever it is. Capabilities: `writer.exchange` (`skip`: swap folders with two renames
//! as where `RENAME_EXCHANGE` is missing).
//!
//! A full disk where a test cannot mount a small tmpfs: while the file named by
//! `SKILLMEATD_FAKE_FULL` exists, every store call fails as on a full disk ([`disk_full`]).

/// The environment variable that arms fault points (test builds only).
pub const ENV: &str = "SKILLMEATD_FAULTS";

/// The point every step of a write-back also counts as.
pub const STEP: &str = "step";

/// The environment variable naming the file whose presence fakes a full disk.
pub const FAKE_FULL_ENV: &str = "SKILLMEATD_FAKE_FULL";

/// Whether a test fakes a full disk now (always `false` outside test builds).
#[inline]
pub fn disk_full() -> bool {
    #[cfg(feature = "fault-injection")]
    {
        std::env::var_os(FAKE_FULL_ENV).is_some_and(|f| std::path::Path::new(&f).exists())
    }
    #[cfg(not(feature = "fault-injection"))]
    false
}

/// Fault point `name`: fires the action `SKILLMEATD_FAULTS` gives it, in test builds.
#[inline]
pub fn point(name: &str) {
    #[cfg(feature = "fault-injection")]
    armed::hit(name);
    #[cfg(not(feature = "fault-injection"))]
    let _ = name;
}

/// A step of a write-back: fault point `name`, and one more hit of [`STEP`].
#[inline]
pub fn step(name: &str) {
    point(name);
    #[cfg(feature = "fault-injection")]
    armed::hit_at(STEP, name);
}

/// Whether a test build was told to treat the optional capability `name` as missing
/// (action `skip`). Always false in other builds.
#[inline]
pub fn skipped(name: &str) -> bool {
    #[cfg(feature = "fault-injection")]
    return armed::skips(name);
    #[cfg(not(feature = "fault-injection"))]
    {
        let _ = name;
        false
    }
}

#[cfg(feature = "fault-injection")]
mod armed {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};

    /// What a point does when it fires.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub(super) enum Action {
        Panic,
        Abort,
        Hang,
        Slow,
        Skip,
    }

    /// The armed points (action, and on which hit it fires), and how often each was hit.
    struct Armed {
        faults: HashMap<String, (Action, u64)>,
        hits: Mutex<HashMap<String, u64>>,
    }

    fn armed() -> &'static Armed {
        static ARMED: OnceLock<Armed> = OnceLock::new();
        ARMED.get_or_init(|| {
            let spec = std::env::var(super::ENV).unwrap_or_default();
            let faults = parse(&spec).unwrap_or_else(|e| panic!("{}: {e}", super::ENV));
            if !faults.is_empty() {
                tracing::warn!(faults = %spec, "fault points armed");
            }
            Armed {
                faults,
                hits: Mutex::new(HashMap::new()),
            }
        })
    }

    pub(super) fn hit(name: &str) {
        hit_at(name, name);
    }

    /// Hits point `name` at the place called `step` (a step's own name, for the log).
    pub(super) fn hit_at(name: &str, step: &str) {
        let armed = armed();
        let Some(&(action, at)) = armed.faults.get(name) else {
            return;
        };
        if action == Action::Skip {
            return;
        }
        let n = {
            let mut hits = armed.hits.lock().unwrap_or_else(|e| e.into_inner());
            let n = hits.entry(name.to_string()).or_insert(0);
            *n += 1;
            *n
        };
        if action == Action::Slow {
            if n >= at {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            return;
        }
        if n != at {
            return;
        }
        tracing::error!(point = name, at = step, hit = n, ?action, "injected fault");
        match action {
            Action::Panic => panic!("injected fault at {name} (hit {n})"),
            Action::Abort => {
                // SIGKILL, exactly what `kill -9` does: no unwinding, no clean-up, no core.
                // SAFETY: kill and getpid have no memory-safety preconditions.
                unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
                std::process::abort()
            }
            Action::Hang => loop {
                std::thread::park();
            },
            Action::Slow => unreachable!("slow points sleep above"),
            Action::Skip => unreachable!("skip points are asked, not hit"),
        }
    }

    /// Whether `name` is armed with `skip` and reached its count (this call included).
    pub(super) fn skips(name: &str) -> bool {
        let armed = armed();
        let Some(&(Action::Skip, at)) = armed.faults.get(name) else {
            return false;
        };
        let mut hits = armed.hits.lock().unwrap_or_else(|e| e.into_inner());
        let n = hits.entry(name.to_string()).or_insert(0);
        *n += 1;
        *n >= at
    }

    /// Reads `name=action[@n],…`.
    pub(super) fn parse(spec: &str) -> Result<HashMap<String, (Action, u64)>, String> {
        let mut out = HashMap::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, rest) = item
                .split_once('=')
                .ok_or_else(|| format!("{item:?}: expected name=action[@n]"))?;
            let (action, at) = match rest.split_once('@') {
                Some((a, n)) => (
                    a,
                    n.parse::<u64>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| format!("{item:?}: @n needs a count from 1"))?,
                ),
                None => (rest, 1),
            };
            let action = match action {
                "panic" => Action::Panic,
                "abort" => Action::Abort,
                "hang" => Action::Hang,
                "slow" => Action::Slow,
                "skip" => Action::Skip,
                other => {
                    return Err(format!(
                        "{item:?}: unknown action {other:?} (panic, abort, hang, slow, skip)"
                    ));
                }
            };
            out.insert(name.to_string(), (action, at));
        }
        Ok(out)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn specs_name_points_actions_and_counts() {
            let f = parse(" live.batch=panic@2, writer.swap=abort ,x=hang,writer.exchange=skip")
                .unwrap();
            assert_eq!(f["live.batch"], (Action::Panic, 2));
            assert_eq!(f["writer.swap"], (Action::Abort, 1));
            assert_eq!(f["x"], (Action::Hang, 1));
            assert_eq!(f["writer.exchange"], (Action::Skip, 1));
            assert!(parse("").unwrap().is_empty());
            assert!(parse("x=explode").is_err());
            assert!(parse("x=panic@0").is_err());
            assert!(parse("x").is_err());
        }
    }
}
