//! Image references as upstream's `imagePullPolicy` defaulting reads them (the
//! distribution/reference grammar behind `ParseImageName`): `:latest` or no tag means Always.

/// The pull policy upstream defaults for a container image.
pub(super) fn pull_policy(image: &str) -> &'static str {
    match parse(image) {
        // Upstream ignores the parse error here; validation reports the image.
        None => "IfNotPresent",
        Some(Reference { tag: Some("latest"), .. } | Reference { tag: None, digest: false }) => {
            "Always"
        }
        Some(_) => "IfNotPresent",
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Reference<'a> {
    tag: Option<&'a str>,
    digest: bool,
}

/// `[domain/]path[:tag][@digest]`, or `None` when the reference is malformed.
fn parse(reference: &str) -> Option<Reference<'_>> {
    // A bare image ID is refused as ambiguous, as upstream's normalizer does.
    if reference.len() == 64 && reference.bytes().all(is_lower_hex) {
        return None;
    }
    let (named, digest) = match reference.split_once('@') {
        Some((named, digest)) => (named, Some(digest)),
        None => (reference, None),
    };
    if digest.is_some_and(|d| !valid_digest(d)) {
        return None;
    }
    // A ':' after the last '/' starts the tag; one before it is a registry's port.
    let (name, tag) = match named.rfind(':') {
        Some(i) if !named[i..].contains('/') => (&named[..i], Some(&named[i + 1..])),
        _ => (named, None),
    };
    if tag.is_some_and(|t| !valid_tag(t)) || name.len() > 255 || !valid_name(name) {
        return None;
    }
    Some(Reference { tag, digest: digest.is_some() })
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// `algorithm:hex` for the algorithms upstream can verify.
fn valid_digest(digest: &str) -> bool {
    let Some((algorithm, hex)) = digest.split_once(':') else { return false };
    let length = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return false,
    };
    hex.len() == length && hex.bytes().all(is_lower_hex)
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn valid_tag(tag: &str) -> bool {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-')
}

fn valid_name(name: &str) -> bool {
    // The first part is a registry when it looks like a host (dots, a port, localhost, or
    // capitals, which repository paths never have); otherwise the name is all path.
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (Some(first), rest)
        }
        _ => (None, name),
    };
    domain.is_none_or(valid_domain) && path.split('/').all(valid_path_component)
}

/// `host[:port]`, the host being DNS-like labels or a bracketed IPv6 address.
fn valid_domain(domain: &str) -> bool {
    let (host, port) = match domain.rsplit_once(':') {
        Some((host, port)) if !port.contains(']') => (host, Some(port)),
        _ => (domain, None),
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return false;
    }
    if let Some(ipv6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !ipv6.is_empty() && ipv6.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
    }
    host.split('.').all(|label| {
        let bytes = label.as_bytes();
        !bytes.is_empty()
            && bytes[0].is_ascii_alphanumeric()
            && bytes[bytes.len() - 1].is_ascii_alphanumeric()
            && bytes.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-')
    })
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn valid_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let mut i = 0;
    loop {
        let run = bytes[i..].iter().take_while(|&&b| alnum(b)).count();
        if run == 0 {
            return false;
        }
        i += run;
        if i == bytes.len() {
            return true;
        }
        let separator = match bytes[i] {
            b'.' => 1,
            b'_' => 1 + usize::from(bytes.get(i + 1) == Some(&b'_')),
            b'-' => bytes[i..].iter().take_while(|&&b| b == b'-').count(),
            _ => return false,
        };
        i += separator;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_or_no_tag_pulls_always_and_anything_else_if_not_present() {
        let sha = "sha256:".to_owned() + &"a".repeat(64);
        let cases = [
            ("nginx", "Always"),
            ("nginx:latest", "Always"),
            ("nginx:1.27", "IfNotPresent"),
            ("library/nginx:1.27-alpine", "IfNotPresent"),
            ("registry.example.com:5000/team/app", "Always"),
            ("registry.example.com:5000/team/app:v2", "IfNotPresent"),
            ("localhost/app:dev", "IfNotPresent"),
            ("localhost:5000", "IfNotPresent"),
            ("[::1]:5000/app", "Always"),
            (&*format!("nginx@{sha}"), "IfNotPresent"),
            (&*format!("nginx:latest@{sha}"), "Always"),
            ("my_org/my__app--x.y:1", "IfNotPresent"),
            // Malformed references: upstream ignores the error and says IfNotPresent.
            ("", "IfNotPresent"),
            ("Nginx", "IfNotPresent"),
            ("nginx:", "IfNotPresent"),
            ("nginx@sha256:abc", "IfNotPresent"),
            ("nginx@md5:0123", "IfNotPresent"),
            ("-nginx", "IfNotPresent"),
            ("nginx/", "IfNotPresent"),
            ("a..b/c", "IfNotPresent"),
            (&*"a".repeat(64), "IfNotPresent"),
            (&*format!("{}:1", "a".repeat(256)), "IfNotPresent"),
        ];
        for (image, want) in cases {
            assert_eq!(pull_policy(image), want, "{image:?}");
        }
    }

    #[test]
    fn parsing_finds_the_tag_and_the_digest() {
        assert_eq!(parse("busybox"), Some(Reference { tag: None, digest: false }));
        assert_eq!(parse("host:1/x:y"), Some(Reference { tag: Some("y"), digest: false }));
        assert_eq!(parse("host:1/x"), Some(Reference { tag: None, digest: false }));
    }
}
