"""The local broker's kit: its files, shipped as package data so an installed copy can fetch and
start it (the Maven pom of its class path, the server.properties template and the log4j2 config
next to it), and the code around them: fetching the jars (``jars``), the configuration and JVM
command line (``config``), reading its logs (``logs``), probing ports and processes
(``probes``). servicescore.dev.broker runs it."""

from pathlib import Path

FOLDER = Path(__file__).resolve().parent
POM = FOLDER / "pom.xml"
