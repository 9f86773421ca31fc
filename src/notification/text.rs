//! The words of notifications: summaries that name the project, the artifacts and their
//! drift ("app: 3 artifacts drifted"), bodies that say what happened, and the actions
//! that make sense for what is shown. Pure functions of [`Item`]s.

use std::collections::BTreeMap;
use std::path::Path;

use super::policy::{Action, Item, MANY_KEY, Notice, QUIET_KEY};
use super::settings::Kind;

/// Items listed by name in a body before "and N more".
const LISTED: usize = 8;

/// How a project (or `collection NAME`) is called in a notification: its folder's name.
pub fn label(key: &str) -> String {
    if key.starts_with('/') {
        Path::new(key)
            .file_name()
            .map_or_else(|| key.to_string(), |n| n.to_string_lossy().into_owned())
    } else {
        key.to_string()
    }
}

/// `review-skill modified`, `.skillmeat-deployed.toml invalid`, `sync_pull failed`.
fn short(i: &Item) -> String {
    match i.kind {
        Kind::FailedWrite => format!("{} failed", i.name),
        Kind::Error if i.artifact_type == "file" => "a SkillMeat file is invalid".to_string(),
        k => format!("{} {}", i.name, k.as_str().replace('_', " ")),
    }
}

/// One sentence on what happened to `i`.
fn sentence(i: &Item) -> String {
    let what = if i.profile_root.is_empty() {
        i.artifact_type.clone()
    } else {
        format!("{} in {}", i.artifact_type, i.profile_root)
    };
    match i.kind {
        Kind::Modified => format!("The {what} was edited in the project since it was deployed."),
        Kind::Outdated => format!("The collection has a newer version of this {what}."),
        Kind::Conflict => {
            format!(
                "The {what} changed in the project and in the collection since it was deployed."
            )
        }
        Kind::Missing => format!("The deployed {what} was deleted from the project."),
        Kind::Error if i.detail.is_empty() => format!("The {what} cannot be read."),
        Kind::Error => i.detail.clone(),
        Kind::Removed => format!("The {what} is no longer in its collection."),
        Kind::Added => format!("The collection has this {what}, never deployed here."),
        Kind::InSync => format!("The {what} is back in sync."),
        Kind::FailedWrite => i.detail.clone(),
    }
}

/// Urgent kinds first, then by name.
fn ordered(items: &BTreeMap<String, Item>) -> Vec<&Item> {
    let mut v: Vec<&Item> = items.values().collect();
    v.sort_by(|a, b| {
        (!a.kind.is_urgent(), &a.name, a.kind).cmp(&(!b.kind.is_urgent(), &b.name, b.kind))
    });
    v
}

fn listing(items: &[&Item]) -> String {
    let mut parts: Vec<String> = items.iter().take(LISTED).map(|i| short(i)).collect();
    if items.len() > LISTED {
        parts.push(format!("and {} more", items.len() - LISTED));
    }
    parts.join(", ")
}

/// The actions offered for one drifted artifact.
fn artifact_actions(kind: Kind) -> Vec<Action> {
    let mut a = Vec::new();
    if matches!(kind, Kind::Modified | Kind::Outdated | Kind::Conflict) {
        a.push(Action::ShowDiff);
    }
    match kind {
        Kind::Outdated | Kind::Missing => a.push(Action::Pull),
        Kind::Modified => a.push(Action::Push),
        Kind::Conflict => a.push(Action::Merge),
        _ => {}
    }
    a
}

/// The notification of one project (or collection) showing `items`.
pub fn project_notice(key: &str, items: &BTreeMap<String, Item>, replace: bool) -> Notice {
    let name = label(key);
    let list = ordered(items);
    let urgent = list.iter().any(|i| i.kind.is_urgent());
    let project = key.starts_with('/');
    let (summary, body, mut actions) = match list.as_slice() {
        [one] => {
            let body = if project {
                format!("{}\n{key}", sentence(one))
            } else {
                sentence(one)
            };
            let actions = if one.kind == Kind::FailedWrite || one.artifact_type == "file" {
                Vec::new()
            } else {
                artifact_actions(one.kind)
            };
            (format!("{name}: {}", short(one)), body, actions)
        }
        many => {
            let drifted = many.iter().all(|i| i.kind != Kind::FailedWrite);
            let summary = if drifted {
                format!("{name}: {} artifacts drifted", many.len())
            } else {
                format!("{name}: {} changes need attention", many.len())
            };
            let body = if project {
                format!("{}\n{key}", listing(many))
            } else {
                listing(many)
            };
            let diff = many
                .iter()
                .any(|i| matches!(i.kind, Kind::Modified | Kind::Outdated | Kind::Conflict));
            (
                summary,
                body,
                if diff {
                    vec![Action::ShowDiff]
                } else {
                    Vec::new()
                },
            )
        }
    };
    if project {
        actions.push(Action::Mute);
    }
    Notice {
        key: key.to_string(),
        replace,
        summary,
        body,
        actions,
        urgent,
    }
}

/// The one summary shown when quiet hours end.
pub fn quiet_summary(held: &BTreeMap<String, BTreeMap<String, Item>>) -> Notice {
    let changes: usize = held.values().map(BTreeMap::len).sum();
    let projects = held.len();
    let lines: Vec<String> = held
        .iter()
        .map(|(k, items)| format!("{}: {}", label(k), listing(&ordered(items))))
        .collect();
    Notice {
        key: QUIET_KEY.to_string(),
        replace: false,
        summary: format!(
            "During quiet hours: {changes} change{} in {projects} project{}",
            plural(changes),
            plural(projects)
        ),
        body: lines.join("\n"),
        actions: Vec::new(),
        urgent: held
            .values()
            .flat_map(|m| m.values())
            .any(|i| i.kind.is_urgent()),
    }
}

/// Several projects due at once, as one notification.
pub fn many_notice(parts: &[(String, Vec<Item>)], replace: bool) -> Notice {
    let lines: Vec<String> = parts
        .iter()
        .map(|(k, items)| {
            let refs: Vec<&Item> = items.iter().collect();
            format!("{}: {}", label(k), listing(&refs))
        })
        .collect();
    Notice {
        key: MANY_KEY.to_string(),
        replace,
        summary: format!("{} projects drifted", parts.len()),
        body: lines.join("\n"),
        actions: Vec::new(),
        urgent: parts
            .iter()
            .flat_map(|(_, i)| i)
            .any(|i| i.kind.is_urgent()),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(name: &str, kind: Kind) -> (String, Item) {
        (
            name.to_string(),
            Item {
                name: name.into(),
                artifact_type: "skill".into(),
                profile_root: ".claude".into(),
                kind,
                detail: String::new(),
            },
        )
    }

    #[test]
    fn one_artifact_names_it_and_its_drift() {
        let items = BTreeMap::from([item("review-skill", Kind::Modified)]);
        let n = project_notice("/home/u/app", &items, false);
        assert_eq!(n.summary, "app: review-skill modified");
        assert!(n.body.contains("edited in the project") && n.body.contains("/home/u/app"));
        assert_eq!(n.actions, [Action::ShowDiff, Action::Push, Action::Mute]);
        assert!(!n.urgent);
    }

    #[test]
    fn several_are_one_line_each_urgent_first() {
        let items = BTreeMap::from([
            item("review-skill", Kind::Modified),
            item("hello", Kind::Modified),
            item("helper", Kind::Outdated),
            item("zeta", Kind::Conflict),
        ]);
        let n = project_notice("/home/u/app", &items, true);
        assert_eq!(n.summary, "app: 4 artifacts drifted");
        assert!(
            n.body.starts_with(
                "zeta conflict, hello modified, helper outdated, review-skill modified"
            ),
            "{}",
            n.body
        );
        assert_eq!(n.actions, [Action::ShowDiff, Action::Mute]);
        assert!(n.urgent && n.replace);
    }

    #[test]
    fn long_lists_are_cut() {
        let items: BTreeMap<String, Item> = (0..12)
            .map(|i| item(&format!("s{i:02}"), Kind::Outdated))
            .collect();
        let n = project_notice("/p", &items, false);
        assert!(n.body.contains("and 4 more"), "{}", n.body);
    }
}
