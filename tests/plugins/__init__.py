"""pytest plugins of the servicescore test suite (listed in tests/conftest.py)."""
