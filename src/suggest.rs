//! "Did you mean …?" for misspelt names, so a typo in `daemon.toml` is fixed in one go.
//!
//! serde reports an unknown key as ``unknown field `scna`, expected one of `scan`, …``
//! (its stable wording for `deny_unknown_fields`); [`unknown_field`] reads that message and
//! appends the closest expected name. [`closest`] is the plain string matcher beneath.
//! Called by [`crate::config::Config::load`].

/// The candidate nearest to `name`, if it is near enough to be a likely typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// `message` with ``; did you mean `x`?`` appended when it is serde's unknown-field error
/// and one expected name is close to the unknown one; otherwise `message` unchanged.
pub fn unknown_field(message: &str) -> String {
    match suggestion(message) {
        Some(s) => {
            // The suggestion belongs on the line that names the field, not after the
            // source excerpt some parsers print below it.
            let mut lines: Vec<String> = message.lines().map(str::to_string).collect();
            if let Some(line) = lines.iter_mut().find(|l| l.contains("unknown field `")) {
                line.push_str(&format!("; did you mean `{s}`?"));
            }
            lines.join("\n")
        }
        None => message.to_string(),
    }
}

fn suggestion(message: &str) -> Option<&str> {
    let rest = &message[message.find("unknown field `")? + "unknown field `".len()..];
    let (name, rest) = rest.split_once('`')?;
    let expected = rest.lines().next()?.split_once("expected")?.1;
    // The expected names are the backquoted words that follow.
    let candidates = expected.split('`').skip(1).step_by(2);
    closest(name, candidates)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_expected_key() {
        let m = "TOML parse error at line 2, column 1\n  |\n2 | scna = []\n  | ^^^^\nunknown field `scna`, expected one of `scan`, `max_depth`, `registry`\n";
        let out = unknown_field(m);
        assert!(
            out.contains("expected one of `scan`, `max_depth`, `registry`; did you mean `scan`?"),
            "{out}"
        );
        assert!(out.starts_with("TOML parse error at line 2"));
    }

    #[test]
    fn two_candidates_and_one_candidate_forms() {
        assert!(
            unknown_field("unknown field `registy`, expected `scan` or `registry`")
                .ends_with("did you mean `registry`?")
        );
        assert!(
            unknown_field("unknown field `discovry`, expected `discovery`")
                .ends_with("did you mean `discovery`?")
        );
    }

    #[test]
    fn nothing_close_means_no_suggestion() {
        let m = "unknown field `colour`, expected one of `scan`, `max_depth`";
        assert_eq!(unknown_field(m), m);
        assert_eq!(unknown_field("expected a boolean"), "expected a boolean");
    }
}
