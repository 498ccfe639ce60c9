"""How to reach Kafka: the one place for the bootstrap address and the SASL / TLS options, for
every aiokafka client and for the Faust app alike.

Built once from the settings at the entry point (``KafkaConnection.of``); the clients take the
connection, not the settings.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path

from servicescore.core.errors import ConfigError
from servicescore.core.settings import Settings


@dataclass(frozen=True)
class KafkaConnection:
    bootstrap: str
    security_protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = field(default=None, repr=False)
    ssl_cafile: Path | None = None

    @classmethod
    def of(cls, settings: Settings) -> KafkaConnection:
        password = settings.kafka_sasl_password
        return cls(settings.kafka_bootstrap, settings.kafka_security_protocol,
                   settings.kafka_sasl_mechanism, settings.kafka_sasl_username,
                   password.get_secret_value() if password else None, settings.kafka_ssl_cafile)

    @property
    def sasl(self) -> bool:
        return self.security_protocol.startswith("SASL")

    @property
    def tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=self.ssl_cafile)
        except (OSError, ssl.SSLError) as exc:  # a file that is not a CA certificate
            raise ConfigError(f"SERVICESCORE_KAFKA_SSL_CAFILE: cannot use {self.ssl_cafile}: "
                              f"{exc}") from None

    def aiokafka(self) -> dict:
        """Keyword arguments of every aiokafka client (producer, consumer, admin)."""
        options = {"bootstrap_servers": self.bootstrap,
                   "security_protocol": self.security_protocol}
        if self.sasl:
            options.update(sasl_mechanism=self.sasl_mechanism or "PLAIN",
                           sasl_plain_username=self.sasl_username,
                           sasl_plain_password=self.sasl_password)
        if self.tls:
            options["ssl_context"] = self.ssl_context()
        return options

    def faust(self) -> dict:
        """Keyword arguments of faust.App: the broker URL and its credentials."""
        import faust

        # Faust reads several brokers as one string separated by ";".
        options = {"broker": ";".join(f"kafka://{host}" for host in self.bootstrap.split(","))}
        if self.sasl:
            options["broker_credentials"] = faust.SASLCredentials(
                username=self.sasl_username, password=self.sasl_password,
                mechanism=self.sasl_mechanism or "PLAIN",
                ssl_context=self.ssl_context() if self.tls else None)
        elif self.tls:
            options["broker_credentials"] = faust.SSLCredentials(self.ssl_context())
        return options


@dataclass(frozen=True)
class Cluster:
    """The Kafka side of a deployment as plain values: how to reach it and how our topics and
    consumer groups are named. The Kafka functions take this, never the settings."""

    connection: KafkaConnection
    topic_prefix: str = ""
    app_id: str = "servicescore"
    partitions: int = 6

    @classmethod
    def of(cls, settings: Settings) -> Cluster:
        return cls(KafkaConnection.of(settings), settings.topic_prefix, settings.app_id,
                   settings.partitions)

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"

    def options(self) -> dict:
        """aiokafka keyword arguments."""
        return self.connection.aiokafka()


def client_options(settings: Settings) -> dict:
    """aiokafka keyword arguments for the configured cluster (for the entry points)."""
    return KafkaConnection.of(settings).aiokafka()
