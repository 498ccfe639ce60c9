# Set-up on a fresh machine is `make test`: virtualenv, install, the Kafka broker's jars, tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
KAFKA_LIB := .cache/kafka/lib

.PHONY: install test bench kafka-jars browser ops-tools clean

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

# End-to-end events/s and event-to-KPI delay (numbers in README.md); not part of the tests.
bench: install
	$(BIN)/python -m bench.pipeline
	$(BIN)/python -m bench.close --engineers 1000

clean:
	rm -rf $(VENV) .cache .data
