"""Period close, scoring and reports (../shared/spec/appraisal.md): built in its own issue."""
