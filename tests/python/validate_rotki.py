"""Checks WebSocket messages against rotki's shapes (tests/fixtures/rotki_ws_messages.schema.json).

Usage: validate_rotki.py SCHEMA < messages.jsonl
Each line is one message as robin sent it ({"type", "data", "seq"?}). A message of a type (or
a progress subtype) that the schema lists as a robin extension is counted, not checked: rotki's
UI drops those. Every other message must be one of rotki's types with data rotki's UI accepts.
Prints one JSON object: {"checked": n, "extensions": {...}, "types": {...}, "failures": [...]};
exits 1 if anything failed.
"""
import collections
import json
import sys

import jsonschema


def main(schema_path):
    schema = json.load(open(schema_path))
    extensions = schema["x-robin-extensions"]
    checked, seen, ext, failures = 0, collections.Counter(), collections.Counter(), []
    for number, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        message = json.loads(line)
        kind, data = message.get("type"), message.get("data")
        if kind in extensions["types"]:
            ext[kind] += 1
            continue
        if kind == "progress_updates" and isinstance(data, dict) and data.get("subtype") in extensions["progress_subtypes"]:
            ext["progress_updates/" + data["subtype"]] += 1
            continue
        if kind not in schema["types"]:
            failures.append({"line": number, "type": kind, "error": "not one of rotki's message types"})
            continue
        try:
            jsonschema.validate(data, schema["types"][kind])
            checked += 1
            seen[kind] += 1
        except jsonschema.ValidationError as error:
            failures.append({"line": number, "type": kind, "error": error.message, "path": list(error.absolute_path)})
    print(json.dumps({"checked": checked, "extensions": ext, "types": seen, "failures": failures}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
