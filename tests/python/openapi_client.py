"""Checks a Continuum node's OpenAPI document as a client generator would use it, then builds a
typed client from it (no code generator download: the operations and their JSON Schemas drive
the client directly) and calls a command through it.

    openapi_client.py <base url> <bearer token> <operationId> <arguments JSON>

Prints one JSON object: the document's validity, the typed operations, the call's result, and
what the client refused before sending.
"""

import json
import sys
import urllib.request

import jsonschema
from openapi_spec_validator import validate


def request(base, token, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {token}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


class TypedClient:
    """One method per typed operation of the document, checking arguments and results against it."""

    def __init__(self, base, token, doc):
        self.base, self.token, self.ops = base, token, {}
        for path, item in doc["paths"].items():
            op = item.get("post")
            if op and "commands" in op.get("tags", []) and "{" not in path:
                self.ops[op["operationId"]] = (path, op)

    def call(self, operation_id, arguments):
        path, op = self.ops[operation_id]
        jsonschema.validate(arguments, op["requestBody"]["content"]["application/json"]["schema"])
        status, body = request(self.base, self.token, "POST", path, arguments)
        if status != 200:
            raise RuntimeError(f"{status}: {body}")
        jsonschema.validate(body, op["responses"]["200"]["content"]["application/json"]["schema"])
        return body["result"]


def main():
    base, token, operation_id, arguments = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    status, doc = request(base, token, "GET", "/v1/openapi.json")
    assert status == 200, doc
    report = {}
    try:
        validate(doc)
        report["valid"] = True
    except Exception as e:
        report["valid"] = f"{type(e).__name__}: {e}"
    _, commands = request(base, token, "GET", "/v1/commands")
    client = TypedClient(base, token, doc)
    report["commands"] = sorted(c["name"] for c in commands)
    report["operations"] = sorted(path.removeprefix("/v1/commands/") for path, _ in client.ops.values())
    report["result"] = client.call(operation_id, arguments)
    try:
        client.call(operation_id, {"not-a-parameter": 1})
        report["refused"] = None
    except jsonschema.ValidationError as e:
        report["refused"] = e.message
    print(json.dumps(report))


main()
