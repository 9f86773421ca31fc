//! Writing values into an existing TOML document the way SkillMeat's writer (`tomli_w`)
//! would have written them (formats doc §0.1), so an edited file reads as if SkillMeat
//! wrote it: basic double-quoted strings with tomli_w's escapes, multi-line string
//! arrays with a 4-space indent and a trailing comma, and a new key placed after the
//! keys SkillMeat writes before it.
//!
//! Everything else in the document — unknown keys, comments, other records — is left to
//! `toml_edit`, which keeps it byte for byte.

use toml_edit::{Array, Item, Table, Value};

/// `s` as tomli_w writes a string: `"…"` escaping `"` `\` `\b` `\n` `\f` `\r`, other C0
/// controls and DEL as `\u00xx`, TAB and non-ASCII raw.
pub fn basic_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push('\t'),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A string value rendered as tomli_w would.
pub fn string_value(s: &str) -> Value {
    basic_string(s)
        .parse::<Value>()
        .expect("a basic string is a TOML value")
}

/// A string array rendered as tomli_w would: `[]` when empty, else one item per line.
pub fn string_array<'a>(items: impl IntoIterator<Item = &'a str>) -> Value {
    let mut array = Array::new();
    for item in items {
        let mut v = string_value(item);
        v.decor_mut().set_prefix("\n    ");
        v.decor_mut().set_suffix("");
        array.push_formatted(v);
    }
    if !array.is_empty() {
        array.set_trailing_comma(true);
        array.set_trailing("\n");
    }
    Value::Array(array)
}

/// Sets `key` of `table` to `value`. An existing key keeps its place and the spacing
/// around its `=`; a new key goes right after the last key of `order` that precedes it
/// and is present (SkillMeat's field order), or at the end.
pub fn set(table: &mut Table, key: &str, mut value: Value, order: &[&str]) {
    if let Some(Item::Value(old)) = table.get_mut(key) {
        *value.decor_mut() = old.decor().clone();
        *old = value;
        return;
    }
    value.decor_mut().set_prefix(" ");
    value.decor_mut().set_suffix("");
    table.insert(key, Item::Value(value));
    let Some(at) = order.iter().position(|k| *k == key) else {
        return;
    };
    let after = order[..at]
        .iter()
        .rev()
        .find(|k| table.contains_key(k))
        .map(|k| (*k).to_string());
    let Some(after) = after else { return };
    let mut rank: Vec<(String, usize)> = table
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (k.to_string(), 2 * i))
        .collect();
    let after_rank = rank.iter().find(|(k, _)| *k == after).map(|(_, r)| *r);
    if let (Some(r), Some(slot)) = (after_rank, rank.iter_mut().find(|(k, _)| k == key)) {
        slot.1 = r + 1;
    }
    let rank_of = |k: &str| {
        rank.iter()
            .find(|(n, _)| n == k)
            .map_or(usize::MAX, |(_, r)| *r)
    };
    table.sort_values_by(|k1, _, k2, _| rank_of(k1.get()).cmp(&rank_of(k2.get())));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_escape_like_tomli_w() {
        assert_eq!(basic_string("plain"), "\"plain\"");
        assert_eq!(
            basic_string("q\"b\\n\nt\tc\u{1}d\u{7f}é"),
            "\"q\\\"b\\\\n\\nt\tc\\u0001d\\u007fé\""
        );
        assert_eq!(string_value("a\\b").to_string(), "\"a\\\\b\"");
    }

    #[test]
    fn arrays_are_multi_line_with_a_trailing_comma() {
        let mut doc = toml_edit::DocumentMut::new();
        doc["a"] = Item::Value(string_array(["x", "y"]));
        doc["e"] = Item::Value(string_array([]));
        assert_eq!(
            doc.to_string(),
            "a = [\n    \"x\",\n    \"y\",\n]\ne = []\n"
        );
    }

    #[test]
    fn new_keys_follow_the_given_order_and_old_ones_stay() {
        let mut doc: toml_edit::DocumentMut = "[t]\na = 1\nc  =  3\nz = 0\n".parse().unwrap();
        let t = doc["t"].as_table_mut().unwrap();
        set(t, "b", string_value("B"), &["a", "b", "c"]);
        set(t, "c", string_value("C"), &["a", "b", "c"]);
        set(t, "n", string_value("N"), &["a", "b", "c"]);
        assert_eq!(
            doc.to_string(),
            "[t]\na = 1\nb = \"B\"\nc  =  \"C\"\nz = 0\nn = \"N\"\n"
        );
    }
}
