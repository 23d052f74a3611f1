#!/usr/bin/python3
"""Checks schemas/pipeline.schema.json against the shipped pipelines: every pipeline in
pipelines/ and every valid golden pipeline must conform, and known-bad ones must not.
Run by ctest with Debian's python3-jsonschema and python3-yaml."""
import glob
import json
import os
import sys

import jsonschema
import yaml

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
schema = json.load(open(os.path.join(ROOT, "schemas/pipeline.schema.json")))
jsonschema.Draft202012Validator.check_schema(schema)
validator = jsonschema.Draft202012Validator(schema)

good = sorted(glob.glob(os.path.join(ROOT, "pipelines/*.yaml")) +
              glob.glob(os.path.join(ROOT, "tests/golden/pipelines/*/pipeline.yaml")))
# Golden error cases whose mistake is visible to the schema (unknown keys and types).
bad = [os.path.join(ROOT, "tests/golden/errors", c, "pipeline.yaml")
       for c in ("unknown_key", "wrong_type", "unknown_operator", "all_problems_at_once",
                 "missing_sections")]

failed = 0
for path in good:
    errors = list(validator.iter_errors(yaml.safe_load(open(path))))
    for e in errors:
        print(f"{path}: {'/'.join(map(str, e.absolute_path))}: {e.message[:200]}")
    failed += bool(errors)
for path in bad:
    if validator.is_valid(yaml.safe_load(open(path))):
        print(f"{path}: accepted by the schema, but it is invalid")
        failed += 1
print(f"{len(good) + len(bad) - failed} passed, {failed} failed")
sys.exit(1 if failed else 0)
