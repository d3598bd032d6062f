//! Where the parts of a stored object's JSON lie, found by one scan of its bytes (strings are
//! skipped whole, nothing is parsed): its top-level `metadata` object and that object's
//! `managedFields` member. The watch cache serves forms cut from the stored bytes with them —
//! metadata only, or the object without its managed fields — instead of parsing and
//! re-encoding every object it sends.

/// Byte ranges (start inclusive, end exclusive) in the scanned JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// The top-level `metadata` object, its braces included.
    pub metadata: (u32, u32),
    /// `"managedFields":[…]` in `metadata`, with the comma that separates it from a neighbour,
    /// so cutting the range out leaves valid JSON.
    pub managed_fields: Option<(u32, u32)>,
}

impl Layout {
    /// The layout of `json` (an object), or `None` when it has no top-level `metadata` object.
    pub fn of(json: &[u8]) -> Option<Self> {
        let mut scan = Scan { json, at: 0 };
        let mut depth = 0usize;
        // The last string seen at the current depth: the key of a `{` or `[` that follows.
        let mut last_string: Option<(usize, usize)> = None;
        let mut metadata_start = None;
        let mut managed_start = None;
        let mut managed_fields = None;
        while let Some(byte) = scan.next() {
            let at = scan.at - 1;
            match byte {
                b'"' => {
                    let start = at;
                    scan.skip_string();
                    last_string = Some((start, scan.at));
                }
                b'{' | b'[' => {
                    let key = last_string.map(|(s, e)| &json[s..e]);
                    if byte == b'{' && depth == 1 && key == Some(b"\"metadata\"") {
                        metadata_start = Some(at);
                    } else if byte == b'['
                        && depth == 2
                        && metadata_start.is_some()
                        && key == Some(b"\"managedFields\"")
                    {
                        managed_start = last_string.map(|(s, _)| s);
                    }
                    depth += 1;
                    last_string = None;
                }
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    last_string = None;
                    if depth == 2
                        && byte == b']'
                        && let Some(start) = managed_start.take()
                    {
                        managed_fields = Some(with_separator(json, start, at + 1));
                    }
                    if depth == 1
                        && byte == b'}'
                        && let Some(start) = metadata_start
                    {
                        return Some(Self {
                            metadata: (u32::try_from(start).ok()?, u32::try_from(at + 1).ok()?),
                            managed_fields: match managed_fields {
                                Some((s, e)) => {
                                    Some((u32::try_from(s).ok()?, u32::try_from(e).ok()?))
                                }
                                None => None,
                            },
                        });
                    }
                }
                _ => {}
            }
        }
        None
    }

    /// `json` (the bytes this layout was found in) with `"resourceVersion":"<revision>"` as
    /// the first member of its `metadata`, and the layout of the result (no second scan).
    pub fn stamp(&self, json: &[u8], revision: i64) -> (Vec<u8>, Layout) {
        let at = self.metadata.0 as usize + 1;
        let stamp = format!("\"resourceVersion\":\"{revision}\"");
        let empty = json[at..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
        let mut out = Vec::with_capacity(json.len() + stamp.len() + 1);
        out.extend_from_slice(&json[..at]);
        out.extend_from_slice(stamp.as_bytes());
        if !empty {
            out.push(b',');
        }
        out.extend_from_slice(&json[at..]);
        let grown = (out.len() - json.len()) as u32;
        let managed_fields = self.managed_fields.map(|(start, end)| {
            let separated = json[start as usize] == b',' || json[end as usize - 1] == b',';
            // Alone in metadata it had no comma to take along; the stamp's comma is its own now.
            let start = if separated { start + grown } else { at as u32 + grown - 1 };
            (start, end + grown)
        });
        let layout =
            Layout { metadata: (self.metadata.0, self.metadata.1 + grown), managed_fields };
        (out, layout)
    }

    /// `json` (the bytes this layout was found in) without its `managedFields` member.
    pub fn without_managed_fields(&self, json: &[u8]) -> Option<Vec<u8>> {
        let (start, end) = self.managed_fields?;
        let (start, end) = (start as usize, end as usize);
        let mut out = Vec::with_capacity(json.len() - (end - start));
        out.extend_from_slice(&json[..start]);
        out.extend_from_slice(&json[end..]);
        Some(out)
    }

    /// The `metadata` object's bytes, without `managedFields` when `omit_managed_fields`.
    pub fn metadata_bytes(&self, json: &[u8], omit_managed_fields: bool, out: &mut Vec<u8>) {
        let (start, end) = (self.metadata.0 as usize, self.metadata.1 as usize);
        match self.managed_fields.filter(|_| omit_managed_fields) {
            Some((cut_start, cut_end)) => {
                out.extend_from_slice(&json[start..cut_start as usize]);
                out.extend_from_slice(&json[cut_end as usize..end]);
            }
            None => out.extend_from_slice(&json[start..end]),
        }
    }
}

/// The member `json[start..end]` widened over the comma after it, or else the one before it.
fn with_separator(json: &[u8], start: usize, end: usize) -> (usize, usize) {
    let after = json[end..].iter().position(|b| !b.is_ascii_whitespace()).map(|n| end + n);
    if let Some(comma) = after.filter(|&i| json[i] == b',') {
        return (start, comma + 1);
    }
    let before = json[..start].iter().rposition(|b| !b.is_ascii_whitespace());
    match before.filter(|&i| json[i] == b',') {
        Some(comma) => (comma, end),
        None => (start, end),
    }
}

struct Scan<'a> {
    json: &'a [u8],
    at: usize,
}

impl Scan<'_> {
    fn next(&mut self) -> Option<u8> {
        let byte = *self.json.get(self.at)?;
        self.at += 1;
        Some(byte)
    }

    /// Moves past the closing quote of the string whose opening quote was just read.
    fn skip_string(&mut self) {
        while let Some(byte) = self.next() {
            match byte {
                b'\\' => self.at += 1,
                b'"' => return,
                _ => {}
            }
        }
        self.at = self.at.min(self.json.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn cut(json: &str) -> Value {
        let layout = Layout::of(json.as_bytes()).expect("layout");
        let out = layout.without_managed_fields(json.as_bytes()).unwrap_or(json.as_bytes().into());
        serde_json::from_slice(&out).expect("still JSON")
    }

    fn metadata(json: &str, omit: bool) -> Value {
        let layout = Layout::of(json.as_bytes()).expect("layout");
        let mut out = Vec::new();
        layout.metadata_bytes(json.as_bytes(), omit, &mut out);
        serde_json::from_slice(&out).expect("metadata is JSON")
    }

    #[test]
    fn managed_fields_are_cut_wherever_they_stand() {
        let fields = r#"[{"manager":"a","fieldsV1":{"f:metadata":{"f:labels":{}}}}]"#;
        let cases = [
            format!(r#"{{"metadata":{{"managedFields":{fields},"name":"x"}},"spec":{{}}}}"#),
            format!(r#"{{"metadata":{{"name":"x","managedFields":{fields}}},"spec":{{}}}}"#),
            format!(r#"{{"metadata":{{"name":"x", "managedFields" : {fields} , "uid":"u"}}}}"#),
            format!(r#"{{"metadata":{{"managedFields":{fields}}}}}"#),
        ];
        for case in &cases {
            let original: Value = serde_json::from_str(case).unwrap();
            let mut expected = original.clone();
            expected["metadata"].as_object_mut().unwrap().remove("managedFields");
            assert_eq!(cut(case), expected, "{case}");
            assert_eq!(metadata(case, true), expected["metadata"], "{case}");
            assert_eq!(metadata(case, false), original["metadata"], "{case}");
        }
    }

    #[test]
    fn lookalikes_are_not_taken_for_the_parts() {
        // A `metadata` below the top level, keys inside strings, a string value "managedFields"
        // followed by an array member, and escaped quotes and brackets.
        let json = r#"{"spec":{"metadata":{"managedFields":[1]}},"note":"\"metadata\":{[\\",
            "metadata":{"a":"managedFields","b":[2],"labels":{"managedFields":"]}"},
            "annotations":{"k":"{\"managedFields\":[]}"}},"status":{}}"#;
        let layout = Layout::of(json.as_bytes()).unwrap();
        assert_eq!(layout.managed_fields, None);
        let parsed: Value = serde_json::from_str(json).unwrap();
        assert_eq!(metadata(json, true), parsed["metadata"]);
        assert_eq!(&json[layout.metadata.0 as usize + 1..][..4], r#""a":"#);
    }

    #[test]
    fn a_stamped_object_has_the_layout_a_scan_of_it_finds() {
        let fields = r#"[{"manager":"a"}]"#;
        let cases = [
            format!(r#"{{"metadata":{{"managedFields":{fields},"name":"x"}},"spec":{{}}}}"#),
            format!(r#"{{"metadata":{{"name":"x", "managedFields" : {fields} }}}}"#),
            format!(r#"{{"metadata":{{ "managedFields":{fields}}}}}"#),
            r#"{"metadata":{"name":"x"}}"#.to_owned(),
            r#"{"metadata":{ }}"#.to_owned(),
        ];
        for case in &cases {
            let (stamped, layout) = Layout::of(case.as_bytes()).unwrap().stamp(case.as_bytes(), 7);
            assert_eq!(Some(layout), Layout::of(&stamped), "{case}");
            let mut expected: Value = serde_json::from_str(case).unwrap();
            expected["metadata"]["resourceVersion"] = json!("7");
            assert_eq!(serde_json::from_slice::<Value>(&stamped).unwrap(), expected);
            let cut = layout.without_managed_fields(&stamped).unwrap_or(stamped.clone());
            expected["metadata"].as_object_mut().unwrap().remove("managedFields");
            assert_eq!(serde_json::from_slice::<Value>(&cut).unwrap(), expected, "{case}");
        }
    }

    #[test]
    fn objects_without_metadata_have_no_layout() {
        assert_eq!(Layout::of(br#"{"kind":"X","spec":{"metadata":{}}}"#), None);
        assert_eq!(Layout::of(br#"{"metadata":{"name":"#), None);
        assert_eq!(Layout::of(b"[]"), None);
        let empty = Layout::of(br#"{"metadata":{}}"#).unwrap();
        assert_eq!(empty.metadata, (12, 14));
        assert_eq!(metadata(&json!({"metadata": {}}).to_string(), true), json!({}));
    }
}
