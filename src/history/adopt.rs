//! A deployment's base recorded from another copy: when the copy that hashed to the
//! deployment's record has changed by the time its base is recorded (the base is recorded
//! after the drift answer, between batches), the same content is usually in history
//! already, at the collection it was deployed from. The base version is then made from
//! that version's files (blobs are shared by hash; nothing is read from disk), with it as
//! its parent, as a first version forked from the collection would have.

use crate::model::{Location, Origin, VersionId};

use super::{History, HistoryError, time};

impl History {
    /// Records `content_hash` at `loc` as a deployment base, from a version with that
    /// hash elsewhere; `None` when history holds none.
    ///
    /// # Errors
    /// The store failed.
    pub(super) fn adopt_base(
        &self,
        loc: &Location,
        content_hash: &str,
    ) -> Result<Option<VersionId>, HistoryError> {
        let Some(&from) = self.store.versions_with_hash(content_hash, None)?.first() else {
            return Ok(None);
        };
        let source = self.version(from)?;
        let mut v = source.clone();
        v.id = self.store.next_version_id()?;
        v.location = loc.clone();
        v.parents = vec![source.id];
        v.time_ms = time::now_ms();
        v.origin = Origin::Deploy;
        v.message = None;
        v.tags = Vec::new();
        self.store.put_versions(std::slice::from_ref(&v))?;
        self.store.flush()?;
        tracing::debug!(location = %loc, from = %source.id, "deployment base recorded from an earlier version");
        Ok(Some(v.id))
    }
}
