"""Fixtures are plugins (tests/plugins/), not one giant conftest."""

pytest_plugins = ["tests.plugins.kafka", "tests.plugins.storage", "tests.plugins.pipeline"]
