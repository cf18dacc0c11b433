"""``footprint report RUN_DIR --out report.html``: the self-contained HTML report (and Markdown / LaTeX tables).

Standard library only at module level: footprint/cli.py imports this to build its parser, and a report must never
load torch.  The work happens in reports.html, imported when the command runs.
"""
from __future__ import annotations

import argparse
from pathlib import Path


def _hours(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of hours: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"hours must be positive, got {text}")
    return value


def register_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="render tables, figures, savings and the HTML report of a results run",
                       description="Render a results run (RUN_DIR with results.sqlite or results.csv, and meta.json) "
                                   "as one self-contained HTML file; print its path.")
    p.add_argument("run_dir", metavar="RUN_DIR", help="folder written by 'footprint bench run' (or a results file)")
    p.add_argument("--out", default=None, help="HTML file to write (default: RUN_DIR/report.html)")
    p.add_argument("--hours", type=_hours, default=54e6,
                   help="hours of speech to scale the savings to (default: 54e6, the paper's figure)")
    p.add_argument("--markdown", metavar="DIR", type=Path, default=None, help="also write each table as DIR/<id>.md")
    p.add_argument("--latex", metavar="DIR", type=Path, default=None, help="also write each table as DIR/<id>.tex")
    p.add_argument("--figures", metavar="DIR", type=Path, default=None, help="also write each figure as DIR/<id>.png")
    p.add_argument("--time", choices=("e2e_s", "model_s", "wall_s"), default="e2e_s",
                   help="time column for tables and plots (default e2e_s: decoding + model + CTC, as the paper timed)")
    p.add_argument("--logs", metavar="PATH", action="append", default=[],
                   help="a train_log.csv, or a folder of students with one each, for Figures 1 and 2 (repeatable; "
                        "RUN_DIR, the benchmarked students' folder and $W2V_FOOTPRINT_STUDENTS are searched anyway)")
    p.add_argument("--scenario", default=None,
                   help="timing scenario to report when the run has several (default: batched, else the only one)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from reports.html import write_report  # late: pandas and matplotlib only when the command runs

    out = Path(args.out) if args.out else Path(args.run_dir) / "report.html"
    path = write_report(args.run_dir, out, hours=args.hours, time_col=args.time, markdown_dir=args.markdown,
                        latex_dir=args.latex, figures_dir=args.figures, scenario=args.scenario,
                        logs=args.logs)
    print(path)
    return 0
