//! HPACK encoding of the header blocks h2 reads on a rewritten connection, against a
//! dynamic table that mirrors h2's own decoder table.
//!
//! h2 decodes every header block it is handed, in order, whatever it then makes of the
//! request (a malformed or oversized request is reset only after its block is decoded; an
//! HPACK error ends the connection). So when this encoder is the only source of the blocks
//! h2 reads, applying to its table the same insertions (RFC 7541 §4.4: newest first, sizes
//! of name + value + 32, the oldest evicted past [`HEADER_TABLE_SIZE`], an entry larger than
//! the table empties it) keeps the two tables identical, entry for entry. h2 then reads a
//! repeated field as a one-byte reference to its table, as it does on a connection the
//! layer passes through, instead of a literal it must parse and allocate again.
//!
//! The one HEADERS frame h2 does not decode is one whose priority makes the stream depend
//! on itself (h2 resets the stream before reading the block): the caller asks for such a
//! block to be encoded without touching the table ([`Encoder::neutral`]).
//!
//! A field is indexed here where the client indexed it (a reference to the client's table,
//! or a literal with incremental indexing); a literal the client chose not to index stays
//! one, and a never-indexed literal stays never-indexed (RFC 7541 §6.2.3 asks that of an
//! intermediary). No HPACK crate exposes an encoder that takes that choice per field and
//! shows its table (loona-hpack's never indexes a field whose name any table holds), so the
//! table is kept here; loona-hpack writes the integers, and the decoder side of the layer
//! stays loona-hpack's.

use std::collections::VecDeque;
use std::sync::OnceLock;

use loona_hpack::encoder::encode_integer_into;

use super::HEADER_TABLE_SIZE;

/// How the client sent a field, and so how it is sent on (RFC 7541 §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Indexing {
    /// Indexed by the client (a table reference, or a literal with incremental indexing).
    Add,
    /// A literal without indexing.
    No,
    /// A literal never indexed.
    Never,
}

/// A table entry: name and value.
type Entry = (Box<[u8]>, Box<[u8]>);

/// The encoding side of a rewritten connection: h2's dynamic table, as h2 holds it.
pub(super) struct Encoder {
    /// Newest first, as HPACK numbers them (index 62 is the front).
    entries: VecDeque<Entry>,
    /// The table's size as HPACK counts it.
    size: usize,
}

impl Encoder {
    pub(super) fn new() -> Encoder {
        Encoder {
            entries: VecDeque::new(),
            size: 0,
        }
    }

    /// Appends one field to `out`: a reference when a table holds it, else a literal (its
    /// name a reference when a table holds that), added to the table for [`Indexing::Add`].
    /// Returns whether the table changed.
    pub(super) fn field(
        &mut self,
        name: &[u8],
        value: &[u8],
        how: Indexing,
        out: &mut Vec<u8>,
    ) -> bool {
        let (full, name_index) = self.find(name, value);
        if let (Some(index), Indexing::Add | Indexing::No) = (full, how) {
            integer(index, 7, 0x80, out);
            return false;
        }
        let (prefix, bits) = match how {
            Indexing::Add => (6, 0x40),
            Indexing::No => (4, 0x00),
            Indexing::Never => (4, 0x10),
        };
        integer(name_index, prefix, bits, out);
        if name_index == 0 {
            string(name, out);
        }
        string(value, out);
        if how == Indexing::Add {
            self.insert(name, value);
            return true;
        }
        false
    }

    /// [`Encoder::field`] for a block h2 will not decode: the table is only read.
    pub(super) fn neutral(&mut self, name: &[u8], value: &[u8], how: Indexing, out: &mut Vec<u8>) {
        let how = if how == Indexing::Add {
            Indexing::No
        } else {
            how
        };
        self.field(name, value, how, out);
    }

    /// The index of the field, if a table holds it, and of its name (0 for none). The
    /// static table first, where the same field is usually found.
    fn find(&self, name: &[u8], value: &[u8]) -> (Option<usize>, usize) {
        let dynamic = self.entries.iter().map(|(n, v)| (&n[..], &v[..]));
        let statics = static_table().iter().map(|(n, v)| (&n[..], &v[..]));
        let mut name_index = 0;
        for (i, (n, v)) in statics.chain(dynamic).enumerate() {
            if n == name {
                if v == value {
                    return (Some(i + 1), i + 1);
                }
                if name_index == 0 {
                    name_index = i + 1;
                }
            }
        }
        (None, name_index)
    }

    /// RFC 7541 §4.4, as h2 applies it.
    fn insert(&mut self, name: &[u8], value: &[u8]) {
        let len = entry_size(name, value);
        while self.size + len > HEADER_TABLE_SIZE {
            let Some((n, v)) = self.entries.pop_back() else {
                break;
            };
            self.size -= entry_size(&n, &v);
        }
        if self.size + len <= HEADER_TABLE_SIZE {
            self.size += len;
            self.entries.push_front((name.into(), value.into()));
        }
    }
}

fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len() + value.len() + 32
}

/// Writing into a Vec cannot fail.
fn integer(value: usize, prefix: u8, bits: u8, out: &mut Vec<u8>) {
    let _ = encode_integer_into(value, prefix, bits, out);
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    integer(s.len(), 7, 0x00, out);
    out.extend_from_slice(s);
}

/// HPACK's static table (RFC 7541 Appendix A), read once through loona-hpack's decoder:
/// entry `i` is what the one-byte representation "indexed, `i`" decodes to.
fn static_table() -> &'static [(Vec<u8>, Vec<u8>)] {
    static TABLE: OnceLock<Vec<(Vec<u8>, Vec<u8>)>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut decoder = loona_hpack::Decoder::new();
        (1..=STATIC_ENTRIES)
            .map_while(|i| decoder.decode(&[0x80 | i]).ok()?.pop())
            .collect()
    })
}

/// Entries in HPACK's static table.
const STATIC_ENTRIES: u8 = 61;

#[cfg(test)]
mod tests {
    use super::*;

    type Fields = Vec<(Vec<u8>, Vec<u8>)>;

    fn encode(enc: &mut Encoder, fields: &[(&str, &str, Indexing)]) -> (Vec<u8>, bool) {
        let mut out = Vec::new();
        let mut changed = false;
        for (n, v, how) in fields {
            changed |= enc.field(n.as_bytes(), v.as_bytes(), *how, &mut out);
        }
        (out, changed)
    }

    fn owned(fields: &[(&str, &str, Indexing)]) -> Fields {
        fields
            .iter()
            .map(|(n, v, _)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn the_static_table_is_used_for_names_and_fields() {
        assert_eq!(static_table().len(), usize::from(STATIC_ENTRIES));
        let mut enc = Encoder::new();
        let (out, changed) = encode(
            &mut enc,
            &[
                (":method", "POST", Indexing::Add), // entry 3
                (":path", "/x", Indexing::No),      // name 4
                ("te", "trailers", Indexing::No),   // not in the table
                ("x-key", "k", Indexing::Never),
            ],
        );
        assert!(!changed);
        let expected = [
            &[0x83, 0x04, 2][..],
            b"/x",
            &[0, 2],
            b"te",
            &[8],
            b"trailers",
            &[0x10, 5],
            b"x-key",
            &[1],
            b"k",
        ]
        .concat();
        assert_eq!(out, expected);
        assert!(enc.entries.is_empty());
    }

    #[test]
    fn indexed_fields_become_references_a_decoder_reads_alike() {
        let request = [
            (":path", "/grpc.health.v1.Health/Check", Indexing::Add),
            (":authority", "localhost", Indexing::Add),
            ("te", "trailers", Indexing::Add),
            ("grpc-timeout", "5S", Indexing::No),
            ("authorization", "secret", Indexing::Never),
        ];
        let mut enc = Encoder::new();
        // h2's side: one decoder for the connection.
        let mut h2 = loona_hpack::Decoder::new();
        let (first, changed) = encode(&mut enc, &request);
        assert!(changed);
        assert_eq!(h2.decode(&first).unwrap(), owned(&request));
        let (steady, changed) = encode(&mut enc, &request);
        assert!(!changed);
        assert_eq!(h2.decode(&steady).unwrap(), owned(&request));
        // Three references (64, 63, 62), then the two literals as they came.
        assert_eq!(&steady[..3], &[0x80 | 64, 0x80 | 63, 0x80 | 62]);
        assert_eq!(steady[3] & 0xf0, 0x00);
        assert_eq!(steady[3 + 1 + 1 + 12 + 1 + 2] & 0xf0, 0x10);
    }

    #[test]
    fn the_table_evicts_as_hpack_does() {
        let mut enc = Encoder::new();
        let mut h2 = loona_hpack::Decoder::new();
        let big = "v".repeat(1000);
        // Six entries of 1037 bytes: only the newest three fit in 4096.
        for i in 0..6 {
            let name = format!("x-{i:03}");
            let (block, _) = encode(&mut enc, &[(&name, &big, Indexing::Add)]);
            h2.decode(&block).unwrap();
        }
        assert_eq!(enc.entries.len(), 3);
        assert_eq!(enc.size, 3 * 1037);
        // What the encoder refers to, the decoder holds.
        for i in 3..6 {
            let name = format!("x-{i:03}");
            let (block, changed) = encode(&mut enc, &[(&name, &big, Indexing::Add)]);
            assert!(!changed);
            assert_eq!(block.len(), 1);
            assert_eq!(
                h2.decode(&block).unwrap(),
                owned(&[(&name, &big, Indexing::Add)])
            );
        }
        // An entry larger than the table empties it and is not stored.
        let huge = "h".repeat(HEADER_TABLE_SIZE);
        let (block, changed) = encode(&mut enc, &[("x-huge", &huge, Indexing::Add)]);
        assert!(changed);
        h2.decode(&block).unwrap();
        assert!(enc.entries.is_empty());
        assert_eq!(enc.size, 0);
        assert!(h2.decode(&[0x80 | 62]).is_err(), "h2's table is empty too");
    }

    #[test]
    fn a_neutral_block_leaves_the_table_alone() {
        let mut enc = Encoder::new();
        encode(&mut enc, &[("x-a", "1", Indexing::Add)]);
        let mut out = Vec::new();
        enc.neutral(b"x-a", b"1", Indexing::Add, &mut out);
        enc.neutral(b"x-b", b"2", Indexing::Add, &mut out);
        assert_eq!(
            out,
            [&[0x80 | 62, 0x00, 3][..], b"x-b", &[1], b"2"].concat()
        );
        assert_eq!(enc.entries.len(), 1);
    }
}
