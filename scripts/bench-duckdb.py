#!/usr/bin/env python3
"""Ask DuckDB the questions `acta bench query` asked, over a Parquet export of the same events.

    acta --data-dir D bench query --questions q.json
    acta --data-dir D export '' --format parquet -o all.parquet
    python3 scripts/bench-duckdb.py q.json all.parquet

The questions (actors, resources, free-text words, the 30-day window) come from q.json, so both
engines answer the same ones; each kind is run once to warm up, then as many times as acta ran
it, and p50/p95/max are printed beside acta's p95 and the ratio. Needs the `duckdb` package
(./scripts/test installs it into its virtualenv, ~/.cache/acta/test-venv).
"""

import json
import sys
import time

import duckdb


def percentile(xs, q):
    xs = sorted(xs)
    return xs[round((len(xs) - 1) * q)]


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    q = json.load(open(sys.argv[1]))
    glob = sys.argv[2].replace("'", "''")
    con = duckdb.connect()
    con.execute(f"CREATE VIEW segs AS SELECT * FROM read_parquet('{glob}')")
    n = con.execute("SELECT count(*) FROM segs").fetchone()[0]
    since = q["since_ms"] / 1000.0
    runs = q["runs"]
    print(f"duckdb {duckdb.__version__}: {n:,} rows in {sys.argv[2]}")

    def timeline(actor):
        return con.execute(
            "SELECT epoch_ms(time), source, actor, action, resource, outcome, ip, index FROM segs "
            "WHERE list_contains(actor_ids, ?) AND time >= to_timestamp(?) "
            "ORDER BY time DESC, index DESC LIMIT 100",
            [actor, since],
        ).fetchall()

    def who(resource):
        return con.execute(
            "SELECT actor, count(*), count(*) FILTER (WHERE outcome = 'failure'), "
            "epoch_ms(min(time)), epoch_ms(max(time)) FROM segs WHERE list_contains(resources, ?) GROUP BY actor",
            [resource],
        ).fetchall()

    def text(word):
        w = word.lower()
        return con.execute(
            "SELECT epoch_ms(time), source, actor, action, resource, outcome, ip, index FROM segs WHERE "
            "? IN (lower(action), lower(service), lower(source), outcome, lower(account), "
            "lower(region), lower(status_code), lower(user_agent), ip) "
            "OR list_contains(list_transform(actor_ids, x -> lower(x)), ?) "
            "OR list_contains(list_transform(resources, x -> lower(x)), ?) "
            "ORDER BY time DESC, index DESC LIMIT 100",
            [w, w, w],
        ).fetchall()

    def stats(_):
        return con.execute(
            "SELECT action, count(*) FROM segs WHERE time >= to_timestamp(?) GROUP BY action",
            [since],
        ).fetchall()

    kinds = [
        ("actor timeline, 30 days, newest 100", timeline, q["actors"], "timeline_p95_ms"),
        ("who touched resource", who, q["resources"], "who_p95_ms"),
        ("free text, newest 100", text, q["words"], "text_p95_ms"),
        ("stats by action, 30 days", stats, [None], "stats_p95_ms"),
    ]
    for name, ask, values, key in kinds:
        for v in values:
            ask(v)
        times = []
        for i in range(runs):
            v = values[i % len(values)]
            t = time.perf_counter()
            ask(v)
            times.append((time.perf_counter() - t) * 1000)
        p95 = percentile(times, 0.95)
        acta = q["acta"][key]
        print(
            f"  {name:<36} p50 {percentile(times, 0.5):9.1f} ms  p95 {p95:9.1f} ms  "
            f"max {max(times):9.1f} ms   acta p95 {acta:7.1f} ms   DuckDB/acta {p95 / acta:8.1f}x"
        )


if __name__ == "__main__":
    main()
