#!/usr/bin/env python3
"""Time stir against dbt on the projects bench/generate.py wrote (issues #8, #14).

Called by bench/run.sh; Python 3.11 standard library only. For each shape of SQL (`small`,
`marts`: see generate.py) and each size it runs, in ALTERNATING order inside every round (so
background noise hits both tools alike):

  stir check MANIFEST                                    vs  dbt parse --no-partial-parse
  stir ls -m MANIFEST tag:daily                          vs  dbt ls --select tag:daily --no-partial-parse
                                                         and dbt ls --select tag:daily (partial parse warm)

With `--baseline STIR`, `stir check` of a second binary (the build before a change) runs in
the same rounds, so before and after are measured side by side under the same load.

Every dbt run without partial parse gets a fresh, empty target directory. The warm dbt ls
reuses one target directory that an untimed `dbt parse` filled first, so its time is what
a developer waits for on a second `dbt ls` after changing nothing.

Each command is started by this script and reaped with wait4 (its own user+sys CPU); wall time
is taken around it. stir's peak RSS comes from one more, untimed run under /usr/bin/time (a
child of this script starts as big as the script); dbt's from its timed runs. `/bin/true`, timed the same way in the same rounds, is the
floor: what starting and reaping any process costs here. Writes bench/results/{results.csv,summary.json},
the section "stir check vs dbt parse" of docs/performance.md, and docs/perf-check.svg.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

SECTION = "## stir check vs dbt parse"

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from generate import SHAPES, project_dir  # noqa: E402  (the projects' layout, in one place)

# (key, tool, label) in the order they alternate within a round.
COMMANDS = [
    ("stir_check", "stir", "stir check"),
    ("dbt_parse", "dbt", "dbt parse --no-partial-parse"),
    ("stir_ls", "stir", "stir ls tag:daily"),
    ("dbt_ls", "dbt", "dbt ls --select tag:daily --no-partial-parse"),
    ("dbt_ls_warm", "dbt", "dbt ls --select tag:daily, partial parse warm"),
]
BASELINE = ("stir_check_baseline", "stir", "stir check, baseline build")
# What this script's own way of starting and reaping a process costs: `true`, timed alike.
FLOOR = ("floor", "stir", "/bin/true (the harness's floor)")


def sh(cmd: list[str], **kw) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout.strip()


def timed(cmd: list[str], cwd: str, env: dict, want_stdout: bool = False, code: int = 0):
    """Run cmd; return (wall_s, cpu_s, max_rss_kb, stdout).

    The child is reaped with wait4, whose rusage is that child's alone (peak RSS, user+sys
    CPU to the microsecond): no /usr/bin/time in between, whose own exec would be timed too.
    Output goes to files, so a chatty command cannot block on a full pipe. The peak RSS is
    this child's, but a child starts as a copy of this script (about 19 MiB), so a smaller
    peak reads as the script's: stir's own comes from `peak_rss`.
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                             stdout=out if want_stdout else subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        if p.returncode != code:
            err.seek(0)
            sys.exit(f"command failed ({p.returncode}): {' '.join(cmd)}\n{err.read()[-3000:]}")
        out.seek(0)
        text = out.read() if want_stdout else ""
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, text


def peak_rss(cmd: list[str], cwd: str, env: dict) -> tuple[int, int]:
    """Peak RSS (KiB) and exit code of one untimed run under /usr/bin/time, a small parent
    whose child starts small: what a stir run itself takes, below the script's own size. Exit
    1 is a check with findings (run.sh let through only `stir::plan_too_big`)."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as tf:
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", tf.name] + cmd, cwd=cwd,
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if p.returncode not in (0, 1):
            sys.exit(f"command failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-3000:]}")
        return int(tf.read().split()[-1]), p.returncode


def machine() -> dict:
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {"nproc": os.cpu_count(), "cpu": cpu, "mem_gib": round(mem_kb / 1024 / 1024, 1),
            "kernel": platform.release(), "python": platform.python_version()}


def versions(args) -> dict:
    rev = sh(["git", "-C", args.repo, "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", args.repo, "diff", "--quiet", "HEAD", "--",
                            "compiler"]).returncode != 0
    dbtv = sh([os.path.join(args.venv, "bin", "python"), "-c",
               "import importlib.metadata as m; print(m.version('dbt-core'), "
               "m.version('dbt-clickhouse'))"]).split()
    out = {"stir": rev + ("+local changes in compiler/" if dirty else ""),
           "stir_binary": sh([args.stir, "--version"]),
           "dbt_core": dbtv[0], "dbt_clickhouse": dbtv[1]}
    if args.baseline:
        out["baseline"] = args.baseline_label or args.baseline
    return out


def commands(args) -> list:
    return COMMANDS + ([BASELINE] if args.baseline else []) + [FLOOR]


def bench_size(shape: str, n: int, args, env: dict, runs: dict[str, int], rows: list) -> dict:
    base = os.path.join(args.projects, project_dir(shape, n))
    manifest = os.path.join(base, "stir", "stir.kdl")
    dbt_dir = os.path.join(base, "dbt")
    dbt = os.path.join(args.venv, "bin", "dbt")
    scratch = tempfile.mkdtemp(prefix=f"stir-bench-{n}-")
    common = ["--profiles-dir", dbt_dir, "--log-path", os.path.join(scratch, "logs")]
    warm_target = os.path.join(scratch, "warm-target")
    # Untimed: fill the warm target (partial_parse.msgpack) for the warm dbt ls runs.
    subprocess.run([dbt, "-q", "parse", "--target-path", warm_target] + common, cwd=dbt_dir,
                   env=env, check=True, stdout=subprocess.DEVNULL)

    def fresh_target() -> str:
        t = os.path.join(scratch, "target")
        shutil.rmtree(t, ignore_errors=True)
        return t

    def cmd_for(key: str) -> list[str]:
        if key == "stir_check":
            return [args.stir, "check", manifest]
        if key == "stir_check_baseline":
            return [args.baseline, "check", manifest]
        if key == "floor":
            return ["/bin/true"]
        if key == "stir_ls":
            return [args.stir, "ls", "-m", manifest, "tag:daily"]
        if key == "dbt_parse":
            return [dbt, "-q", "parse", "--no-partial-parse", "--target-path", fresh_target()] + common
        ls = [dbt, "-q", "ls", "--select", "tag:daily", "--resource-type", "model",
              "--output", "name"] + common
        if key == "dbt_ls":
            return ls + ["--no-partial-parse", "--target-path", fresh_target()]
        return ls + ["--target-path", warm_target]

    selected = {}
    # stir's peak memory from one untimed run each (also a warm-up); dbt's (hundreds of MiB)
    # is the timed runs' own.
    probed = {key: peak_rss(cmd_for(key), base, env) for key, tool, _ in commands(args)
              if tool == "stir" and runs.get(key, 0) > 0}
    rss_of = {key: rss for key, (rss, _) in probed.items()}
    code_of = {key: code for key, (_, code) in probed.items()}
    rounds = max(runs.values())
    for r in range(rounds):
        # Who goes first alternates too.
        order = commands(args) if r % 2 == 0 else commands(args)[::-1]
        for key, tool, _ in order:
            if r >= runs[key]:
                continue
            wall, cpu, rss, out = timed(cmd_for(key), cwd=base if tool == "stir" else dbt_dir,
                                        env=env, want_stdout=key.endswith("ls") or key == "dbt_ls_warm",
                                        code=code_of.get(key, 0))
            rss = rss_of.get(key, rss)
            if out:
                selected[key] = sorted(line for line in out.splitlines() if line.strip())
            rows.append({"shape": shape, "models": n, "command": key, "run": r + 1,
                         "wall_s": round(wall, 4), "cpu_s": round(cpu, 3), "max_rss_kb": rss,
                         "load": open("/proc/loadavg").read().split()[0]})
            print(f"  {shape:>5} N={n:>5} run {r + 1} {key:<19} {wall:8.3f} s wall {cpu:8.3f} s "
                  f"cpu {rss / 1024:7.1f} MiB", flush=True)
    shutil.rmtree(scratch, ignore_errors=True)
    counts = {k: len(v) for k, v in selected.items()}
    same = len({tuple(v) for v in selected.values()}) == 1
    if not same:
        sys.exit(f"{shape} N={n}: stir ls and dbt ls disagree on tag:daily: {counts}")
    sql = 0
    for root, _, files in os.walk(os.path.join(base, "stir", "models")):
        sql += sum(os.path.getsize(os.path.join(root, f)) for f in files)
    return {"daily_selected": counts.get("stir_ls", 0), "sql_mb": round(sql / 1e6, 1),
            "plan_too_big": code_of.get("stir_check", 0) == 1}


def summarize(rows: list, shape: str, sizes: list[int]) -> dict:
    out = {}
    for n in sizes:
        per = {}
        for key, _, _ in COMMANDS + [BASELINE, FLOOR]:
            rs = [r for r in rows
                  if r["shape"] == shape and r["models"] == n and r["command"] == key]
            if not rs:
                continue
            walls = [r["wall_s"] for r in rs]
            loads = [float(r["load"]) for r in rs]
            per[key] = {"runs": len(rs), "median_s": statistics.median(walls),
                        "load_min": min(loads), "load_max": max(loads),
                        "min_s": min(walls), "max_s": max(walls),
                        "cpu_median_s": statistics.median(r["cpu_s"] for r in rs),
                        "max_rss_mib": round(max(r["max_rss_kb"] for r in rs) / 1024, 1)}
        out[str(n)] = per
    return out


def fmt_t(s: float) -> str:
    if s < 1:
        return f"{s * 1000:.0f} ms" if s >= 0.0095 else f"{s * 1000:.1f} ms"
    return f"{s:.1f} s" if s < 100 else f"{s:.0f} s"


def fmt_cpu(s: float) -> str:
    return fmt_t(s)


def fmt_spread(d: dict) -> str:
    return f"{fmt_t(d['median_s'])} ({fmt_t(d['min_s'])}–{fmt_t(d['max_s'])})"


# ---------------------------------------------------------------------------- SVG plot

def svg_plot(summary: dict, shapes: list[str], sizes: list[int], path: str) -> None:
    import math
    W, H = 820, 460
    L, R, T, B = 80, 270, 50, 60
    pw, ph = W - L - R, H - T - B
    by_shape = {
        "small": [
            ("dbt_parse", "dbt parse --no-partial-parse", "#d9480f", ""),
            ("dbt_ls", "dbt ls tag:daily (no partial parse)", "#f08c00", "6 4"),
            ("dbt_ls_warm", "dbt ls tag:daily (partial parse warm)", "#e8590c", "2 3"),
            ("stir_check", "stir check", "#1c7ed6", ""),
            ("stir_ls", "stir ls tag:daily", "#0b7285", "6 4"),
        ],
        "marts": [
            ("dbt_parse", "dbt parse, marts shape", "#862e9c", ""),
            ("stir_check", "stir check, marts shape", "#2b8a3e", ""),
        ],
    }
    series = [(shape, *row) for shape in shapes for row in by_shape[shape]]
    vals = [summary[sh][str(n)][k][f] for sh, k, *_ in series for n in sizes
            if k in summary[sh][str(n)] for f in ("min_s", "max_s")]
    lo = 10 ** math.floor(math.log10(min(vals)))
    hi = 10 ** math.ceil(math.log10(max(vals)))
    xlo, xhi = math.log10(min(sizes)) - 0.08, math.log10(max(sizes)) + 0.08

    def x(n):
        return L + (math.log10(n) - xlo) / (xhi - xlo) * pw

    def y(s):
        return T + ph - (math.log10(s) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * ph

    o = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
         f'viewBox="0 0 {W} {H}" font-family="Helvetica, Arial, sans-serif" font-size="12">',
         f'<rect width="{W}" height="{H}" fill="white"/>',
         f'<text x="{L}" y="24" font-size="15" font-weight="bold">Time against project size '
         f'(median of runs, bars = min–max)</text>']
    d = lo
    while d <= hi * 1.0001:
        yy = y(d)
        o.append(f'<line x1="{L}" y1="{yy:.1f}" x2="{L + pw}" y2="{yy:.1f}" stroke="#ddd"/>')
        o.append(f'<text x="{L - 8}" y="{yy + 4:.1f}" text-anchor="end">{f"{d * 1000:g} ms" if d < 1 else f"{d:g} s"}</text>')
        d *= 10
    for n in sizes:
        xx = x(n)
        o.append(f'<line x1="{xx:.1f}" y1="{T}" x2="{xx:.1f}" y2="{T + ph}" stroke="#eee"/>')
        o.append(f'<text x="{xx:.1f}" y="{T + ph + 18}" text-anchor="middle">{n:,}</text>')
    o.append(f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    o.append(f'<text x="{L + pw / 2}" y="{H - 18}" text-anchor="middle">models in the project '
             f'(log scale)</text>')
    o.append(f'<text transform="translate(20,{T + ph / 2}) rotate(-90)" text-anchor="middle">'
             f'wall-clock time (log scale)</text>')
    for i, (shape, key, label, colour, dash) in enumerate(series):
        pts = [(n, summary[shape][str(n)][key]) for n in sizes if key in summary[shape][str(n)]]
        if not pts:
            continue
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        path_d = " ".join(f"{'M' if j == 0 else 'L'}{x(n):.1f},{y(s['median_s']):.1f}"
                          for j, (n, s) in enumerate(pts))
        o.append(f'<path d="{path_d}" fill="none" stroke="{colour}" stroke-width="2"{dash_attr}/>')
        for n, s in pts:
            xx = x(n)
            o.append(f'<line x1="{xx:.1f}" y1="{y(s["min_s"]):.1f}" x2="{xx:.1f}" '
                     f'y2="{y(s["max_s"]):.1f}" stroke="{colour}" stroke-width="1.5"/>')
            o.append(f'<circle cx="{xx:.1f}" cy="{y(s["median_s"]):.1f}" r="3.5" fill="{colour}">'
                     f'<title>{label}, {n} models: {fmt_spread(s)}</title></circle>')
        ly = T + 14 + i * 22
        o.append(f'<line x1="{L + pw + 14}" y1="{ly}" x2="{L + pw + 44}" y2="{ly}" '
                 f'stroke="{colour}" stroke-width="2"{dash_attr}/>')
        o.append(f'<text x="{L + pw + 50}" y="{ly + 4}" font-size="11">{label}</text>')
    o.append("</svg>\n")
    with open(path, "w") as f:
        f.write("\n".join(o))


# ---------------------------------------------------------------------------- docs page

SHAPE_TEXT = {
    "small": "**small** (the shape of issue #8): marts of 20-40 lines, one CTE per parent",
    "marts": "**marts** (issue #14): marts like the platform's real ones "
             "(current-platform.md, `mart_instagram_account`): 3-5 KB each, import CTEs named "
             "after the models they ref (dbt's style guide), a chain of 6-9 CTEs with argMax "
             "dedup, argMaxIf growth windows, multiIf follower groups and grades over a Jinja "
             "metrics loop, window functions, strings with quotes and escapes, comments that "
             "name models, a SETTINGS clause",
}


# Where the time goes: perf on this machine, release build (issue #14); kept here because the
# bench measures time, not its causes.
PROFILE = (
    "Where `stir check` spends its time at 10,000 models (`perf record` at 2 kHz, release "
    "builds, the machine under the load described below, so the CPU figures are inflated "
    "alike; symbols grouped). **Before issue #14** (bd189a3), marts shape, 4.4 CPU-s: "
    "sqlparser's tokenizer in the hidden-ref scan 23%, malloc/free 28% and memcpy 9% (a "
    "`String` per word and a `Vec` of every token, a keyword binary search per word), the kdl "
    "parser 12%, minijinja 6%, reading files 8%; all on one core. Small shape, 1.3 CPU-s: the "
    "kdl parser 40%, malloc/free 23%. **After**, marts shape, 1.4 CPU-s: the kdl parser 33%, "
    "minijinja 16%, the hidden-ref scan 16% (now a scanner that reads SQL as sqlparser's "
    "ClickHouse tokenizer does but keeps only words, `.` and `(`, held to it by a differential "
    "test), reading files 10%, allocation 9% (mimalloc); small shape, 1.1 CPU-s: the kdl "
    "parser 43%, reading 16%, allocation 12%. The work is spread over both cores: model files "
    "are read, rendered and scanned in parallel (`parallel::parallel_map`, merged in model order), "
    "and a manifest over 16 KiB is parsed in one piece per core, cut before top-level nodes. "
    "**Session 8** (callgrind instruction counts of release builds, which no load changes): "
    "the kdl crate's parser was 86% of `stir check stir.kdl` (the shipped 112 models: 212 M "
    "instructions, about 3,500 a byte of KDL, an error built and merged at every failed "
    "alternative). `compiler/src/kdl_reader.rs` now reads plain KDL into the same document, "
    "spans included (held equal to the kdl crate on every repository manifest and on "
    "generated and mutated texts), and leaves everything else and every error to the kdl "
    "crate: 33 M instructions in all. Marts shape at 10,000 models, 3.3 G instructions: the "
    "hidden-ref scan 40% (blanking the Jinja 5%), minijinja compiling templates 32% and "
    "rendering them 14%, the manifest 4%. What is left serial: turning the KDL nodes into the "
    "manifest, names, the graph, the schedule checks (at 112 models the heavy-overlap proof is "
    "the largest, a quarter of the instructions). "
    "`stir check` keeps no rendered SQL (only `stir plan` does): 48 MB at 10,000 marts. "
    "**Session 9**, at 112 models, where a check is a few milliseconds and what a process "
    "pays to start counts: the `stir` binary is linked position-dependent on Linux "
    "(compiler/build.rs): as a PIE the loader wrote 37,000 relocations into 1.1 MB of "
    "`.data.rel.ro` at every start, 270 copy-on-write page faults (431 -> 168 faults for a "
    "112-model check; `stir --version` 399 -> 132); a schedule's day bits are laid down a "
    "month at a time (the shipped manifest's three heavy schedules made 4 M of its 31 M "
    "instructions); the cgroup's CPU quota is read once, not per stage; 112 models go to the "
    "cores in batches of 4, not 16 (16 split them 64:48)."
)


def size_table(d: dict, sizes: list[int], projects: dict) -> list[str]:
    lines = ["| models | schedules | SQL | stir check | dbt parse (no partial parse) | ratio | "
             "stir ls tag:daily | dbt ls (no partial parse) | ratio | dbt ls (partial parse warm) "
             "| ratio | peak RSS stir / dbt parse |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n in sizes:
        r, info = d[str(n)], projects[str(n)]

        def ratio(a, b):
            return f"{r[a]['median_s'] / r[b]['median_s']:,.0f}×"
        lines.append(
            f"| {n:,} | {info['schedules']} | {info['sql_mb']} MB | {fmt_spread(r['stir_check'])}"
            f"{'¹' if info.get('plan_too_big') else ''} | "
            f"{fmt_spread(r['dbt_parse'])} | {ratio('dbt_parse', 'stir_check')} | "
            f"{fmt_spread(r['stir_ls'])} | {fmt_spread(r['dbt_ls'])} | "
            f"{ratio('dbt_ls', 'stir_ls')} | {fmt_spread(r['dbt_ls_warm'])} | "
            f"{ratio('dbt_ls_warm', 'stir_ls')} | "
            f"{r['stir_check']['max_rss_mib']:.0f} MiB / {r['dbt_parse']['max_rss_mib']:.0f} MiB |")
    return lines


def runs_line(d: dict, sizes: list[int]) -> str:
    return ("Runs per size: " + "; ".join(
        f"{n:,}: stir {d[str(n)]['stir_check']['runs']}, dbt parse {d[str(n)]['dbt_parse']['runs']}, "
        f"dbt ls {d[str(n)]['dbt_ls']['runs']} + {d[str(n)]['dbt_ls_warm']['runs']} warm"
        for n in sizes) + ". CPU time (user+sys, median) of `stir check`: " + ", ".join(
        f"{n:,}: {fmt_cpu(d[str(n)]['stir_check']['cpu_median_s'])}" for n in sizes) +
        "; of `dbt parse`: " + ", ".join(
        f"{n:,}: {fmt_cpu(d[str(n)]['dbt_parse']['cpu_median_s'])}" for n in sizes) +
        ". Load average (1 min) while `stir check` ran: " + ", ".join(
        f"{n:,}: {d[str(n)]['stir_check']['load_min']:.1f}–{d[str(n)]['stir_check']['load_max']:.1f}"
        for n in sizes) + ".")


def met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def render_section(res: dict) -> str:
    s, m, v, sizes = res["summary"], res["machine"], res["versions"], res["sizes"]
    shapes = res["shapes"]
    lines = [SECTION, "",
             "<!-- Written by bench/run.sh (bench/bench.py); edit the script, not this section. -->",
             "",
             "Teams adopting stir run `dbt parse` or `dbt ls` on every pull request. This section "
             "compares them with `stir check` and `stir ls` on generated projects of the real "
             "platform's shape (bench/generate.py: 25% staging models reading sources, marts in "
             "ten folders each reffing 1-4 earlier models, one owner tag per model, one schedule "
             "per tag plus N/20 refresh tiers, N/100 syncs), in two shapes of SQL over the same "
             "DAG, manifest and schedules:", ""]
    lines += [f"- {SHAPE_TEXT[sh]}." for sh in shapes]
    lines += ["",
              "The stir and dbt projects hold the same SQL; each stir project passes `stir check "
              "--deny-warnings` (but for the one finding marked ¹) and `stir ls tag:daily` lists "
              "exactly the models `dbt ls --select tag:daily` lists.",
              "",
              "Median wall-clock time of the runs, with min–max in brackets; *ratio* is dbt's "
              "median over stir's. Peak memory is the maximum resident set size: dbt's over its runs, "
              "stir's from one untimed run under `/usr/bin/time` (a process this script starts "
              "begins as a copy of the script, about 19 MiB).",
              ""]
    for sh in shapes:
        lines += [f"### Shape `{sh}`", ""] + size_table(s[sh], sizes, res["projects"][sh])
        if any(res["projects"][sh][str(n)].get("plan_too_big") for n in sizes):
            lines += ["", "¹ The check's one finding: `stir::plan_too_big`, the project's plan "
                      "would pass the 64 MiB a runtime reads (each model's SQL is in a plan three "
                      "times); every stage runs as on a clean project."]
        lines += ["", runs_line(s[sh], sizes), ""]
    lines += ["![time against project size, both tools and shapes, log scale](perf-check.svg)",
              ""]
    if "baseline" in v:
        lines += ["### Before and after, in the same rounds", "",
                  f"`stir check` of the baseline build ({v['baseline']}) ran in the same "
                  "alternating rounds as this build's, so both met the same load:", "",
                  "| shape | models | before: wall | after: wall | before: CPU | after: CPU "
                  "| before: peak RSS | after: peak RSS |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for sh in shapes:
            for n in sizes:
                r = s[sh][str(n)]
                b, a = r["stir_check_baseline"], r["stir_check"]
                lines.append(
                    f"| {sh} | {n:,} | {fmt_spread(b)} | {fmt_spread(a)} | "
                    f"{fmt_cpu(b['cpu_median_s'])} | {fmt_cpu(a['cpu_median_s'])} | "
                    f"{b['max_rss_mib']:.0f} MiB | {a['max_rss_mib']:.0f} MiB |")
        lines.append("")
    g = res["goals"]
    lines += ["### Goals", ""]
    few, big = min(sizes), max(sizes)
    if big != 10000 or few != 112:
        lines += [f"(The goals are stated for 112 and 10,000 models; this run's sizes were "
                  f"{few:,} to {big:,}, so the figures below are for those.)", ""]
    if "small" in shapes:
        lines += [
            f"- **≥ 100× faster than `dbt parse` at 112 models** (small): {g['ratio_112']:,.0f}× — "
            f"{met(g['ratio_112'] >= 100)}.",
            f"- **10,000 models checked in under a second** (small): median "
            f"{fmt_t(g['check_10000_s'])} wall, {fmt_t(g['check_10000_cpu_s'])} CPU — "
            f"{met(g['check_10000_s'] < 1)}."]
        if g.get("growth_1k_10k") == g.get("growth_1k_10k"):  # not NaN: 1,000 was run
            lines.append(
                "- **Growth linear in models and schedules** (small): CPU time per model of "
                "`stir check` " + ", ".join(
                    f"{n:,}: {s['small'][str(n)]['stir_check']['cpu_median_s'] / n * 1e6:.0f} µs"
                    for n in sizes if n >= 1000)
                + f"; from 1,000 to 10,000 models it grew {g['growth_1k_10k']:.1f}× for 10× "
                f"the models and {g['sched_growth_1k_10k']:.1f}× the schedules.")
    if "marts" in shapes:
        lines += [
            f"- **10,000 marts-shaped models in under 0.6 s wall**: median "
            f"{fmt_t(g['marts_10000_s'])} (fastest run {fmt_t(g['marts_10000_min_s'])}), "
            f"{fmt_t(g['marts_10000_cpu_s'])} CPU on {m['nproc']} cores — "
            f"{met(g['marts_10000_s'] < 0.6)}.",
            f"- **112 marts-shaped models under 15 ms**: median {fmt_t(g['marts_112_s'])}"
            + (f" (fastest run {fmt_t(g['marts_112_min_s'])}; `/bin/true` started and reaped "
               f"the same way: {fmt_t(g['floor_112_s'])})" if "floor_112_s" in g else "")
            + f" — {met(g['marts_112_s'] < 0.015)}.",
            f"- **Peak memory under 150 MiB at 10,000**: {g['marts_10000_rss_mib']:.0f} MiB "
            f"(marts), {g['small_10000_rss_mib']:.0f} MiB (small) — "
            f"{met(g['marts_10000_rss_mib'] < 150)}."]
    lines += ["", PROFILE, ""]
    lines += ["### Machine, versions and how the figures were taken", "",
              f"- {m['nproc']} cores ({m['cpu']}), {m['mem_gib']} GiB memory, Linux "
              f"{m['kernel']}, Python {m['python']}; load average {res['load_before']} before the "
              f"runs and {res['load_after']} after. The machine is shared with other sessions "
              "that compile: every run records the load average, the alternating order spreads "
              "the noise over both tools (and both builds), and the fastest run of each command "
              "is the best estimate of an idle machine's time.",
              f"- stir {v['stir']} (`{v['stir_binary']}`, release build); dbt-core "
              f"{v['dbt_core']}, dbt-clickhouse {v['dbt_clickhouse']} (the adapter never "
              "connects for parse and ls).",
              f"- Whole `bench/run.sh` run: {res['elapsed_min']:.1f} minutes"
              + (" (`--quick`: fewer runs)." if res.get("quick") else "."),
              "", "### Reproduce", "",
              "```sh",
              "bench/run.sh                      # venv with pinned dbt, release build, projects, "
              "timings, this section",
              "bench/run.sh --quick 112 10000    # fewer runs and sizes",
              "STIR_BENCH_BASELINE=/path/to/old/stir bench/run.sh   # with the before/after table",
              "```", "",
              "What it runs for each shape and size N (projects under `$STIR_BENCH_DIR`, default "
              "`/var/tmp/stir-bench/projects/N` and `.../marts-N`), alternating stir and dbt "
              "inside every round:",
              "", "```sh",
              "stir check N/stir/stir.kdl",
              "stir ls -m N/stir/stir.kdl tag:daily",
              "cd N/dbt",
              "dbt -q parse --no-partial-parse --target-path FRESH_DIR --profiles-dir .",
              "dbt -q ls --select tag:daily --resource-type model --output name "
              "--no-partial-parse --target-path FRESH_DIR --profiles-dir .",
              "dbt -q parse --target-path WARM_DIR --profiles-dir .        # once, untimed",
              "dbt -q ls --select tag:daily --resource-type model --output name "
              "--target-path WARM_DIR --profiles-dir .   # partial parse warm",
              "```", "",
              "with `DBT_SEND_ANONYMOUS_USAGE_STATS=false` and `DO_NOT_TRACK=1`, every command "
              "started by the script and reaped with `wait4` (the child's own CPU time; wall "
              "time around it), and `/bin/true` timed the same way in the same rounds "
              "as the floor any process pays here. Raw figures: `bench/results/results.csv`, "
              "`bench/results/summary.json`.", ""]
    return "\n".join(lines)


def write_section(doc: str, section: str) -> None:
    text = open(doc).read() if os.path.exists(doc) else "# Performance\n"
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if line.strip() == SECTION), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        rest = "\n".join(lines[end:])
        new = "\n".join(lines[:start]) + "\n" + section.rstrip("\n") + "\n" + \
            ("\n" + rest if rest.strip() else "")
        new = new.lstrip("\n") if start == 0 else new
    with open(doc, "w") as f:
        f.write(new)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stir", required=True)
    ap.add_argument("--venv", required=True)
    ap.add_argument("--projects", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--sizes", type=int, nargs="+", default=[112, 1000, 5000, 10000])
    ap.add_argument("--shapes", nargs="+", choices=SHAPES, default=SHAPES)
    ap.add_argument("--baseline", help="a second stir binary, timed in the same rounds")
    ap.add_argument("--baseline-label", help="how the docs name the baseline build")
    ap.add_argument("--quick", action="store_true", help="fewer runs, for trying the script")
    ap.add_argument("--started", type=float, default=time.time())
    ap.add_argument("--render-only", action="store_true",
                    help="re-render docs and SVG from bench/results/summary.json")
    args = ap.parse_args()
    results_dir = os.path.join(args.repo, "bench", "results")
    doc = os.path.join(args.repo, "docs", "performance.md")
    svg = os.path.join(args.repo, "docs", "perf-check.svg")
    if args.render_only:
        res = json.load(open(os.path.join(results_dir, "summary.json")))
        write_section(doc, render_section(res))
        svg_plot(res["summary"], res["shapes"], res["sizes"], svg)
        return

    env = dict(os.environ, DBT_SEND_ANONYMOUS_USAGE_STATS="false", DO_NOT_TRACK="1",
               DBT_VERSION_CHECK="false", NO_COLOR="1")
    load_before = open("/proc/loadavg").read().split()[0]
    vers = versions(args)  # now, next to the build: others may commit while this runs
    keys = [c[0] for c in commands(args)]
    rows, projects = [], {sh: {} for sh in args.shapes}
    for n in args.sizes:
        for shape in args.shapes:
            if args.quick:
                runs = dict.fromkeys(keys, 2 if n <= 1000 else 1)
                runs["stir_check"] = runs["stir_ls"] = 5
            elif n <= 1000:
                runs = dict.fromkeys(keys, 5)
            else:  # dbt takes minutes here: 3 runs each, stir still 5
                runs = dict.fromkeys(keys, 3)
                runs["stir_check"] = runs["stir_ls"] = 5
            if n <= 1000:  # a few ms a run: enough runs for a steady median
                runs["stir_check"] = runs["stir_ls"] = 21
            if args.baseline:
                runs["stir_check_baseline"] = runs["stir_check"]
            runs["floor"] = runs["stir_check"] if n <= 1000 else 0
            print(f"{shape} N={n}: runs {runs}", flush=True)
            info = bench_size(shape, n, args, env, runs, rows)
            kdl = open(os.path.join(args.projects, project_dir(shape, n), "stir", "stir.kdl")).read()
            info["schedules"] = sum(1 for line in kdl.splitlines() if line.startswith("schedule "))
            projects[shape][str(n)] = info
    summary = {sh: summarize(rows, sh, args.sizes) for sh in args.shapes}
    small, marts = summary.get("small"), summary.get("marts")
    big, one_k, few = str(max(args.sizes)), "1000", str(min(args.sizes))
    goals = {}
    if small:
        goals.update({
            "ratio_112": small[few]["dbt_parse"]["median_s"] / small[few]["stir_check"]["median_s"],
            "check_10000_s": small[big]["stir_check"]["median_s"],
            "check_10000_cpu_s": small[big]["stir_check"]["cpu_median_s"],
            "small_10000_rss_mib": small[big]["stir_check"]["max_rss_mib"],
            "growth_1k_10k": (small[big]["stir_check"]["cpu_median_s"]
                              / max(small[one_k]["stir_check"]["cpu_median_s"], 1e-3)
                              if one_k in small else float("nan")),
            "sched_growth_1k_10k": (projects["small"][big]["schedules"]
                                    / projects["small"][one_k]["schedules"]
                                    if one_k in small else float("nan")),
        })
    if marts:
        goals.update({
            "marts_10000_s": marts[big]["stir_check"]["median_s"],
            "marts_10000_min_s": marts[big]["stir_check"]["min_s"],
            "marts_10000_cpu_s": marts[big]["stir_check"]["cpu_median_s"],
            "marts_10000_rss_mib": marts[big]["stir_check"]["max_rss_mib"],
            "marts_112_s": marts[few]["stir_check"]["median_s"],
            "marts_112_min_s": marts[few]["stir_check"]["min_s"],
            "floor_112_s": marts[few].get("floor", {}).get("median_s", float("nan")),
        })
        goals.setdefault("small_10000_rss_mib", float("nan"))
    res = {"shapes": args.shapes, "sizes": args.sizes, "summary": summary, "projects": projects,
           "goals": goals, "machine": machine(), "versions": vers, "load_before": load_before,
           "load_after": open("/proc/loadavg").read().split()[0], "quick": args.quick,
           "elapsed_min": (time.time() - args.started) / 60}
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["shape", "models", "command", "run", "wall_s", "cpu_s",
                                          "max_rss_kb", "load"])
        w.writeheader()
        w.writerows(rows)
    with open(os.path.join(results_dir, "summary.json"), "w") as f:
        json.dump(res, f, indent=1, sort_keys=True)
        f.write("\n")
    write_section(doc, render_section(res))
    svg_plot(summary, args.shapes, args.sizes, svg)
    print()
    print(render_section(res))


if __name__ == "__main__":
    main()
