#!/usr/bin/env python3
"""Generate crates/api/data/protobuf-messages.json: the Kubernetes protobuf schemas.

Clients built on client-go (kubectl's typed clientsets among them) send request
bodies as `application/vnd.kubernetes.protobuf`. The API server turns them into
the JSON object a JSON client would have sent, and needs, for every message,
each field's protobuf number, its JSON name, its type, and whether the Go field
is a pointer or `omitempty` (gogo-protobuf writes every non-pointer field, even
a zero one, while encoding/json leaves zero `omitempty` fields out; only the Go
types tell the two apart).

The source is the real kubectl binary of the version whose types capstan serves
(v1.33; /usr/bin/kubectl here is Google Cloud SDK's dispatcher, the versioned
binaries sit beside it). A Go binary carries the reflection metadata of every
type its scheme registers: struct fields with their Go types and tags, e.g.
`json:"replicas,omitempty" protobuf:"varint,1,opt,name=replicas"`. Upstream's
generated.proto is generated from exactly these types, with the field numbers of
these tags, so this is the schema itself plus the pointer and omitempty facts
the .proto files lack.

The other offline sources fall short: the k8s-pb crate ships prost code with
snake_case names and no Go types, Debian has only Kubernetes 1.20's sources,
PyPI's k8s-proto is from 2019. Checked once by hand: every field number and wire
type agrees with k8s-pb 0.9.0 (upstream's .proto through prost), every JSON name
with data/openapi-definitions.json, and decoding what kubectl sends matches
`kubectl create ... --dry-run=client -o json` for the generators.

The table holds every kind in crates/api/src/registry.rs, the kinds its
subresources read and write, the request-only kinds below, and every message
they reach. Run it again after adding a kind to the registry.

Usage:
  scripts/gen-protobuf.py [--kubectl PATH] [--output FILE]

Python 3 standard library only.
"""

import argparse
import json
import os
import re
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REGISTRY = os.path.join(ROOT, "crates/api/src/registry.rs")
OUTPUT = os.path.join(ROOT, "crates/api/data/protobuf-messages.json")
KUBECTL = "/usr/lib/google-cloud-sdk/bin/kubectl.1.33"

META = "k8s.io/apimachinery/pkg/apis/meta/v1"
# Bodies kubectl and controllers send that are not stored kinds: delete options, the
# review requests of `kubectl auth` and `kubectl create token`.
REQUEST_KINDS = [
    ("meta.k8s.io", "v1", "DeleteOptions"),
    ("authentication.k8s.io", "v1", "TokenReview"),
    ("authentication.k8s.io", "v1", "SelfSubjectReview"),
    ("authorization.k8s.io", "v1", "SelfSubjectAccessReview"),
    ("authorization.k8s.io", "v1", "SelfSubjectRulesReview"),
    ("authorization.k8s.io", "v1", "SubjectAccessReview"),
    ("authorization.k8s.io", "v1", "LocalSubjectAccessReview"),
]
# Types with hand-written protobuf and JSON marshalling: their Go fields say nothing about
# either form, so the decoder knows each by name.
SPECIAL = {
    (META, "Time"): "Time",
    (META, "MicroTime"): "MicroTime",
    (META, "Duration"): "Duration",
    (META, "FieldsV1"): "RawJSON",
    ("k8s.io/apimachinery/pkg/runtime", "RawExtension"): "RawJSON",
    ("k8s.io/apimachinery/pkg/api/resource", "Quantity"): "Quantity",
    ("k8s.io/apimachinery/pkg/util/intstr", "IntOrString"): "IntOrString",
}
# API groups whose Go package is not the group's first label.
GROUP_PACKAGES = {
    "": "k8s.io/api/core",
    "meta.k8s.io": "k8s.io/apimachinery/pkg/apis/meta",
    "internal.apiserver.k8s.io": "k8s.io/api/apiserverinternal",
    "apiextensions.k8s.io": "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions",
    "apiregistration.k8s.io": "k8s.io/kube-aggregator/pkg/apis/apiregistration",
}

# reflect.Kind values (internal/abi).
BOOL, INT, INT8, INT16, INT32, INT64 = 1, 2, 3, 4, 5, 6
UINT, UINT8, UINT16, UINT32, UINT64 = 7, 8, 9, 10, 11
FLOAT32, FLOAT64, ARRAY, MAP, POINTER, SLICE, STRING, STRUCT = 13, 14, 17, 21, 22, 23, 24, 25
SCALARS = {
    BOOL: "bool",
    INT: "int64",
    INT8: "int32",
    INT16: "int32",
    INT32: "int32",
    INT64: "int64",
    UINT: "uint64",
    UINT16: "uint32",
    UINT32: "uint32",
    UINT64: "uint64",
    FLOAT32: "float",
    FLOAT64: "double",
    STRING: "string",
}
WIRE = {"bool": "varint", "int32": "varint", "int64": "varint", "uint32": "varint"}
WIRE |= {"uint64": "varint", "float": "fixed32", "double": "fixed64"}


class GoBinary:
    """The reflection metadata (internal/abi type descriptors) of a linux/amd64 Go binary
    built by Go 1.22 or later."""

    TYPE_SIZE = 48  # abi.Type
    # Size of each kind's descriptor, where abi.UncommonType (package path) follows it.
    KIND_SIZE = {STRUCT: 80, POINTER: 56, SLICE: 56, ARRAY: 72, MAP: 112, 20: 80, 19: 56, 18: 64}

    def __init__(self, path):
        with open(path, "rb") as f:
            self.data = f.read()
        if self.data[:4] != b"\x7fELF" or self.data[4] != 2:
            sys.exit(f"{path}: not a 64-bit ELF binary")
        shoff = struct.unpack_from("<Q", self.data, 0x28)[0]
        entsize, count, names = struct.unpack_from("<HHH", self.data, 0x3A)
        headers = [
            struct.unpack_from("<IIQQQQ", self.data, shoff + i * entsize) for i in range(count)
        ]
        strtab = headers[names][4]
        self.sections = {}
        for name, kind, _, addr, offset, size in headers:
            end = self.data.index(b"\0", strtab + name)
            if kind != 8:  # NOBITS: not in the file
                self.sections[self.data[strtab + name : end].decode()] = (addr, offset, size)
        if ".typelink" not in self.sections:
            sys.exit(f"{path}: no .typelink section; is it a Go binary?")
        # Type names and typelinks are offsets from the start of the type data, which the
        # linker puts first in .rodata.
        self.base = self.sections[".rodata"][0]
        _, offset, size = self.sections[".typelink"]
        self.typelinks = [self.base + o for o in struct.unpack_from(f"<{size // 4}i", self.data, offset)]

    def offset(self, addr):
        for start, offset, size in self.sections.values():
            if start and start <= addr < start + size:
                return addr - start + offset
        raise KeyError(f"address {addr:#x} is in no section")

    def u64(self, addr):
        return struct.unpack_from("<Q", self.data, self.offset(addr))[0]

    def name(self, addr):
        """(name, tag, embedded) of an abi.Name: flag byte, varint length, bytes, optional tag."""
        o = self.offset(addr)
        flags = self.data[o]
        n, o = self.varint(o + 1)
        name = self.data[o : o + n].decode()
        o += n
        tag = ""
        if flags & 2:
            n, o = self.varint(o)
            tag = self.data[o : o + n].decode()
        return name, tag, bool(flags & 8)

    def varint(self, o):
        value = shift = 0
        while True:
            b = self.data[o]
            o += 1
            value |= (b & 0x7F) << shift
            shift += 7
            if b < 0x80:
                return value, o

    def kind(self, t):
        return self.data[self.offset(t) + 23] & 0x1F

    def type_name(self, t):
        o = self.offset(t)
        tflag = self.data[o + 20]
        name = self.name(self.base + struct.unpack_from("<i", self.data, o + 40)[0])[0]
        return name[1:] if tflag & 2 else name  # TFlagExtraStar

    def named(self, t):
        """(package path, name) of a named type, None for an unnamed one."""
        o = self.offset(t)
        tflag = self.data[o + 20]
        if not tflag & 4 or not tflag & 1:  # TFlagNamed, TFlagUncommon
            return None
        uncommon = o + self.KIND_SIZE.get(self.kind(t), self.TYPE_SIZE)
        pkg = struct.unpack_from("<i", self.data, uncommon)[0]
        pkg = self.name(self.base + pkg)[0] if pkg else ""
        return pkg, self.type_name(t).rsplit(".", 1)[-1]

    def elem(self, t):
        return self.u64(t + 48)

    def map_key(self, t):
        return self.u64(t + 48)

    def map_elem(self, t):
        return self.u64(t + 56)

    def fields(self, t):
        """(name, tag, type, embedded) of each struct field, in declaration order."""
        ptr, n = self.u64(t + 56), self.u64(t + 64)
        out = []
        for i in range(n):
            field = ptr + 24 * i
            name, tag, embedded = self.name(self.u64(field))
            out.append((name, tag, self.u64(field + 8), embedded))
        return out

    def named_types(self):
        """Every named type reachable from the typelinks, by (package path, name)."""
        found, seen, stack = {}, set(), list(self.typelinks)
        while stack:
            t = stack.pop()
            if t in seen:
                continue
            seen.add(t)
            kind = self.kind(t)
            if kind in (POINTER, SLICE, ARRAY):
                stack.append(self.elem(t))
            elif kind == MAP:
                stack += [self.map_key(t), self.map_elem(t)]
            elif kind == STRUCT:
                stack += [f[2] for f in self.fields(t)]
            named = self.named(t)
            if named:
                found.setdefault(named, t)
        return found


def tag_value(tag, key):
    m = re.search(rf'(?:^|\s){key}:"([^"]*)"', tag)
    return m.group(1) if m else None


def message_name(pkg, name):
    """OpenAPI's definition name: k8s.io/api/apps/v1.Deployment → io.k8s.api.apps.v1.Deployment."""
    if not pkg.startswith("k8s.io/"):
        sys.exit(f"{pkg}.{name}: not a Kubernetes type")
    return "io.k8s." + pkg[len("k8s.io/") :].replace("/", ".") + "." + name


class Schema:
    def __init__(self, go):
        self.go = go
        self.messages = {}
        self.pending = []

    def type_of(self, t, where):
        """The table's type string of a Go type (pointer already stripped)."""
        named = self.go.named(t)
        if named in SPECIAL:
            return SPECIAL[named]
        kind = self.go.kind(t)
        if kind in SCALARS:
            return SCALARS[kind]
        if kind == STRUCT:
            if not named:
                sys.exit(f"{where}: anonymous struct")
            name = message_name(*named)
            if name not in self.messages:
                self.messages[name] = None
                self.pending.append((name, t))
            return name
        if kind == SLICE:
            elem = self.go.elem(t)
            if self.go.kind(elem) == UINT8:
                return "bytes"
            if self.go.kind(elem) == POINTER:
                elem = self.go.elem(elem)
            # A named slice where one value is expected (a map value, a field tagged `opt`)
            # is go-to-protobuf's wrapper message `{ repeated T items = 1; }`.
            return f"list<{self.type_of(elem, where)}>"
        if kind == MAP:
            key = self.type_of(self.go.map_key(t), where)
            elem = self.go.map_elem(t)
            if self.go.kind(elem) == POINTER:
                elem = self.go.elem(elem)
            return f"map<{key},{self.type_of(elem, where)}>"
        sys.exit(f"{where}: Go kind {kind} has no protobuf form here")

    def add(self, name, t):
        fields = []
        for go_name, tag, ft, embedded in self.go.fields(t):
            where = f"{name}.{go_name}"
            pb = tag_value(tag, "protobuf")
            js = tag_value(tag, "json")
            if pb is None or js == "-":
                continue  # not on the wire (TypeMeta) or not in JSON
            parts = pb.split(",")
            wire, number = parts[0], int(parts[1])
            js_parts = (js or "").split(",")
            json_name = js_parts[0] if js is not None else go_name
            flags = ""
            if self.go.kind(ft) == POINTER:
                flags += "p"
                ft = self.go.elem(ft)
            if "omitempty" in js_parts[1:]:
                flags += "o"
            if "inline" in js_parts[1:] or (embedded and not js_parts[0]):
                flags += "i"
                json_name = ""
            # An unnamed slice is a repeated field; a named one (metav1.Verbs) is a wrapper
            # message. Like the wire type, this follows the Go type: `rep`/`opt` in tags are
            # stale in places (PodSpec.Tolerations says `opt`).
            kind = self.go.kind(ft)
            elem = self.go.elem(ft) if kind == SLICE else None
            if elem and not self.go.named(ft) and self.go.kind(elem) != UINT8:
                flags += "r"
                if self.go.kind(elem) == POINTER:
                    elem = self.go.elem(elem)
                ty = self.type_of(elem, where)
            else:
                ty = self.type_of(ft, where)
            # go-to-protobuf derives the .proto from the Go type, not from the tag, and a few
            # tags are stale (SubjectRulesReviewStatus.Incomplete says `bytes,3,rep`).
            expected = WIRE.get(ty, "bytes")
            if wire != expected and "r" not in flags:
                print(f"note: {where}: tag says {wire}, Go type {ty} is {expected}", file=sys.stderr)
            if "i" in flags and not ty.startswith("io."):
                sys.exit(f"{where}: only a message can be inlined")
            fields.append([number, json_name, ty, flags])
        numbers = [f[0] for f in fields]
        if len(set(numbers)) != len(numbers):
            sys.exit(f"{name}: duplicate field numbers {numbers}")
        self.messages[name] = fields

    def close(self):
        while self.pending:
            self.add(*self.pending.pop())


def registry_kinds():
    """(group, version, kind) of every registry row and the kinds its subresources read and
    write; a subresource without its own group_version uses its parent's."""
    with open(REGISTRY) as f:
        text = f.read().split("#[cfg(test)]", 1)[0]
    row = r'\brow\(\s*"([^"]*)",\s*"([^"]*)",\s*"([^"]*)"'
    sub = r'kind:\s*"([^"]*)",\s*group_version:\s*(None|Some\(\(\s*"([^"]*)",\s*"([^"]*)"\s*\)\))'
    kinds, pending = [], []
    # A Resource literal lists its subresources before its `..row(...)` defaults, so each
    # subresource belongs to the next row.
    for m in re.finditer(f"{row}|{sub}", text):
        if m.group(1) is not None:
            group, version, kind = m.group(1, 2, 3)
            kinds.append((group, version, kind))
            kinds += [(group, version, k) if gv is None else (*gv, k) for k, gv in pending]
            pending = []
        else:
            gv = None if m.group(5) == "None" else m.group(6, 7)
            pending.append((m.group(4), gv))
    if not kinds:
        sys.exit(f"found no registry rows in {REGISTRY}")
    return kinds


def go_package(group, version):
    pkg = GROUP_PACKAGES.get(group, "k8s.io/api/" + group.split(".")[0])
    return f"{pkg}/{version}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubectl", default=KUBECTL, help="a kubectl binary of the served version")
    parser.add_argument("--output", default=OUTPUT)
    args = parser.parse_args()

    go = GoBinary(args.kubectl)
    types = go.named_types()
    schema = Schema(go)
    kinds = {}
    for group, version, kind in registry_kinds() + REQUEST_KINDS:
        t = types.get((go_package(group, version), kind))
        if t is None:
            sys.exit(f"{args.kubectl} has no Go type for {group}/{version} {kind}")
        api_version = f"{group}/{version}" if group else version
        kinds[f"{api_version}/{kind}"] = schema.type_of(t, kind)
    schema.close()

    lines = [json.dumps("kinds") + ":" + json.dumps(kinds, sort_keys=True, separators=(",", ":"))]
    lines += [
        json.dumps(name) + ":" + json.dumps(fields, separators=(",", ":"))
        for name, fields in sorted(schema.messages.items())
    ]
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        f.write("{\n" + ",\n".join(lines) + "\n}\n")
    size = os.path.getsize(args.output)
    print(f"{args.output}: {len(kinds)} kinds, {len(schema.messages)} messages, {size} bytes")


if __name__ == "__main__":
    main()
