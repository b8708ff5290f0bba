#!/usr/bin/env python3
"""Generates crates/gregor-client/src/wire/schemas.rs: the wire layout of each response gregor
decodes, at the versions it pins, for the allocation guard in wire/guard.rs.

Why: kafka-protocol's array decoders pre-allocate `Vec::with_capacity(n)` with `n` straight off
the wire, so a malformed or hostile response of a few bytes can abort the process (upstream
issues kafka-protocol-rs#152, #161, #200). gregor walks every response with these layouts and
checks each declared array length against the bytes left before kafka-protocol decodes it.

The layouts are read from kafka-protocol's own generated decoders (the source in the cargo
registry), so they match what will decode the bytes. Run after upgrading kafka-protocol:

    python3 crates/gregor-client/tools/gen_wire_schemas.py > crates/gregor-client/src/wire/schemas.rs
"""
import glob
import os
import re
import sys

# (response struct, module file, versions) that gregor-client decodes. Keep in step with the
# `requests!` table in wire/mod.rs.
WANTED = [
    ("ApiVersionsResponse", "api_versions_response", [0, 3]),
    ("MetadataResponse", "metadata_response", [12]),
    ("CreateTopicsResponse", "create_topics_response", [7]),
    ("DeleteTopicsResponse", "delete_topics_response", [6]),
    ("CreatePartitionsResponse", "create_partitions_response", [3]),
    ("DescribeConfigsResponse", "describe_configs_response", [4]),
    ("IncrementalAlterConfigsResponse", "incremental_alter_configs_response", [1]),
    ("ListOffsetsResponse", "list_offsets_response", [7]),
    ("FindCoordinatorResponse", "find_coordinator_response", [4, 5, 6]),
    ("JoinGroupResponse", "join_group_response", [7, 8, 9]),
    ("SyncGroupResponse", "sync_group_response", [5]),
    ("HeartbeatResponse", "heartbeat_response", [4]),
    ("LeaveGroupResponse", "leave_group_response", [5]),
    ("OffsetCommitResponse", "offset_commit_response", [8, 9]),
    ("OffsetFetchResponse", "offset_fetch_response", [8, 9]),
    ("DescribeGroupsResponse", "describe_groups_response", [5]),
    ("ListGroupsResponse", "list_groups_response", [4, 5]),
    ("DeleteGroupsResponse", "delete_groups_response", [2]),
    ("OffsetDeleteResponse", "offset_delete_response", [0]),
    ("DeleteRecordsResponse", "delete_records_response", [2]),
    ("SaslHandshakeResponse", "sasl_handshake_response", [1]),
    ("SaslAuthenticateResponse", "sasl_authenticate_response", [2]),
    # The consumer: Fetch v12 (topic names, flexible; the last version before topic ids).
    ("FetchResponse", "fetch_response", [12]),
    # Not responses: group members' metadata and assignments, carried as bytes inside
    # JoinGroup and SyncGroup responses and written by other clients (Java's ConsumerProtocol).
    ("ConsumerProtocolSubscription", "consumer_protocol_subscription", [0, 1, 2, 3]),
    ("ConsumerProtocolAssignment", "consumer_protocol_assignment", [0, 1, 2, 3]),
]

FIXED = {"Int8": 1, "Int16": 2, "Int32": 4, "Int64": 8, "Boolean": 1, "Uuid": 16,
         "Float64": 8, "UInt16": 2}
SIMPLE = {"String": "Str", "CompactString": "CStr", "Bytes": "Bytes",
          "CompactBytes": "CBytes", "VarInt": "VarInt", "VarLong": "VarLong",
          "UnsignedVarInt": "VarInt"}


def find_src():
    roots = glob.glob(os.path.expanduser(
        "~/.cargo/registry/src/*/kafka-protocol-0.18.*/src/messages"))
    if not roots:
        sys.exit("kafka-protocol 0.18 sources not found in ~/.cargo/registry (run cargo fetch)")
    return sorted(roots)[-1]


def block_after(text, start):
    """Text of the brace block whose '{' is at or after start; returns (body, end)."""
    i = text.index("{", start)
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1:j], j + 1
    raise ValueError("unbalanced")


def cond_true(cond, v):
    expr = cond.replace("&&", " and ").replace("||", " or ").replace("version", str(v))
    return bool(eval(expr, {}, {}))


def resolve(expr, v):
    """Collapse `if version ... { a } else { b }` chains to the branch taken at version v."""
    expr = expr.strip()
    while expr.startswith("if "):
        brace = expr.index("{")
        cond = expr[3:brace]
        then, end = block_after(expr, brace)
        rest = expr[end:].strip()
        if cond_true(cond, v):
            expr = then.strip()
        elif rest.startswith("else"):
            rest = rest[4:].strip()
            if rest.startswith("if "):
                expr = rest
            else:
                expr, _ = block_after(rest, 0)
                expr = expr.strip()
        else:
            return None
    return expr


class Gen:
    def __init__(self, src, module):
        self.text = open(os.path.join(src, module + ".rs")).read()
        self.fields = {}
        for m in re.finditer(r"pub struct (\w+) \{(.*?)\n\}", self.text, re.S):
            self.fields[m.group(1)] = dict(
                re.findall(r"pub (\w+): ([^\n]+),", m.group(2)))

    def elem(self, struct, field):
        ty = self.fields[struct][field]
        m = re.search(r"(\w+)>*$", ty.replace(">", " ").strip().split()[-1] if False else ty)
        inner = re.findall(r"(\w+)", ty)
        for name in reversed(inner):
            if name in self.fields:
                return name
        raise ValueError(f"no struct type in {struct}.{field}: {ty}")

    def decoder(self, expr, struct, field, v):
        expr = expr.strip().rstrip(";").rstrip("?").strip()
        m = re.fullmatch(r"types::(\w+)\.decode\(buf\)", expr)
        if m:
            t = m.group(1)
            if t in FIXED:
                return f"F::Fixed({FIXED[t]})"
            if t in SIMPLE:
                return f"F::{SIMPLE[t]}"
            raise ValueError(f"unknown type {t} in {struct}.{field}")
        m = re.fullmatch(r"types::(Array|CompactArray)\(types::(\w+)(?: \{ version \})?\)\.decode\(buf\)", expr)
        if m:
            kind = "Arr" if m.group(1) == "Array" else "CArr"
            inner = m.group(2)
            if inner == "Struct":
                return f"F::{kind}(&{self.struct(self.elem(struct, field), v)})"
            if inner in FIXED:
                return f"F::{kind}(&[F::Fixed({FIXED[inner]})])"
            if inner in SIMPLE:
                return f"F::{kind}(&[F::{SIMPLE[inner]}])"
            raise ValueError(f"unknown element {inner} in {struct}.{field}")
        m = re.fullmatch(r"types::Struct \{ version \}\.decode\(buf\)", expr)
        if m:
            return f"F::Nested(&{self.struct(self.elem(struct, field), v)})"
        raise ValueError(f"cannot read decoder {expr!r} in {struct}.{field}")

    def struct(self, name, v):
        m = re.search(r"impl Decodable for " + name + r" \{", self.text)
        body, _ = block_after(self.text, m.end() - 1)
        fn_body, _ = block_after(body, body.index("fn decode"))
        out = []
        pos = 0
        while True:
            m = re.compile(r"let (?:mut )?(\w+)(?::[^=]+)? = ").search(fn_body, pos)
            t = fn_body.find("let num_tagged_fields", pos)
            if t != -1 and (m is None or t <= m.start()):
                out.append(self.tags(fn_body, t, name, v))
                break
            if m is None:
                break
            field = m.group(1)
            # the statement runs to the ';' at brace depth 0
            depth = 0
            j = m.end()
            while True:
                c = fn_body[j]
                if c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                elif c == ";" and depth == 0:
                    break
                j += 1
            expr = fn_body[m.end():j]
            pos = j + 1
            if field == "unknown_tagged_fields" or "decode(buf)" not in expr:
                continue
            taken = resolve(expr, v)
            if taken is None or "decode(buf)" not in taken:
                continue
            out.append(self.decoder(taken, name, field, v))
        return "[" + ", ".join(out) + "]"

    def tags(self, fn_body, at, struct, v):
        # The tagged-field block is guarded by `if version >= N {` just before `let num_tagged`.
        guard = fn_body.rfind("if version", 0, at)
        cond = fn_body[guard + 3:fn_body.index("{", guard)]
        if not cond_true(cond, v):
            return ""
        block, _ = block_after(fn_body, fn_body.index("for _ in", at))
        known = []
        for m in re.finditer(r"\n\s*(\d+) => \{", block):
            arm, _ = block_after(block, m.end() - 1)
            am = re.search(r"(\w+) =\s*(.*?);", arm, re.S)
            known.append(f"({m.group(1)}, &[{self.decoder(am.group(2), struct, am.group(1), v)}])")
        return "F::Tags(&[" + ", ".join(known) + "])"


def main():
    src = find_src()
    print("// @generated by crates/gregor-client/tools/gen_wire_schemas.py from kafka-protocol's")
    print("// decoders; do not edit. See that script for why these exist.")
    print()
    print("use super::guard::F;")
    print()
    arms = []
    for struct, module, versions in WANTED:
        g = Gen(src, module)
        for v in versions:
            const = re.sub(r"(?<!^)(?=[A-Z])", "_", struct).upper() + f"_V{v}"
            body = g.struct(struct, v).replace(", ]", "]").replace(", , ", ", ")
            print(f"pub(crate) const {const}: &[F] = &{body};")
            arms.append((struct, v, const))
    print()
    print("/// The layout of `response` at `version`, if gregor pins that version.")
    print("pub(crate) fn layout(response: &str, version: i16) -> Option<&'static [F]> {")
    print("    match (response, version) {")
    for struct, v, const in arms:
        print(f'        ("{struct}", {v}) => Some({const}),')
    print("        _ => None,")
    print("    }")
    print("}")


if __name__ == "__main__":
    main()
