//! Crash tests on the real binaries: the daemon is killed (`SIGKILL`, through the fault
//! point `step`, which every step of a write-back reaches) at each step of sync pull, sync
//! push, merge, rollback (one artifact, a whole project, a whole collection) and undo in
//! turn, then started again. After every kill the files must be whole and either as they
//! were (the operation was put back) or as the operation leaves them (it had committed,
//! and `smctl undo` then brings the user's content back); no staging or parked copy may
//! remain; and `smctl audit` must say `interrupted`, unless the kill came after the
//! operation's outcome was recorded.

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Duration;

use crate::common::world::{World, edit, files};
use crate::common::{Daemon, skillmeatd_bin};

/// Everything a write-back may touch: the project, the collections, the rollback audit
/// (label → bytes), lock files aside.
fn state(w: &World) -> Vec<(String, Vec<u8>)> {
    let home = &w.env.skillmeat_home;
    let mut out = Vec::new();
    for (label, dir) in [
        ("project", w.project.clone()),
        ("collections", home.join("collections")),
        ("audit", home.join("audit")),
    ] {
        if dir.is_dir() {
            out.extend(
                files(&dir)
                    .into_iter()
                    .map(|(p, b)| (format!("{label}/{p}"), b)),
            );
        }
    }
    out
}

/// The artifacts in `state` (bookkeeping files carry timestamps that differ run to run).
fn artifacts(state: &[(String, Vec<u8>)]) -> Vec<(String, Vec<u8>)> {
    state
        .iter()
        .filter(|(p, _)| {
            !p.starts_with("audit/")
                && !p.ends_with(".skillmeat-deployed.toml")
                && !p.ends_with("collection.lock")
        })
        .cloned()
        .collect()
}

/// Our staging and parking names left anywhere the write-backs write.
fn leftovers(w: &World) -> Vec<String> {
    let home = &w.env.skillmeat_home;
    let mut out = Vec::new();
    for dir in [
        w.project.clone(),
        home.join("collections"),
        home.join("audit"),
    ] {
        for e in walkdir::WalkDir::new(&dir)
            .into_iter()
            .filter_map(Result::ok)
        {
            let name = e.file_name().to_string_lossy();
            if name.contains(".skillmeatd-") {
                out.push(e.path().display().to_string());
            }
        }
    }
    out
}

/// Starts the daemon armed to kill itself at the `n`-th write-back step.
fn armed_daemon(w: &World, n: u32) -> Daemon {
    let mut cmd = w.env.command(&skillmeatd_bin());
    cmd.env("SKILLMEATD_FAULTS", format!("step=abort@{n}"));
    w.env
        .daemon_cmd(cmd, &[], &w.env.socket, &format!("armed-{n}.log"))
}

/// The step the armed daemon died at, from its log.
fn died_at(log: &str) -> String {
    let line = log
        .lines()
        .find(|l| l.contains("injected fault"))
        .unwrap_or_else(|| panic!("no injected fault in the log:\n{log}"));
    let at = line.split("at=").nth(1).expect("the step is logged");
    at.split_whitespace()
        .next()
        .unwrap()
        .trim_matches('"')
        .to_string()
}

/// One write-back under test: `prep` brings a fresh world (daemon running, project
/// registered) to the state the operation starts from and returns its smctl arguments.
struct Case {
    name: &'static str,
    world: fn() -> World,
    prep: fn(&World) -> Vec<String>,
}

/// Kills the daemon at every step of `case` in turn; returns how many steps there were.
fn kill_at_every_step(case: &Case) -> u32 {
    // What the operation leaves when nothing goes wrong.
    let reference = {
        let w = (case.world)();
        let _d = w.start();
        let args = (case.prep)(&w);
        let r = run(&w, &args);
        assert!(
            r.0,
            "{}: the operation fails without a fault: {}",
            case.name, r.1
        );
        artifacts(&state(&w))
    };
    for n in 1.. {
        let w = (case.world)();
        let args = {
            let _d = w.start();
            (case.prep)(&w)
        };
        let before = state(&w);
        let mut armed = armed_daemon(&w, n);
        let (ok, answer) = run(&w, &args);
        if ok {
            // Past the last step: every step was killed once.
            assert!(n > 5, "{}: only {} steps", case.name, n - 1);
            return n - 1;
        }
        let status = armed.wait_exit(Duration::from_secs(30));
        let log = armed.log_text();
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "{}: {answer}\n{log}",
            case.name
        );
        let step = died_at(&log);
        let what = format!("{} killed at step {n} ({step})", case.name);
        drop(armed);

        let _d = w.env.daemon();
        assert_eq!(leftovers(&w), Vec::<String>::new(), "{what}");
        let audit = w.json(&["audit"]);
        let op = audit["operations"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        let kept = match op["status"].as_str().unwrap() {
            "interrupted" => op["recovery"]["kept"].as_bool().unwrap(),
            "succeeded" => {
                assert!(
                    ["op.recorded", "op.finished"].contains(&step.as_str()),
                    "{what}: recorded as succeeded: {op}"
                );
                true
            }
            other => panic!("{what}: status {other}: {op}"),
        };
        eprintln!("{what}: {}, kept: {kept}", op["status"]);
        if kept {
            assert_eq!(
                artifacts(&state(&w)),
                reference,
                "{what}: kept, but not whole"
            );
            let undo = w.json(&["undo", op["id"].to_string().as_str(), "--yes"]);
            assert_eq!(undo["operation"]["success"], true, "{what}: {undo}");
            assert_eq!(
                artifacts(&state(&w)),
                artifacts(&before),
                "{what}: undo did not bring the content back"
            );
        } else {
            assert_eq!(state(&w), before, "{what}: not put back exactly: {op}");
        }
        assert_eq!(leftovers(&w), Vec::<String>::new(), "{what}");
    }
    unreachable!()
}

/// Runs smctl `args --yes --format json`: whether it succeeded, and what it said.
fn run(w: &World, args: &[String]) -> (bool, String) {
    let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
    all.extend(["--yes", "--format", "json"]);
    let out = w.env.smctl(&all);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn snapshot(w: &World, of: &str) -> String {
    w.json(&["snapshot", "create", of])["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The user edited the project copy and the collection moved on: a pull replaces the
/// user's edits (undo brings them back).
fn prep_pull(w: &World) -> Vec<String> {
    edit(
        &w.project_skill().join("SKILL.md"),
        "line three",
        "line three (mine)",
    );
    edit(&w.coll.join("skills/canvas/SKILL.md"), "line two", "line 2");
    args(&["sync", "pull", "canvas", "--project", w.p()])
}

#[test]
fn every_step_of_sync_pull_survives_a_kill() {
    let steps = kill_at_every_step(&Case {
        name: "sync pull",
        world: World::new,
        prep: prep_pull,
    });
    assert!(steps >= 10, "{steps}");
}

#[test]
fn every_step_of_sync_push_survives_a_kill() {
    kill_at_every_step(&Case {
        name: "sync push",
        world: World::new,
        prep: |w| {
            edit(
                &w.project_skill().join("SKILL.md"),
                "line four",
                "line 4 (mine)",
            );
            std::fs::write(w.project_skill().join("refs/new.md"), "new\n").unwrap();
            args(&["sync", "push", "canvas", "--project", w.p()])
        },
    });
}

#[test]
fn every_step_of_merge_survives_a_kill() {
    kill_at_every_step(&Case {
        name: "merge",
        world: World::new,
        prep: |w| {
            snapshot(w, w.p());
            edit(
                &w.project_skill().join("SKILL.md"),
                "line one",
                "line 1 (mine)",
            );
            edit(
                &w.coll.join("skills/canvas/SKILL.md"),
                "line five",
                "line 5",
            );
            args(&["merge", "canvas", "--project", w.p()])
        },
    });
}

#[test]
fn every_step_of_a_collection_artifact_rollback_survives_a_kill() {
    kill_at_every_step(&Case {
        name: "rollback of one artifact",
        world: World::new,
        prep: |w| {
            let sid = snapshot(w, "default");
            edit(&w.coll.join("skills/canvas/SKILL.md"), "line two", "line 2");
            args(&[
                "rollback",
                "canvas",
                "--collection",
                "default",
                "--to",
                &sid,
            ])
        },
    });
}

#[test]
fn every_step_of_a_whole_project_rollback_survives_a_kill() {
    kill_at_every_step(&Case {
        name: "rollback of a project",
        world: World::new,
        prep: |w| {
            let sid = snapshot(w, w.p());
            edit(
                &w.project_skill().join("SKILL.md"),
                "line four",
                "line 4 (mine)",
            );
            std::fs::remove_file(w.project_skill().join("refs/guide.md")).unwrap();
            args(&["rollback", "--project", w.p(), "--to", &sid])
        },
    });
}

#[test]
fn every_step_of_a_whole_collection_rollback_survives_a_kill() {
    kill_at_every_step(&Case {
        name: "rollback of a collection",
        world: World::new,
        prep: |w| {
            let sid = snapshot(w, "default");
            edit(&w.coll.join("skills/canvas/SKILL.md"), "line two", "line 2");
            args(&["rollback", "--collection", "default", "--to", &sid])
        },
    });
}

#[test]
fn every_step_of_undo_survives_a_kill() {
    kill_at_every_step(&Case {
        name: "undo",
        world: World::new,
        prep: |w| {
            let pull = prep_pull(w);
            let r = w.json(
                &[
                    pull.iter().map(String::as_str).collect::<Vec<_>>(),
                    vec!["--yes"],
                ]
                .concat(),
            );
            assert_eq!(r["operation"]["success"], true, "{r}");
            args(&["undo"])
        },
    });
}

/// The skill folder as the user has it: what must never be lost.
fn skill_files(w: &World) -> Vec<(String, Vec<u8>)> {
    files(&w.project_skill())
}

#[test]
fn finding_1_kill_between_folder_renames_loses_nothing() {
    // Where the filesystem has no RENAME_EXCHANGE, a folder swap is two renames; kill the
    // daemon right between them (the old folder aside, the new one not in yet).
    let w = World::new();
    let pull = {
        let _d = w.start();
        prep_pull(&w)
    };
    let mine = skill_files(&w);
    let before = state(&w);
    let mut cmd = w.env.command(&skillmeatd_bin());
    cmd.env(
        "SKILLMEATD_FAULTS",
        "writer.exchange=skip,write.aside=abort",
    );
    let mut armed = w.env.daemon_cmd(cmd, &[], &w.env.socket, "armed.log");
    let (ok, said) = run(&w, &pull);
    assert!(!ok, "{said}");
    let status = armed.wait_exit(Duration::from_secs(30));
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{}", armed.log_text());
    assert_eq!(died_at(&armed.log_text()), "write.aside");
    // Right now the skill folder is gone from its place: only the parked copy holds it.
    assert!(!w.project_skill().exists());
    drop(armed);

    let _d = w.env.daemon();
    assert_eq!(
        skill_files(&w),
        mine,
        "the user's edited skill is back in place"
    );
    assert_eq!(state(&w), before);
    assert_eq!(leftovers(&w), Vec::<String>::new());
    let audit = w.json(&["audit"]);
    let op = &audit["operations"][0];
    assert_eq!(op["status"], "interrupted", "{audit}");
    assert_eq!(op["recovery"]["kept"], false, "{audit}");
    let actions = op["recovery"]["actions"].to_string();
    assert!(
        actions.contains("put back") && actions.contains("skills/canvas"),
        "{audit}"
    );
    let drift = w.env.smctl_json(&["drift", w.p(), "--sync"]);
    assert!(
        drift.to_string().contains("conflict"),
        "the user's edits and the collection's change are both still there: {drift}"
    );
    // The same pull, now without a fault, goes through.
    let (ok, said) = run(&w, &pull);
    assert!(ok, "{said}");
}

#[test]
fn finding_3_leftovers_of_killed_writes_are_swept_at_start() {
    let w = World::new();
    {
        // The project is known, and a write-back ran (leftovers only ever follow one).
        let _d = w.start();
        let (ok, said) = run(&w, &prep_pull(&w));
        assert!(ok, "{said}");
    }
    let skills = w.project.join(".claude/skills");
    let mine = skill_files(&w);
    // What older versions left after kills: a parked copy whose folder was never put back
    // (the only copy of the user's skill), staged copies, a parked copy beside a complete
    // skill, and in the collection a staged file. Plus a user's look-alikes.
    let parked = skills.join(".canvas.skillmeatd-swap-0000beef");
    std::fs::rename(w.project_skill(), &parked).unwrap();
    let copy = |to: &Path| {
        std::fs::create_dir_all(to.join("refs")).unwrap();
        std::fs::write(to.join("SKILL.md"), "new\n").unwrap();
    };
    copy(&skills.join(".canvas.skillmeatd-aB3dE6g9.tmp"));
    copy(&skills.join(".canvas.skillmeatd-zZ9yY8xX.tmp"));
    copy(&w.coll.join("skills/.canvas.skillmeatd-swap-00c0ffee"));
    std::fs::write(w.coll.join(".collection.lock.skillmeatd-Qw3rTy12.tmp"), "x").unwrap();
    std::fs::write(skills.join(".notes.skillmeatd-1234.tmp"), "mine\n").unwrap();
    std::fs::write(skills.join("plan.skillmeatd-aB3dE6g9.tmp"), "mine\n").unwrap();

    let _d = w.env.daemon();
    assert_eq!(skill_files(&w), mine, "the parked skill is back in place");
    let mut left = leftovers(&w);
    left.sort();
    assert_eq!(
        left,
        [
            skills
                .join(".notes.skillmeatd-1234.tmp")
                .display()
                .to_string(),
            skills
                .join("plan.skillmeatd-aB3dE6g9.tmp")
                .display()
                .to_string(),
        ],
        "only the user's look-alikes stay"
    );
    assert_eq!(
        crate::common::drift_pairs(&w.env.smctl_json(&["drift", w.p(), "--sync"])),
        Vec::<(String, String)>::new(),
        "nothing drifts: the project is whole again"
    );
}

/// Leftovers only ever follow a write-back, so a start after a run that wrote nothing does
/// not walk the managed folders again: what looks like a leftover then (planted here by
/// hand) is left alone. The first start after a write-back sweeps it.
#[test]
fn the_start_sweeps_only_after_a_write_back() {
    let w = World::new();
    drop(w.start()); // the first start sweeps whole and records it
    let skills = w.project.join(".claude/skills");
    let staged = skills.join(".canvas.skillmeatd-aB3dE6g9.tmp");
    std::fs::write(&staged, "new\n").unwrap();
    drop(w.start());
    assert!(staged.exists(), "no write-back ran since the last sweep");

    {
        let _d = w.start();
        let (ok, said) = run(&w, &prep_pull(&w));
        assert!(ok, "{said}");
        assert!(staged.exists(), "the sweep is at the start only");
    }
    drop(w.start());
    assert!(!staged.exists(), "a write-back ran since the last sweep");
    assert_eq!(leftovers(&w), Vec::<String>::new());
}
