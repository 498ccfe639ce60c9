"""The local broker's files, shipped as package data so an installed copy can fetch and start
it: the Maven pom of its class path, the server.properties template and the log4j2 config.
servicescore.dev.broker finds the other two next to the pom."""

from pathlib import Path

FOLDER = Path(__file__).resolve().parent
POM = FOLDER / "pom.xml"
