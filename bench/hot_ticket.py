"""One hot ticket: the lifecycle step's cost as a ticket's history grows (`python -m
bench.hot_ticket`). Events of one ticket come in order with ids of 120 characters, its state is
encoded and decoded between steps as the worker does; prints events/s per 500 events."""

from __future__ import annotations

import argparse
import time

from schemas.calendar import WorkCalendar
from streams import lifecycle, ticket

T = 1_793_548_800_000
ID = "i" * 120
KINDS = ("escalated", "resolved", "reopened", "survey")
FIELDS = {"escalated": {"from_engineer_id": "E" + ID, "to_engineer_id": None},
          "resolved": {"engineer_id": "E" + ID}, "reopened": {},
          "survey": {"csat": 4, "nps": None}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    args = parser.parse_args()
    calendar, state, derived = WorkCalendar(), ticket.new_state(), None
    opened = {"k": "opened", "id": "o", "t": T, "ticket_id": "HOT", "customer_id": "C",
              "category": "pc", "priority": "P2", "channel": "phone", "team_id": None,
              "assignee_id": None, "requires_onsite": False}
    derived = lifecycle.apply(state, opened, calendar).after
    began = time.perf_counter()
    for n in range(args.events):
        kind = KINDS[n % len(KINDS)]
        rec = {"k": kind, "id": f"{ID}{n}", "t": T + n * 60_000, "ticket_id": "HOT",
               **FIELDS[kind]}
        state = ticket.decode(ticket.encode(state), "HOT")
        derived = lifecycle.apply(state, rec, calendar, 0, derived).after
        if n % 500 == 499:
            now = time.perf_counter()
            print(f"events {n - 498:>5}-{n + 1:<5} {500 / (now - began):>8.0f} events/s, "
                  f"state {ticket.size(state):>7} bytes")
            began = now


if __name__ == "__main__":
    main()
