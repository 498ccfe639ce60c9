"""Facts partitioned by the month of their time (sql/007): a correction that moves a fact's time
into another month leaves exactly one row, in the new month's partition, and the KPIs of every
window equal the oracle's.

Each test sends the first events as one sink batch and the late, earlier event as another, as
the worker and the sink would see them arrive. All times are +08:00, far from a UTC month
boundary.
"""

from __future__ import annotations

from tests.contract.harness import EVER
from tests.test_oracle import Events, at, ms

OCTOBER = (ms(1, "08:00", month=10), ms(1, "08:00"))
NOVEMBER = (ms(1, "08:00"), ms(1, "08:00", month=12))
WINDOWS = (EVER, OCTOBER, NOVEMBER)


def rows_by_month(storage, table: str) -> list[tuple[str, int]]:
    return [(r["month"], r["n"]) for r in storage.rows(
        f"SELECT _partition_id AS month, count() AS n FROM {table} FINAL GROUP BY month "
        "ORDER BY month")]


def test_a_late_earlier_resolve_moves_the_resolution_to_the_earlier_month(product):
    ev = Events()
    ev.opened("T1", at(28, "09:00", month=10))
    ev.response("T1", at(28, "09:05", month=10), "eA")
    ev.resolved("T1", at(3, "10:00"), "eB")  # first known resolve: November
    first = list(ev.records)
    ev.resolved("T1", at(30, "10:00", month=10), "eA")  # arrives late: the episode ended here
    shop = product(first).send(ev.records[len(first):])

    for window in WINDOWS:
        shop.kpis(window)
    assert rows_by_month(shop.storage, "resolutions") == [("202610", 1)]
    october = shop.kpis(OCTOBER)
    assert october["eA"]["resolutions"] == 1 and "eB" not in october
    assert "eB" not in shop.kpis(NOVEMBER)


def test_an_earlier_opened_moves_the_ticket_row_to_the_earlier_month(product):
    ev = Events()
    ev.opened("T1", at(2, "09:00"), customer="c1")
    ev.response("T1", at(2, "09:30"), "eA")
    ev.resolved("T1", at(2, "11:00"), "eA")
    ev.opened("T2", at(10, "09:00"), customer="c1")  # a repeat of T1 within 30 days
    first = list(ev.records)
    ev.opened("T1", at(30, "09:00", month=10), customer="c1")  # the ticket's real opening
    shop = product(first).send(ev.records[len(first):])

    for window in WINDOWS:
        shop.kpis(window)
    assert rows_by_month(shop.storage, "tickets") == [("202610", 1), ("202611", 1)]
    (t1,) = shop.storage.rows("SELECT toUnixTimestamp64Milli(opened_at) AS opened_at "
                              "FROM tickets FINAL WHERE ticket_id = 'T1'")
    assert t1["opened_at"] == ms(30, "09:00", month=10)
    november = shop.kpis(NOVEMBER)["eA"]
    assert november["aht_avg_s"] == 3 * 86_400 + 2 * 3600  # from 30 Oct 09:00 to 2 Nov 11:00
    assert november["repeat_rate_30d"] == 1.0


def test_a_corrected_fact_moved_back_again_keeps_one_row(product):
    ev = Events()
    ev.opened("T1", at(28, "09:00", month=10))
    ev.resolved("T1", at(3, "10:00"), "eB")
    shop = product(list(ev.records))
    ev.resolved("T1", at(30, "10:00", month=10), "eA")  # moves the resolution to October
    shop.send(ev.records[-1:])
    ev.reopened("T1", at(31, "10:00", month=10))  # episode 2 ends at eB's November resolve
    shop.send(ev.records[-1:])

    for window in WINDOWS:
        shop.kpis(window)
    assert rows_by_month(shop.storage, "resolutions") == [("202610", 1), ("202611", 1)]
