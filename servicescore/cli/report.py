"""``servicescore report``: the printable appraisal sheets of a closed period, its team page and
an index, written as HTML files (appraisal/report.py). The data comes through the reader like
every other read, so it also works while ``run`` holds the storage; the files are written here.
"""

from __future__ import annotations

from pathlib import Path

from servicescore.cli.reads import reader_for
from servicescore.core.errors import ServicescoreError
from servicescore.core.settings import Settings

LANGS = ("zh", "en")  # appraisal.report.LANGS; not imported, so --help stays fast


def register(sub) -> None:
    report = sub.add_parser("report", help="printable appraisal sheets and a team page (HTML)")
    report.add_argument("--period", required=True, help="a closed period: 2026-11, 2026-Q4, 2026")
    report.add_argument("--engineer", help="one engineer's sheet only (no team page)")
    report.add_argument("--lang", choices=LANGS, default="zh", help="zh (default) or en")
    report.add_argument("--out", required=True, type=Path, help="the folder for the HTML files")
    report.set_defaults(handler=cmd_report)


def cmd_report(settings: Settings, args) -> int:
    from appraisal.report import write_report

    data = reader_for(settings).report_data(args.period, args.engineer)
    if not data["appraisals"]:
        if data["scheme"] is None:
            raise ServicescoreError(f"{args.period} is not closed (servicescore close "
                                    f"--period {args.period})")
        who = args.engineer or "nobody"
        raise ServicescoreError(f"{args.period} is closed but {who} has an appraisal in it"
                                if args.engineer is None
                                else f"{who} has no appraisal in {args.period}")
    try:
        written = write_report(data, args.out, args.lang)
    except OSError as exc:
        raise ServicescoreError(f"cannot write the report to {args.out}: "
                                f"{exc.strerror or exc}") from None
    print(f"wrote {len(written)} page(s) to {args.out} (open {args.out / 'index.html'})")
    return 0
