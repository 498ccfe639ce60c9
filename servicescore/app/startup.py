"""What a service tells the person who started it: what it started (API address, data folder,
broker), once it serves, and when it has caught up with what was already on its topics; and,
on a cluster's first start, none of the alarming-looking errors the Kafka client logs while the
broker is still creating its consumer-offsets topic (it retries them by itself).

The pipeline's own health stays on ``/health`` and ``/metrics``; this is the first minute.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from schemas.events import EVENT_TOPICS, intake_group
from servicescore.core.settings import Settings, host_port
from servicescore.kafka import topics
from servicescore.kafka.client import Cluster

POLL_S = 1.0
SETTLED = 2  # polls in a row without lag: a commit between two polls is not "caught up"
FIRST_START_S = 120.0  # how long a new cluster may go without a group coordinator, quietly
COORDINATOR_LOGGER = "aiokafka.consumer.group_coordinator"


class FirstStart(logging.Filter):
    """Holds back aiokafka's ``Group Coordinator Request failed: [Error 15]
    GroupCoordinatorNotAvailableError`` (an ERROR) while the service is young: on a new broker
    the coordinator appears once ``__consumer_offsets`` exists, and the client retries until
    then. Only retriable errors, only for ``grace_s``: a coordinator missing for longer is a
    real problem and is logged as before."""

    def __init__(self, grace_s: float = FIRST_START_S, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.clock = clock
        self.until = clock() + grace_s

    def filter(self, record: logging.LogRecord) -> bool:
        if self.clock() >= self.until or not str(record.msg).startswith(
                "Group Coordinator Request failed"):
            return True
        error = record.args[0] if isinstance(record.args, tuple) and record.args else None
        return not getattr(error, "retriable", False)


def quiet_first_start(grace_s: float = FIRST_START_S) -> None:
    """Attach ``FirstStart`` to aiokafka's coordinator logger (a logger's own filter outlives
    Faust's logging set-up, which replaces the handlers)."""
    logger = logging.getLogger(COORDINATOR_LOGGER)
    if not any(isinstance(f, FirstStart) for f in logger.filters):
        logger.addFilter(FirstStart(grace_s))


@dataclass(frozen=True)
class Progress:
    """Where the pipeline's consumer groups are: the workers' intake of the event topics and
    every group's lag (the workers' internal topic and the sink's topics included)."""

    events_done: int  # event-topic offsets committed by the workers
    events_end: int
    behind: int  # messages not yet committed by any group, all its topics

    @property
    def caught_up(self) -> bool:
        return self.behind == 0


class Watcher:
    """Measures ``Progress`` with one pair of Kafka clients kept open between measurements."""

    def __init__(self, cluster: Cluster):
        self.cluster = cluster
        self.groups = topics.consumer_groups(cluster)
        self.event_topics = {cluster.topic(t) for t in EVENT_TOPICS}
        self.intake = intake_group(cluster.app_id)
        self._clients = None
        self._context = None

    async def __aenter__(self) -> Watcher:
        self._context = topics.offset_clients(self.cluster)
        self._clients = await self._context.__aenter__()
        return self

    async def __aexit__(self, *exc) -> None:
        await self._context.__aexit__(*exc)

    async def progress(self) -> Progress:
        done = end = behind = 0
        for group, names in self.groups.items():
            parts = await topics.partition_progress(*self._clients, group, names)
            for tp, (committed, last) in parts.items():
                behind += max(0, last - committed)
                if group == self.intake and tp.topic in self.event_topics:
                    done, end = done + committed, end + last
        return Progress(done, end, behind)

    async def until_caught_up(self, poll_s: float = POLL_S) -> Progress:
        quiet = 0
        while True:
            found = await self.progress()
            quiet = quiet + 1 if found.caught_up else 0
            if quiet >= SETTLED:
                return found
            await asyncio.sleep(poll_s)


def announce(settings: Settings, say: Callable[[str], None]) -> threading.Thread:
    """In a thread of its own, while the service starts in the main one: once the API accepts
    connections, ``say`` what was started; once every consumer group has committed everything,
    say it has caught up (once: after that, ``servicescore_consumer_lag`` is the measure)."""

    def run() -> None:
        # An HTTP answer, not an accepted connection: the socket is bound (and accepts) before
        # the topics are created, and asking a broker about a topic that does not exist yet
        # may create it with the broker's default partitions.
        while not serves(settings.api):
            time.sleep(0.2)
        for line in started_lines(settings):
            say(line)
        try:
            found = asyncio.run(_caught_up(Cluster.of(settings)))
        except Exception as exc:  # noqa: BLE001 - the service's own logs say what Kafka does
            logging.getLogger("servicescore.service").warning(
                "catching up not measured: %s: %r", type(exc).__name__, str(exc)[:300])
            return
        say(f"caught up: {found.events_done:,} event(s) on the topics processed and their "
            "facts stored" if found.events_end else "caught up: no event on the topics yet")

    thread = threading.Thread(target=run, name="announce", daemon=True)
    thread.start()
    return thread


async def _caught_up(cluster: Cluster) -> Progress:
    async with Watcher(cluster) as watcher:
        return await watcher.until_caught_up()


def started_lines(settings: Settings) -> list[str]:
    """What ``run`` says when it serves: where to reach it, where its data is, which broker."""
    token = ("needs SERVICESCORE_API_TOKEN for /tickets, /dlq, /appraisals and changes"
             if settings.api_secret else
             "no SERVICESCORE_API_TOKEN: changes (close, dlq replay) are refused")
    storage = (f"ClickHouse embedded in {settings.data_dir / 'clickhouse'}" if settings.embedded
               else f"ClickHouse {settings.masked()['clickhouse_dsn']}")
    cluster = Cluster.of(settings)
    groups = " and ".join(topics.consumer_groups(cluster))
    prefix = f"topic prefix {settings.topic_prefix!r}, " if settings.topic_prefix else ""
    return ["started:",
            f"  API          http://{settings.api}  ({token})",
            f"  data folder  {settings.data_dir}  ({storage})",
            f"  Kafka        {settings.kafka_bootstrap}  ({prefix}consumer groups {groups})"]


def serves(api: str, timeout_s: float = 2.0) -> bool:
    """Whether the API at ``api`` (host:port) answers HTTP (/health: 200 or 503 both count)."""
    host, port = host_port(api)
    host = "127.0.0.1" if host in ("", "0.0.0.0") else "::1" if host == "::" else host
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s):
            return True
    except urllib.error.HTTPError:
        return True  # an answer all the same (503: a check is failing, the API serves)
    except (OSError, ValueError):
        return False
