//! The hash cache: each artifact side's content hash, remembered with the stamp digest of
//! what it was computed from ([`crate::index`] decides when it still holds), and the version
//! its front matter declares.
//!
//! In memory it is one compact table: every key (variant tag + absolute path) in one byte
//! arena, found through a hash table of entry numbers; digests and hashes as fixed-size
//! arrays; versions in a second arena. On disk it is one sequential file beside the store
//! (`<store>.hashes`), read in one go when the store opens, as git reads its index, so a
//! warm start's stat-only pass makes no store lookup. The keeper ([`Store::tend`]) writes it
//! back at most every [`SAVE_EVERY`] while it changed, and the engine on shutdown
//! ([`Store::save_hashes`]): to a temporary file, synced, then renamed into place.
//!
//! The file is derived and never trusted: one whose magic, format version, length or
//! CRC-32 does not check out is ignored (logged) and rebuilt by hashing, and an entry is
//! used only while the stamps of the files still match its digest. Entries not used since
//! the daemon started are not written back, so artifacts that went away drop out at the
//! next start.
//!
//! File layout (integers little-endian):
//!
//! | field | bytes |
//! |---|---|
//! | magic `SMDHASH\0` | 8 |
//! | format version ([`FORMAT`]) | 4 |
//! | entry count | 4 |
//! | each entry: key length (u16), key, stamp digest, hash, files (u32), flags (u8: 1 racy, 2 version read), version length (u8), version | 2 + key + 32 + 32 + 4 + 1 + 1 + version |
//! | CRC-32 of everything before | 4 |

use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hashbrown::HashTable;

use super::Store;

/// A content hash remembered together with the stamp digest of what it was computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedHash {
    /// [`crate::hash::Listing::stamp_digest`] of the files read.
    pub stamp_digest: [u8; 32],
    /// A file changed too close to hashing time to trust the stamp; recompute next time.
    pub racy: bool,
    /// How many files the hash covered.
    pub files: u64,
    /// The hex content hash.
    pub hash: String,
}

const MAGIC: &[u8; 8] = b"SMDHASH\0";
/// Format of the file; a file of another format is ignored.
const FORMAT: u32 = 1;
/// How long a changed table may wait before the keeper writes it back.
pub(super) const SAVE_EVERY: Duration = Duration::from_secs(10);

const RACY: u8 = 1;
const VERSION_READ: u8 = 2;
/// Looked up or stored since the table was loaded (in memory only).
const USED: u8 = 4;

/// The file of the cache of the store in `dir`.
pub(super) fn file_of(dir: &Path) -> PathBuf {
    super::heal::beside(dir, ".hashes")
}

/// One cached side, 80 bytes.
#[derive(Debug, Clone, Copy)]
struct Entry {
    key_at: u32,
    key_len: u16,
    flags: u8,
    version_len: u8,
    version_at: u32,
    files: u32,
    digest: [u8; 32],
    hash: [u8; 32],
}

/// What a lookup finds (the version only when it was read for the same digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cached {
    pub entry: CachedHash,
    /// The front matter's version, once read for this digest (`Some(None)`: it has none).
    pub version: Option<Option<String>>,
}

#[derive(Debug, Default)]
struct Table {
    keys: Vec<u8>,
    slots: HashTable<u32>,
    entries: Vec<Entry>,
    versions: Vec<u8>,
    /// Version bytes no entry points at any more.
    versions_unused: usize,
    /// Files covered by every entry.
    files: u64,
    changed: bool,
    hasher: std::hash::RandomState,
}

impl Table {
    fn key(&self, e: &Entry) -> &[u8] {
        &self.keys[e.key_at as usize..e.key_at as usize + e.key_len as usize]
    }

    fn find(&self, key: &[u8]) -> Option<usize> {
        let h = self.hasher.hash_one(key);
        self.slots
            .find(h, |&i| self.key(&self.entries[i as usize]) == key)
            .map(|&i| i as usize)
    }

    /// The entry of `key`, made (empty) if absent.
    fn slot(&mut self, key: &[u8]) -> usize {
        if let Some(i) = self.find(key) {
            return i;
        }
        let i = self.entries.len();
        self.entries.push(Entry {
            key_at: self.keys.len() as u32,
            key_len: key.len() as u16,
            flags: 0,
            version_len: 0,
            version_at: 0,
            files: 0,
            digest: [0; 32],
            hash: [0; 32],
        });
        self.keys.extend_from_slice(key);
        let Table {
            slots,
            entries,
            keys,
            hasher,
            ..
        } = self;
        let h = hasher.hash_one(key);
        slots.insert_unique(h, i as u32, |&j| {
            let e = &entries[j as usize];
            hasher.hash_one(&keys[e.key_at as usize..e.key_at as usize + e.key_len as usize])
        });
        i
    }

    fn version(&self, e: &Entry) -> Option<Option<String>> {
        if e.flags & VERSION_READ == 0 {
            return None;
        }
        if e.version_len == 0 {
            return Some(None);
        }
        let at = e.version_at as usize;
        let v = &self.versions[at..at + e.version_len as usize];
        Some(Some(String::from_utf8_lossy(v).into_owned()))
    }

    fn set_version(&mut self, i: usize, version: Option<&str>) {
        self.versions_unused += self.entries[i].version_len as usize;
        let v = version.unwrap_or("").as_bytes();
        let Ok(len) = u8::try_from(v.len()) else {
            // Too long to keep: read again when asked.
            self.entries[i].flags &= !VERSION_READ;
            self.entries[i].version_len = 0;
            return;
        };
        if self.versions_unused > (64 << 10) && self.versions_unused > self.versions.len() / 2 {
            self.compact_versions();
        }
        let e = &mut self.entries[i];
        e.version_at = self.versions.len() as u32;
        e.version_len = len;
        e.flags |= VERSION_READ;
        self.versions.extend_from_slice(v);
    }

    /// Rewrites the version arena with only the versions entries point at.
    fn compact_versions(&mut self) {
        let mut fresh = Vec::with_capacity(self.versions.len() - self.versions_unused);
        for e in &mut self.entries {
            let at = e.version_at as usize;
            let v = &self.versions[at..at + e.version_len as usize];
            e.version_at = fresh.len() as u32;
            fresh.extend_from_slice(v);
        }
        self.versions = fresh;
        self.versions_unused = 0;
    }

    fn get(&mut self, key: &[u8]) -> Option<Cached> {
        let i = self.find(key)?;
        self.entries[i].flags |= USED;
        let e = self.entries[i];
        Some(Cached {
            entry: CachedHash {
                stamp_digest: e.digest,
                racy: e.flags & RACY != 0,
                files: u64::from(e.files),
                hash: hex::encode(e.hash),
            },
            version: self.version(&e),
        })
    }

    fn put(&mut self, key: &[u8], c: &CachedHash) {
        let mut hash = [0u8; 32];
        if key.len() > usize::from(u16::MAX) || hex::decode_to_slice(&c.hash, &mut hash).is_err() {
            return;
        }
        let i = self.slot(key);
        let files = u32::try_from(c.files).unwrap_or(u32::MAX);
        let e = &mut self.entries[i];
        self.files = self.files + u64::from(files) - u64::from(e.files);
        let same = e.digest == c.stamp_digest && e.hash == hash;
        e.digest = c.stamp_digest;
        e.hash = hash;
        e.files = files;
        e.flags =
            USED | if c.racy { RACY } else { 0 } | if same { e.flags & VERSION_READ } else { 0 };
        if !same {
            self.versions_unused += e.version_len as usize;
            e.version_len = 0;
        }
        self.changed = true;
    }

    /// The table as the file holds it: the entries used since it was loaded.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.entries.len() * 120);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        let mut count = 0u32;
        for e in self.entries.iter().filter(|e| e.flags & USED != 0) {
            count += 1;
            out.extend_from_slice(&e.key_len.to_le_bytes());
            out.extend_from_slice(self.key(e));
            out.extend_from_slice(&e.digest);
            out.extend_from_slice(&e.hash);
            out.extend_from_slice(&e.files.to_le_bytes());
            out.push(e.flags & (RACY | VERSION_READ));
            out.push(e.version_len);
            let at = e.version_at as usize;
            out.extend_from_slice(&self.versions[at..at + e.version_len as usize]);
        }
        out[12..16].copy_from_slice(&count.to_le_bytes());
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// The table a file holds, or why it cannot be trusted.
    fn decode(bytes: &[u8]) -> Result<Table, &'static str> {
        if bytes.len() < 20 || &bytes[..8] != MAGIC {
            return Err("not a hash cache");
        }
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().expect("4 bytes")) {
            return Err("checksum mismatch (torn or damaged)");
        }
        if u32::from_le_bytes(body[8..12].try_into().expect("4 bytes")) != FORMAT {
            return Err("another format");
        }
        let count = u32::from_le_bytes(body[12..16].try_into().expect("4 bytes"));
        let mut r = Reader(&body[16..]);
        let mut t = Table::default();
        for _ in 0..count {
            let key_len = u16::from_le_bytes(r.array()?);
            let key = r.take(key_len as usize)?;
            let digest = r.array()?;
            let hash = r.array()?;
            let files = u32::from_le_bytes(r.array()?);
            let [flags, version_len] = r.array()?;
            let version = r.take(version_len as usize)?;
            let i = t.slot(key);
            let e = &mut t.entries[i];
            t.files = t.files + u64::from(files) - u64::from(e.files);
            e.digest = digest;
            e.hash = hash;
            e.files = files;
            e.flags = flags & (RACY | VERSION_READ);
            e.version_at = t.versions.len() as u32;
            e.version_len = version_len;
            t.versions.extend_from_slice(version);
        }
        if !r.0.is_empty() {
            return Err("trailing bytes");
        }
        Ok(t)
    }
}

/// Reads fields off the front of a byte slice.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("truncated");
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        Ok(self.take(N)?.try_into().expect("N bytes"))
    }
}

/// The table and when it was last written back.
#[derive(Debug)]
pub(super) struct HashCache {
    file: PathBuf,
    table: Mutex<Table>,
    saved: Mutex<Instant>,
}

impl HashCache {
    /// The cache of the store in `dir`, read from its file (empty when the file is absent
    /// or cannot be trusted).
    pub(super) fn load(dir: &Path) -> HashCache {
        let file = file_of(dir);
        let table = match std::fs::read(&file) {
            Ok(bytes) => Table::decode(&bytes).unwrap_or_else(|why| {
                tracing::warn!(file = %file.display(), why, "hash cache ignored; it is rebuilt by hashing");
                Table::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Table::default(),
            Err(e) => {
                tracing::warn!(file = %file.display(), error = %e, "hash cache unreadable; it is rebuilt by hashing");
                Table::default()
            }
        };
        HashCache {
            file,
            table: Mutex::new(table),
            saved: Mutex::new(Instant::now()),
        }
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Writes the table back if it changed and, unless `now`, [`SAVE_EVERY`] passed.
    pub(super) fn save(&self, now: bool) {
        let mut saved = self.saved.lock().unwrap_or_else(|e| e.into_inner());
        if !now && saved.elapsed() < SAVE_EVERY {
            return;
        }
        let bytes = {
            let mut t = self.table();
            if !t.changed {
                return;
            }
            t.changed = false;
            t.encode()
        };
        *saved = Instant::now();
        if let Err(e) = write_atomically(&self.file, &bytes) {
            tracing::warn!(file = %self.file.display(), error = %e, "cannot write the hash cache");
            self.table().changed = true;
        }
    }
}

/// Writes `bytes` to `<path>.tmp` (a crash's leftover is overwritten next time), syncs it and
/// renames it into place.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut tmp_name = path.as_os_str().to_os_string();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_data()?;
    std::fs::rename(&tmp, path)
}

fn key(variant: crate::hash::Variant, path: &Path) -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt;
    let mut k = Vec::with_capacity(1 + path.as_os_str().len());
    k.push(variant.tag());
    k.extend_from_slice(path.as_os_str().as_bytes());
    k
}

impl Store {
    /// The cached hash of `path`, with its version when it was read for the same digest.
    pub fn cached_hash(&self, variant: crate::hash::Variant, path: &Path) -> Option<Cached> {
        self.shared.hashes.table().get(&key(variant, path))
    }

    /// Remembers the hash of `path` (written back by the keeper: a lost entry only costs a
    /// re-read).
    pub fn put_hash(&self, variant: crate::hash::Variant, path: &Path, entry: &CachedHash) {
        self.shared.hashes.table().put(&key(variant, path), entry);
    }

    /// Remembers the version the front matter of `path` declares, if its entry still has
    /// `digest` (a version read after the files changed again is not kept).
    pub fn put_version(
        &self,
        variant: crate::hash::Variant,
        path: &Path,
        digest: &[u8; 32],
        version: Option<&str>,
    ) {
        let mut t = self.shared.hashes.table();
        if let Some(i) = t.find(&key(variant, path))
            && t.entries[i].digest == *digest
        {
            t.set_version(i, version);
            t.changed = true;
        }
    }

    /// Number of files covered by cached hashes.
    pub fn files_indexed(&self) -> u64 {
        self.shared.hashes.table().files
    }

    /// Writes the hash cache back now, if it changed.
    pub fn save_hashes(&self) {
        self.shared.hashes.save(true);
    }

    /// Writes the hash cache back if it changed and its time came (the keeper's tick).
    pub(super) fn save_hashes_if_due(&self) {
        self.shared.hashes.save(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Variant;

    fn entry(n: u8) -> CachedHash {
        CachedHash {
            stamp_digest: [n; 32],
            racy: n.is_multiple_of(2),
            files: u64::from(n),
            hash: hex::encode([n + 1; 32]),
        }
    }

    fn filled() -> Table {
        let mut t = Table::default();
        for n in 1..50u8 {
            t.put(format!("L/p/{n}").as_bytes(), &entry(n));
        }
        let i = t.find(b"L/p/3").unwrap();
        t.set_version(i, Some("1.2.3"));
        let i = t.find(b"L/p/4").unwrap();
        t.set_version(i, None);
        t
    }

    #[test]
    fn the_file_gives_back_what_was_used() {
        let t = filled();
        let mut back = Table::decode(&t.encode()).unwrap();
        assert_eq!(back.files, (1..50).sum::<u64>());
        for n in 1..50u8 {
            let k = format!("L/p/{n}");
            assert_eq!(back.get(k.as_bytes()).unwrap().entry, entry(n));
        }
        assert_eq!(
            back.get(b"L/p/3").unwrap().version,
            Some(Some("1.2.3".into()))
        );
        assert_eq!(back.get(b"L/p/4").unwrap().version, Some(None));
        assert_eq!(back.get(b"L/p/5").unwrap().version, None);
        assert!(back.get(b"D/p/5").is_none());
        // Only what was used since loading is written back.
        let mut again = Table::decode(&back.encode()).unwrap();
        assert!(again.get(b"L/p/1").is_some());
        let once = Table::decode(&again.encode()).unwrap();
        assert_eq!(once.entries.len(), 1);
    }

    #[test]
    fn a_torn_damaged_or_foreign_file_is_refused() {
        let bytes = filled().encode();
        for cut in [0, 7, 19, bytes.len() / 2, bytes.len() - 1] {
            assert!(Table::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for at in [0, 9, 13, 20, bytes.len() / 2, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            assert!(Table::decode(&bad).is_err(), "flipped at {at}");
        }
        let mut other = bytes[..bytes.len() - 4].to_vec();
        other[8] = 9;
        let crc = crc32fast::hash(&other);
        other.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(Table::decode(&other).unwrap_err(), "another format");
    }

    #[test]
    fn a_new_digest_forgets_the_version() {
        let mut t = filled();
        t.put(b"L/p/3", &entry(3));
        assert_eq!(t.get(b"L/p/3").unwrap().version, Some(Some("1.2.3".into())));
        t.put(b"L/p/3", &entry(7));
        assert_eq!(t.get(b"L/p/3").unwrap().version, None);
        assert_eq!(t.entries.len(), 49, "updated in place");
    }

    #[test]
    fn the_store_loads_and_saves_its_cache() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("store");
        let path = Path::new("/p/one/x");
        {
            let s = Store::open(&dir).unwrap();
            s.put_hash(Variant::Legacy, path, &entry(3));
            s.put_version(Variant::Legacy, path, &[3; 32], Some("2.0"));
            s.put_version(Variant::Legacy, path, &[9; 32], Some("stale"));
            s.save_hashes();
        }
        let s = Store::open(&dir).unwrap();
        assert_eq!(s.files_indexed(), 3);
        let c = s.cached_hash(Variant::Legacy, path).unwrap();
        assert_eq!(c.entry, entry(3));
        assert_eq!(c.version, Some(Some("2.0".into())));
        assert!(s.cached_hash(Variant::DeployedCopy, path).is_none());
        // A damaged file is ignored.
        let file = file_of(&dir);
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[30] ^= 1;
        drop(s);
        std::fs::write(&file, bytes).unwrap();
        let s = Store::open(&dir).unwrap();
        assert!(s.cached_hash(Variant::Legacy, path).is_none());
        assert_eq!(s.files_indexed(), 0);
    }
}
