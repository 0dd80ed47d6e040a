#!/usr/bin/env python3
"""Helpers of scripts/run.sh (standard library only; talks to ClickHouse over HTTP with
STIR_CLICKHOUSE_URL / _USER / _PASSWORD):

  seed.py load FILE.sql          run the statements of FILE.sql (the raw seed), one per request
  seed.py order plan.json        print the enabled schedules, upstream first (one per line)

Order: a schedule runs after the schedules that build the models it reads (its models'
dependencies, its syncs' models, the tables its requests and sql steps name), so each reads
data its upstream just refreshed. Schedules that read each other (a cycle: in stir.kdl,
dbt_hourly and dbt_daily) come by name; on a new warehouse no order could start them, which is
what `stir-runtime plan.json --bootstrap` is for (run.sh runs it first).
runtime/tests/flagship.rs does the same.
"""
import base64
import json
import os
import re
import sys
import urllib.error
import urllib.request


def ch(sql):
    url = os.environ.get("STIR_CLICKHOUSE_URL", "http://127.0.0.1:8123") + "/"
    req = urllib.request.Request(url, data=sql.encode())
    user = os.environ.get("STIR_CLICKHOUSE_USER")
    if user:
        token = f"{user}:{os.environ.get('STIR_CLICKHOUSE_PASSWORD', '')}".encode()
        req.add_header("Authorization", "Basic " + base64.b64encode(token).decode())
    try:
        return urllib.request.urlopen(req).read().decode()
    except urllib.error.HTTPError as e:
        sys.exit(f"ClickHouse refused: {sql[:200]}\n{e.read().decode()[:1000]}")


def load(path):
    text = "\n".join(l for l in open(path).read().splitlines() if not l.lstrip().startswith("--"))
    stmts = [s.strip().rstrip(";") for s in text.split(";\n") if s.strip()]
    for s in stmts:
        ch(s)
    print(f"{path}: {len(stmts)} statements")


def graph(plan):
    db = plan["warehouse"]["database"]
    models = {m["name"]: m for m in plan["models"]}
    syncs = {s["name"]: s for s in plan["syncs"]}
    requests = {r["name"]: r for r in plan["requests"]}
    owner = {m: s["name"] for s in plan["schedules"] for st in s["steps"]
             if st["kind"] == "run" for m in st["models"]}

    def named(sql):
        pat = r"(?<![A-Za-z0-9_])" + re.escape(db) + r"\.([A-Za-z_][A-Za-z0-9_]*)"
        return {m for m in re.findall(pat, sql) if m in models}

    reads = {}
    for s in plan["schedules"]:
        if not s["enabled"]:
            continue
        r = set()
        for st in s["steps"]:
            if st["kind"] == "run":
                r |= {d for m in st["models"] for d in models[m]["deps"]}
            elif st["kind"] == "sync":
                r.add(syncs[st["sync"]]["from"])
            elif st["kind"] == "request":
                r |= named(requests[st["request"]]["sql"])
            elif st["kind"] == "sql":
                r |= named(st["sql"])
        up = {}
        for m in r:
            if m in owner and owner[m] != s["name"]:
                up.setdefault(owner[m], set()).add(m)
        reads[s["name"]] = up
    return models, reads


def components(reads):
    """Tarjan: strongly connected components, upstream first, members sorted by name."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(reads[v]):
            if w not in reads:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(reads):
        if v not in index:
            visit(v)
    return out


def order(plan):
    _, reads = graph(plan)
    for comp in components(reads):
        for s in comp:
            print(s)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("load", "order"):
        sys.exit(__doc__)
    cmd, arg = sys.argv[1], sys.argv[2]
    if cmd == "load":
        load(arg)
    else:
        plan = json.load(open(arg))
        order(plan)
