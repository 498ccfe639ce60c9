"""servicescore: after-sales ticket events into live per-engineer KPIs and frozen appraisals."""

__version__ = "0.1.0"
