"""The bench's table: built from the results' JSON, printed with rich when it is installed."""

from __future__ import annotations


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ev/s"


def _ratio(value: float | None, base: float | None) -> str:
    return "-" if not value or not base else f"{value / base:.3f}"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def lines(results: dict) -> list[tuple[str, str, str, str, str, str]]:
    """(row, figure, value, x ceiling, x peer, note) for every measured row."""
    rows = results.get("rows", {})
    out = []
    ceiling = (rows.get("ceiling") or {}).get("rate")
    peer = (rows.get("peer") or {}).get("rate")

    def rate(row, figure, value, note="", base=ceiling):
        out.append((row, figure, _rate(value), _ratio(value, base), _ratio(value, peer), note))

    def plain(row, figure, value, note=""):
        out.append((row, figure, value, "", "", note))

    if c := rows.get("ceiling"):
        rate("1 ceiling", "bare aiokafka consumer", c["rate"],
             f"{c['events']:,} events, {c['seconds']:.2f} s")
    if p := rows.get("peer"):
        rate("2 peer", "CH Kafka engine + MV", p["rate"],
             f"{p['rows']:,} rows in {p['seconds']:.1f} s; lost {p['lost']:,}")
    for key, row, name in (("e2e", "3 e2e", "servicescore run"),
                           ("split", "3b e2e split", "worker + sink")):
        if not (e := rows.get(key)):
            continue
        done = e["done_s"]
        rate(row, f"{name}, steady", e["rate_steady"],
             f"{e['events']:,} events; first commit at {e['first_commit_s']:.1f} s")
        rate(row, f"{name}, wall", e["rate_wall"], f"{e['wall_s']:.1f} s, start-up included")
        rate(row, "intake 10%..90%", e["rate_intake_10_90"], "worker source groups")
        plain(row, "hops done at", f"{done['intake']:.0f} / {done['lifecycle']:.0f} / "
              f"{done['sink']:.0f} s", "intake / lifecycle / sink, since start")
        if cpu := e.get("cpu_us_per_event"):
            plain(row, "CPU per event", " + ".join(f"{us:.0f}" for us in cpu.values())
                  + " µs", " + ".join(cpu))
            rate(row, "bound: all cores busy", e["rate_cpu_bound"],
                 "cores / CPU per event: no schedule of these processes does better")
            rate(row, "bound: busiest process", e["rate_busiest_bound"],
                 "1 / its CPU per event: Python computes on one core per process")
    if f := rows.get("freshness"):
        plain("4 freshness", f"p50 / p95 / p99 at {f['rate_target']:,} ev/s",
              f"{_s(f['p50_s'])} / {_s(f['p95_s'])} / {_s(f['p99_s'])}",
              f"{f['seen']}/{f['samples']} tickets seen; {f['via']}; target p95 <= 2 s")
    if q := rows.get("query"):
        plain("5 query", "30-day KPIs, all engineers", _s(q["seconds"]),
              f"{q['facts']:,} facts, chDB, best of 3")
    if c := rows.get("close"):
        plain("6 close", f"period close, {c['engineers']:,} engineers", _s(c["seconds"]),
              "target <= 10 s")
    if m := rows.get("memory"):
        plain("7 memory", "worker RSS high-water", f"{m['vm_hwm_mb']:,.0f} MB",
              f"{m['open_tickets']:,} open tickets, caught up in {m['worker_s']:.0f} s")
    if w := rows.get("workers2"):
        base = w.get("ceiling", {}).get("rate")
        rate("8 two workers", "2 workers + 2 sinks, steady", w["rate_steady"],
             f"{w['events']:,} events; its own ceiling {_rate(base)}", base)
        rate("8 two workers", "2 workers + 2 sinks, wall", w["rate_wall"],
             f"{w['wall_s']:.1f} s", base)
    if r := rows.get("runtime"):
        consume = r["rate"]["consume"]
        for step, value in r["rate"].items():
            out.append(("9 hop cost", step, _rate(value), _ratio(value, ceiling),
                        _ratio(value, peer), f"{value / consume:.3f} x consume"))
    return out


HEADER = ("row", "figure", "value", "x ceiling", "x peer", "note")


def show(results: dict) -> None:
    table = lines(results)
    title = (f"servicescore bench {results.get('date', '')} commit "
             f"{results.get('commit', '')[:10]}{' (dirty)' if results.get('dirty') else ''}, "
             f"{results.get('machine', {}).get('cores', '?')} cores"
             f"{' QUICK' if results.get('quick') else ''}")
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(title)
        widths = [max(len(str(r[i])) for r in [HEADER, *table]) for i in range(len(HEADER))]
        for r in [HEADER, *table]:
            print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
        return
    t = Table(title=title)
    for name in HEADER:
        t.add_column(name, justify="right" if name in ("value", "x ceiling", "x peer")
                     else "left")
    for r in table:
        t.add_row(*r)
    Console(width=160).print(t)
    for name, error in results.get("errors", {}).items():
        print(f"{name}: FAILED {error}")
