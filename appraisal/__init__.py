"""Period close, scoring and reports (../shared/spec/appraisal.md).

- ``appraisal.scheme``: the scheme file. ``load_scheme(path)``, ``parse_scheme(text)`` and
  ``default_scheme()`` give a frozen ``Scheme`` (``grades``, ``roles[role].kpis`` of
  ``KpiRule``, ``role(name)``, ``grade_for(total)``) or raise ``SchemeError`` (a ``ConfigError``:
  one line naming the key). ``category``, ``category_weights`` and ``STANDARD_RANGES`` relate a
  role's weights to the department standard; ``samples_field(kpi)`` names a KPI's sample count.
- ``appraisal.scorecard``: pure scoring. ``scorecard(row, scheme, role, previous_grade)`` gives
  a frozen ``Scorecard`` (score, grade, bonus, flags and one ``KpiScore`` per KPI) whose
  ``to_json()`` is what the close freezes; ``kpi_score``, ``weighted_total``, ``half_up``,
  ``exclusion`` and ``flags`` are its rules one by one.
"""
