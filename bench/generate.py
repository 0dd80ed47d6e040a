#!/usr/bin/env python3
"""Generate platform-shaped projects for the stir vs dbt benchmark (issue #8).

Deterministic: the same size gives the same bytes on every machine (fixed seed, no
timestamps, no dict-order surprises). Python 3.11 standard library only.

For each size N it writes two projects holding the same N models and the same SQL:

  OUT/N/stir/   stir.kdl + models/**.sql        (checked with `stir check`)
  OUT/N/dbt/    dbt_project.yml, profiles.yml,  (parsed with `dbt parse`)
                models/**.sql with config() headers, models/staging/sources.yml

Shape, after the real platform (stir.kdl at the repository root):
  * ~25% staging models, each reading one raw table through source();
  * marts in ten folders, each mart refs 1-4 earlier models (a DAG, with ref chains:
    half of the refs go to one of the 40 models just before it);
  * a Jinja `{% set metrics = [...] %}{% for m in metrics %}` loop in ~30% of the marts,
    like mart_instagram_account;
  * every model carries exactly one owner tag, and every owner tag is run by exactly one
    schedule: the real tiers (core, recent_scl, post_ranker_partial, collections,
    staging_collections, hourly, and the three heavy ones post_ranker, daily, weekly,
    whose windows never overlap) plus N/20 light refresh tiers, so the number of
    schedules grows with the number of models; leaderboard marts also carry the
    informational tag `leaderboard`, which no schedule selects;
  * max(3, N/100) syncs to PostgreSQL, each run by the schedule that owns its model.

Two shapes of SQL (`--shape`), the same manifest and DAG:

  small   OUT/N/        marts of 20-40 lines: one CTE per parent and a final select
  marts   OUT/marts-N/  marts like the platform's real ones (docs: current-platform.md,
                        mart_instagram_account): 3-8 KB, import CTEs named after the models
                        they ref (dbt's style guide), a chain of 6-9 CTEs with argMax dedup,
                        argMaxIf growth windows, multiIf follower groups and grades over a
                        Jinja metrics loop, window functions, string literals with quotes and
                        escapes, comments that name models, a SETTINGS clause; hundreds of
                        identifiers per file

The stir projects pass `stir check --deny-warnings`; the dbt projects pass `dbt parse`.

usage: generate.py [--out DIR] [--shape small|marts|both] [SIZE ...]
       (default sizes: 112 1000 5000 10000; default shape: small)
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
from dataclasses import dataclass, field

DEFAULT_SIZES = [112, 1000, 5000, 10000]
SHAPES = ["small", "marts"]
SEED = 20260108  # issue #8

SOURCES = {
    "beat_replica": ["instagram_account", "instagram_post", "youtube_account", "youtube_post",
                     "scrape_request_log", "profile_log", "asset_log", "post_log",
                     "instagram_story", "instagram_audience", "linked_account"],
    "coffee": ["post_collection", "post_collection_item", "profile_collection", "campaign",
               "campaign_profiles", "activity_tracker", "account", "orders", "order_items",
               "partner", "brand", "category"],
    "events": ["scrape_request_log_events", "click_events", "search_events"],
    "vidooly": ["youtube_channel", "youtube_channel_category"],
}

FOLDERS = ["audience", "collection", "core", "discovery", "leaderboard", "orders",
           "profile_stats", "scrape", "tracker", "youtube"]
NOUNS = ["account", "post", "profile", "growth", "summary", "ranks", "engagement", "reach",
         "followers", "stories", "comments", "campaign", "orders", "hashtags", "categories",
         "locations", "kpis", "health", "weekly", "monthly", "time_series", "insights"]
METRICS = ["avg_likes", "avg_comments", "comments_rate", "followers", "engagement_rate",
           "reels_reach", "image_reach", "story_reach", "reels_impressions",
           "image_impressions", "likes_to_comment_ratio", "followers_growth7d",
           "followers_growth30d", "followers_growth90d", "audience_reachability",
           "post_count", "likes_spread", "avg_posts_per_week"]
COLUMNS = ["id", "profile_id", "platform", "handle", "followers", "updated_at", "created_at"]

BLACKOUT = 'blackout daily-batch from="19:00" to="22:00"'


@dataclass
class Tier:
    tag: str
    schedule: str
    cron: str
    timeout: str
    heavy: bool = False
    skip: str = ""
    comment: str = ""
    steps_after: list[str] = field(default_factory=list)  # sync steps


# The real platform's dbt tiers, with its (clean) crons and windows. The heavy three never
# overlap: 01:00-06:00 and 13:00-18:00 post_ranker, 06:00-12:00 Mondays weekly,
# 19:00-01:00 daily.
BASE_TIERS = [
    Tier("core", "dbt_core", "*/15 * * * *", "60m", comment="every 15 minutes"),
    Tier("recent_scl", "dbt_recent_scl", "*/5 * * * *", "90m", comment="every 5 minutes"),
    Tier("post_ranker_partial", "post_ranker_partial", "*/15 * * * *", "90m"),
    Tier("collections", "dbt_collections", "*/30 0-15,22-23 * * *", "180m",
         skip="daily-batch", comment="every 30 minutes outside the daily batch"),
    Tier("staging_collections", "dbt_staging_collections", "*/30 * * * *", "180m"),
    Tier("hourly", "dbt_hourly", "0 1,3,5,7,9,11,13,15,23 * * *", "180m",
         skip="daily-batch", comment="every 2 hours outside the daily batch"),
    Tier("post_ranker", "post_ranker", "0 1,13 * * *", "300m", heavy=True),
    Tier("daily", "dbt_daily", "0 19 * * *", "360m", heavy=True, comment="the 19:00 batch"),
    Tier("weekly", "dbt_weekly", "0 6 * * 1", "360m", heavy=True),
]

# Light refresh tiers (never heavy, no blackout, crons that divide their fields evenly).
REFRESH_CRONS = [
    ("0 * * * *", "40m"),
    ("30 * * * *", "40m"),
    ("0 */3 * * *", "120m"),
    ("0 */6 * * *", "90m"),
    ("0 0 * * *", "90m"),
    ("20 2 * * *", "60m"),
    ("*/20 * * * *", "15m"),
    ("0 8 * * 1", "60m"),
]

# Owner-tag weights: staging models and marts.
STAGING_WEIGHTS = {"post_ranker_partial": 4, "recent_scl": 2, "hourly": 3,
                   "staging_collections": 3, "core": 1, "*refresh": 3}
MART_WEIGHTS = {"daily": 6, "hourly": 3, "collections": 3, "core": 1, "weekly": 1,
                "post_ranker": 1, "*refresh": 6}


@dataclass
class Model:
    name: str
    folder: str          # models/staging or models/marts/<folder>
    owner: str           # owner tag
    tags: list[str]
    order_by: str
    sql: str             # shared by both projects (dbt gets a config() header on top)
    partition_by: str = ""


def pick(rng: random.Random, weights: dict[str, int], refresh: list[Tier]) -> str:
    keys = list(weights)
    tag = rng.choices(keys, weights=[weights[k] for k in keys])[0]
    if tag == "*refresh":
        tag = rng.choice(refresh).tag
    return tag


def staging_sql(db: str, table: str, rng: random.Random) -> str:
    cols = ",\n        ".join(
        f"{c}" for c in COLUMNS[: rng.randint(4, len(COLUMNS))])
    return (
        f"{{#- staging: {db}.{table}, deduplicated on id -#}}\n"
        "with\n"
        "data as (\n"
        f"    select\n        {cols}\n"
        f"    from {{{{ source('{db}', '{table}') }}}}\n"
        "    where id is not null\n"
        ")\n"
        "select * from data\n"
    )


def mart_sql(name: str, parents: list[str], rng: random.Random) -> str:
    out = [f"{{#- mart {name}: built from {len(parents)} upstream model(s) -#}}\n"]
    loop = rng.random() < 0.3
    if loop:
        metrics = rng.sample(METRICS, rng.randint(4, 12))
        listed = ",\n        ".join(f'"{m}"' for m in metrics)
        out.append("{%\n    set metrics = [\n        " + listed + "\n    ]\n%}\n")
    out.append("with\n")
    for i, p in enumerate(parents):
        out.append(
            f"p{i} as (\n"
            "    select id, profile_id, platform, followers, updated_at\n"
            f"    from {{{{ ref('{p}') }}}}\n"
            f"    where updated_at > now() - INTERVAL {rng.choice([1, 7, 30, 90])} DAY\n"
            "),\n")
    out.append("final as (\n    select\n        p0.id id,\n        p0.profile_id profile_id,\n"
               "        p0.platform platform,\n")
    for i in range(1, len(parents)):
        out.append(f"        coalesce(p{i}.followers, 0) followers_{i},\n")
    if loop:
        out.append(
            "        {% for m in metrics %}\n"
            "        round(p0.followers * {{ loop.index }} / 100.0, 4) {{ m }},\n"
            "        if(p0.followers > 0, p0.followers, 0) {{ m }}_grade,\n"
            "        {% endfor %}\n")
    out.append("        p0.updated_at updated_at\n    from p0\n")
    for i in range(1, len(parents)):
        out.append(f"    left join p{i} on p{i}.profile_id = p0.profile_id\n")
    out.append(")\nselect * from final\n")
    return "".join(out)


GROWTH_WINDOWS = [("7d", "7 DAY"), ("30d", "30 DAY"), ("90d", "90 DAY"), ("1y", "1 YEAR")]
FOLLOWER_GROUPS = [(5000, "0-5k"), (10000, "5k-10k"), (50000, "10k-50k"), (100000, "50k-100k"),
                   (500000, "100k-500k"), (1000000, "500k-1M")]
DEDUP_COLUMNS = ["handle", "name", "ig_id", "followers", "following", "engagement_rate",
                 "avg_likes", "avg_comments", "avg_views", "avg_reels_play", "country",
                 "category", "language", "gender", "city", "state", "is_verified",
                 "is_business", "profile_pic_url", "biography", "external_url", "post_count",
                 "reels_count", "story_count", "last_post_at", "category_rank", "country_rank"]
GRADES = [("p90", "Excellent"), ("p75", "Very Good"), ("p60", "Good"), ("p40", "Average")]


def marts_sql(name: str, parents: list[str], rng: random.Random) -> str:
    """A mart in the style of the platform's big ones: a few KB of CTE chain."""
    o = [f"{{#- mart {name}: built from {len(parents)} upstream model(s) -#}}\n"]
    metrics = rng.sample(METRICS, rng.randint(3, 8))
    listed = ",\n        ".join(f'"{m}"' for m in metrics)
    o.append("{%\n    set metrics = [\n        " + listed + "\n    ]\n%}\n")
    o.append(f"-- {name}: one row per profile; reads {', '.join(parents)}\n"
             "-- import CTEs carry the names of the models they read (dbt style guide)\n")
    o.append("with\n")
    for p in parents:
        o.append(f"{p} as (\n    select * from {{{{ ref('{p}') }}}}\n),\n")
    first = parents[0]
    cols = rng.sample(DEDUP_COLUMNS, rng.randint(5, 12))
    o.append("\n/* latest value per profile: argMax over updated_at (ReplacingMergeTree is not\n"
             "   merged yet when this runs, so duplicates are still there) */\n"
             "deduped as (\n    select\n        profile_id,\n"
             "        max(updated_at) _updated_at,\n")
    o.extend(f"        argMax({c}, updated_at) {c},\n" for c in cols)
    o.append(f"        count() _versions\n    from {first}\n"
             "    where profile_id is not null and handle != ''\n    group by profile_id\n),\n")
    src = parents[-1]
    o.append("\n-- growth over time windows, as in mart_instagram_account\n"
             "overtime_growth as (\n    select\n        profile_id,\n"
             "        argMax(followers, updated_at) cur_followers,\n")
    for tag, interval in GROWTH_WINDOWS:
        o.append(f"        argMaxIf(followers, updated_at, updated_at < toStartOfWeek(now()) - "
                 f"INTERVAL {interval}) followers_{tag},\n")
    o.append(f"        uniqExact(updated_at) _points\n    from {src}\n    group by profile_id\n),\n")
    o.append("\nsemi_final as (\n    select\n        d.*,\n"
             "        g.cur_followers - g.followers_30d followers_growth_30d,\n")
    o.append("        multiIf(\n")
    o.extend(f"            d.followers < {lim}, '{label}',\n" for lim, label in FOLLOWER_GROUPS)
    o.append("            '1M+'\n        ) follower_group,\n")
    o.append("        rank() over (partition by d.country order by d.followers desc) country_rank_now,\n"
                  "        if(d.handle = '', 'unknown', lower(d.handle)) handle_clean,\n"
             "        replaceRegexpAll(d.biography, '[\\'\"\\\\]', '') bio_plain,\n"
             "        d.country = 'IN' and d.language in ('hi', 'en', 'ta') is_target\n"
             "    from deduped d\n"
             "    left join overtime_growth g on g.profile_id = d.profile_id\n")
    for i, p in enumerate(parents[1:-1], 1):
        o.append(f"    left join {p} j{i} on j{i}.profile_id = d.profile_id\n")
    o.append("),\n")
    o.append("\n-- the group's percentiles, per follower group\n"
             "group_metrics as (\n    select\n        follower_group,\n")
    for q, _ in GRADES:
        o.append(f"        quantile(0.{q[1:]})(followers) {q}_followers,\n")
    o.append("        avg(followers) group_avg_followers,\n"
             "        count() group_size\n    from semi_final\n    group by follower_group\n),\n")
    o.append("\ngraded as (\n    select\n        s.*,\n        {% for metric in metrics %}\n"
             "        multiIf(\n"
             "            s.{{ metric }} is null or s.{{ metric }} == 0\n"
             "                or isInfinite(s.{{ metric }}) or isNaN(s.{{ metric }}), NULL,\n")
    o.extend(f"            s.{{{{ metric }}}} > gm.{q}_followers * {{{{ loop.index }}}}, '{label}',\n"
             for q, label in GRADES)
    o.append("            'Poor'\n        ) {{ metric }}_grade,\n        {% endfor %}\n"
             "        gm.group_size group_size\n    from semi_final s\n"
             "    left join group_metrics gm on gm.follower_group = s.follower_group\n),\n")
    o.append("\nfinal as (\n    select *\n    from graded\n"
             "    where handle_clean != 'unknown' -- drop profiles without a handle\n)\n"
             "select * from final\norder by followers desc\n"
             "SETTINGS max_bytes_before_external_group_by = 20000000000,\n"
             "         max_bytes_before_external_sort = 20000000000,\n"
             "         join_algorithm = 'partial_merge'\n")
    return "".join(o)


def build(n: int, shape: str = "small"):
    rng = random.Random(SEED * 100003 + n)
    n_refresh = max(4, n // 20)
    refresh = []
    for k in range(n_refresh):
        cron, timeout = REFRESH_CRONS[k % len(REFRESH_CRONS)]
        refresh.append(Tier(f"refresh_{k:04d}", f"refresh_{k:04d}", cron, timeout))
    tiers = BASE_TIERS + refresh
    # fresh step lists: BASE_TIERS is module-level
    tiers = [Tier(t.tag, t.schedule, t.cron, t.timeout, t.heavy, t.skip, t.comment, [])
             for t in tiers]
    refresh = tiers[len(BASE_TIERS):]

    all_tables = [(db, t) for db, ts in SOURCES.items() for t in ts]
    n_stg = round(n * 0.25)
    models: list[Model] = []
    used_tables: dict[str, list[str]] = {db: [] for db in SOURCES}
    for i in range(n_stg):
        db, base = all_tables[i % len(all_tables)]
        table = base if i < len(all_tables) else f"{base}_{i // len(all_tables)}"
        used_tables[db].append(table)
        owner = pick(rng, STAGING_WEIGHTS, refresh)
        models.append(Model(
            name=f"stg_{db}_{table}", folder="models/staging", owner=owner, tags=[owner],
            order_by="id", sql=staging_sql(db, table, rng)))
    names = set(m.name for m in models)
    for j in range(n - n_stg):
        folder = FOLDERS[rng.randrange(len(FOLDERS))]
        noun = rng.choice(NOUNS)
        name = f"mart_{folder}_{noun}_{j}"
        assert name not in names
        names.add(name)
        k = rng.randint(1, 4)
        parents: list[str] = []
        while len(parents) < k:
            if rng.random() < 0.5:
                p = models[max(0, len(models) - 40) + rng.randrange(min(40, len(models)))]
            else:
                p = models[rng.randrange(len(models))]
            if p.name not in parents:
                parents.append(p.name)
            if len(parents) >= len(models):
                break
        owner = pick(rng, MART_WEIGHTS, refresh)
        tags = [owner] + (["leaderboard"] if folder == "leaderboard" else [])
        order_by = rng.choice(["id", "(profile_id, updated_at)", "(platform, id)"])
        m = Model(name=name, folder=f"models/marts/{folder}", owner=owner, tags=tags,
                  order_by=order_by, sql=mart_sql(name, parents, rng))
        if shape == "marts":
            # Its own stream, so the DAG, tags and syncs are those of the small shape.
            m.sql = marts_sql(name, parents, random.Random(f"{SEED}-{n}-{name}"))
        if rng.random() < 0.1:
            m.partition_by = "toYYYYMM(updated_at)"
        models.append(m)

    # Syncs: each runs in the schedule that owns its model, right after the run step.
    by_tag = {t.tag: t for t in tiers}
    marts = [m for m in models if m.name.startswith("mart_")]
    n_sync = max(3, n // 100)
    syncs = []
    for s, m in enumerate(rng.sample(marts, n_sync)):
        sname = f"{m.name.removeprefix('mart_')}_sync"
        syncs.append((sname, m))
        by_tag[m.owner].steps_after.append(f"sync {sname}")
    # Every tier owns at least one model (else `run` would select nothing).
    owned = {m.owner for m in models}
    tiers = [t for t in tiers if t.tag in owned]
    return models, tiers, syncs, used_tables


def kdl_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def kdl_value(s: str) -> str:
    """A bare identifier when KDL allows it, else a quoted string."""
    ok = s and not s[0].isdigit() and all(c.isalnum() or c in "_-" for c in s)
    return s if ok else kdl_str(s)


def write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)


def write_stir(root: str, n: int, models, tiers, syncs, used_tables) -> None:
    o = [f"// Generated by bench/generate.py for N={n} models (seed {SEED}). Do not edit.\n\n",
         f"project bench_{n} timezone=UTC\n\n",
         "warehouse clickhouse database=dbt\n",
         "serving postgres schema=public\n",
         "staging s3 bucket=b prefix=\"bench\"\n",
         "notify slack on=failure\n\n"]
    for db, tables in used_tables.items():
        if not tables:
            continue
        o.append(f"source {db} {{\n")
        o.extend(f"    table {t}\n" for t in tables)
        o.append("}\n\n")
    for t in tiers:
        o.append(f"tag {t.tag}\n")
    o.append("tag leaderboard   // informational: no schedule selects it\n\n")
    o.append(BLACKOUT + "\n\n")
    groups: dict[str, list[Model]] = {}
    for m in models:
        groups.setdefault(m.folder, []).append(m)
    for folder in sorted(groups):
        o.append(f"models dir={kdl_str(folder)} materialized=table {{\n")
        for m in groups[folder]:
            tags = kdl_value(m.tags[0]) if len(m.tags) == 1 else kdl_str(" ".join(m.tags))
            line = f"    model {m.name} tags={tags} order-by={kdl_value(m.order_by)}"
            if m.partition_by:
                line += f" partition-by={kdl_str(m.partition_by)}"
            o.append(line + "\n")
        o.append("}\n\n")
    for t in tiers:
        if t.comment:
            o.append(f"// {t.comment}\n")
        attrs = f"cron={kdl_str(t.cron)} timeout={kdl_str(t.timeout)}"
        if t.heavy:
            attrs += " heavy=#true"
        if t.skip:
            attrs += f" skip={t.skip}"
        o.append(f"schedule {t.schedule} {attrs} {{\n    run tag:{t.tag}\n")
        o.extend(f"    {s}\n" for s in t.steps_after)
        o.append("}\n")
    o.append("\n")
    for sname, m in syncs:
        o.append(f"sync {sname} from={m.name} to={sname} {{\n"
                 "    key id\n"
                 "    column id type=int8\n"
                 "    column profile_id type=int8\n"
                 "    column platform type=text\n"
                 "    column followers_1 type=int8 default=0\n"
                 "    column updated_at type=timestamp\n"
                 "    index profile_id\n"
                 "    max-shrink \"10%\"\n"
                 "}\n")
    write(os.path.join(root, "stir.kdl"), "".join(o))
    for m in models:
        write(os.path.join(root, m.folder, m.name + ".sql"), m.sql)


def write_dbt(root: str, n: int, models, used_tables) -> None:
    write(os.path.join(root, "dbt_project.yml"),
          f"# Generated by bench/generate.py for N={n} models (seed {SEED}). Do not edit.\n"
          f"name: bench_{n}\n"
          "version: '1.0.0'\n"
          "config-version: 2\n"
          "profile: bench\n"
          "model-paths: [\"models\"]\n"
          "target-path: target\n"
          "clean-targets: [target]\n"
          "models:\n"
          f"  bench_{n}:\n"
          "    +materialized: table\n")
    write(os.path.join(root, "profiles.yml"),
          "# parse and ls never connect; the address is never dialled.\n"
          "bench:\n"
          "  target: dev\n"
          "  outputs:\n"
          "    dev:\n"
          "      type: clickhouse\n"
          "      host: 127.0.0.1\n"
          "      port: 8123\n"
          "      user: default\n"
          "      password: ''\n"
          "      schema: dbt\n"
          "      threads: 2\n")
    src = ["version: 2\n", "sources:\n"]
    for db, tables in used_tables.items():
        if not tables:
            continue
        src.append(f"  - name: {db}\n    schema: {db}\n    tables:\n")
        src.extend(f"      - name: {t}\n" for t in tables)
    write(os.path.join(root, "models", "staging", "sources.yml"), "".join(src))
    for m in models:
        tags = ", ".join(f"'{t}'" for t in m.tags)
        extra = f", partition_by='{m.partition_by}'" if m.partition_by else ""
        header = (f"{{{{ config(materialized='table', tags=[{tags}], "
                  f"order_by='{m.order_by}'{extra}) }}}}\n")
        write(os.path.join(root, m.folder, m.name + ".sql"), header + m.sql)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.environ.get("STIR_BENCH_DIR", "/var/tmp/stir-bench")
                    + "/projects")
    ap.add_argument("--shape", choices=SHAPES + ["both"], default="small")
    ap.add_argument("sizes", nargs="*", type=int, default=DEFAULT_SIZES)
    args = ap.parse_args()
    shapes = SHAPES if args.shape == "both" else [args.shape]
    for shape, n in [(shape, n) for shape in shapes for n in args.sizes]:
        models, tiers, syncs, used_tables = build(n, shape)
        base = os.path.join(args.out, project_dir(shape, n))
        shutil.rmtree(base, ignore_errors=True)
        write_stir(os.path.join(base, "stir"), n, models, tiers, syncs, used_tables)
        write_dbt(os.path.join(base, "dbt"), n, models, used_tables)
        daily = sum(1 for m in models if m.owner == "daily")
        size = sum(len(m.sql) for m in models)
        print(f"{shape} N={n}: {len(models)} models, {len(tiers)} schedules, {len(syncs)} syncs, "
              f"{daily} tagged daily, {size / 1e6:.1f} MB of SQL -> {base}")


def project_dir(shape: str, n: int) -> str:
    """Where a project of a shape and size lives under --out (bench.py reads the same)."""
    return str(n) if shape == "small" else f"{shape}-{n}"


if __name__ == "__main__":
    main()
