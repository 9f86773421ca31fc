//! The latency figures of the live bench: change -> event at a Watch subscriber, and
//! edit -> fresh `GetDrift` showing the edit, against the goals (p50 10 ms, p99 50 ms).

use std::time::Instant;

use skillmeatd::hash::{Variant, content_hash};
use skillmeatd::rpc::pb;

use super::{World, env_usize, percentiles, start_to_answer};

/// Change -> event at a Watch subscriber, and edit -> fresh `GetDrift` showing it, over
/// `edits` edits each (an editor's save: truncate, write, close), once the first full
/// answer is in: printed against the goals (p50 10 ms, p99 50 ms).
pub fn bench(w: &World, edits: usize) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (_, child) = start_to_answer(w, &rt);
    let project = w.root.join("projects/p000").canonicalize().unwrap();
    let skill = project.join(".claude/skills/s000");
    let target = skill.join("SKILL.md");
    let (mut event, mut fresh) = rt.block_on(async {
        let channel = skillmeatd::connect::channel(&w.socket).await.unwrap();
        let mut client = pb::skillmeat_daemon_client::SkillmeatDaemonClient::new(channel);
        let mut stream = client
            .watch(pb::WatchRequest {
                sync: true,
                heartbeat_ms: 600_000,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let mut event = Vec::with_capacity(edits);
        for i in 0..edits {
            let t = Instant::now();
            std::fs::write(&target, format!("edit {i}\n")).unwrap();
            loop {
                let m = stream.message().await.unwrap().unwrap();
                if let Some(pb::watch_response::Message::Event(e)) = m.message
                    && e.name == "s000"
                    && e.project.ends_with("p000")
                {
                    break;
                }
            }
            event.push(t.elapsed());
        }
        drop(stream);
        let mut fresh = Vec::with_capacity(edits);
        for i in 0..edits {
            let t = Instant::now();
            std::fs::write(&target, format!("fresh {i}\n")).unwrap();
            let r = client
                .get_drift(pb::GetDriftRequest {
                    project: project.display().to_string(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            fresh.push(t.elapsed());
            let want = content_hash(&skill, Variant::Legacy).unwrap();
            assert!(
                r.artifacts
                    .iter()
                    .any(|a| a.name == "s000" && a.project_sha.as_deref() == Some(&want)),
                "edit {i}: the answer does not show it"
            );
        }
        (event, fresh)
    });
    w.stop(child);
    let files = env_usize("BENCH_SKILLS", 100) * 10 * count_projects(w);
    for (what, samples) in [
        ("change -> event at a Watch subscriber", &mut event),
        ("edit -> fresh GetDrift showing it", &mut fresh),
    ] {
        let (p50, p99) = percentiles(samples);
        println!(
            "{what}, {edits} edits, {files} files: p50 {p50:.1} ms ({:.2}x the 10 ms goal), p99 {p99:.1} ms ({:.2}x the 50 ms goal); load average {}",
            p50 / 10.0,
            p99 / 50.0,
            load_average()
        );
    }
}

/// The number of generated projects.
fn count_projects(w: &World) -> usize {
    std::fs::read_dir(w.root.join("projects")).map_or(0, |d| d.count())
}

/// The 1-minute load average, as `/proc/loadavg` tells it.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "unknown".into())
}
