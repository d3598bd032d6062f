//! Every served path and its operations, described once from the registry and rendered as
//! swagger 2.0 (`v2.rs`) or OpenAPI 3.0 (`v3.rs`), named the way kube-apiserver's route
//! installer names them (operation ids, tags, descriptions, actions).

use super::definitions::Definitions;
use super::params::{self, Param};
use crate::registry::{RESOURCES, Resource, Subresource};

const JSON: &str = "application/json";
const YAML: &str = "application/yaml";
const JSON_WATCH: &str = "application/json;stream=watch";
const OBJECT: &[&str] = &[JSON, YAML];
const STREAMABLE: &[&str] = &[JSON, YAML, JSON_WATCH];
const LOG: &[&str] = &["text/plain", JSON, YAML];
const ANY: &[&str] = &["*/*"];
const PATCH: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

const META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    Get,
    Put,
    Post,
    Delete,
    Patch,
}

impl Method {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Put => "put",
            Method::Post => "post",
            Method::Delete => "delete",
            Method::Patch => "patch",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Gvk {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
}

/// What a request or response body holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Payload {
    Definition(String),
    /// Logs and streams: upstream says `{"type": "string"}`.
    Text,
}

#[derive(Debug, Clone)]
pub(super) struct Body {
    pub payload: Payload,
    pub required: bool,
    pub content_types: &'static [&'static str],
}

#[derive(Debug, Clone)]
pub(super) struct Response {
    pub code: &'static str,
    pub description: &'static str,
    pub payload: Option<Payload>,
}

#[derive(Debug, Clone)]
pub(super) struct Operation {
    pub method: Method,
    pub id: String,
    pub description: String,
    /// `x-kubernetes-action`: get, list, put, patch, post, delete, deletecollection, watch,
    /// watchlist or connect; empty for discovery documents, which upstream leaves unmarked.
    pub action: &'static str,
    pub gvk: Option<Gvk>,
    pub tag: String,
    pub parameters: Vec<Param>,
    pub body: Option<Body>,
    pub produces: &'static [&'static str],
    pub responses: Vec<Response>,
}

#[derive(Debug, Clone)]
pub(super) struct PathItem {
    pub path: String,
    /// Parameters shared by every operation of the path (upstream puts `name`, `namespace`,
    /// `pretty` and the options of watch, log and connect here).
    pub parameters: Vec<Param>,
    pub operations: Vec<Operation>,
}

impl PathItem {
    /// Definitions named by bodies and responses.
    pub(super) fn payload_definitions(&self) -> impl Iterator<Item = &str> {
        self.operations.iter().flat_map(|op| {
            let body = op.body.iter().map(|b| &b.payload);
            body.chain(op.responses.iter().filter_map(|r| r.payload.as_ref())).filter_map(|p| {
                match p {
                    Payload::Definition(name) => Some(name.as_str()),
                    Payload::Text => None,
                }
            })
        })
    }
}

/// How one group-version spells itself in paths, operation ids and tags.
struct GroupVersion {
    /// `/api/v1` or `/apis/apps/v1`.
    prefix: String,
    /// `CoreV1`, `AppsV1`, `RbacAuthorizationV1`.
    id: String,
    /// `core_v1`, `apps_v1`, `rbacAuthorization_v1`.
    tag: String,
}

impl GroupVersion {
    fn new(group: &'static str, version: &'static str) -> Self {
        let name = if group.is_empty() { "core" } else { group.trim_end_matches(".k8s.io") };
        let prefix = if group.is_empty() {
            format!("/api/{version}")
        } else {
            format!("/apis/{group}/{version}")
        };
        GroupVersion {
            prefix,
            id: format!("{}{}", operation_id_part(name, true), operation_id_part(version, true)),
            tag: format!(
                "{}_{}",
                operation_id_part(name, false),
                operation_id_part(version, false)
            ),
        }
    }
}

/// apiserver's `ToValidOperationID`: drop what is not a letter or digit and capitalize the
/// letter after each dropped run (`rbac.authorization` → `RbacAuthorization`).
fn operation_id_part(s: &str, capitalize_first: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut capitalize = capitalize_first;
    for (i, c) in s.chars().enumerate() {
        if c.is_alphabetic() || c == '_' || (i != 0 && c.is_ascii_digit()) {
            if capitalize {
                out.extend(c.to_uppercase());
                capitalize = false;
            } else {
                out.push(c);
            }
        } else {
            capitalize = true;
        }
    }
    out
}

/// "a Pod", "an Event", and no article for plurals ("Endpoints"), as upstream's descriptions.
fn with_article(kind: &str) -> String {
    if kind.ends_with('s') && !kind.ends_with("ss") {
        kind.to_owned()
    } else if kind.starts_with(['A', 'E', 'I', 'O', 'U', 'a', 'e', 'i', 'o', 'u']) {
        format!("an {kind}")
    } else {
        format!("a {kind}")
    }
}

fn gvk(group: &'static str, version: &'static str, kind: &'static str) -> Option<Gvk> {
    Some(Gvk { group, version, kind })
}

fn meta(kind: &str) -> Option<Payload> {
    Some(Payload::Definition(format!("{META}{kind}")))
}

fn unauthorized() -> Response {
    Response { code: "401", description: "Unauthorized", payload: None }
}

fn ok(payload: Option<Payload>) -> Vec<Response> {
    vec![Response { code: "200", description: "OK", payload }, unauthorized()]
}

/// Responses of create (200, 201, 202) and of replace and patch (200, 201).
fn written(payload: Option<Payload>, accepted: bool) -> Vec<Response> {
    let mut responses = vec![
        Response { code: "200", description: "OK", payload: payload.clone() },
        Response { code: "201", description: "Created", payload: payload.clone() },
    ];
    if accepted {
        responses.push(Response { code: "202", description: "Accepted", payload });
    }
    responses.push(unauthorized());
    responses
}

fn object_body(payload: Option<Payload>) -> Option<Body> {
    payload.map(|payload| Body { payload, required: true, content_types: ANY })
}

fn patch_body() -> Option<Body> {
    Some(Body {
        payload: Payload::Definition(format!("{META}Patch")),
        required: true,
        content_types: PATCH,
    })
}

fn delete_body() -> Option<Body> {
    Some(Body {
        payload: Payload::Definition(format!("{META}DeleteOptions")),
        required: false,
        content_types: ANY,
    })
}

/// The discovery documents outside any group-version: `/api/`, `/apis/`, `/apis/<group>/`
/// and `/version/`.
pub(super) fn discovery_paths(groups: &[&'static str]) -> Vec<PathItem> {
    let get = |path: String, id: String, description: &str, tag: String, payload: &str| PathItem {
        path,
        parameters: Vec::new(),
        operations: vec![Operation {
            method: Method::Get,
            id,
            description: description.to_owned(),
            action: "",
            gvk: None,
            tag,
            parameters: Vec::new(),
            body: None,
            produces: OBJECT,
            responses: ok(Some(Payload::Definition(payload.to_owned()))),
        }],
    };
    let mut paths = vec![
        get(
            "/api/".into(),
            "getCoreAPIVersions".into(),
            "get available API versions",
            "core".into(),
            &format!("{META}APIVersions"),
        ),
        get(
            "/apis/".into(),
            "getAPIVersions".into(),
            "get available API versions",
            "apis".into(),
            &format!("{META}APIGroupList"),
        ),
        get(
            "/version/".into(),
            "getCodeVersion".into(),
            "get the version information for this server",
            "version".into(),
            "io.k8s.apimachinery.pkg.version.Info",
        ),
    ];
    for group in groups.iter().filter(|g| !g.is_empty()) {
        let name = operation_id_part(group.trim_end_matches(".k8s.io"), true);
        paths.push(get(
            format!("/apis/{group}/"),
            format!("get{name}APIGroup"),
            "get information of a group",
            operation_id_part(group.trim_end_matches(".k8s.io"), false),
            &format!("{META}APIGroup"),
        ));
    }
    paths
}

/// Every path of one group-version: its resource list and each resource with its
/// subresources, watch paths and (for namespaced resources) the all-namespaces paths.
pub(super) fn group_version_paths(
    defs: &Definitions,
    group: &'static str,
    version: &'static str,
) -> Vec<PathItem> {
    let gv = GroupVersion::new(group, version);
    let mut paths = vec![PathItem {
        path: format!("{}/", gv.prefix),
        parameters: Vec::new(),
        operations: vec![Operation {
            method: Method::Get,
            id: format!("get{}APIResources", gv.id),
            description: "get available resources".into(),
            action: "",
            gvk: None,
            tag: gv.tag.clone(),
            parameters: Vec::new(),
            body: None,
            produces: OBJECT,
            responses: ok(meta("APIResourceList")),
        }],
    }];
    for resource in RESOURCES.iter().filter(|r| r.group == group && r.version == version) {
        resource_paths(defs, &gv, resource, &mut paths);
    }
    paths
}

fn resource_paths(
    defs: &Definitions,
    gv: &GroupVersion,
    r: &'static Resource,
    out: &mut Vec<PathItem>,
) {
    let kind = r.kind;
    let scope = if r.namespaced { "Namespaced" } else { "" };
    let parent = gvk(r.group, r.version, kind);
    let object = defs.by_kind(r.group, r.version, kind).map(Payload::Definition);
    let list = defs.by_kind(r.group, r.version, &r.list_kind()).map(Payload::Definition);
    let watch_event = meta("WatchEvent");
    let scoped = |under: &str, tail: &str| match r.namespaced {
        true => format!("{}{under}/namespaces/{{namespace}}/{}{tail}", gv.prefix, r.plural),
        false => format!("{}{under}/{}{tail}", gv.prefix, r.plural),
    };
    let path_params = |name: Option<&str>, extra: Vec<Param>| {
        let mut params = extra;
        params.extend(name.map(params::name));
        if r.namespaced {
            params.push(params::namespace());
        }
        params.push(params::PRETTY);
        params
    };
    let op = |method, action, verb: &str, rest: String, description: String| Operation {
        method,
        id: format!("{verb}{}{rest}", gv.id),
        description,
        action,
        gvk: parent,
        tag: gv.tag.clone(),
        parameters: Vec::new(),
        body: None,
        produces: OBJECT,
        responses: Vec::new(),
    };

    let mut collection = Vec::new();
    if r.has_verb("list") {
        collection.push(Operation {
            parameters: params::list(),
            produces: STREAMABLE,
            responses: ok(list.clone()),
            ..op(
                Method::Get,
                "list",
                "list",
                format!("{scope}{kind}"),
                format!("list or watch objects of kind {kind}"),
            )
        });
    }
    if r.has_verb("create") {
        collection.push(Operation {
            parameters: params::write(),
            body: object_body(object.clone()),
            responses: written(object.clone(), true),
            ..op(
                Method::Post,
                "post",
                "create",
                format!("{scope}{kind}"),
                format!("create {}", with_article(kind)),
            )
        });
    }
    if r.has_verb("deletecollection") {
        collection.push(Operation {
            parameters: params::delete_collection(),
            body: delete_body(),
            responses: ok(meta("Status")),
            ..op(
                Method::Delete,
                "deletecollection",
                "delete",
                format!("Collection{scope}{kind}"),
                format!("delete collection of {kind}"),
            )
        });
    }
    push(out, scoped("", ""), path_params(None, Vec::new()), collection);

    let mut item = Vec::new();
    if r.has_verb("get") {
        item.push(Operation {
            responses: ok(object.clone()),
            ..op(
                Method::Get,
                "get",
                "read",
                format!("{scope}{kind}"),
                format!("read the specified {kind}"),
            )
        });
    }
    if r.has_verb("update") {
        item.push(Operation {
            parameters: params::write(),
            body: object_body(object.clone()),
            responses: written(object.clone(), false),
            ..op(
                Method::Put,
                "put",
                "replace",
                format!("{scope}{kind}"),
                format!("replace the specified {kind}"),
            )
        });
    }
    if r.has_verb("patch") {
        item.push(Operation {
            parameters: params::patch(),
            body: patch_body(),
            responses: written(object.clone(), false),
            ..op(
                Method::Patch,
                "patch",
                "patch",
                format!("{scope}{kind}"),
                format!("partially update the specified {kind}"),
            )
        });
    }
    if r.has_verb("delete") {
        item.push(Operation {
            parameters: params::delete(),
            body: delete_body(),
            responses: written_status(),
            ..op(
                Method::Delete,
                "delete",
                "delete",
                format!("{scope}{kind}"),
                format!("delete {}", with_article(kind)),
            )
        });
    }
    push(out, scoped("", "/{name}"), path_params(Some(kind), Vec::new()), item);

    if r.has_verb("watch") {
        // Deprecated upstream in favour of ?watch=true, still served and still published.
        let watch_list = Operation {
            produces: STREAMABLE,
            responses: ok(watch_event.clone()),
            ..op(
                Method::Get,
                "watchlist",
                "watch",
                format!("{scope}{kind}List"),
                format!(
                    "watch individual changes to a list of {kind}. deprecated: use the 'watch' \
                     parameter with a list operation instead."
                ),
            )
        };
        push(out, scoped("/watch", ""), path_params(None, params::list()), vec![watch_list]);
        let watch = Operation {
            produces: STREAMABLE,
            responses: ok(watch_event.clone()),
            ..op(
                Method::Get,
                "watch",
                "watch",
                format!("{scope}{kind}"),
                format!(
                    "watch changes to an object of kind {kind}. deprecated: use the 'watch' \
                     parameter with a list operation instead, filtered to a single item with \
                     the 'fieldSelector' parameter."
                ),
            )
        };
        push(
            out,
            scoped("/watch", "/{name}"),
            path_params(Some(kind), params::list()),
            vec![watch],
        );
    }

    if r.namespaced {
        let mut all = |under: &str, operation: Operation| {
            let mut params = params::list();
            params.push(params::PRETTY);
            push(out, format!("{}{under}/{}", gv.prefix, r.plural), params, vec![operation]);
        };
        if r.has_verb("list") {
            all(
                "",
                Operation {
                    produces: STREAMABLE,
                    responses: ok(list.clone()),
                    ..op(
                        Method::Get,
                        "list",
                        "list",
                        format!("{kind}ForAllNamespaces"),
                        format!("list or watch objects of kind {kind}"),
                    )
                },
            );
        }
        if r.has_verb("watch") {
            all(
                "/watch",
                Operation {
                    produces: STREAMABLE,
                    responses: ok(watch_event),
                    ..op(
                        Method::Get,
                        "watchlist",
                        "watch",
                        format!("{kind}ListForAllNamespaces"),
                        format!(
                            "watch individual changes to a list of {kind}. deprecated: use the \
                             'watch' parameter with a list operation instead."
                        ),
                    )
                },
            );
        }
    }

    for sub in r.subresources {
        subresource_path(defs, gv, r, sub, out);
    }
}

/// Delete answers with a Status (200 when done, 202 when deletion is graceful).
fn written_status() -> Vec<Response> {
    vec![
        Response { code: "200", description: "OK", payload: meta("Status") },
        Response { code: "202", description: "Accepted", payload: meta("Status") },
        unauthorized(),
    ]
}

fn subresource_path(
    defs: &Definitions,
    gv: &GroupVersion,
    r: &'static Resource,
    sub: &'static Subresource,
    out: &mut Vec<PathItem>,
) {
    let (group, version) = sub.group_version.unwrap_or((r.group, r.version));
    let sub_gvk = gvk(group, version, sub.kind);
    let object = defs.by_kind(group, version, sub.kind).map(Payload::Definition);
    let scope = if r.namespaced { "Namespaced" } else { "" };
    let suffix = operation_id_part(sub.name, true);
    let rest = format!("{scope}{}{suffix}", r.kind);
    let path = match r.namespaced {
        true => {
            format!("{}/namespaces/{{namespace}}/{}/{{name}}/{}", gv.prefix, r.plural, sub.name)
        }
        false => format!("{}/{}/{{name}}/{}", gv.prefix, r.plural, sub.name),
    };
    let base = Operation {
        method: Method::Get,
        id: String::new(),
        description: String::new(),
        action: "",
        gvk: sub_gvk,
        tag: gv.tag.clone(),
        parameters: Vec::new(),
        body: None,
        produces: OBJECT,
        responses: Vec::new(),
    };
    let mut shared = vec![params::name(sub.kind)];
    if r.namespaced {
        shared.push(params::namespace());
    }
    let has = |verb: &str| sub.verbs.contains(&verb);
    let mut operations = Vec::new();

    // Connecters (exec, attach, portforward) take a *Options kind and upgrade the connection;
    // upstream publishes them as GET/POST "connect" returning a string.
    if sub.kind.ends_with("Options") {
        shared.extend(params::connect(sub.name));
        let methods =
            [(Method::Get, "GET", "Get", "get"), (Method::Post, "POST", "Post", "create")];
        for (method, verb, id_verb, wanted) in methods {
            if has(wanted) {
                operations.push(Operation {
                    method,
                    id: format!("connect{}{id_verb}{rest}", gv.id),
                    description: format!("connect {verb} requests to {} of {}", sub.name, r.kind),
                    action: "connect",
                    produces: ANY,
                    responses: ok(Some(Payload::Text)),
                    ..base.clone()
                });
            }
        }
        return push(out, path, shared, operations);
    }

    // The log streams text rather than returning the kind it names.
    if sub.name == "log" {
        shared.extend(params::log());
        shared.push(params::PRETTY);
        operations.push(Operation {
            id: format!("read{}{rest}", gv.id),
            description: format!("read log of the specified {}", r.kind),
            action: "get",
            produces: LOG,
            responses: ok(Some(Payload::Text)),
            ..base
        });
        return push(out, path, shared, operations);
    }

    shared.push(params::PRETTY);
    let of = |what: &str| format!("{what} {} of the specified {}", sub.name, r.kind);
    if has("get") {
        operations.push(Operation {
            id: format!("read{}{rest}", gv.id),
            description: of("read"),
            action: "get",
            responses: ok(object.clone()),
            ..base.clone()
        });
    }
    if has("update") {
        operations.push(Operation {
            method: Method::Put,
            id: format!("replace{}{rest}", gv.id),
            description: of("replace"),
            action: "put",
            parameters: params::write(),
            body: object_body(object.clone()),
            responses: written(object.clone(), false),
            ..base.clone()
        });
    }
    if has("patch") {
        operations.push(Operation {
            method: Method::Patch,
            id: format!("patch{}{rest}", gv.id),
            description: of("partially update"),
            action: "patch",
            parameters: params::patch(),
            body: patch_body(),
            responses: written(object.clone(), false),
            ..base.clone()
        });
    }
    if has("create") {
        operations.push(Operation {
            method: Method::Post,
            id: format!("create{}{rest}", gv.id),
            description: format!("create {} of {}", sub.name, with_article(r.kind)),
            action: "post",
            parameters: params::write(),
            body: object_body(object.clone()),
            responses: written(object, true),
            ..base
        });
    }
    push(out, path, shared, operations)
}

fn push(
    out: &mut Vec<PathItem>,
    path: String,
    mut parameters: Vec<Param>,
    operations: Vec<Operation>,
) {
    if operations.is_empty() {
        return;
    }
    // Upstream lists parameters by name.
    parameters.sort_by_key(|p| p.name);
    let operations = operations
        .into_iter()
        .map(|mut op| {
            op.parameters.sort_by_key(|p| p.name);
            op
        })
        .collect();
    out.push(PathItem { path, parameters, operations });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_ids_follow_the_apiserver_naming() {
        assert_eq!(GroupVersion::new("", "v1").id, "CoreV1");
        assert_eq!(GroupVersion::new("rbac.authorization.k8s.io", "v1").id, "RbacAuthorizationV1");
        assert_eq!(
            GroupVersion::new("rbac.authorization.k8s.io", "v1").tag,
            "rbacAuthorization_v1"
        );
        assert_eq!(GroupVersion::new("apps", "v1").tag, "apps_v1");
        assert_eq!(operation_id_part("portforward", true), "Portforward");
    }

    #[test]
    fn descriptions_use_upstream_articles() {
        assert_eq!(with_article("Pod"), "a Pod");
        assert_eq!(with_article("Event"), "an Event");
        assert_eq!(with_article("Endpoints"), "Endpoints");
        assert_eq!(with_article("Class"), "a Class");
    }
}
