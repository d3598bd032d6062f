//! Label and field selectors, parsed and matched exactly like apimachinery's `labels` and
//! `fields` packages, including their error messages (clients show them verbatim).

use std::fmt;

use serde_json::{Map, Value};

/// How a label requirement relates a key to its values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One clause of a label selector, e.g. `tier in (a,b)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    /// As given; the parser hands them over sorted and deduplicated (upstream's `sets.String`).
    values: Vec<String>,
}

impl Requirement {
    /// Builds a requirement, checking it the way `labels.NewRequirement` does: a valid key,
    /// the number of values the operator needs, and valid label values.
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Self, String> {
        let mut errors = Vec::new();
        if let Some(e) = key_error(key, "key") {
            errors.push(e);
        }
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => errors.push(invalid_list(
                "values",
                &values,
                "for 'in', 'notin' operators, values set can't be empty",
            )),
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals
                if values.len() != 1 =>
            {
                errors.push(invalid_list(
                    "values",
                    &values,
                    "exact-match compatibility requires one single value",
                ))
            }
            Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
                errors.push(invalid_list(
                    "values",
                    &values,
                    "values set must be empty for exists and does not exist",
                ))
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errors.push(invalid_list(
                        "values",
                        &values,
                        "for 'Gt', 'Lt' operators, exactly one value is required",
                    ));
                }
                for (i, value) in values.iter().enumerate() {
                    if value.parse::<i64>().is_err() {
                        errors.push(invalid(
                            &format!("values[{i}]"),
                            value,
                            "for 'Gt', 'Lt' operators, the value must be an integer",
                        ));
                    }
                }
            }
            _ => {}
        }
        for (i, value) in values.iter().enumerate() {
            let problems = label_value_errors(value);
            if !problems.is_empty() {
                errors.push(invalid(&format!("values[{i}][{key}]"), value, &problems.join("; ")));
            }
        }
        if !errors.is_empty() {
            return Err(aggregate(errors));
        }
        Ok(Self { key: key.to_owned(), operator, values })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether `labels` (an object's `metadata.labels`) satisfy this requirement. A label whose
    /// value is not a string counts as absent: such an object could not have been stored.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        self.matches_value(labels.get(&self.key).and_then(Value::as_str))
    }

    /// Whether an object whose label `key()` has `value` (`None`: no such label) satisfies
    /// this requirement.
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        let has = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => value.is_some_and(has),
            Operator::NotIn | Operator::NotEquals => !value.is_some_and(has),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(Ok(actual)), [wanted]) =
                    (value.map(str::parse::<i64>), self.values.as_slice())
                else {
                    return false;
                };
                let Ok(wanted) = wanted.parse::<i64>() else { return false };
                match self.operator {
                    Operator::GreaterThan => actual > wanted,
                    _ => actual < wanted,
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        // Printed sorted so equal selectors print alike, without reordering the requirement.
        let mut sorted: Vec<&str> = self.values.iter().map(String::as_str).collect();
        sorted.sort_unstable();
        let values = sorted.join(",");
        match self.operator {
            Operator::Exists | Operator::DoesNotExist => Ok(()),
            Operator::Equals => write!(f, "={values}"),
            Operator::DoubleEquals => write!(f, "=={values}"),
            Operator::NotEquals => write!(f, "!={values}"),
            Operator::GreaterThan => write!(f, ">{values}"),
            Operator::LessThan => write!(f, "<{values}"),
            Operator::In => write!(f, " in ({values})"),
            Operator::NotIn => write!(f, " notin ({values})"),
        }
    }
}

/// A label selector: requirements that must all hold. The empty selector matches everything;
/// [`LabelSelector::nothing`] (a null `metav1.LabelSelector`) matches nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// Sorted by key (stably, so equal keys keep their written order) like upstream's `ByKey`.
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    pub fn everything() -> Self {
        Self::default()
    }

    pub fn nothing() -> Self {
        Self { requirements: Vec::new(), nothing: true }
    }

    /// Parses the `labelSelector` query parameter syntax (`labels.Parse`).
    pub fn parse(text: &str) -> Result<Self, String> {
        let requirements = LabelParser::new(text).parse()?;
        Ok(Self::from_requirements(requirements))
    }

    /// Converts a `metav1.LabelSelector` object (`metav1.LabelSelectorAsSelector`): null
    /// selects nothing, `{}` selects everything.
    pub fn from_label_selector_json(selector: &Value) -> Result<Self, String> {
        let object = match selector {
            Value::Null => return Ok(Self::nothing()),
            Value::Object(object) => object,
            _ => return Err("a label selector must be an object".to_owned()),
        };
        let mut requirements = Vec::new();
        match object.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(labels)) => {
                // Sorted so the first error reported does not depend on map order.
                let mut labels: Vec<_> = labels.iter().collect();
                labels.sort_by(|a, b| a.0.cmp(b.0));
                for (key, value) in labels {
                    let value = value.as_str().ok_or("matchLabels values must be strings")?;
                    requirements.push(Requirement::new(key, Operator::Equals, vec![value.into()])?);
                }
            }
            Some(_) => return Err("matchLabels must be an object".to_owned()),
        }
        match object.get("matchExpressions") {
            None | Some(Value::Null) => {}
            Some(Value::Array(expressions)) => {
                for expression in expressions {
                    requirements.push(expression_requirement(expression)?);
                }
            }
            Some(_) => return Err("matchExpressions must be a list".to_owned()),
        }
        Ok(Self::from_requirements(requirements))
    }

    /// The selector a plain label map gives (`labels.SelectorFromSet`), as ReplicationControllers
    /// and Services select pods. Entries whose value is not a string are skipped.
    pub fn from_labels_map(labels: &Map<String, Value>) -> Self {
        let requirements = labels
            .iter()
            .filter_map(|(key, value)| {
                let value = value.as_str()?.to_owned();
                Some(Requirement {
                    key: key.clone(),
                    operator: Operator::Equals,
                    values: vec![value],
                })
            })
            .collect();
        Self::from_requirements(requirements)
    }

    fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Self { requirements, nothing: false }
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True when the selector places no restriction (matches every object).
    pub fn is_everything(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Whether labels looked up by `label` (key → value) satisfy every requirement.
    pub fn matches_with<'a>(&self, label: impl Fn(&str) -> Option<&'a str>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches_value(label(&r.key)))
    }

    /// Whether a whole object's labels satisfy the selector; absent labels count as empty.
    pub fn matches_object(&self, object: &Value) -> bool {
        match object.pointer("/metadata/labels") {
            Some(Value::Object(labels)) => self.matches(labels),
            _ => self.matches(&Map::new()),
        }
    }

    /// The selector in query-parameter syntax (`labels.Selector.String()`): empty when it
    /// selects everything. This is what `?labelSelector=` and `Scale.status.selector` carry.
    pub fn to_query(&self) -> String {
        let parts: Vec<String> = self.requirements.iter().map(ToString::to_string).collect();
        parts.join(",")
    }
}

/// Renders like `metav1.FormatLabelSelector`, as tables show selectors: `app=web,tier in (a,b)`,
/// or `<none>` when empty.
impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.to_query();
        f.write_str(if text.is_empty() { "<none>" } else { &text })
    }
}

fn expression_requirement(expression: &Value) -> Result<Requirement, String> {
    let key = expression.get("key").and_then(Value::as_str).unwrap_or_default();
    let operator = expression.get("operator").and_then(Value::as_str).unwrap_or_default();
    let operator = match operator {
        "In" => Operator::In,
        "NotIn" => Operator::NotIn,
        "Exists" => Operator::Exists,
        "DoesNotExist" => Operator::DoesNotExist,
        other => return Err(format!("{} is not a valid label selector operator", go_quote(other))),
    };
    let values = match expression.get("values") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(values)) => values
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or("matchExpressions values must be strings"))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("matchExpressions values must be a list".to_owned()),
    };
    Requirement::new(key, operator, values)
}

// ---------------------------------------------------------------------------------------------
// The label selector lexer and parser: a transliteration of apimachinery's, so that every
// accepted string, every rejected string and every message is the same.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn symbol_token(text: &str) -> Option<Token> {
    Some(match text {
        ")" => Token::ClosedPar,
        "," => Token::Comma,
        "!" => Token::DoesNotExist,
        "==" => Token::DoubleEquals,
        "=" => Token::Equals,
        ">" => Token::GreaterThan,
        "<" => Token::LessThan,
        "!=" => Token::NotEquals,
        "(" => Token::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_special_symbol(b: u8) -> bool {
    matches!(b, b'=' | b'!' | b'(' | b')' | b',' | b'>' | b'<')
}

/// Splits the selector into tokens. Like upstream it works on bytes and stops at a NUL byte.
fn lex(text: &str) -> Vec<(Token, String)> {
    let bytes = text.as_bytes();
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    let bytes = &bytes[..end];
    let mut tokens = Vec::new();
    let mut pos = 0;
    loop {
        while pos < bytes.len() && is_whitespace(bytes[pos]) {
            pos += 1;
        }
        if pos == bytes.len() {
            tokens.push((Token::EndOfString, String::new()));
            return tokens;
        }
        let start = pos;
        if is_special_symbol(bytes[pos]) {
            // Longest run of symbol bytes that still forms a token ("!=" over "!").
            let mut token = None;
            while pos < bytes.len() && is_special_symbol(bytes[pos]) {
                match symbol_token(&text[start..=pos]) {
                    Some(t) => token = Some((t, pos + 1)),
                    None if token.is_some() => break,
                    None => {}
                }
                pos += 1;
            }
            // Every single symbol byte is a token, so one was found.
            let (token, token_end) = token.unwrap_or((Token::EndOfString, pos));
            pos = token_end;
            tokens.push((token, text[start..pos].to_owned()));
        } else {
            while pos < bytes.len() && !is_special_symbol(bytes[pos]) && !is_whitespace(bytes[pos])
            {
                pos += 1;
            }
            // Only ASCII bytes end a word, so the slice falls on character boundaries.
            let word = text[start..pos].to_owned();
            let token = match word.as_str() {
                "in" => Token::In,
                "notin" => Token::NotIn,
                _ => Token::Identifier,
            };
            tokens.push((token, word));
        }
    }
}

/// Whether `in`/`notin` are keywords (operator position) or plain words (keys and values).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    KeyAndOperator,
    Values,
}

struct LabelParser {
    tokens: Vec<(Token, String)>,
    position: usize,
}

impl LabelParser {
    fn new(text: &str) -> Self {
        Self { tokens: lex(text), position: 0 }
    }

    fn lookahead(&self, context: Context) -> (Token, String) {
        // The lexer always ends with EndOfString and parsing stops there.
        let (token, literal) =
            self.tokens.get(self.position).cloned().unwrap_or((Token::EndOfString, String::new()));
        let token = match (context, token) {
            (Context::Values, Token::In | Token::NotIn) => Token::Identifier,
            _ => token,
        };
        (token, literal)
    }

    fn consume(&mut self, context: Context) -> (Token, String) {
        let item = self.lookahead(context);
        self.position = (self.position + 1).min(self.tokens.len());
        item
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, String> {
        let mut requirements = Vec::new();
        loop {
            let (token, literal) = self.lookahead(Context::Values);
            match token {
                Token::Identifier | Token::DoesNotExist => {
                    let requirement = self
                        .parse_requirement()
                        .map_err(|e| format!("unable to parse requirement: {e}"))?;
                    requirements.push(requirement);
                    let (token, literal) = self.consume(Context::Values);
                    match token {
                        Token::EndOfString => return Ok(requirements),
                        Token::Comma => {
                            let (next, literal) = self.lookahead(Context::Values);
                            if next != Token::Identifier && next != Token::DoesNotExist {
                                return Err(format!(
                                    "found '{literal}', expected: identifier after ','"
                                ));
                            }
                        }
                        _ => {
                            return Err(format!(
                                "found '{literal}', expected: ',' or 'end of string'"
                            ));
                        }
                    }
                }
                Token::EndOfString => return Ok(requirements),
                _ => {
                    return Err(format!(
                        "found '{literal}', expected: !, identifier, or 'end of string'"
                    ));
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, String> {
        let (key, inferred) = self.parse_key_and_infer_operator()?;
        if let Some(operator) = inferred {
            return Requirement::new(&key, operator, Vec::new());
        }
        let operator = self.parse_operator()?;
        let values = match operator {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => vec![self.parse_exact_value()?],
        };
        // Upstream collects values in a set, so errors index the sorted, distinct values.
        let mut values = values;
        values.sort();
        values.dedup();
        Requirement::new(&key, operator, values)
    }

    /// Reads `key` or `!key`; the operator is known here when the key stands alone.
    fn parse_key_and_infer_operator(&mut self) -> Result<(String, Option<Operator>), String> {
        let (mut token, mut literal) = self.consume(Context::Values);
        let negated = token == Token::DoesNotExist;
        if negated {
            (token, literal) = self.consume(Context::Values);
        }
        if token != Token::Identifier {
            return Err(format!("found '{literal}', expected: identifier"));
        }
        // Upstream validates the bare key with a nil field path, hence "<nil>".
        if let Some(e) = key_error(&literal, "<nil>") {
            return Err(e);
        }
        if negated {
            return Ok((literal, Some(Operator::DoesNotExist)));
        }
        let (next, _) = self.lookahead(Context::Values);
        let alone = next == Token::EndOfString || next == Token::Comma;
        Ok((literal, alone.then_some(Operator::Exists)))
    }

    fn parse_operator(&mut self) -> Result<Operator, String> {
        let (token, literal) = self.consume(Context::KeyAndOperator);
        Ok(match token {
            Token::In => Operator::In,
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::NotIn => Operator::NotIn,
            Token::NotEquals => Operator::NotEquals,
            _ => {
                return Err(format!("found '{literal}', expected: in, notin, =, ==, !=, gt, lt"));
            }
        })
    }

    /// Reads `(a,b,...)`; empty entries stand for the empty value, as upstream allows.
    fn parse_values(&mut self) -> Result<Vec<String>, String> {
        let (token, literal) = self.consume(Context::Values);
        if token != Token::OpenPar {
            return Err(format!("found '{literal}' expected: '('"));
        }
        let (token, literal) = self.lookahead(Context::Values);
        match token {
            Token::Identifier | Token::Comma => {
                let values = self.parse_identifiers_list()?;
                self.consume(Context::Values); // the ')' the list stopped at
                Ok(values)
            }
            Token::ClosedPar => {
                self.consume(Context::Values);
                Ok(vec![String::new()])
            }
            _ => Err(format!("found '{literal}', expected: ',', ')' or identifier")),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<Vec<String>, String> {
        let mut values = Vec::new();
        loop {
            let (token, literal) = self.consume(Context::Values);
            match token {
                Token::Identifier => {
                    values.push(literal);
                    let (next, literal) = self.lookahead(Context::Values);
                    match next {
                        Token::Comma => continue,
                        Token::ClosedPar => return Ok(values),
                        _ => return Err(format!("found '{literal}', expected: ',' or ')'")),
                    }
                }
                Token::Comma => {
                    if values.is_empty() {
                        values.push(String::new()); // "(,"
                    }
                    let (next, _) = self.lookahead(Context::Values);
                    if next == Token::ClosedPar {
                        values.push(String::new()); // ",)"
                        return Ok(values);
                    }
                    if next == Token::Comma {
                        self.consume(Context::Values);
                        values.push(String::new()); // ",,"
                    }
                }
                _ => return Err(format!("found '{literal}', expected: ',', or identifier")),
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<String, String> {
        let (token, _) = self.lookahead(Context::Values);
        if token == Token::EndOfString || token == Token::Comma {
            return Ok(String::new());
        }
        let (token, literal) = self.consume(Context::Values);
        if token == Token::Identifier {
            Ok(literal)
        } else {
            Err(format!("found '{literal}', expected: identifier"))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Field selectors (`fields.ParseSelector`).

/// One `field=value` or `field!=value` term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldTerm {
    pub field: String,
    pub value: String,
    /// `!=` rather than `=`/`==`.
    pub negated: bool,
}

impl FieldTerm {
    fn matches(&self, actual: &str) -> bool {
        (actual == self.value) != self.negated
    }
}

/// A field selector: terms that must all hold. The empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

impl FieldSelector {
    pub fn everything() -> Self {
        Self::default()
    }

    /// Parses the `fieldSelector` query parameter: comma-separated `field=value`,
    /// `field==value` or `field!=value`, where values escape `\`, `,` and `=` with a backslash.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = split_terms(text);
        // Upstream sorts the raw terms first, which decides which error is reported.
        parts.sort();
        let mut terms = Vec::new();
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let Some((field, operator, raw)) = split_term(part) else {
                return Err(format!("invalid selector: '{text}'; can't understand '{part}'"));
            };
            terms.push(FieldTerm {
                field: field.to_owned(),
                value: unescape_field_value(raw)?,
                negated: operator == "!=",
            });
        }
        Ok(Self { terms })
    }

    pub fn terms(&self) -> &[FieldTerm] {
        &self.terms
    }

    pub fn is_everything(&self) -> bool {
        self.terms.is_empty()
    }

    /// The distinct field names used, so the server can reject unsupported ones with 400.
    pub fn fields(&self) -> Vec<&str> {
        let mut fields: Vec<&str> = self.terms.iter().map(|t| t.field.as_str()).collect();
        fields.sort_unstable();
        fields.dedup();
        fields
    }

    /// The value an `=` term requires of `field`, when there is one (lets the server look up
    /// `metadata.name=x` directly instead of scanning).
    pub fn exact_match(&self, field: &str) -> Option<&str> {
        self.terms.iter().find(|t| t.field == field && !t.negated).map(|t| t.value.as_str())
    }

    /// Whether every term holds. `value_of` gives a field's value; a field without a value
    /// compares as the empty string, like upstream's `fields.Set`.
    pub fn matches(&self, mut value_of: impl FnMut(&str) -> Option<String>) -> bool {
        self.terms.iter().all(|term| term.matches(&value_of(&term.field).unwrap_or_default()))
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, term) in self.terms.iter().enumerate() {
            let separator = if i == 0 { "" } else { "," };
            let operator = if term.negated { "!=" } else { "=" };
            write!(f, "{separator}{}{operator}{}", term.field, escape_field_value(&term.value))?;
        }
        Ok(())
    }
}

/// Splits on commas that are not escaped; escapes stay in the terms.
fn split_terms(text: &str) -> Vec<&str> {
    if text.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push(&text[start..i]);
            start = i + 1;
        }
    }
    terms.push(&text[start..]);
    terms
}

/// Splits at the first operator; `!=` and `==` are tried before `=` at each position.
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        for operator in ["!=", "==", "="] {
            if term[i..].starts_with(operator) {
                return Some((&term[..i], operator, &term[i + operator.len()..]));
            }
        }
    }
    None
}

fn unescape_field_value(raw: &str) -> Result<String, String> {
    let mut value = String::with_capacity(raw.len());
    let mut escaped = false;
    for c in raw.chars() {
        if escaped {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(format!("invalid field selector: invalid escape sequence: \\{c}"));
            }
            value.push(c);
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' || c == '=' {
            // Go prints the rune with %v, i.e. as its number.
            return Err(format!(
                "invalid field selector: unescaped character in value: {}",
                u32::from(c)
            ));
        } else {
            value.push(c);
        }
    }
    if escaped {
        return Err("invalid field selector: invalid escape sequence: \\".to_owned());
    }
    Ok(value)
}

fn escape_field_value(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        if matches!(c, '\\' | ',' | '=') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

// ---------------------------------------------------------------------------------------------
// Name and value validation (apimachinery `util/validation`), with upstream's messages.

const QUALIFIED_NAME_FMT: &str = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]";
const QUALIFIED_NAME_ERR: &str = "must consist of alphanumeric characters, '-', '_' or '.', and \
                                  must start and end with an alphanumeric character";
const LABEL_VALUE_FMT: &str = "(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?";
const LABEL_VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric \
                               characters, '-', '_' or '.', and must start and end with an \
                               alphanumeric character";
const DNS1123_SUBDOMAIN_FMT: &str =
    "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*";
const DNS1123_SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
                                     alphanumeric characters, '-' or '.', and must start and end \
                                     with an alphanumeric character";

/// Problems with a qualified name such as a label key (`validation.IsQualifiedName`);
/// empty when it is valid.
pub fn qualified_name_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let parts: Vec<&str> = value.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errors.push("prefix part must be non-empty".to_owned());
            } else {
                errors.extend(
                    dns1123_subdomain_errors(prefix)
                        .into_iter()
                        .map(|e| format!("prefix part {e}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {} with an optional DNS subdomain prefix and '/' (e.g. \
                 'example.com/MyName')",
                regex_error(
                    QUALIFIED_NAME_ERR,
                    QUALIFIED_NAME_FMT,
                    &["MyName", "my.name", "123-abc"]
                )
            )];
        }
    };
    if name.is_empty() {
        errors.push("name part must be non-empty".to_owned());
    } else if name.len() > 63 {
        errors.push("name part must be no more than 63 characters".to_owned());
    }
    if !is_qualified_name_part(name) {
        errors.push(format!(
            "name part {}",
            regex_error(QUALIFIED_NAME_ERR, QUALIFIED_NAME_FMT, &["MyName", "my.name", "123-abc"])
        ));
    }
    errors
}

/// Problems with a label value (`validation.IsValidLabelValue`); empty when it is valid.
pub fn label_value_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 63 {
        errors.push("must be no more than 63 characters".to_owned());
    }
    if !value.is_empty() && !is_qualified_name_part(value) {
        errors.push(regex_error(
            LABEL_VALUE_ERR,
            LABEL_VALUE_FMT,
            &["MyValue", "my_value", "12345"],
        ));
    }
    errors
}

/// Problems with a DNS-1123 subdomain (`validation.IsDNS1123Subdomain`); empty when valid.
pub fn dns1123_subdomain_errors(value: &str) -> Vec<String> {
    let mut errors = Vec::new();
    if value.len() > 253 {
        errors.push("must be no more than 253 characters".to_owned());
    }
    if !value.split('.').all(is_dns1123_label) {
        errors.push(regex_error(DNS1123_SUBDOMAIN_ERR, DNS1123_SUBDOMAIN_FMT, &["example.com"]));
    }
    errors
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, anchored.
fn is_qualified_name_part(name: &str) -> bool {
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, anchored.
fn is_dns1123_label(label: &str) -> bool {
    let lower_alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let bytes = label.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            lower_alnum(first)
                && lower_alnum(last)
                && bytes.iter().all(|b| lower_alnum(b) || *b == b'-')
        }
        _ => false,
    }
}

/// `validation.RegexError`, including its doubled spaces between examples.
pub(crate) fn regex_error(message: &str, regex: &str, examples: &[&str]) -> String {
    let examples: Vec<String> = examples.iter().map(|e| format!("'{e}', ")).collect();
    format!("{message} (e.g. {}regex used for validation is '{regex}')", examples.join(" or "))
}

fn key_error(key: &str, path: &str) -> Option<String> {
    let problems = qualified_name_errors(key);
    (!problems.is_empty()).then(|| invalid(path, key, &problems.join("; ")))
}

/// A `field.Invalid` error rendered as upstream's `field.Error.Error()` does.
fn invalid(path: &str, value: &str, detail: &str) -> String {
    format!("{path}: Invalid value: {}: {detail}", go_quote(value))
}

/// `field.Invalid` of a `[]string`, which Go prints with `%#v`.
fn invalid_list(path: &str, values: &[String], detail: &str) -> String {
    let rendered = if values.is_empty() {
        "[]string(nil)".to_owned()
    } else {
        let quoted: Vec<String> = values.iter().map(|v| go_quote(v)).collect();
        format!("[]string{{{}}}", quoted.join(", "))
    };
    format!("{path}: Invalid value: {rendered}: {detail}")
}

/// `utilerrors.NewAggregate(...).Error()`: one message alone, several in brackets.
fn aggregate(errors: Vec<String>) -> String {
    let mut distinct: Vec<String> = Vec::with_capacity(errors.len());
    for error in errors {
        if !distinct.contains(&error) {
            distinct.push(error);
        }
    }
    if distinct.len() == 1 { distinct.remove(0) } else { format!("[{}]", distinct.join(", ")) }
}

/// Go's `%q`: a double-quoted string with Go escapes.
pub(crate) fn go_quote(text: &str) -> String {
    let mut quoted = String::with_capacity(text.len() + 2);
    quoted.push('"');
    for c in text.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\r' => quoted.push_str("\\r"),
            '\t' => quoted.push_str("\\t"),
            '\u{7}' => quoted.push_str("\\a"),
            '\u{8}' => quoted.push_str("\\b"),
            '\u{b}' => quoted.push_str("\\v"),
            '\u{c}' => quoted.push_str("\\f"),
            c if c.is_control() && u32::from(c) < 0x80 => {
                quoted.push_str(&format!("\\x{:02x}", u32::from(c)));
            }
            c if c.is_control() => quoted.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn labels(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    const NAME_REGEX_ERR: &str = "name part must consist of alphanumeric characters, '-', '_' or \
        '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or \
        'my.name',  or '123-abc', regex used for validation is \
        '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

    #[test]
    fn label_selectors_parse_and_print_canonically() {
        let cases = [
            ("", ""),
            ("   ", ""),
            ("x=a", "x=a"),
            ("x==a", "x==a"),
            ("x!=a", "x!=a"),
            ("x=", "x="),
            ("x", "x"),
            ("!x", "!x"),
            ("x>1", "x>1"),
            ("x<1", "x<1"),
            ("x in (b,a)", "x in (a,b)"),
            ("x in (b,a,b)", "x in (a,b)"),
            ("x in(a)", "x in (a)"),
            ("x notin (a,a)", "x notin (a)"),
            ("x in ()", "x in ()"),
            ("x in (,a)", "x in (,a)"),
            ("x in (a,)", "x in (,a)"),
            (" z = 1 , a in ( x , y ) , !b ", "a in (x,y),!b,z=1"),
            ("in in (in, notin)", "in in (in,notin)"),
            (
                "example.com/app=web,app.kubernetes.io/name",
                "app.kubernetes.io/name,example.com/app=web",
            ),
            ("b=2,a=1,b!=3", "a=1,b=2,b!=3"),
        ];
        for (text, canonical) in cases {
            let selector = LabelSelector::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(selector.to_query(), canonical, "{text:?}");
        }
    }

    #[test]
    fn malformed_label_selectors_are_rejected_with_upstream_messages() {
        let cases = [
            ("x=a,", "found '', expected: identifier after ','"),
            (",x", "found ',', expected: !, identifier, or 'end of string'"),
            ("x=a y", "found 'y', expected: ',' or 'end of string'"),
            (
                "x y",
                "unable to parse requirement: found 'y', expected: in, notin, =, ==, !=, gt, lt",
            ),
            ("!", "unable to parse requirement: found '', expected: identifier"),
            ("!x=a", "found '=', expected: ',' or 'end of string'"),
            ("x in a", "unable to parse requirement: found 'a' expected: '('"),
            ("x in", "unable to parse requirement: found '' expected: '('"),
            ("x in (a b)", "unable to parse requirement: found 'b', expected: ',' or ')'"),
            (
                "x in (=)",
                "unable to parse requirement: found '=', expected: ',', ')' or identifier",
            ),
            ("x in (a,=)", "unable to parse requirement: found '=', expected: ',', or identifier"),
            ("x=(a)", "unable to parse requirement: found '(', expected: identifier"),
            ("x=a=b", "found '=', expected: ',' or 'end of string'"),
            (
                "x>a",
                "unable to parse requirement: values[0]: Invalid value: \"a\": for 'Gt', 'Lt' \
                 operators, the value must be an integer",
            ),
            (
                "-x=a",
                &format!(
                    "unable to parse requirement: <nil>: Invalid value: \"-x\": {NAME_REGEX_ERR}"
                ),
            ),
            (
                "a/b/c",
                "unable to parse requirement: <nil>: Invalid value: \"a/b/c\": a qualified name \
                 must consist of alphanumeric characters, '-', '_' or '.', and must start and end \
                 with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', \
                 regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an \
                 optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')",
            ),
            (
                "Example.com/x",
                "unable to parse requirement: <nil>: Invalid value: \"Example.com/x\": prefix part \
                 a lowercase RFC 1123 subdomain must consist of lower case alphanumeric \
                 characters, '-' or '.', and must start and end with an alphanumeric character \
                 (e.g. 'example.com', regex used for validation is \
                 '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
            ),
            (
                "/x",
                "unable to parse requirement: <nil>: Invalid value: \"/x\": prefix part must be \
                 non-empty",
            ),
            (
                "x in (b,-a)",
                "unable to parse requirement: values[0][x]: Invalid value: \"-a\": a valid label \
                 must be an empty string or consist of alphanumeric characters, '-', '_' or '.', \
                 and must start and end with an alphanumeric character (e.g. 'MyValue',  or \
                 'my_value',  or '12345', regex used for validation is \
                 '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ),
            (
                "x=-a",
                "unable to parse requirement: values[0][x]: Invalid value: \"-a\": a valid label \
                 must be an empty string or consist of alphanumeric characters, '-', '_' or '.', \
                 and must start and end with an alphanumeric character (e.g. 'MyValue',  or \
                 'my_value',  or '12345', regex used for validation is \
                 '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')",
            ),
        ];
        for (text, message) in cases {
            assert_eq!(LabelSelector::parse(text), Err(message.to_owned()), "{text:?}");
        }
    }

    #[test]
    fn overlong_keys_and_values_are_rejected() {
        let long = "a".repeat(64);
        let err = LabelSelector::parse(&long).unwrap_err();
        assert!(err.contains("name part must be no more than 63 characters"), "{err}");
        let err = LabelSelector::parse(&format!("x={long}")).unwrap_err();
        assert!(err.contains("must be no more than 63 characters"), "{err}");
        assert!(LabelSelector::parse(&"a".repeat(63)).is_ok());
        let prefix = format!("{}.com/x", "a".repeat(250));
        assert!(LabelSelector::parse(&prefix).unwrap_err().contains("no more than 253"));
    }

    #[test]
    fn label_selectors_match_like_upstream() {
        let web = labels(json!({"app": "web", "tier": "front", "n": "5", "odd": 7}));
        let cases = [
            ("", true),
            ("app=web", true),
            ("app==web", true),
            ("app=db", false),
            ("app!=db", true),
            ("app!=web", false),
            ("missing!=x", true),
            ("missing=", false),
            ("app in (web,db)", true),
            ("app notin (web)", false),
            ("missing notin (a)", true),
            ("missing in (a)", false),
            ("app", true),
            ("missing", false),
            ("!missing", true),
            ("!app", false),
            ("n>4", true),
            ("n>5", false),
            ("n<6", true),
            ("app>1", false),
            ("missing<1", false),
            ("app=web,tier=front", true),
            ("app=web,tier=back", false),
            // A label that is not a string cannot have been stored; it counts as absent.
            ("odd", false),
            ("!odd", true),
        ];
        for (text, expected) in cases {
            let selector = LabelSelector::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(selector.matches(&web), expected, "{text:?}");
        }
    }

    #[test]
    fn objects_without_labels_match_as_if_empty() {
        let selector = LabelSelector::parse("!app").unwrap();
        assert!(selector.matches_object(&json!({"metadata": {"name": "x"}})));
        assert!(selector.matches_object(&json!("garbage")));
        assert!(!LabelSelector::parse("app").unwrap().matches_object(&json!(null)));
        assert!(
            LabelSelector::parse("app=a")
                .unwrap()
                .matches_object(&json!({"metadata": {"labels": {"app": "a"}}}))
        );
    }

    #[test]
    fn metav1_label_selectors_convert_and_format_like_format_label_selector() {
        let cases = [
            (json!({}), "<none>"),
            (json!({"matchLabels": {}}), "<none>"),
            (json!({"matchLabels": {"tier": "web", "app": "x"}}), "app=x,tier=web"),
            (
                json!({
                    "matchLabels": {"app": "web"},
                    "matchExpressions": [
                        {"key": "tier", "operator": "In", "values": ["b", "a"]},
                        {"key": "env", "operator": "NotIn", "values": ["prod"]},
                        {"key": "canary", "operator": "DoesNotExist"},
                        {"key": "zone", "operator": "Exists", "values": null},
                    ]
                }),
                "app=web,!canary,env notin (prod),tier in (a,b),zone",
            ),
        ];
        for (json, formatted) in cases {
            let selector = LabelSelector::from_label_selector_json(&json).unwrap();
            assert_eq!(selector.to_string(), formatted, "{json}");
        }
        let nothing = LabelSelector::from_label_selector_json(&Value::Null).unwrap();
        assert!(!nothing.matches(&Map::new()));
        assert_eq!(nothing.to_string(), "<none>");
        let everything = LabelSelector::from_label_selector_json(&json!({})).unwrap();
        assert!(everything.is_everything() && everything.matches(&Map::new()));
    }

    #[test]
    fn invalid_metav1_label_selectors_are_errors_not_panics() {
        let cases = [
            (json!(5), "a label selector must be an object"),
            (json!({"matchLabels": []}), "matchLabels must be an object"),
            (json!({"matchLabels": {"a": 1}}), "matchLabels values must be strings"),
            (json!({"matchExpressions": {}}), "matchExpressions must be a list"),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
                "\"Gt\" is not a valid label selector operator",
            ),
            (json!({"matchExpressions": [7]}), "\"\" is not a valid label selector operator"),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In"}]}),
                "values: Invalid value: []string(nil): for 'in', 'notin' operators, values set \
                 can't be empty",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
                "values: Invalid value: []string{\"x\"}: values set must be empty for exists and \
                 does not exist",
            ),
            (
                json!({"matchExpressions": [{"key": "a", "operator": "In", "values": [1]}]}),
                "matchExpressions values must be strings",
            ),
        ];
        for (json, message) in cases {
            assert_eq!(
                LabelSelector::from_label_selector_json(&json),
                Err(message.to_owned()),
                "{json}"
            );
        }
        let both = LabelSelector::from_label_selector_json(&json!({"matchLabels": {"-a": "-b"}}))
            .unwrap_err();
        assert!(
            both.starts_with("[key: Invalid value: \"-a\": ") && both.contains(", values[0][-a]: ")
        );
    }

    #[test]
    fn label_maps_select_like_selector_from_set() {
        let selector = LabelSelector::from_labels_map(&labels(json!({"b": "2", "a": "1", "x": 3})));
        assert_eq!(selector.to_query(), "a=1,b=2");
        assert!(selector.matches(&labels(json!({"a": "1", "b": "2", "c": "3"}))));
        assert!(!selector.matches(&labels(json!({"a": "1"}))));
        assert!(LabelSelector::from_labels_map(&Map::new()).matches(&Map::new()));
    }

    #[test]
    fn field_selectors_parse_escape_and_match() {
        let pod = |field: &str| match field {
            "metadata.name" => Some("web-1".to_owned()),
            "spec.nodeName" => Some("node,a".to_owned()),
            "status.phase" => Some("Running".to_owned()),
            _ => None,
        };
        let cases = [
            ("", true),
            ("metadata.name=web-1", true),
            ("metadata.name==web-1", true),
            ("metadata.name!=web-1", false),
            ("metadata.name=web-2", false),
            ("spec.nodeName=node\\,a", true),
            ("status.phase!=Pending,metadata.name=web-1", true),
            ("status.phase=Running,metadata.name=other", false),
            // Fields without a value compare as "".
            ("spec.other=", true),
            ("spec.other!=", false),
            ("spec.other!=x", true),
            (",,metadata.name=web-1,", true),
        ];
        for (text, expected) in cases {
            let selector = FieldSelector::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert_eq!(selector.matches(pod), expected, "{text:?}");
        }
        let selector = FieldSelector::parse("b=1,a!=x\\=y,b==2").unwrap();
        assert_eq!(selector.fields(), vec!["a", "b"]);
        assert_eq!(selector.to_string(), "a!=x\\=y,b=1,b=2");
        assert_eq!(selector.exact_match("b"), Some("1"));
        assert_eq!(selector.exact_match("a"), None);
        assert_eq!(
            FieldSelector::parse("a=b=c").unwrap_err(),
            "invalid field selector: unescaped character in value: 61"
        );
    }

    #[test]
    fn malformed_field_selectors_are_rejected_with_upstream_messages() {
        let cases = [
            ("name", "invalid selector: 'name'; can't understand 'name'"),
            ("b=1,zzz", "invalid selector: 'b=1,zzz'; can't understand 'zzz'"),
            ("a=x\\y", "invalid field selector: invalid escape sequence: \\y"),
            ("a=x\\", "invalid field selector: invalid escape sequence: \\"),
            ("a==\\=\\", "invalid field selector: invalid escape sequence: \\"),
        ];
        for (text, message) in cases {
            assert_eq!(FieldSelector::parse(text), Err(message.to_owned()), "{text:?}");
        }
    }

    #[test]
    fn field_terms_split_at_the_first_operator() {
        let selector = FieldSelector::parse("a!==b").unwrap_err();
        assert_eq!(selector, "invalid field selector: unescaped character in value: 61");
        let selector = FieldSelector::parse("spec.x!=\\=").unwrap();
        assert_eq!(
            selector.terms(),
            &[FieldTerm { field: "spec.x".into(), value: "=".into(), negated: true }]
        );
        let selector = FieldSelector::parse("=v").unwrap();
        assert_eq!(selector.fields(), vec![""]);
    }

    #[test]
    fn go_quoting_escapes_like_strconv_quote() {
        assert_eq!(go_quote("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\x01é\"");
    }

    #[test]
    fn nul_bytes_end_a_label_selector_like_upstream() {
        assert_eq!(LabelSelector::parse("a=b\0,garbage").unwrap().to_query(), "a=b");
    }
}
