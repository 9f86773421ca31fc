//! Protocol tests: the language server in process, on an in-memory pipe, against the real
//! `skillmeatd` on a temporary HOME and socket (started from `target/debug`, built by
//! `cargo test --workspace`). Multi-threaded runtimes: the daemon is stopped with a
//! blocking wait while the server, on the workers, still holds a connection it must close.

#[path = "tests/harness.rs"]
mod harness;
#[path = "../../tests/support/world.rs"]
mod world;

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use harness::{Lsp, uri, world};
use world::{SKILL_MD, replace_line};

fn messages(diags: &[Value]) -> Vec<String> {
    diags
        .iter()
        .map(|d| d["message"].as_str().unwrap().to_string())
        .collect()
}

/// The project copy of the skill edited on line 7 (0-based), before the daemon starts.
fn modified_world() -> world::World {
    let mut w = world();
    std::fs::write(
        w.project_skill(),
        replace_line(SKILL_MD, 7, "Step 2, edited."),
    )
    .unwrap();
    w.start();
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initialize_announces_capabilities_and_shutdown_ends_cleanly() {
    let w = modified_world();
    let mut lsp = Lsp::start(&w);
    let r = lsp.initialize(&w.project).await;
    let caps = &r["result"]["capabilities"];
    assert_eq!(caps["hoverProvider"], true);
    assert_eq!(caps["textDocumentSync"], 1, "full sync: {caps}");
    let commands = caps["executeCommandProvider"]["commands"]
        .as_array()
        .unwrap();
    for c in [
        "skillmeat.pull",
        "skillmeat.push",
        "skillmeat.merge",
        "skillmeat.showDiff",
        "skillmeat.undo",
        "skillmeat.snapshot",
    ] {
        assert!(commands.contains(&json!(c)), "{c} missing: {commands:?}");
    }
    assert_eq!(r["result"]["serverInfo"]["name"], "smctl lsp");
    let s = lsp.request("shutdown", Value::Null).await;
    assert!(s.get("error").is_none() && s["result"].is_null(), "{s}");
    lsp.notify("exit", Value::Null).await;
    tokio::time::timeout(Duration::from_secs(10), lsp.server)
        .await
        .expect("the server stops after exit")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drifted_file_gets_one_diagnostic_on_its_first_changed_hunk() {
    let w = modified_world();
    let mut lsp = Lsp::start(&w);
    lsp.initialize(&w.project).await;
    lsp.open(&w.project_skill()).await;
    let d = lsp
        .diagnostics(
            &w.project_skill(),
            "a diagnostic on the modified skill",
            |d| !d.is_empty(),
        )
        .await;
    assert_eq!(
        messages(&d),
        vec![
            "review-skill: modified — the project copy changed since it was deployed (push_to_collection)"
        ]
    );
    assert_eq!(d[0]["source"], "skillmeat");
    assert_eq!(d[0]["severity"], 3, "information: {}", d[0]);
    assert_eq!(d[0]["code"], "modified");
    assert_eq!(d[0]["range"]["start"]["line"], 7, "{}", d[0]);
    assert_eq!(d[0]["range"]["end"]["line"], 7);

    // The deployment file: the drifted record's line, nothing for the one in sync.
    lsp.open(&w.deployment_file()).await;
    let d = lsp
        .diagnostics(&w.deployment_file(), "a diagnostic on the record", |d| {
            !d.is_empty()
        })
        .await;
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0]["range"]["start"]["line"], 0);
    assert!(messages(&d)[0].starts_with("review-skill: modified"));

    // The collection copy: the deployment is named, the range is its changed line.
    lsp.open(&w.collection_skill()).await;
    let d = lsp
        .diagnostics(
            &w.collection_skill(),
            "a diagnostic on the collection copy",
            |d| !d.is_empty(),
        )
        .await;
    let project = w.project.display().to_string();
    assert!(
        messages(&d)[0].starts_with(&format!("review-skill in {project}/.claude: modified")),
        "{d:?}"
    );
    assert_eq!(d[0]["range"]["start"]["line"], 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outside_change_updates_the_open_file_within_a_second() {
    let w = modified_world();
    let mut lsp = Lsp::start(&w);
    lsp.initialize(&w.project).await;
    lsp.open(&w.project_skill()).await;
    lsp.diagnostics(&w.project_skill(), "modified", |d| !d.is_empty())
        .await;
    // The collection changes too: now a conflict.
    let started = Instant::now();
    std::fs::write(
        w.collection_skill(),
        replace_line(SKILL_MD, 4, "# Review, v2"),
    )
    .unwrap();
    let d = lsp
        .diagnostics(&w.project_skill(), "the conflict", |d| {
            d.iter().any(|x| x["code"] == "conflict")
        })
        .await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "took {took:?}");
    assert_eq!(d[0]["severity"], 2, "warning: {}", d[0]);
    assert!(messages(&d)[0].ends_with("(review_manually)"), "{d:?}");
    // Back in sync clears it: both copies as deployed.
    std::fs::write(w.collection_skill(), SKILL_MD).unwrap();
    std::fs::write(w.project_skill(), SKILL_MD).unwrap();
    lsp.diagnostics(&w.project_skill(), "cleared", |d| d.is_empty())
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hover_shows_drift_hashes_and_versions() {
    let w = modified_world();
    let mut lsp = Lsp::start(&w);
    lsp.initialize(&w.project).await;
    lsp.open(&w.project_skill()).await;
    lsp.diagnostics(&w.project_skill(), "modified", |d| !d.is_empty())
        .await;
    // History records the first versions just after the daemon's first scan: ask again
    // (bounded) until the hover names them.
    let deadline = Instant::now() + Duration::from_secs(10);
    let text = loop {
        let r = lsp
            .request(
                "textDocument/hover",
                json!({"textDocument": {"uri": uri(&w.project_skill())}, "position": {"line": 7, "character": 1}}),
            )
            .await;
        let text = r["result"]["contents"]["value"]
            .as_str()
            .unwrap()
            .to_string();
        if text.contains("Latest versions: project v") || Instant::now() > deadline {
            break text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let deployed = w.hash(w.collection_skill().parent().unwrap());
    for want in [
        "**review-skill** (skill) — **modified**",
        &format!("| deployed | `{}` | v", &deployed[..12]),
        "2026-03-13T15:13:08Z",
        "Latest versions: project v",
    ] {
        assert!(text.contains(want), "{want:?} not in:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pull_action_updates_the_file_and_clears_the_diagnostic() {
    let w = modified_world();
    let mut lsp = Lsp::start(&w);
    lsp.initialize(&w.project).await;
    lsp.open(&w.project_skill()).await;
    let d = lsp
        .diagnostics(&w.project_skill(), "modified", |d| !d.is_empty())
        .await;
    let r = lsp
        .request(
            "textDocument/codeAction",
            json!({
                "textDocument": {"uri": uri(&w.project_skill())},
                "range": d[0]["range"],
                "context": {"diagnostics": d},
            }),
        )
        .await;
    let actions = r["result"].as_array().unwrap().clone();
    let titles: Vec<&str> = actions
        .iter()
        .map(|a| a["title"].as_str().unwrap())
        .collect();
    assert!(
        titles.contains(&"Push review-skill to collection default"),
        "{titles:?}"
    );
    let push = actions
        .iter()
        .find(|a| a["title"].as_str().unwrap().starts_with("Push"))
        .unwrap();
    assert_eq!(push["isPreferred"], true);
    assert_eq!(push["kind"], "quickfix");
    assert_eq!(push["diagnostics"][0]["code"], "modified");
    let pull = actions
        .iter()
        .find(|a| a["title"].as_str().unwrap().starts_with("Pull"))
        .unwrap();
    let r = lsp
        .request(
            "workspace/executeCommand",
            json!({"command": pull["command"]["command"], "arguments": pull["command"]["arguments"]}),
        )
        .await;
    let op = r["result"]["operation"].as_u64().expect("an operation id");
    assert_eq!(
        std::fs::read_to_string(w.project_skill()).unwrap(),
        SKILL_MD
    );
    lsp.diagnostics(&w.project_skill(), "cleared after the pull", |d| {
        d.is_empty()
    })
    .await;
    let audit = w.smctl_json(&["audit"]);
    let ops = audit["operations"].as_array().unwrap();
    assert!(
        ops.iter()
            .any(|o| o["id"] == op && o["operation"] == "sync_pull"),
        "{audit}"
    );
    // The result is told with showMessage.
    lsp.wait_for(Duration::from_secs(5), "the outcome message", |m| {
        m["method"] == "window/showMessage"
            && m["params"]["message"]
                .as_str()
                .unwrap()
                .contains("pulled review-skill")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_diff_opens_a_document_and_snapshot_and_undo_go_through_the_daemon() {
    let w = modified_world();
    let mut lsp = Lsp::start(&w);
    lsp.initialize(&w.project).await;
    lsp.open(&w.project_skill()).await;
    lsp.diagnostics(&w.project_skill(), "modified", |d| !d.is_empty())
        .await;
    let arg = json!([{"uri": uri(&w.project_skill())}]);
    let r = lsp
        .request(
            "workspace/executeCommand",
            json!({"command": "skillmeat.showDiff", "arguments": arg}),
        )
        .await;
    let diff_uri = r["result"]["uri"]
        .as_str()
        .expect("the diff's uri")
        .to_string();
    assert_eq!(
        lsp.shown_documents.lock().await.clone(),
        vec![diff_uri.clone()]
    );
    let diff = std::fs::read_to_string(diff_uri.trim_start_matches("file://")).unwrap();
    assert!(
        diff.contains("-Step two.") && diff.contains("+Step 2, edited."),
        "{diff}"
    );

    let r = lsp
        .request(
            "workspace/executeCommand",
            json!({"command": "skillmeat.snapshot", "arguments": arg}),
        )
        .await;
    let id = r["result"]["snapshot"].as_str().unwrap().to_string();
    let list = w.smctl_json(&["snapshot", "list"]);
    assert!(list.to_string().contains(&format!("\"{id}\"")), "{list}");

    // Push, then undo it: the collection copy is back as it was.
    let r = lsp
        .request(
            "workspace/executeCommand",
            json!({"command": "skillmeat.push", "arguments": arg}),
        )
        .await;
    assert!(r["result"]["operation"].as_u64().is_some(), "{r}");
    assert!(
        std::fs::read_to_string(w.collection_skill())
            .unwrap()
            .contains("Step 2, edited.")
    );
    let r = lsp
        .request(
            "workspace/executeCommand",
            json!({"command": "skillmeat.undo", "arguments": []}),
        )
        .await;
    assert!(r["result"]["operation"].as_u64().is_some(), "{r}");
    assert_eq!(
        std::fs::read_to_string(w.collection_skill()).unwrap(),
        SKILL_MD
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsaved_changes_are_never_overwritten() {
    let w = modified_world();
    let mut lsp = Lsp::start(&w);
    lsp.initialize(&w.project).await;
    lsp.open(&w.project_skill()).await;
    lsp.diagnostics(&w.project_skill(), "modified", |d| !d.is_empty())
        .await;
    lsp.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri(&w.project_skill()), "version": 2},
               "contentChanges": [{"text": "typed but not saved\n"}]}),
    )
    .await;
    let r = lsp
        .request(
            "workspace/executeCommand",
            json!({"command": "skillmeat.pull", "arguments": [{"uri": uri(&w.project_skill())}]}),
        )
        .await;
    assert!(r["result"].is_null(), "{r}");
    lsp.wait_for(Duration::from_secs(5), "the refusal", |m| {
        m["method"] == "window/showMessage"
            && m["params"]["type"] == 1
            && m["params"]["message"]
                .as_str()
                .unwrap()
                .contains("unsaved changes")
    })
    .await;
    assert!(
        std::fs::read_to_string(w.project_skill())
            .unwrap()
            .contains("Step 2, edited.")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_nothing_or_a_clear_error() {
    let w = modified_world();
    let mut lsp = Lsp::start(&w);
    lsp.initialize(&w.project).await;
    // Unknown schemes, files that do not exist, files outside every artifact.
    let readme = w.project.join("README.md");
    std::fs::write(&readme, "# app\n").unwrap();
    lsp.open_text("untitled:Untitled-1", "hello").await;
    lsp.open_text("file:///no/such/dir/x.md", "x").await;
    lsp.open(&readme).await;
    lsp.open(&w.project.join(".claude/skills")).await;
    // A drifted file opened last: once its diagnostic arrives, the others were handled.
    lsp.open(&w.project_skill()).await;
    lsp.diagnostics(&w.project_skill(), "the drifted file", |d| !d.is_empty())
        .await;
    let seen = lsp.drain(Duration::from_millis(300)).await;
    let others: Vec<&Value> = seen
        .iter()
        .filter(|m| m["method"] == "textDocument/publishDiagnostics")
        .filter(|m| m["params"]["uri"] != uri(&w.project_skill()).as_str())
        .collect();
    assert!(
        others.is_empty(),
        "files outside artifacts got diagnostics: {others:?}"
    );
    for u in [
        uri(&readme),
        "untitled:Untitled-1".into(),
        "file:///never/opened.md".into(),
    ] {
        let h = lsp
            .request(
                "textDocument/hover",
                json!({"textDocument": {"uri": u}, "position": {"line": 0, "character": 0}}),
            )
            .await;
        assert!(h["result"].is_null(), "{u}: {h}");
        let a = lsp
            .request(
                "textDocument/codeAction",
                json!({"textDocument": {"uri": u}, "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}}, "context": {"diagnostics": []}}),
            )
            .await;
        assert!(a["result"].is_null(), "{u}: {a}");
    }
    // Bad command arguments and unknown commands: an error message, no crash.
    for (cmd, args) in [
        ("skillmeat.pull", json!([{"uri": uri(&readme)}])),
        ("skillmeat.pull", json!(["not an object"])),
        ("skillmeat.nothing", json!([])),
    ] {
        let r = lsp
            .request(
                "workspace/executeCommand",
                json!({"command": cmd, "arguments": args}),
            )
            .await;
        assert!(r["result"].is_null(), "{cmd}: {r}");
        lsp.wait_for(Duration::from_secs(5), "an error message", |m| {
            m["method"] == "window/showMessage" && m["params"]["type"] == 1
        })
        .await;
    }
    // An unknown method: an error, and the server keeps serving.
    let r = lsp.request("skillmeat/unknown", json!({})).await;
    assert_eq!(r["error"]["code"], -32601, "{r}");
    let h = lsp
        .request(
            "textDocument/hover",
            json!({"textDocument": {"uri": uri(&w.project_skill())}, "position": {"line": 0, "character": 0}}),
        )
        .await;
    assert!(h["result"]["contents"]["value"].as_str().is_some(), "{h}");
    // A frame that is not JSON: a parse error, then the session ends (tower-lsp-server
    // stops reading after a framing error) instead of hanging.
    lsp.send_raw("{not json").await;
    let e = lsp
        .wait_for(Duration::from_secs(5), "the parse error", |m| {
            m["error"]["code"] == -32700
        })
        .await;
    assert!(e["id"].is_null(), "{e}");
    tokio::time::timeout(Duration::from_secs(10), lsp.server)
        .await
        .expect("the server ends after a malformed frame")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_that_stops_clears_diagnostics_says_so_once_and_is_reconnected() {
    let mut w = modified_world();
    let mut lsp = Lsp::start(&w);
    lsp.initialize(&w.project).await;
    lsp.open(&w.project_skill()).await;
    lsp.diagnostics(&w.project_skill(), "modified", |d| !d.is_empty())
        .await;
    lsp.clear();
    w.stop();
    lsp.diagnostics(
        &w.project_skill(),
        "cleared when the daemon went away",
        |d| d.is_empty(),
    )
    .await;
    // Retries go on (with backoff); the user hears about it once.
    let seen = lsp.drain(Duration::from_millis(1500)).await;
    let warnings: Vec<&Value> = seen
        .iter()
        .filter(|m| m["method"] == "window/showMessage")
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let text = warnings[0]["params"]["message"].as_str().unwrap();
    assert!(
        text.contains(&w.socket.display().to_string()) && text.contains("skillmeatd start"),
        "{text}"
    );
    let h = lsp
        .request(
            "textDocument/hover",
            json!({"textDocument": {"uri": uri(&w.project_skill())}, "position": {"line": 0, "character": 0}}),
        )
        .await;
    assert!(h["result"].is_null(), "nothing stale: {h}");
    w.start();
    lsp.diagnostics(
        &w.project_skill(),
        "diagnostics back after reconnecting",
        |d| !d.is_empty(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_daemon_at_start_is_reported_and_joined_later() {
    let mut w = world();
    let mut lsp = Lsp::start(&w);
    lsp.initialize(&w.project).await;
    lsp.wait_for(Duration::from_secs(10), "the not-running message", |m| {
        m["method"] == "window/showMessage" && m["params"]["type"] == 2
    })
    .await;
    std::fs::write(w.project_skill(), "changed\n").unwrap();
    lsp.open(&w.project_skill()).await;
    w.start();
    lsp.diagnostics(
        &w.project_skill(),
        "diagnostics once the daemon answers",
        |d| !d.is_empty(),
    )
    .await;
}
