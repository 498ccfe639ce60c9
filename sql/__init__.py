"""ClickHouse migrations, ``NNN_name.sql``, applied in order by ``servicescore migrate``.

A package only so the files ship as package data (servicescore.storage.clickhouse reads them
with importlib.resources): an installed copy migrates without the checkout. An applied file is
never edited (its checksum is recorded and compared); a change is a new file.
"""
