"""The HTML report: one self-contained file for sustainability reviews.

Savings first, then method (hardware, software, repeats and spread, how each energy figure was obtained, carbon
intensity), the paper's tables with ours beside them, figures, and caveats.  Images are base64 data URIs, the CSS
is inline, there is no script, and a Content-Security-Policy forbids any fetch: the file reads the same offline,
attached to an e-mail or archived.  Built with stdlib string templates (no jinja2).
"""
from __future__ import annotations

import base64
import logging
import math
from pathlib import Path
from string import Template
from typing import Iterable, Optional

import pandas as pd

from reports import __version__, deploy, paper
from reports.figures import Rendered, all_figures
from reports.ledger import LedgerEntry, break_even_cell, by_key, ledger, ledger_table
from reports.load import Run, load_run
from reports.method import _badge, _unique, e, method_html  # noqa: F401 (method_html re-exported)
from reports.render import Cell, Table
from reports.savings import DEFAULT_HOURS, Savings, all_savings, fmt_energy, fmt_hours, fmt_mass, paper_savings
from reports.stats import (choose_scenario, device_kind, is_gpu, random_weights, select_scenario, time_column)
from reports.tables import all_tables, energy_includes, write_tables

log = logging.getLogger(__name__)

# No network, no scripts: images only from data: URIs, styles only inline.
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

CSS = """
:root { --ink:#1d2733; --muted:#5b6776; --line:#d8dee6; --paper:#f3f4f6; --ours:#eef5fb; --accent:#1565c0;
        --good:#1b7f3b; --warn:#9a5b00; }
* { box-sizing:border-box; }
body { margin:0; font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
       color:var(--ink); background:#fff; }
main { max-width:1220px; margin:0 auto; padding:28px 32px 60px; }
header.top { border-bottom:3px solid var(--accent); padding-bottom:12px; margin-bottom:8px; }
h1 { font-size:26px; margin:0 0 4px; }
h2 { font-size:20px; margin:36px 0 10px; padding-bottom:4px; border-bottom:1px solid var(--line); }
h3 { font-size:15px; margin:20px 0 6px; }
.subtitle { color:var(--muted); margin:0; }
nav.toc { margin:10px 0 0; font-size:13px; }
nav.toc a { color:var(--accent); text-decoration:none; margin-right:16px; }
.banner { border:1px solid #e0b252; background:#fff7e0; padding:8px 12px; border-radius:6px; margin:14px 0; }
.cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(260px,1fr)); gap:14px; margin:14px 0 18px; }
.card { border:1px solid var(--line); border-radius:8px; padding:12px 14px; background:#fbfcfd; }
.card .what { color:var(--muted); font-size:12.5px; }
.card .big { font-size:26px; font-weight:650; color:var(--good); line-height:1.2; margin:4px 0; }
.card .detail { font-size:12.5px; }
.badge { display:inline-block; font-size:11px; padding:1px 7px; border-radius:9px; font-weight:600;
         vertical-align:middle; }
.badge.measured { background:#e2f3e7; color:var(--good); border:1px solid #a8d5b5; }
.badge.estimated { background:#fdf0dc; color:var(--warn); border:1px solid #ecc88b; }
.badge.mixed { background:#eceff3; color:var(--muted); border:1px solid var(--line); }
.formula { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12.5px;
           background:var(--paper); padding:6px 10px; border-radius:5px; display:inline-block; margin:2px 0; }
.compare { display:grid; grid-template-columns:1fr 1fr; gap:14px; }
.compare > div { border:1px solid var(--line); border-radius:8px; padding:10px 14px; }
.scroll { overflow-x:auto; margin:8px 0 4px; }
table { border-collapse:collapse; font-size:12px; font-variant-numeric:tabular-nums; }
table caption { caption-side:top; text-align:left; padding:0 0 6px; color:var(--ink); font-size:13px;
                max-width:1150px; }
th, td { border-bottom:1px solid var(--line); padding:4px 6px; vertical-align:top; }
th { background:#e9edf2; font-weight:600; text-align:center; white-space:nowrap; }
th.group { border-bottom:1px solid #c5ced9; }
th.group.empty { background:#fff; }
td { text-align:right; white-space:nowrap; }
td.label { text-align:left; white-space:normal; min-width:90px; max-width:190px; }
th.label { text-align:left; }
td.paper, th.paper { background:var(--paper); color:#3b4450; }
td.ours, th.ours { background:var(--ours); }
.spread { display:block; font-size:10.5px; color:var(--muted); }
ul.table-notes { font-size:12px; color:var(--muted); margin:2px 0 16px; padding-left:18px; }
dl.kv { display:grid; grid-template-columns:210px 1fr; gap:3px 14px; margin:6px 0 12px; }
dl.kv dt { color:var(--muted); }
dl.kv dd { margin:0; overflow-wrap:anywhere; }
details { margin:12px 0; }
details > summary { cursor:pointer; color:var(--accent); }
figure { margin:18px 0 26px; }
figure img { max-width:100%; border:1px solid var(--line); border-radius:4px; }
figcaption { font-size:12.5px; color:var(--ink); max-width:1100px; }
ul.caveats li { margin-bottom:6px; }
footer { margin-top:40px; font-size:12px; color:var(--muted); border-top:1px solid var(--line); padding-top:8px; }
@media print { main { max-width:none; padding:0; } h2 { break-after:avoid; } figure, table { break-inside:avoid; } }
"""

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="$csp">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="w2v-footprint reports $version">
<title>$title</title>
<style>$css</style>
</head>
<body>
<main>
<header class="top">
<h1>$title</h1>
<p class="subtitle">$subtitle</p>
<nav class="toc"><a href="#summary">Savings</a><a href="#method">Method</a><a href="#tables">Tables</a>\
<a href="#figures">Figures</a><a href="#caveats">Caveats</a></nav>
</header>
$banner
<section id="summary">
<h2>Savings summary</h2>
$summary
</section>
<section id="method">
<h2>Method</h2>
$method
</section>
<section id="tables">
<h2>Tables: the paper beside ours</h2>
<p>Grey columns are the paper's figures (its Tables 1&ndash;3; $citation), blue columns ours: the median over \
repeats with the range (min&ndash;max) and the number of repeats underneath.</p>
$tables
</section>
<section id="figures">
<h2>Figures</h2>
$figures
</section>
<section id="caveats">
<h2>Caveats</h2>
$caveats
</section>
<footer>$footer</footer>
</main>
</body>
</html>
""")


def _range(lo: float, hi: float, f) -> str:
    return f"{f(lo)} to {f(hi)}" if not (math.isnan(lo) or math.isnan(hi)) else "n/a"


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


# --- summary ---------------------------------------------------------------------------------------------------
def summary_html(df: pd.DataFrame, items: list[Savings], hours: float) -> str:
    out: list[str] = []
    ps = paper_savings(hours)
    if not items:
        out.append("<p><b>No savings can be computed:</b> the run lacks an original (<code>baseline</code>) and a "
                   "compressed variant measured on the same device with energy figures.</p>")
    else:
        head = [s for s in items if s.to_variant == items[0].to_variant]
        book = by_key(ledger(df, hours))
        out.append('<div class="cards">')
        for s in head:
            tot, co2 = s.kwh_saved_total, s.co2_kg_saved_total
            out.append(
                f'<div class="card"><div class="what">{e(s.from_variant)} &rarr; {e(s.to_variant)} on the '
                f'{s.device_kind} ({e(s.device)}) {_badge(s.measured)}</div>'
                f'<div class="big">{s.fraction_saved * 100:.0f}% less energy</div>'
                f'<div class="what">{deploy.word(choose_scenario(df))} timed repeats</div>'
                f'<div class="detail">per hour of speech: {fmt_energy(s.kwh_per_hour_from.median)} &rarr; '
                f'{fmt_energy(s.kwh_per_hour_to.median)} (saves {fmt_energy(s.kwh_saved_per_hour.median)}, '
                f'{fmt_mass(s.co2_kg_saved_per_hour.median)} CO&#8322;)<br>'
                f'at {e(fmt_hours(hours))}: <b>{fmt_energy(tot.median)}</b> and <b>{fmt_mass(co2.median)} '
                f'CO&#8322;</b> saved<br><span class="what">range over {tot.n} repeats: '
                f'{_range(co2.lo, co2.hi, fmt_mass)} CO&#8322;</span><br>'
                f'{_pays_back(book.get((s.to_variant, s.device)))}</div></div>')
        out.append("</div>")
        out.append(f'<div class="scroll">{savings_table(items, hours, choose_scenario(df)).to_html()}</div>')
        s0 = _like_the_paper(items)
        out.append(f'<p>Formula (ours, {e(s0.from_variant)} &rarr; {e(s0.to_variant)}, {s0.device_kind}): '
                   f'<span class="formula">{e(s0.formula)}</span></p>')
    entries = list(book.values()) if items else ledger(df, hours)
    if entries:
        out.append("<h3>Making cost, break-even and the net saving</h3>")
        out.append(f'<div class="scroll">{ledger_table(entries, hours, choose_scenario(df)).to_html()}</div>')
    # The paper's own extrapolation, with its arithmetic shown, beside the figure it states.
    e_ = paper.EXTRAPOLATION
    stated = (f"<b>about {e_.stated_t:.0f} t</b>" if ps.stated_kg is not None
              else f"about {e_.stated_t:.0f} t at its 54 million hours (not comparable at {e(fmt_hours(hours))})")
    ours_line = ""
    if items:
        s0 = _like_the_paper(items)
        ours_line = (f"<p>{e(s0.from_variant)} &rarr; {e(s0.to_variant)} on the {s0.device_kind}: "
                     f"{fmt_mass(s0.co2_kg_saved_per_hour.median)} CO&#8322; saved per hour of speech "
                     f"&times; {e(fmt_hours(hours))} = <b>{fmt_mass(s0.co2_kg_saved_total.median)}</b> "
                     f"(repeats: {_range(s0.co2_kg_saved_total.lo, s0.co2_kg_saved_total.hi, fmt_mass)}), "
                     f"{fmt_energy(s0.kwh_saved_total.median)} {_badge(s0.measured)}</p>"
                     f"<p>Carbon intensity: {_ci(s0)}.</p>")
    out.append(f"""<h3>Our extrapolation beside the paper's</h3>
<div class="compare">
<div><b>Paper</b> (section 7, original &rarr; distilled, GPU, CodeCarbon estimate)
<p>{ps.co2_saved_kg} kg CO&#8322; saved on {ps.test_hours} h of speech (Table 1: 0.0032 &minus; 0.0013 kg).</p>
<p>Its arithmetic: <span class="formula">{ps.co2_saved_kg} kg / {ps.test_hours} h &times; {e(fmt_hours(hours))}
 = {fmt_mass(ps.computed_kg)}</span></p>
<p>The paper states {stated}. The two do not agree: {ps.co2_saved_kg} / {ps.test_hours} &times; 54e6 kg is
{paper.EXTRAPOLATION.computed_t:.1f} t; a 5 h denominator would give
{ps.co2_saved_kg / 5 * 54e6 / 1000:.1f} t (our guess at the discrepancy, not the paper's statement).
Energy, which the paper does not scale: {ps.energy_saved_kwh} kWh / {ps.test_hours} h &times;
{e(fmt_hours(hours))} = {fmt_energy(ps.computed_kwh)}. Implied carbon intensity:
{paper.EXTRAPOLATION.implied_carbon_intensity_g_per_kwh:.0f} g/kWh.</p></div>
<div><b>Ours</b>{ours_line or '<p>n/a: no savings computed.</p>'}</div>
</div>""")
    return "\n".join(out)


def _pays_back(entry: Optional[LedgerEntry]) -> str:
    """The card's break-even line (reports.ledger): after how much speech the making cost is repaid."""
    if entry is None:
        return "making cost: not recorded"
    c = break_even_cell(entry)
    return f"break-even after {e(c.text)} of speech" if c.value is not None and c.text != "never" else \
        f"break-even: {e(c.text)} ({e(c.sub)})"


def _like_the_paper(items: list[Savings]) -> Savings:
    """The headline pair on the GPU when measured there (the paper's extrapolation was a GPU run), else the first."""
    head = [s for s in items if s.to_variant == items[0].to_variant]
    return next((s for s in head if s.device_kind == "GPU"), head[0])


def _ci(s: Savings) -> str:
    if s.carbon_intensity_g_per_kwh is None:
        return "not recorded"
    return f"{s.carbon_intensity_g_per_kwh:g} g CO&#8322;/kWh, source: {e(s.carbon_intensity_source)}"


def savings_table(items: list[Savings], hours: float, scenario: Optional[str] = None) -> Table:
    cols = [("", "From"), ("", "To"), ("", "Device"), ("Energy per hour of speech", "from"),
            ("Energy per hour of speech", "to"), ("Energy per hour of speech", "saved"),
            (f"At {fmt_hours(hours)}", "energy saved"), (f"At {fmt_hours(hours)}", "CO\u2082 saved"),
            ("", "Energy figure"), ("", "Spread")]
    t = Table("savings", "Savings",
                   f"Energy and CO\u2082 saved per hour of speech, and scaled to {fmt_hours(hours)}. Medians over "
                   "repeats; the range underneath is min to max of the repeat-by-repeat differences (paired) or of "
                   "the worst and best pairings (unpaired). Energies over the "
                   f"{deploy.word(scenario)} timed repeats ({deploy.MEANING[deploy.word(scenario)]}).", cols)
    for s in items:
        tot, co2 = s.kwh_saved_total, s.co2_kg_saved_total
        how = "measured" if s.measured else "estimated" if s.measured is False else "mixed"
        t.add([Cell(s.from_variant), Cell(s.to_variant), Cell(f"{s.device_kind} ({s.device})"),
               Cell(fmt_energy(s.kwh_per_hour_from.median), "", "ours", s.kwh_per_hour_from.median),
               Cell(fmt_energy(s.kwh_per_hour_to.median), "", "ours", s.kwh_per_hour_to.median),
               Cell(fmt_energy(s.kwh_saved_per_hour.median), f"{s.fraction_saved * 100:.0f} % less", "ours",
                    s.kwh_saved_per_hour.median),
               Cell(fmt_energy(tot.median), _range(tot.lo, tot.hi, fmt_energy), "ours", tot.median),
               Cell(fmt_mass(co2.median), _range(co2.lo, co2.hi, fmt_mass), "ours", co2.median),
               Cell(how, s.energy_method), Cell(f"n={s.kwh_saved_per_hour.n}", "paired" if s.paired else "unpaired")])
    return t


# --- figures and caveats ----------------------------------------------------------------------------------------
def figures_html(figs: list[Rendered], logs_found: int) -> str:
    out = []
    for f in figs:
        out.append(f'<figure id="{e(f.id)}"><img alt="{e(f.title)}" src="{data_uri(f.png)}">'
                   f"<figcaption><b>{e(f.title)}.</b> {e(f.caption)}</figcaption></figure>")
    ids = {f.id for f in figs}
    missing = [name for fid, name in (("figure1", "Figure 1 (student initialisation: needs the train_log.csv of an "
                                       "'alternate' and a 'last' student)"),
                                      ("figure2", "Figure 2 (training data: needs logs of students trained on two "
                                       "amounts of audio)"), ("pareto", "Pareto plots (need rows with a WER)"))
               if fid not in ids]
    if missing:
        out.append(f"<p>Not available from this run ({logs_found} training log(s) found): "
                   + "; ".join(e(m) for m in missing) + ".</p>")
    return "\n".join(out)


def caveats(run: Run, scenario: Optional[str] = None) -> list[str]:
    df = select_scenario(run.results, scenario)
    items: list[str] = []
    if run.meta.get("fixture"):
        items.append(f"<b>Test fixture:</b> {e(str(run.meta['fixture']))}.")
    datasets = _unique(df, "dataset")
    if any(d.startswith("embedded") for d in datasets):
        items.append("<b>Synthetic corpus.</b> The test set is the suite's embedded corpus (speech synthesised offline "
                     "with espeak-ng from public-domain text, in LibriSpeech's layout), not LibriSpeech: WER here says "
                     "how well a model learnt this corpus, and is not comparable with the paper's dev-clean WER. "
                     "Relative figures (speed-ups, size and energy ratios) are the comparable ones.")
    rnd = random_weights(df)
    if len(rnd):
        items.append(f"<b>Random-weights timing.</b> {rnd['variant'].nunique()} variant(s) "
                     f"({e(', '.join(sorted(rnd['variant'].unique())))}) are architecture-only: random weights of the "
                     "real size, timed on a workload shaped like dev-clean. Their times and sizes are real; they have "
                     "no WER, and they are left out of the savings and Pareto plots.")
    est = df[df["energy_measured"] == False]  # noqa: E712 (nullable boolean)
    if len(est):
        where = sorted({f"{device_kind(d)}: {m}" for d, m in zip(est["device"], est["energy_method"].fillna("?"))})
        items.append(f"<b>Estimated energy.</b> {len(est)} of {len(df)} rows carry estimated, not measured, energy "
                     f"({e('; '.join(where))}). An estimate scales a power model by time and load, so its savings "
                     "largely restate the speed-up; only a hardware counter (NVML, RAPL) measures the difference.")
    items += _energy_provenance_caveats(run, df)
    unknown = df[df["energy_measured"].isna() & df["energy_kwh"].notna()]
    if len(unknown):
        items.append(f"{len(unknown)} rows do not say whether their energy was measured.")
    if not df["device"].map(is_gpu).any():
        items.append("<b>No GPU in this run.</b> GPU columns read n/a (not measured); the paper's GPU figures stand "
                     "alone.")
    items.append("<b>Different test sets and hardware.</b> The paper timed LibriSpeech dev-clean (5.4 h) on a single "
                 "GPU (section 7.1; it trained on V100s) and an unnamed CPU; its code (https://git.io/JmpJM) times "
                 "one run at batch 1, including FLAC decoding, with no warm-up and no CUDA synchronisation. Its "
                 "energy is CodeCarbon's estimate (Table 1: about 254 W &times; run time). Compare ratios, "
                 "not absolute seconds or kWh.")
    items.append("<b>Extrapolation.</b> Scaling to millions of hours assumes the per-hour figure holds at scale "
                 "(same hardware, utilisation, batch size and grid); it leaves out idle power and cooling (PUE). "
                 "The energy to make each variant is netted out in the savings summary where its making record "
                 "exists ('not recorded' elsewhere).")
    return items


def _energy_provenance_caveats(run: Run, df: pd.DataFrame) -> list[str]:
    """Replay as replay, what a total includes, net beside gross, and why estimates get no idle baseline."""
    out: list[str] = []
    replay = df[df["energy_method"].fillna("").astype(str).str.startswith("replay")]
    if len(replay):
        out.append(f"<b>Replayed energy.</b> {len(replay)} of {len(df)} rows carry energy replayed from a recorded "
                   "counter trace (--energy replay:TRACE.json), not measured during this run: "
                   f"{e('; '.join(_unique(replay, 'energy_source_detail')))}.")
    gpu = df[df["device"].map(is_gpu)]
    if len(gpu):
        inc = energy_includes(gpu)
        board_only = set(_unique(gpu, "energy_method")) <= {"nvml"}
        out.append("<b>What the GPU energy includes.</b> " + (
            "The GPU board only (NVML): the host CPU and RAM are not included, while the paper's CodeCarbon figure "
            "(Table 1, about 254 W &times; run time) covered the host too." if board_only else
            f"The total of {e(inc or 'its components')}: the GPU board (NVML) and the host CPU/RAM, as the paper's "
            "CodeCarbon figure covered both."))
    if "energy_j_net" in df and df["energy_j_net"].notna().any():
        secs = sorted({f"{x:g}" for x in df["idle_baseline_s"].dropna() if x > 0}) if "idle_baseline_s" in df else []
        out.append(f"<b>Idle baseline.</b> Idle power was measured for {e(', '.join(secs) or '?')} s before the "
                   "run with the same hardware counter; tables show the gross energy (energy_j, what was drawn) "
                   "and results carry the net (energy_j_net = gross minus idle power &times; time, measured "
                   "components only) beside it.")
    est = df[df["energy_measured"] == False]  # noqa: E712 (nullable boolean)
    if len(est) > len(replay):  # estimates other than replays
        out.append("<b>No idle baseline for estimated energy.</b> An estimate is a power model (TDP &times; load, "
                   "constant RAM watts); idling it returns the model's own constant, not a measured idle draw, so "
                   "net = gross minus that constant would mean nothing. Estimated components carry gross energy.")
    return out


# --- the page --------------------------------------------------------------------------------------------------
def build_report(run: Run, hours: float = DEFAULT_HOURS, time_col: str = "e2e_s",
                 tables: Optional[list[Table]] = None, figures: Optional[list[Rendered]] = None,
                 scenario: Optional[str] = None) -> str:
    df = select_scenario(run.results, scenario)
    time_col = time_column(df, time_col)
    tables = tables if tables is not None else all_tables(run.results, time_col, scenario=scenario,
                                                          train_logs=run.train_logs)
    figures = figures if figures is not None else all_figures(df, run.train_logs, time_col, raw=run.results)
    items = all_savings(df, hours)
    stamps = sorted(df["timestamp"].dropna())
    when = f"{stamps[0]} to {stamps[-1]}" if stamps else "time not recorded"
    subtitle = (f"Run {e(', '.join(_unique(df, 'run_id')) or '?')} &middot; {e(', '.join(_unique(df, 'dataset')))} "
                f"&middot; {len(df)} rows, {df['variant'].nunique()} variants, devices "
                f"{e(', '.join(_unique(df, 'device')))} &middot; measured {e(when)}")
    banner = ""
    if run.meta.get("fixture"):
        banner = f'<div class="banner"><b>Test fixture, not a measurement:</b> {e(str(run.meta["fixture"]))}</div>'
    footer = (f"Generated by <code>footprint report</code> (reports {e(__version__)}) from {e(str(run.source))}. "
              f"Paper figures: {e(paper.CITATION)}. Self-contained: no scripts, no external resources.")
    return PAGE.substitute(
        csp=CSP, version=e(__version__), title="wav2vec 2.0 footprint report", css=CSS, subtitle=subtitle,
        banner=banner, summary=summary_html(df, items, hours), method=method_html(run, time_col, scenario),
        citation=e(paper.CITATION),
        tables="\n".join(f'<div class="scroll">{t.to_html()}</div>' for t in tables),
        figures=figures_html(figures, len(run.train_logs)),
        caveats='<ul class="caveats">' + "".join(f"<li>{c}</li>" for c in caveats(run, scenario)) + "</ul>",
        footer=footer)


def write_report(run_dir: str | Path, out: str | Path, hours: float = DEFAULT_HOURS, time_col: str = "e2e_s",
                 markdown_dir: Optional[Path] = None, latex_dir: Optional[Path] = None,
                 figures_dir: Optional[Path] = None, scenario: Optional[str] = None,
                 logs: Iterable[str | Path] = ()) -> Path:
    """Load RUN_DIR, write the HTML report to ``out`` (and tables / figures if asked); return the report path."""
    run = load_run(run_dir, extra_log_paths=logs)
    df = select_scenario(run.results, scenario)
    time_col = time_column(df, time_col)
    tables = all_tables(run.results, time_col, scenario=scenario, train_logs=run.train_logs)
    figures = all_figures(df, run.train_logs, time_col, raw=run.results)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(build_report(run, hours, time_col, tables, figures, scenario), encoding="utf-8")
    for p in write_tables(tables, markdown_dir, latex_dir):
        log.info("wrote %s", p)
    if figures_dir is not None:
        for f in figures:
            log.info("wrote %s", f.write(Path(figures_dir)))
    log.info("wrote %s (%.0f kB)", out, out.stat().st_size / 1024)
    return out
