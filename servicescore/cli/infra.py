"""The infrastructure commands: a local Kafka, the topics, the schema, the settings in effect."""

from __future__ import annotations

import json

from servicescore.core.settings import Settings
from servicescore.kafka.client import Cluster


def register(sub) -> None:
    kafka = sub.add_parser("kafka", help="a local single-node Kafka (KRaft) for development")
    kafka.add_argument("action", choices=("start", "stop", "status"))
    kafka.set_defaults(handler=cmd_kafka)

    topics = sub.add_parser("topics", help="create the Kafka topics (idempotent)")
    topics.add_argument("action", choices=("create",))
    topics.set_defaults(handler=cmd_topics)

    sub.add_parser("migrate", help="apply the sql/ migrations in order (idempotent)"
                   ).set_defaults(handler=cmd_migrate)
    sub.add_parser("config", help="print the settings in effect (secrets masked)"
                   ).set_defaults(handler=cmd_config)


def cmd_kafka(settings: Settings, args) -> int:
    from servicescore.core.settings import host_port, writable_folder
    from servicescore.dev.broker import LocalKafka

    _, port = host_port(settings.kafka_bootstrap.split(",")[0])
    folder = writable_folder(settings.kafka_folder, "SERVICESCORE_KAFKA_HOME"
                             if settings.kafka_home else "SERVICESCORE_DATA_DIR")
    broker = LocalKafka(folder.resolve(), settings.kafka_lib, port=port,
                        heap=settings.kafka_heap)
    if args.action == "start":
        print(f"Kafka is up at {broker.start()} (log: {broker.log_file})")
    elif args.action == "stop":
        print("Kafka stopped" if broker.stop() else "Kafka was not running")
    else:
        status = broker.status()
        print(json.dumps(status, indent=2))
        return 0 if status["running"] else 3
    return 0


def cmd_topics(settings: Settings, args) -> int:
    from servicescore.kafka import topics

    cluster = Cluster.of(settings)
    created = topics.run(topics.create_topics(cluster))
    total = len(topics.topic_plan(cluster))
    print(f"created {len(created)} topic(s), {total - len(created)} already existed"
          + (": " + ", ".join(created) if created else ""))
    return 0


def cmd_migrate(settings: Settings, args) -> int:
    from servicescore.app.service import migrate_storage, open_storage

    applied = migrate_storage(open_storage(settings), settings)
    print(f"applied {', '.join(applied)}" if applied else "schema is up to date")
    return 0


def cmd_config(settings: Settings, args) -> int:
    print(json.dumps(settings.masked(), indent=2, ensure_ascii=False))
    return 0
