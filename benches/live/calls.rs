//! The calls figures of the live bench: `Status` and `ListProjects` with every project
//! known (goal 5 ms of daemon time for `Status`; listing in proportion to the projects), and
//! `project add` of one more project with all of them known against the same add with none.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use skillmeatd::rpc::pb;

use super::{World, env_usize, generate, percentiles, ratio, rpc, start_to_answer};

/// What `Status` and `ListProjects` cost with every project known, 300 calls each on one
/// connection: p50/p99 at the client, without and with the sync barrier, and the daemon's
/// share (the same percentile less a gRPC health check's, which does no work). Then
/// `project add` of one more 10-skill project. Returns that project's folder and the add's
/// time.
pub fn bench_calls(
    w: &World,
    rt: &tokio::runtime::Runtime,
    projects: usize,
) -> (PathBuf, Duration) {
    const CALLS: usize = 300;
    let (_, (mut floor, mut stale, mut fresh, mut list)) = rpc(rt, w, async |mut c| {
        let channel = skillmeatd::connect::channel(&w.socket).await.unwrap();
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
        let (mut floor, mut stale, mut fresh, mut list) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        // Interleaved, so the machine's load weighs on each alike.
        for _ in 0..CALLS {
            let t = Instant::now();
            health
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await
                .unwrap();
            floor.push(t.elapsed());
            for (stale_ok, into) in [(true, &mut stale), (false, &mut fresh)] {
                let t = Instant::now();
                let r = c
                    .status(pb::StatusRequest { stale_ok })
                    .await
                    .unwrap()
                    .into_inner();
                into.push(t.elapsed());
                assert_eq!(r.projects as usize, projects);
                assert!(r.history.is_some() && r.inotify_watches.is_some());
            }
            let t = Instant::now();
            let r = c
                .list_projects(pb::ListProjectsRequest { stale_ok: true })
                .await
                .unwrap()
                .into_inner();
            list.push(t.elapsed());
            assert_eq!(r.projects.len(), projects);
        }
        (floor, stale, fresh, list)
    });
    let (h50, h99) = percentiles(&mut floor);
    let (s50, s99) = percentiles(&mut stale);
    let (f50, f99) = percentiles(&mut fresh);
    let (l50, l99) = percentiles(&mut list);
    println!(
        "Status with {projects} projects, {CALLS} calls: p50 {s50:.2} ms, p99 {s99:.2} ms at the client; \
         daemon time (less a health check's p50 {h50:.2} ms, p99 {h99:.2} ms) p50 {:.2} ms, p99 {:.2} ms: \
         {:.2}x, {:.2}x the 5 ms goal; through the sync barrier p50 {f50:.2} ms, p99 {f99:.2} ms",
        s50 - h50,
        s99 - h99,
        (s50 - h50) / 5.0,
        (s99 - h99) / 5.0
    );
    println!(
        "ListProjects with {projects} projects, {CALLS} calls: p50 {l50:.2} ms, p99 {l99:.2} ms \
         ({:.3} ms per project at p50, less the health check)",
        (l50 - h50) / projects as f64
    );
    let extra = w.root.join("extra");
    let source = w.root.join("projects/p000/.claude");
    std::fs::create_dir_all(&extra).unwrap();
    let copied = Command::new("cp")
        .arg("-rp")
        .arg(&source)
        .arg(&extra)
        .status()
        .unwrap();
    assert!(copied.success());
    let path = extra.display().to_string();
    let (with_all, _) = rpc(rt, w, async |mut c| {
        c.add_project(pb::AddProjectRequest { path, force: false })
            .await
            .unwrap()
    });
    let path = extra.display().to_string();
    rpc(rt, w, async |mut c| {
        c.remove_project(pb::RemoveProjectRequest { path })
            .await
            .unwrap()
    });
    (extra, with_all)
}

/// `-- calls`: the cost of `Status`, `ListProjects` and `project add` with every project
/// known, on the generated tree (deleted at the end).
pub fn bench_calls_only(projects: usize, skills: usize) {
    let w = generate(projects, skills);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (cold, child) = start_to_answer(&w, &rt);
    println!(
        "{} project files; first full fresh drift answer after {:.2}s",
        projects * skills * 10,
        cold.as_secs_f64()
    );
    let (extra, with_all) = bench_calls(&w, &rt, projects);
    w.stop(child);
    print_add(projects, with_all, add_alone(&w, &rt, &extra));
}

/// `project add` of `extra` to a daemon that knows no other project (its own state; no
/// other daemon may run on the tree, as its `daemon.toml` is rewritten meanwhile).
pub fn add_alone(w: &World, rt: &tokio::runtime::Runtime, extra: &Path) -> Duration {
    let alone = World {
        _dir: Some(tempfile::tempdir().unwrap()),
        root: w.root.clone(),
        home: w.home.clone(),
        state: w.root.join("state-alone"),
        socket: w.root.join("run/alone.sock"),
    };
    let config = alone.home.join("daemon.toml");
    let saved = std::fs::read(&config).unwrap();
    std::fs::write(&config, "[discovery]\nregistry = false\n").unwrap();
    let (_, child) = alone.start();
    let path = extra.display().to_string();
    let (first, _) = rpc(rt, &alone, async |mut c| {
        c.add_project(pb::AddProjectRequest { path, force: false })
            .await
            .unwrap()
    });
    alone.stop(child);
    std::fs::write(&config, saved).unwrap();
    std::fs::remove_dir_all(&alone.state).unwrap();
    first
}

pub fn print_add(projects: usize, with_all: Duration, first: Duration) {
    println!(
        "project add of a {}-file project: {:.1} ms with {projects} projects known vs {:.1} ms with none: ratio {:.2} (goal ~1)",
        10 * env_usize("BENCH_SKILLS", 100),
        with_all.as_secs_f64() * 1000.0,
        first.as_secs_f64() * 1000.0,
        ratio(with_all, first)
    );
}
