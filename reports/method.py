"""The report's method section: hardware, software, data, repeats and spread, what warm and unseen timing mean,
how each energy figure was obtained, carbon intensity, and meta.json for auditors."""
from __future__ import annotations

import html
from typing import Any, Iterable, Optional

import pandas as pd

from reports import deploy
from reports.load import Run
from reports.stats import (TIME_LABELS, choose_scenario, device_kind, is_gpu, random_weights, scenarios,
                           select_scenario, stat, trained)
from reports.tables import energy_includes

e = html.escape


def _badge(measured: Optional[bool]) -> str:
    if measured is True:
        return '<span class="badge measured">measured</span>'
    if measured is False:
        return '<span class="badge estimated">estimated</span>'
    return '<span class="badge mixed">mixed / unknown</span>'


def _unique(df: pd.DataFrame, col: str) -> list[str]:
    return sorted({str(v) for v in df[col].dropna().unique() if str(v) != ""})


# --- method ----------------------------------------------------------------------------------------------------
def _kv(pairs: Iterable[tuple[str, str]]) -> str:
    return '<dl class="kv">' + "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in pairs) + "</dl>"


def _flat(meta: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for k, v in meta.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out += _flat(v, key + ".")
        else:
            out.append((key, ", ".join(map(str, v)) if isinstance(v, list) else str(v)))
    return out


def method_html(run: Run, time_col: str, scenario: Optional[str] = None) -> str:
    chosen = choose_scenario(run.results, scenario)
    df = select_scenario(run.results, scenario)
    tr = trained(df)
    join = lambda vals: e(", ".join(vals)) or "not recorded"  # noqa: E731
    any_gpu = bool(df["device"].map(is_gpu).any())
    hw = [("CPU", join(_unique(df, "cpu_model"))),
          ("GPU", join(_unique(df, "gpu_name")) if any_gpu else "none used in this run"),
          ("Devices", join(_unique(df, "device_name"))),
          ("Host", join(_unique(df, "hostname"))), ("Threads", join(_unique(df.assign(t=df["threads"]
          .map(lambda v: f"{v:.0f}" if v == v else "")), "t"))),
          ("Batch size", join(_unique(df.assign(b=df["batch_size"].map(lambda v: f"{v:.0f}" if v == v else "")),
                                      "b")))]
    sw = [("torch", join(_unique(df, "torch_version"))), ("transformers", join(_unique(df, "transformers_version"))),
          ("Python", join(_unique(df, "python_version"))), ("Suite commit", join(_unique(df, "git_commit"))),
          ("Results schema", join([f"{v:g}" for v in sorted(df["schema_version"].dropna().unique())])),
          ("Run id(s)", join(_unique(df, "run_id")))]
    data = [("Dataset", join(_unique(df, "dataset"))), ("Manifest hash", join(_unique(df, "manifest_hash")))]
    if len(tr):
        hours = stat(tr["audio_s"]).median / 3600.0
        timed, whole = stat(tr["n_utts"]).median, run.meta.get("n_utts")
        scored = f"; WER over all {whole:.0f} utterances of the set" if isinstance(whole, (int, float)) \
            and whole > timed else ""
        data.append(("Test set", f"{timed:.0f} utterances, {hours:.2f} h of audio per timed pass{scored}"
                     + _skipped(tr)))
    else:
        data.append(("Test set", "no trained model in this run (timing only)"))
    rnd = random_weights(df)
    if len(rnd):
        data.append(("Architecture-only timing", f"{stat(rnd['n_utts']).median:.0f} utterances, "
                     f"{stat(rnd['audio_s']).median / 3600:.3f} h, random weights ({len(rnd)} rows)"))
    # Repeats and spread.
    reps = df.groupby(["variant", "device"]).size()
    spreads = df.groupby(["variant", "device"])[time_col].agg(lambda s: stat(s).rel_spread).dropna()
    worst = spreads.idxmax() if len(spreads) else None
    rep = [("Repeats per variant and device", f"{reps.min()}&ndash;{reps.max()}" if reps.min() != reps.max()
            else f"{reps.min()}"),
           ("Time in the tables", f"<code>{e(time_col)}</code>: " + e(TIME_LABELS.get(time_col, time_col))
            + "; also recorded: model-only time (<code>model_s</code>), audio file decoding (<code>decode_s</code>), "
            "RTFx"),
           ("Timing scenario", _scenario_text(run.results, chosen)), *deploy.METHOD_ROWS,
           ("Statistic", "median over repeats; spread = min&ndash;max (too few repeats for quartiles); a speed-up "
            "is the median over repeats of each repeat's ratio (the variants of a repeat ran interleaved, on the "
            "same audio), the figure <code>footprint bench ratios</code> prints"),
           ("Largest spread", f"{spreads.max() * 100:.1f}% of the median ({e(worst[0])} on {e(worst[1])})"
            if worst is not None else "n/a"),
           ("Accuracy", "a separate pass over every utterance; WER and CER stored on every row of its variant "
            "and device (WER read as a fraction, shown in %)")]
    rep += _contention_rows(df)
    # Energy: how, per device and method.
    energy_rows = []
    for (dev, method), g in df.groupby(["device", "energy_method"], dropna=False):
        measured = {bool(x) for x in g["energy_measured"].dropna()}
        m = measured.pop() if len(measured) == 1 else None
        detail = "; ".join(_unique(g, "energy_source_detail")) or "no detail recorded"
        inc = energy_includes(g)
        inc = f"<br>Total of: {e(inc)}" if inc else ""
        energy_rows.append((f"{device_kind(dev)} ({dev}): {method if isinstance(method, str) else 'none'}",
                            f"{_badge(m)} {e(detail)}{inc} <span class='what'>({len(g)} rows)</span>"))
    idle = run.meta.get("energy", {}).get("idle_baseline", {}) if isinstance(run.meta.get("energy"), dict) else {}
    for dev, b in (idle.items() if isinstance(idle, dict) else ()):
        if isinstance(b, dict) and b.get("why"):
            energy_rows.append((f"Idle baseline, {e(dev)}", e(b["why"])))
    ci = sorted({(f"{v:g}" if v == v else "?", str(s)) for v, s in zip(df["carbon_intensity_g_per_kwh"],
                                                                      df["carbon_intensity_source"].fillna(""))})
    carbon = [("Carbon intensity", "; ".join(f"{e(v)} g CO&#8322;/kWh ({e(s) or 'source not recorded'})"
                                             for v, s in ci) or "not recorded")]
    meta = run.meta
    parts = ["<h3>Hardware</h3>", _kv(hw), "<h3>Software</h3>", _kv(sw), "<h3>Data</h3>", _kv(data),
             "<h3>Repeats and spread</h3>", _kv(rep), "<h3>Energy: measured or estimated, and how</h3>",
             _kv(energy_rows) if energy_rows else "<p>No energy columns.</p>", _kv(carbon)]
    timing = meta.get("timing")
    if isinstance(timing, dict) and timing:
        parts += ["<h3>What each time column measures (from meta.json)</h3>",
                  _kv((f"{k}", e(str(v))) for k, v in timing.items())]
    if meta:
        # Collapsed: complete for auditors, out of the way for readers (a <details> needs no script).
        rest = {k: v for k, v in meta.items() if k != "timing"}
        parts += ["<details><summary><b>Run configuration (meta.json)</b></summary>",
                  _kv((k, e(v)) for k, v in _flat(rest)), "</details>"]
    else:
        parts += ["<p>No meta.json in the run folder.</p>"]
    return "\n".join(parts)


def _spread(s: pd.Series) -> str:
    st = stat(s)
    if not st.ok:
        return "n/a"
    return f"{st.median:.3g} s, {st.lo:.3g}&ndash;{st.hi:.3g} ({st.rel_spread * 100:.1f}%, n={st.n})"


def _contention_rows(df: pd.DataFrame) -> list[tuple[str, str]]:
    """Contended repeats (others used > 0.10 of one core on average) and model_s's spread with and without them."""
    if "contended" not in df or df["contended"].isna().all():
        return [("Contended repeats", "not recorded (a run from before the contention tracker)")]
    from core.results import parse_bool

    flag = df["contended"].map(parse_bool).astype("boolean").fillna(False).astype(bool)
    others = pd.to_numeric(df.get("others_cpu_s"), errors="coerce")
    freq = pd.to_numeric(df.get("cpu_freq_mhz"), errors="coerce").dropna()
    out = [("Contended repeats", f"{int(flag.sum())} of {len(df)} flagged: the rest of the machine used more than "
            "0.10 of one core on average over the repeat (and over 0.05 s: below that is counter granularity); "
            "others' CPU time = system-wide busy time &minus; this process's, per repeat (<code>others_cpu_s</code>; "
            f"median {others.median():.3g} s, max {others.max():.3g} s)"),
           ("CPU frequency during repeats", f"{freq.median():.0f} MHz median, {freq.min():.0f}&ndash;{freq.max():.0f}"
            if len(freq) else "not readable here")]
    lines = []
    for (variant, dev), g in df.groupby(["variant", "device"]):
        keep = g[~flag.loc[g.index]]
        lines.append(f"{e(variant)} on {e(dev)}: all {_spread(g['model_s'])}; without flagged "
                     f"{_spread(keep['model_s'])}")
    out.append(("Spread of model_s with and without flagged repeats (median, min&ndash;max)",
                "<br>".join(lines) or "n/a"))
    return out


def _scenario_text(df: pd.DataFrame, chosen: Optional[str]) -> str:
    found = scenarios(df)
    if chosen is None:
        return "architecture-only timing (arch)" if found == ["arch"] else "one (not labelled)"
    others = [x for x in found if x not in (chosen, "arch")]
    return e(chosen) + (f" (also in the results, not shown: {e(', '.join(others))}; see --scenario)" if others else "")


def _skipped(df: pd.DataFrame) -> str:
    n = df["n_skipped"].fillna(0).max()
    return f"; {n:.0f} utterances skipped (unreadable or too long)" if n and n > 0 else "; none skipped"


