//! Store tree for the notification mutes made with `smctl notify mute` (the ones in
//! `daemon.toml` are not stored), so they survive restarts.
//!
//! | tree | key | value |
//! |---|---|---|
//! | `notify_mutes` | absolute project (or folder) path, bytes | framed JSON `{"until_ms": i64 or null}` (salvaged by a repair) |
//!
//! Expired mutes are removed by [`Store::mutes`].

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::notification::Mute;

use super::frame::TreeId;
use super::{Store, StoreError, unframe};

const TREE: &str = "notify_mutes";

#[derive(Serialize, Deserialize)]
struct Stored {
    until_ms: Option<i64>,
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt {
        tree: TREE,
        detail: e.to_string(),
    }
}

impl Store {
    /// Records a mute (replacing one of the same path) and flushes.
    ///
    /// # Errors
    /// sled failed.
    pub fn put_mute(&self, mute: &Mute) -> Result<(), StoreError> {
        let v = serde_json::to_vec(&Stored {
            until_ms: mute.until_ms,
        })
        .map_err(corrupt)?;
        let k = mute.path.as_os_str().as_bytes();
        let v = self.frame(TreeId::Mutes, k, &v);
        self.with(|h| {
            h.mutes.insert(k, v)?;
            Ok(())
        })?;
        self.flush()
    }

    /// Removes the mute of `path`; whether there was one.
    ///
    /// # Errors
    /// sled failed.
    pub fn remove_mute(&self, path: &Path) -> Result<bool, StoreError> {
        let k = path.as_os_str().as_bytes();
        let had = self.with(|h| {
            let had = h.mutes.remove(k)?.is_some();
            self.bury(h, TreeId::Mutes, &[k.to_vec()])?;
            Ok(had)
        })?;
        self.flush()?;
        Ok(had)
    }

    /// The mutes in force at `now_ms`; expired ones are deleted.
    ///
    /// # Errors
    /// sled failed; a record does not decode.
    pub fn mutes(&self, now_ms: i64) -> Result<Vec<Mute>, StoreError> {
        let (out, expired) = self.with(|h| {
            let mut out = Vec::new();
            let mut expired = Vec::new();
            for kv in h.mutes.iter() {
                let (k, v) = kv?;
                let s: Stored =
                    serde_json::from_slice(unframe(TreeId::Mutes, &k, &v)?).map_err(corrupt)?;
                if s.until_ms.is_some_and(|u| u <= now_ms) {
                    expired.push(k.to_vec());
                    continue;
                }
                out.push(Mute {
                    path: PathBuf::from(std::ffi::OsStr::from_bytes(&k)),
                    until_ms: s.until_ms,
                    from_config: false,
                });
            }
            for k in &expired {
                h.mutes.remove(k)?;
            }
            if !expired.is_empty() {
                self.bury(h, TreeId::Mutes, &expired)?;
            }
            Ok((out, expired))
        })?;
        if !expired.is_empty() {
            self.flush()?;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mutes_persist_and_expire() {
        let d = tempfile::tempdir().unwrap();
        let mute = |p: &str, until_ms| Mute {
            path: PathBuf::from(p),
            until_ms,
            from_config: false,
        };
        {
            let s = Store::open(d.path()).unwrap();
            s.put_mute(&mute("/w/app", None)).unwrap();
            s.put_mute(&mute("/w/lib", Some(2000))).unwrap();
            s.put_mute(&mute("/w/old", Some(500))).unwrap();
        }
        let s = Store::open(d.path()).unwrap();
        assert_eq!(
            s.mutes(1000).unwrap(),
            [mute("/w/app", None), mute("/w/lib", Some(2000))]
        );
        assert!(s.remove_mute(Path::new("/w/app")).unwrap());
        assert!(!s.remove_mute(Path::new("/w/app")).unwrap());
        assert_eq!(s.mutes(3000).unwrap(), []);
    }
}
