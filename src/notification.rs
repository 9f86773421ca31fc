//! Desktop notifications, the pure part: `[notify]` settings ([`settings`]), the policy
//! that decides what is worth telling and when ([`policy`]: kinds, coalescing per project,
//! in-place updates, rate limit, quiet hours, mutes) and the words ([`text`]).
//!
//! Nothing here touches a bus, a clock or the store: [`crate::notifier`] runs the policy
//! with the daemon's drift events and the operations log, and talks to the notification
//! server.

pub mod policy;
pub mod settings;
pub mod text;

pub use policy::{Action, Change, Input, Item, Mute, Notice, Now, Out, Policy, WriteOutcome};
pub use settings::{Kind, QuietHours, Settings};
