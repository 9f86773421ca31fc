//! The desktop notification RPCs: status, test, mute and unmute, over the
//! [`crate::notifier::Notifier`].

use tonic::{Request, Response, Status};

use crate::history::time;
use crate::paths::canonical;

use super::{DaemonService, path_arg, pb, status};

fn when(ms: i64) -> String {
    if ms > 0 {
        time::format(ms)
    } else {
        String::new()
    }
}

/// `30m`, `2h`, `3d`, `1w` as milliseconds.
#[allow(clippy::result_large_err)]
fn duration_ms(s: &str) -> Result<i64, Status> {
    let relative = s
        .trim()
        .chars()
        .last()
        .is_some_and(|c| c.is_ascii_alphabetic());
    match time::parse(s, 0) {
        Ok(ms) if relative && ms < 0 => Ok(-ms),
        _ => Err(Status::invalid_argument(format!(
            "for {s:?}: give a duration such as 30m, 2h, 3d or 1w"
        ))),
    }
}

impl DaemonService {
    pub(super) async fn do_notify_status(
        &self,
        _req: Request<pb::NotifyStatusRequest>,
    ) -> Result<Response<pb::NotifyStatusResponse>, Status> {
        let r = self.notifier.status();
        let server = r.server.clone().unwrap_or_default();
        let (last_time, last_key, last_summary) = r
            .last
            .clone()
            .map(|l| (time::format(l.time_ms), l.key, l.summary))
            .unwrap_or_default();
        Ok(Response::new(pb::NotifyStatusResponse {
            enabled: r.enabled,
            required: r.required,
            backend: r.backend.to_string(),
            available: r.enabled && r.server.is_some() && r.problem.is_none(),
            server_name: server.name,
            server_vendor: server.vendor,
            server_version: server.version,
            spec_version: server.spec_version,
            capabilities: r.capabilities,
            problem: r.problem.unwrap_or_default(),
            problem_since: when(r.problem_since_ms),
            next_retry: when(r.retry_at_ms),
            mutes: r
                .mutes
                .into_iter()
                .map(|m| pb::NotifyMuteInfo {
                    path: m.path.display().to_string(),
                    until: m.until_ms.map(time::format).unwrap_or_default(),
                    from_config: m.from_config,
                })
                .collect(),
            quiet_hours: r.quiet_hours,
            in_quiet_hours: r.in_quiet_hours,
            held: r.held,
            last_time,
            last_key,
            last_summary,
            shown: r.shown,
            updated: r.updated,
            overflow: r.overflow,
            lagged: r.lagged,
            unsent: r.unsent,
            last_action: r.last_action,
        }))
    }

    pub(super) async fn do_notify_test(
        &self,
        _req: Request<pb::NotifyTestRequest>,
    ) -> Result<Response<pb::NotifyTestResponse>, Status> {
        let id = self.notifier.test().await.map_err(status::notify)?;
        Ok(Response::new(pb::NotifyTestResponse { id }))
    }

    pub(super) async fn do_notify_mute(
        &self,
        req: Request<pb::NotifyMuteRequest>,
    ) -> Result<Response<pb::NotifyMuteResponse>, Status> {
        let req = req.into_inner();
        let path = canonical(&path_arg("project", &req.project)?);
        let until_ms = if req.r#for.is_empty() {
            None
        } else {
            Some(time::now_ms() + duration_ms(&req.r#for)?)
        };
        self.notifier
            .mute(path, until_ms)
            .await
            .map_err(status::notify)?;
        Ok(Response::new(pb::NotifyMuteResponse {
            until: until_ms.map(time::format).unwrap_or_default(),
        }))
    }

    pub(super) async fn do_notify_unmute(
        &self,
        req: Request<pb::NotifyUnmuteRequest>,
    ) -> Result<Response<pb::NotifyUnmuteResponse>, Status> {
        let path = canonical(&path_arg("project", &req.into_inner().project)?);
        let removed = self.notifier.unmute(path).await.map_err(status::notify)?;
        Ok(Response::new(pb::NotifyUnmuteResponse { removed }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration_ms("2h").unwrap(), 7_200_000);
        assert_eq!(duration_ms("30m").unwrap(), 1_800_000);
        assert!(duration_ms("2026-11-25").is_err());
        assert!(duration_ms("0h").is_err());
        assert!(duration_ms("soon").is_err());
    }
}
