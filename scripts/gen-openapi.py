#!/usr/bin/env python3
"""Generate crates/api/data/openapi-definitions.json from upstream's schemas.

The source is the PyPI package kubernetes-validate (1.37.0), which ships the
Kubernetes v1.33 OpenAPI definitions as JSON Schema with every x-kubernetes-*
extension. This script keeps the definitions that capstan serves -- every kind
in crates/api/src/registry.rs, its list kind, the kinds its subresources read
and write, and the meta types every API server publishes -- plus everything
they reference, and turns them back into the swagger 2.0 shape that
kube-apiserver's /openapi/v2 carries. The Rust side derives /openapi/v3 from
the same file, so the build never needs Python.

Usage:
  scripts/gen-openapi.py                      # pip-downloads the package
  scripts/gen-openapi.py --source DIR_OR_WHL  # an unpacked package or a wheel

Python 3 standard library only (pip is run as a subprocess when no source is
given).
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile

PACKAGE = "kubernetes-validate==1.37.0"
DEFINITIONS = "kubernetes_validate/kubernetes-json-schema/v1.33.0-local/_definitions.json"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGISTRY = os.path.join(ROOT, "crates/api/src/registry.rs")
OUTPUT = os.path.join(ROOT, "crates/api/data/openapi-definitions.json")

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
# Published by every kube-apiserver whatever resources it serves: errors,
# discovery documents, watch events and the bodies of delete and patch.
META_ROOTS = [
    META + "Status",
    META + "APIResourceList",
    META + "APIGroup",
    META + "APIGroupList",
    META + "APIVersions",
    META + "WatchEvent",
    META + "DeleteOptions",
    META + "Patch",
    "io.k8s.apimachinery.pkg.version.Info",
]

# The JSON Schema conversion in kubernetes-validate dropped these two
# descriptions; upstream's swagger has them (apimachinery's doc comments), and
# `kubectl explain` prints them.
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
SCALAR_OVERRIDES = {
    INT_OR_STRING: {
        "description": "IntOrString is a type that can hold an int32 or a string.  When used in "
        "JSON or YAML marshalling and unmarshalling, it produces or consumes the inner type.  "
        "This allows you to have, for example, a JSON field that can accept a name or number.",
        "format": "int-or-string",
        "type": "string",
    },
    QUANTITY: {
        "description": "Quantity is a fixed-point representation of a number. It provides "
        "convenient marshaling/unmarshaling in JSON and YAML, in addition to String() and "
        "AsInt64() accessors.\n\nThe serialization format is:\n\n``` <quantity>        ::= "
        "<signedNumber><suffix>\n\n\t(Note that <suffix> may be empty, from the \"\" case in "
        "<decimalSI>.)\n\n<digit>           ::= 0 | 1 | ... | 9 <digits>          ::= <digit> | "
        "<digit><digits> <number>          ::= <digits> | <digits>.<digits> | <digits>. | "
        ".<digits> <sign>            ::= \"+\" | \"-\" <signedNumber>    ::= <number> | "
        "<sign><number> <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI> "
        "<binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei\n\n\t(International System of units; "
        "See: http://physics.nist.gov/cuu/Units/binary.html)\n\n<decimalSI>       ::= m | \"\" | "
        "k | M | G | T | P | E\n\n\t(Note that 1024 = 1Ki but 1000 = 1k; I didn't choose the "
        "capitalization.)\n\n<decimalExponent> ::= \"e\" <signedNumber> | \"E\" <signedNumber> "
        "```\n\nNo matter which of the three exponent forms is used, no quantity may represent "
        "a number greater than 2^63-1 in magnitude, nor may it have more than 3 decimal places. "
        "Numbers larger or more precise will be capped or rounded up. (E.g.: 0.1m will rounded "
        "up to 1m.) This may be extended in the future if we require larger or smaller "
        "quantities.\n\nWhen a Quantity is parsed from a string, it will remember the type of "
        "suffix it had, and will use the same type again when it is serialized.\n\nBefore "
        "serializing, Quantity will be put in \"canonical form\". This means that "
        "Exponent/suffix will be adjusted up or down (with a corresponding increase or decrease "
        "in Mantissa) such that:\n\n- No precision is lost - No fractional digits will be "
        "emitted - The exponent (or suffix) is as large as possible.\n\nThe sign will be omitted "
        "unless the number is negative.\n\nExamples:\n\n- 1.5 will be serialized as \"1500m\" - "
        "1.5Gi will be serialized as \"1536Mi\"\n\nNote that the quantity will NEVER be "
        "internally represented by a floating point number. That is the whole point of this "
        "exercise.\n\nNon-canonical values will still parse as long as they are well formed, "
        "but will be re-emitted in their canonical form. (So always use canonical form, or "
        "don't diff.)\n\nThis format is intended to make it difficult to use these numbers "
        "without writing some sort of special handling code in the hopes that that will cause "
        "implementors to also use a fixed point implementation.",
        "type": "string",
    },
}


def load_source(source):
    """The `$defs` of _definitions.json from a wheel, an unpacked package, or PyPI."""
    if source is None:
        tmp = tempfile.mkdtemp(prefix="gen-openapi-")
        subprocess.run(
            [sys.executable, "-m", "pip", "download", PACKAGE, "--no-deps", "-q", "-d", tmp],
            check=True,
        )
        wheels = [f for f in os.listdir(tmp) if f.endswith(".whl")]
        if len(wheels) != 1:
            sys.exit(f"expected one wheel in {tmp}, found {wheels}")
        source = os.path.join(tmp, wheels[0])
    if source.endswith(".whl"):
        with zipfile.ZipFile(source) as whl:
            doc = json.loads(whl.read(DEFINITIONS))
    else:
        candidates = [
            os.path.join(source, DEFINITIONS),
            os.path.join(source, DEFINITIONS.split("/", 1)[1]),
            source,
        ]
        path = next((p for p in candidates if os.path.isfile(p)), None)
        if path is None:
            sys.exit(f"no {DEFINITIONS} under {source}")
        with open(path) as f:
            doc = json.load(f)
    return doc["$defs"]


def registry_kinds():
    """(group, version, kind) of every registry row and every subresource kind.

    Subresources without their own group_version read and write a kind of their
    parent's group-version; those come back with group None and are resolved by
    kind name against the served group-versions."""
    with open(REGISTRY) as f:
        text = f.read()
    text = text.split("#[cfg(test)]", 1)[0]
    rows = re.findall(r'\brow\(\s*"([^"]*)",\s*"([^"]*)",\s*"([^"]*)"', text)
    subresources = re.findall(
        r'kind:\s*"([^"]*)",\s*group_version:\s*(None|Some\(\(\s*"([^"]*)",\s*"([^"]*)"\s*\)\))',
        text,
    )
    if not rows:
        sys.exit(f"found no registry rows in {REGISTRY}")
    kinds = [(g, v, k) for g, v, k in rows]
    for kind, gv, group, version in subresources:
        kinds.append((None, None, kind) if gv == "None" else (group, version, kind))
    return rows, kinds


def gvk_index(defs):
    index = {}
    for name, schema in defs.items():
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            index.setdefault((gvk["group"], gvk["version"], gvk["kind"]), name)
    return index


def roots(defs, rows, kinds):
    index = gvk_index(defs)
    served = {(g, v) for g, v, _ in rows}
    names = list(META_ROOTS)
    for g, v, k in rows:
        # Reviews (TokenReview, ...) are never listed: upstream has no list kind for them.
        for kind in (k, k + "List"):
            if (g, v, kind) in index or kind == k:
                names.append(index[(g, v, kind)])
    for g, v, k in kinds:
        if g is not None:
            names.append(index[(g, v, k)])
            continue
        matches = [index[(sg, sv, k)] for sg, sv in served if (sg, sv, k) in index]
        # Connect options (PodExecOptions, ...) have no schema upstream either.
        names.extend(matches)
    return names


def refs(schema):
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "$ref":
                yield value.rsplit("/", 1)[1]
            else:
                yield from refs(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from refs(value)


def closure(defs, names):
    keep, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        todo.extend(refs(defs[name]))
    return keep


def to_swagger(schema, served):
    """JSON Schema 2020-12 as kubernetes-validate writes it -> swagger 2.0 as upstream serves it."""
    if isinstance(schema, list):
        return [to_swagger(s, served) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, list):
            types = [t for t in value if t != "null"]
            if len(types) != 1:
                sys.exit(f"cannot express type {value} in swagger 2.0")
            out[key] = types[0]
        elif key == "$ref":
            out[key] = "#/definitions/" + value.rsplit("/", 1)[1]
        elif key == "enum":
            # Added by the JSON Schema conversion (apiVersion/kind pinned to
            # the kind's own); upstream's swagger has no such enums.
            continue
        elif key == "x-kubernetes-group-version-kind":
            # Meta types list every group-version upstream serves; keep ours.
            out[key] = [gvk for gvk in value if (gvk["group"], gvk["version"]) in served]
        elif key in ("properties",):
            out[key] = {k: to_swagger(v, served) for k, v in value.items()}
        elif key in ("x-kubernetes-unions", "x-kubernetes-list-map-keys", "required"):
            out[key] = value
        else:
            out[key] = to_swagger(value, served)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", help="kubernetes-validate wheel or unpacked package dir")
    parser.add_argument("--output", default=OUTPUT)
    args = parser.parse_args()

    defs = load_source(args.source)
    rows, kinds = registry_kinds()
    index = gvk_index(defs)
    served = {(g, v) for g, v, _ in rows}
    served |= {(g, v) for g, v, _ in kinds if g is not None}

    keep = closure(defs, roots(defs, rows, kinds))
    out = {}
    for name in sorted(keep):
        out[name] = SCALAR_OVERRIDES.get(name) or to_swagger(defs[name], served)
        if "oneOf" in json.dumps(out[name]):
            sys.exit(f"{name}: oneOf has no swagger 2.0 form; add it to SCALAR_OVERRIDES")

    missing = [
        (g, v, k + "List")
        for g, v, k in rows
        if (g, v, k + "List") not in index and not k.endswith("Review")
    ]
    if missing:
        sys.exit(f"no list kind for {missing}")

    # One definition per line: diffs stay readable, the file stays compact.
    lines = [
        json.dumps(name) + ":" + json.dumps(schema, sort_keys=True, separators=(",", ":"))
        for name, schema in out.items()
    ]
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")
    size = os.path.getsize(args.output)
    print(f"{args.output}: {len(out)} definitions, {size} bytes")


if __name__ == "__main__":
    main()
