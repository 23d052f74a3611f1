#!/usr/bin/python3
"""Checks deploy/ against the metrics a running Sluice serves.

    check_dashboards.py SOURCE_DIR METRICS_FILE [METRICS_FILE...]

METRICS_FILE is a saved /metrics answer of `sluice run --metrics-addr` (Prometheus text format
0.0.4); with several, a metric served in any of them counts (e.g. one run with a classifier and
one with a regressor). A family counts as served when its `# TYPE` line or a sample is there.

Every metric name used by a PromQL expression in deploy/ (Grafana dashboard targets, template
variables and annotations, Grafana alert rules, Prometheus rule files) must be served by
Sluice, so a renamed metric breaks this test instead of a dashboard. Also checks that every
dashboard and provisioning file parses, that every panel names a provisioned data source by
uid and every target has an expression, and that SQL panels read only the seeds' tables.
Exit 0 when all is well, 1 with one line per problem, 2 on a usage error.
Python 3 standard library and PyYAML (Debian's python3-yaml) only.
"""
import glob
import json
import os
import re
import sys

import yaml

SQL_TABLES = {"iris_data", "iris_prediction", "fraud_transactions"}
# Series Prometheus writes itself for every scrape or rule, never served by Sluice.
PROMETHEUS_SERIES = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
                     "scrape_samples_post_metric_relabeling", "scrape_series_added",
                     "ALERTS", "ALERTS_FOR_STATE"}
# Grafana's own annotation source and its server-side expressions (alert rules).
BUILTIN_DATASOURCES = {"-- Grafana --", "grafana", "__expr__"}
# Panels that show no query results.
QUERYLESS_PANELS = {"row", "text", "news", "dashlist", "alertlist", "annolist"}

PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "offset",
                   "bool", "and", "or", "unless", "atan2", "inf", "nan"}
# Keywords followed by a parenthesised list of label names, not of expressions.
LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
AGGREGATIONS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count",
                "count_values", "bottomk", "topk", "quantile", "limitk", "limit_ratio"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
NUMBER = re.compile(r"(0[xX][0-9a-fA-F]+|[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?[A-Za-z0-9_.]*)")
GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\[\[[^\]]*\]\]")


class Problems:
    def __init__(self):
        self.lines = []

    def add(self, where, message):
        self.lines.append(f"{where}: {message}")


def _skip_string(text, i):
    """Index just past the string literal opening at text[i] (', " or `)."""
    quote = text[i]
    i += 1
    while i < len(text):
        if text[i] == "\\" and quote != "`":
            i += 2
            continue
        if text[i] == quote:
            return i + 1
        i += 1
    raise ValueError("unterminated string literal")


def _skip_group(text, i, open_char, close_char):
    """Index just past the group opening at text[i], skipping strings inside."""
    depth = 0
    while i < len(text):
        c = text[i]
        if c in "'\"`":
            i = _skip_string(text, i)
            continue
        if c == open_char:
            depth += 1
        elif c == close_char:
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise ValueError(f"unbalanced '{open_char}'")


def _next_non_space(text, i):
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _name_matcher(selector):
    """The metric name of a {__name__="x"} matcher inside a selector, if any."""
    m = re.search(r'__name__\s*=\s*"([A-Za-z_:][A-Za-z0-9_:]*)"', selector)
    return m.group(1) if m else None


def promql_metric_names(expr):
    """Metric names an expression selects. Raises ValueError on unbalanced text."""
    # Grafana variables ($__rate_interval, $pipeline, ${node:regex}, [[x]]) are not PromQL;
    # a blank keeps the tokens around them apart.
    text = GRAFANA_VAR.sub(" ", expr)
    names = []
    i = 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":  # a comment, to the end of the line
            end = text.find("\n", i)
            i = len(text) if end < 0 else end
        elif c in "'\"`":
            i = _skip_string(text, i)
        elif c == "{":  # label matchers
            end = _skip_group(text, i, "{", "}")
            name = _name_matcher(text[i:end])
            if name:
                names.append(name)
            i = end
        elif c == "[":  # range or subquery: durations only
            i = _skip_group(text, i, "[", "]")
        elif c.isdigit() or (c == "." and i + 1 < len(text) and text[i + 1].isdigit()):
            i = NUMBER.match(text, i).end()
        elif IDENT.match(text, i):
            word = IDENT.match(text, i).group(0)
            i += len(word)
            j = _next_non_space(text, i)
            lower = word.lower()
            if lower in LABEL_LIST_KEYWORDS:
                if j < len(text) and text[j] == "(":
                    i = _skip_group(text, j, "(", ")")
            elif lower in PROMQL_KEYWORDS or word in AGGREGATIONS:
                pass
            elif j < len(text) and text[j] == "(":
                pass  # a function call: its arguments are scanned as they come
            else:
                names.append(word)
        else:
            i += 1
    return names


def variable_query_expressions(query):
    """The PromQL inside a Grafana Prometheus template-variable query."""
    q = query.strip()
    m = re.fullmatch(r"label_values\s*\((.*)\)", q, re.S)
    if m:
        args = m.group(1).rsplit(",", 1)
        # label_values(label) has no metric; label_values(expr, label) selects with expr.
        return [args[0]] if len(args) == 2 else []
    m = re.fullmatch(r"query_result\s*\((.*)\)", q, re.S)
    if m:
        return [m.group(1)]
    if re.fullmatch(r"(label_names|metrics)\s*\(.*\)", q, re.S):
        return []
    return [q] if q else []


def parse_metrics(path):
    """Family names (# TYPE / # HELP) with their types, and sample names, of a /metrics file."""
    types, samples = {}, set()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            if line.startswith("#"):
                parts = line.split(None, 3)
                if len(parts) >= 3 and parts[1] in ("TYPE", "HELP"):
                    if parts[1] == "TYPE":
                        types[parts[2]] = parts[3].strip() if len(parts) > 3 else "untyped"
                    else:
                        types.setdefault(parts[2], "untyped")
                continue
            m = IDENT.match(line)
            if not m:
                raise ValueError(f"{path}:{lineno}: not a sample line: {line[:80]}")
            samples.add(m.group(0))
    return types, samples


def sql_tables(sql):
    """Table names a SELECT reads (FROM / JOIN), without CTE names. Best effort, not a parser."""
    text = re.sub(r"--[^\n]*|/\*.*?\*/", " ", sql, flags=re.S)
    text = re.sub(r"'(?:[^']|'')*'", "''", text)
    text = GRAFANA_VAR.sub(" ", text)
    tokens = re.findall(r'"(?:[^"]|"")*"|[A-Za-z_][A-Za-z0-9_$]*(?:\.[A-Za-z_][A-Za-z0-9_$]*)*'
                        r'|[(),;]|\S', text)
    ctes = {m.group(1).lower() for m in re.finditer(
        r"(?:\bWITH(?:\s+RECURSIVE)?|,)\s*([A-Za-z_][A-Za-z0-9_]*)\s+AS\s*(?:NOT\s+)?"
        r"(?:MATERIALIZED\s+)?\(", text, re.I)}

    def ident(tok):
        if tok.startswith('"'):
            return tok[1:-1].replace('""', '"')
        return tok.lower()

    tables = []
    # FROM inside extract(x FROM y), substring(s FROM n), trim(... FROM s) and
    # IS [NOT] DISTINCT FROM is not a table reference.
    expression_from = {"extract", "substring", "trim", "overlay", "position"}
    call_stack = []
    k = 0
    while k < len(tokens):
        tok = tokens[k]
        low = tok.lower()
        if tok == "(":
            call_stack.append(tokens[k - 1].lower() if k else "")
        elif tok == ")":
            if call_stack:
                call_stack.pop()
        elif low in ("from", "join") and not (
                low == "from" and (call_stack and call_stack[-1] in expression_from
                                   or k and tokens[k - 1].lower() == "distinct")):
            k += 1
            while k < len(tokens):
                if tokens[k].lower() in ("lateral", "only"):
                    k += 1
                    continue
                if tokens[k] == "(":  # a subquery: scanned by the outer loop
                    k -= 1
                    break
                name = ident(tokens[k])
                if k + 1 < len(tokens) and tokens[k + 1] == "(":  # a set-returning function
                    break
                tables.append(name.split(".")[-1])
                k += 1
                # optional alias
                if k < len(tokens) and tokens[k].lower() == "as":
                    k += 1
                if k < len(tokens) and IDENT.fullmatch(tokens[k]) and tokens[k].lower() not in (
                        "where", "join", "left", "right", "inner", "outer", "full", "cross",
                        "natural", "on", "using", "group", "order", "limit", "union", "window",
                        "having", "offset", "fetch", "for", "except", "intersect"):
                    k += 1
                if k < len(tokens) and tokens[k] == ",":
                    k += 1
                    continue
                k -= 1
                break
        k += 1
    return [t for t in tables if t.lower() not in ctes]


def load_yaml(path, rel, problems):
    try:
        with open(path, encoding="utf-8") as f:
            return [d for d in yaml.safe_load_all(f) if d is not None]
    except yaml.YAMLError as e:
        problems.add(rel, "not valid YAML: " + " ".join(str(e).split()))
        return []


class Checker:
    def __init__(self, root, metrics_paths):
        self.root = root
        self.problems = Problems()
        self.types, self.samples = {}, set()
        for path in metrics_paths:
            types, samples = parse_metrics(path)
            self.types.update(types)
            self.samples |= samples
        self.metrics_path = " or ".join(metrics_paths)
        self.used = {}  # metric name -> ["file: where", ...]
        self.datasource_uids = {}  # uid -> type
        self.counts = {"dashboards": 0, "panels": 0, "promql": 0, "sql": 0, "yaml": 0}
        self.missing = []

    def rel(self, path):
        return os.path.relpath(path, self.root)

    # PromQL ---------------------------------------------------------------------------------
    def promql(self, expr, where):
        self.counts["promql"] += 1
        try:
            names = promql_metric_names(expr)
        except ValueError as e:
            self.problems.add(where, f"cannot read PromQL ({e}): {expr}")
            return
        if not names:
            self.problems.add(where, f"no metric name in PromQL: {expr}")
        for name in names:
            self.used.setdefault(self.base_name(name), []).append(where)

    def base_name(self, name):
        for suffix in HISTOGRAM_SUFFIXES:
            base = name[: -len(suffix)]
            if name.endswith(suffix) and self.types.get(base) in ("histogram", "summary"):
                return base
        return name

    # SQL ------------------------------------------------------------------------------------
    def sql(self, text, where):
        self.counts["sql"] += 1
        tables = sql_tables(text)
        if not tables:
            self.problems.add(where, "SQL reads no table")
        for t in tables:
            if t not in SQL_TABLES:
                self.problems.add(where, f"SQL reads table '{t}'; the seeds' tables are "
                                         f"{', '.join(sorted(SQL_TABLES))}")

    # Provisioning ---------------------------------------------------------------------------
    def datasources(self):
        for path in sorted(glob.glob(os.path.join(
                self.root, "deploy/grafana/provisioning/datasources/*.y*ml"))):
            for doc in load_yaml(path, self.rel(path), self.problems):
                for ds in doc.get("datasources") or []:
                    if not ds.get("uid"):
                        self.problems.add(self.rel(path), f"data source '{ds.get('name')}' has "
                                                          "no uid")
                        continue
                    self.datasource_uids[ds["uid"]] = ds.get("type", "")
        if not self.datasource_uids:
            self.problems.add("deploy/grafana/provisioning/datasources",
                              "no provisioned data source")

    def check_datasource(self, ds, where, allow_builtin=False):
        """The uid of a panel's or target's data source reference, or None with a problem."""
        uid = ds.get("uid") if isinstance(ds, dict) else None
        if uid in self.datasource_uids or (allow_builtin and uid in BUILTIN_DATASOURCES):
            return uid
        known = ", ".join(sorted(self.datasource_uids))
        self.problems.add(where, f"data source {json.dumps(ds)} is not a provisioned uid "
                                 f"({known})")
        return None

    def query(self, ds_uid, target, where):
        kind = self.datasource_uids.get(ds_uid, "")
        if kind == "prometheus":
            expr = target.get("expr")
            if not isinstance(expr, str) or not expr.strip():
                self.problems.add(where, "target has no expression (expr)")
                return
            self.promql(expr, where)
        elif kind in ("postgres", "grafana-postgresql-datasource"):
            text = target.get("rawSql")
            if not isinstance(text, str) or not text.strip():
                self.problems.add(where, "target has no SQL (rawSql)")
                return
            self.sql(text, where)
        else:
            self.problems.add(where, f"data source type '{kind}' is not checked by this test")

    # Dashboards -----------------------------------------------------------------------------
    def dashboard(self, path):
        rel = self.rel(path)
        try:
            with open(path, encoding="utf-8") as f:
                d = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            self.problems.add(rel, f"not valid JSON: {e}")
            return None
        self.counts["dashboards"] += 1
        for key in ("uid", "title", "panels"):
            if not d.get(key):
                self.problems.add(rel, f"dashboard has no '{key}'")
        ids = set()
        for panel in self.all_panels(d.get("panels") or []):
            self.panel(panel, rel, ids)
        for var in (d.get("templating") or {}).get("list") or []:
            self.variable(var, rel)
        for ann in (d.get("annotations") or {}).get("list") or []:
            where = f"{rel}: annotation '{ann.get('name')}'"
            uid = self.check_datasource(ann.get("datasource"), where, allow_builtin=True)
            if uid in self.datasource_uids:
                expr = ann.get("expr") or (ann.get("target") or {}).get("expr")
                self.query(uid, {"expr": expr, "rawSql": ann.get("rawQuery")}, where)
        return d.get("uid")

    @staticmethod
    def all_panels(panels):
        for p in panels:
            yield p
            # A collapsed row holds its panels; an open row's follow it at the top level.
            yield from Checker.all_panels(p.get("panels") or [])

    def panel(self, panel, rel, ids):
        title = panel.get("title") or f"id {panel.get('id')}"
        where = f"{rel}: panel '{title}'"
        if panel.get("id") in ids:
            self.problems.add(where, f"panel id {panel.get('id')} is used twice")
        ids.add(panel.get("id"))
        if panel.get("type") in QUERYLESS_PANELS:
            return
        self.counts["panels"] += 1
        panel_uid = self.check_datasource(panel.get("datasource"), where)
        targets = panel.get("targets") or []
        if not targets:
            self.problems.add(where, "panel has no targets")
        for t in targets:
            twhere = f"{where} target {t.get('refId', '?')}"
            uid = panel_uid
            if "datasource" in t:
                uid = self.check_datasource(t["datasource"], twhere)
            if uid:
                self.query(uid, t, twhere)

    def variable(self, var, rel):
        if var.get("type") != "query":
            return
        where = f"{rel}: variable '{var.get('name')}'"
        uid = self.check_datasource(var.get("datasource"), where)
        q = var.get("query")
        text = q.get("query") if isinstance(q, dict) else q
        if not isinstance(text, str) or not text.strip():
            self.problems.add(where, "variable has no query")
            return
        if uid and self.datasource_uids.get(uid) == "prometheus":
            for expr in variable_query_expressions(text):
                self.promql(expr, where)

    # Alert rules ----------------------------------------------------------------------------
    def yaml_file(self, path):
        rel = self.rel(path)
        docs = load_yaml(path, rel, self.problems)
        self.counts["yaml"] += 1
        for doc in docs:
            if not isinstance(doc, dict):
                self.problems.add(rel, "top level is not a mapping")
                continue
            for group in doc.get("groups") or []:
                for rule in group.get("rules") or []:
                    if "expr" in rule:  # a Prometheus rule
                        name = rule.get("alert") or rule.get("record")
                        self.promql(str(rule["expr"]), f"{rel}: rule '{name}'")
                    elif "data" in rule:  # a Grafana-managed rule
                        self.grafana_rule(rule, rel)
            self.contact_routes(doc, rel)

    def grafana_rule(self, rule, rel):
        where = f"{rel}: rule '{rule.get('title')}'"
        refs = {q.get("refId") for q in rule["data"]}
        if rule.get("condition") not in refs:
            self.problems.add(where, f"condition '{rule.get('condition')}' is not a refId")
        for q in rule["data"]:
            qwhere = f"{where} query {q.get('refId')}"
            uid = q.get("datasourceUid")
            if uid == "__expr__":
                continue
            if uid not in self.datasource_uids:
                self.problems.add(qwhere, f"datasourceUid '{uid}' is not provisioned")
                continue
            self.query(uid, q.get("model") or {}, qwhere)

    def contact_routes(self, doc, rel):
        names = {cp.get("name") for cp in doc.get("contactPoints") or []}
        if not names:
            return

        def walk(route):
            if route.get("receiver") and route["receiver"] not in names:
                self.problems.add(rel, f"policy routes to unknown contact point "
                                       f"'{route['receiver']}'")
            for r in route.get("routes") or []:
                walk(r)

        for policy in doc.get("policies") or []:
            walk(policy)

    # ----------------------------------------------------------------------------------------
    def run(self):
        self.datasources()
        dashboards = sorted(glob.glob(
            os.path.join(self.root, "deploy/grafana/dashboards/**/*.json"), recursive=True))
        if not dashboards:
            self.problems.add("deploy/grafana/dashboards", "no dashboard")
        uids = {}
        for path in dashboards:
            uid = self.dashboard(path)
            if uid and uid in uids:
                self.problems.add(self.rel(path), f"uid '{uid}' is also the uid of {uids[uid]}")
            uids[uid] = self.rel(path)
        for sub in ("deploy/grafana/provisioning", "deploy/prometheus"):
            for path in sorted(glob.glob(os.path.join(self.root, sub, "**/*.y*ml"),
                                         recursive=True)):
                self.yaml_file(path)

        missing = {name: wheres for name, wheres in self.used.items()
                   if name not in self.types and name not in self.samples
                   and name not in PROMETHEUS_SERIES}
        for name in sorted(missing):
            what = f"metric '{name}'"
            for suffix in HISTOGRAM_SUFFIXES:
                if name.endswith(suffix):
                    what += f" (nor a histogram '{name[:-len(suffix)]}')"
            for where in sorted(set(missing[name])):
                self.problems.add(where, f"{what} is not in {self.metrics_path}")
        self.missing = sorted(missing)
        return self.problems.lines


def main(argv):
    if len(argv) < 3:
        print("usage: " + __doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    root, metrics = argv[1], argv[2:]
    try:
        checker = Checker(root, metrics)
    except (OSError, ValueError) as e:
        print(f"check_dashboards: cannot read the metrics file: {e}", file=sys.stderr)
        return 2
    problems = checker.run()
    c = checker.counts
    if problems:
        for line in problems:
            print(line)
        print(f"check_dashboards: FAILED: {len(problems)} problems; metrics used but not "
              f"served: {', '.join(checker.missing) or 'none'}")
        return 1
    print(f"check_dashboards: ok: {c['dashboards']} dashboards, {c['panels']} panels, "
          f"{c['yaml']} YAML files; {c['promql']} PromQL expressions use {len(checker.used)} "
          f"metrics, all served in {checker.metrics_path}; {c['sql']} SQL queries read only "
          f"{', '.join(sorted(SQL_TABLES))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
