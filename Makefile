# Set-up on a fresh machine is `make test`: virtualenv, install, the Kafka broker's jars, tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
KAFKA_LIB := .cache/kafka/lib

.PHONY: install test bench bench-tools kafka-jars browser ops-tools clean

install: $(BIN)/.installed kafka-jars

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[test]"
	touch $@

# The broker (org.apache.kafka:kafka_2.13 + a log4j2 binding) from Maven Central.
kafka-jars: $(KAFKA_LIB)/.fetched

$(KAFKA_LIB)/.fetched: servicescore/dev/kafka/pom.xml
	mvn -q -B -f servicescore/dev/kafka/pom.xml dependency:copy-dependencies \
		-DincludeScope=runtime -DoutputDirectory=$(CURDIR)/$(KAFKA_LIB)
	touch $@

# Headless Chromium and CJK fonts: tests/test_report.py opens the report's pages as a person
# would (Debian's packages; CI runs as root). Skipped when chromium is already there.
browser:
	command -v chromium >/dev/null || (apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium fonts-noto-cjk)

# Debian's Prometheus and kcat: tests/test_prometheus.py scrapes the running service with the
# real server, tests/test_kcat.py publishes with a producer we did not write. Skipped when both
# are there; no recommends (they would add the node exporter and its service).
ops-tools:
	command -v prometheus >/dev/null && command -v kcat >/dev/null || (apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		prometheus kcat)

# The tour, the README's first command: a local Kafka, the pipeline on the embedded ClickHouse,
# a simulated month with live KPIs, its close, the appraisal sheets and a summary (about a
# minute; README "Set-up on a fresh machine"). DEMO_FLAGS="--days 5 --engineers 8" shortens it.
demo: install kafka-jars
	$(BIN)/servicescore demo $(DEMO_FLAGS)

# Every test, the real-Kafka and real-ClickHouse ones included: the session starts its own
# broker on free ports (or uses SERVICESCORE_KAFKA_BOOTSTRAP) and stops it afterwards.
test: install browser ops-tools
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/pytest -q --durations=10

# Debian's clickhouse-server (18.16: it has the Kafka table engine, which chDB's fails with) for
# the bench's peer row, and kcat to pre-produce its traffic. Skipped when both are there; the
# bench starts its own server on non-default ports, so the packaged service is not left running.
bench-tools:
	command -v clickhouse-server >/dev/null && command -v kcat >/dev/null || (apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		clickhouse-server kcat && \
		(systemctl disable --now clickhouse-server 2>/dev/null || true))

# The benchmark (bench/README.md): one run on a local Kafka, the embedded ClickHouse and a
# clickhouse-server peer; prints a table, writes bench/results/latest.json (about 20 minutes).
# BENCH_FLAGS="--quick" for a smoke run, "--only e2e,freshness" for some rows. Not a test.
# Then bench/profile.py: py-spy on the worker alone, where its time goes (bench/results/).
bench: install bench-tools
	$(BIN)/pip install -q -e ".[test,bench]"
	PYTHONPATH=$(CURDIR) $(BIN)/python -m bench $(BENCH_FLAGS)
	PYTHONPATH=$(CURDIR) $(BIN)/python -m bench.profile

clean:
	rm -rf $(VENV) .cache .data
