"""The paper's Tables 1-3 with our figures beside the paper's, plus a per-device energy table.

Every "ours" figure is the median over the run's repeats, with the range (min-max) and n underneath.  Variants are
found by their ``recipe`` (``baseline``, ``distill-L4``, ``int8-dynamic``, ``maxpool-conv4``, ``arch-large-L24``
with ``weights == "random"``...).  A device with no rows gives "n/a / not measured", never an error.
"""
from __future__ import annotations

import logging
import re
from fractions import Fraction
from typing import Optional

import pandas as pd

from core.speedup import speedup
from reports import deploy, ledger, paper
from reports.render import Cell, Table, label, write_tables  # noqa: F401 (write_tables re-exported)
from reports.stats import (MISSING, TIME_LABELS, Stat, co2_per_hour, fmt, fmt_num, is_gpu, kwh_per_hour, layers_of,
                           on, ordered_variants, random_weights, select_scenario, stat, time_column, trained,
                           variant_for_recipe, choose_scenario, distilled_recipe)  # noqa: F401 (re-exported)

log = logging.getLogger(__name__)

NOT_MEASURED = "not measured"
MEMORY_GROUP = "Variant peak memory"
EM = "\u2014"  # shown where the paper has no such row


# --- cells ---------------------------------------------------------------------------------------------------
def ours(s: Stat, kind: str, scale: float = 1.0, missing: str = NOT_MEASURED, spread: bool = True) -> Cell:
    """Our median, with 'lo-hi, n' underneath when the repeats differ."""
    if not s.ok:
        return Cell("n/a", missing, "ours")
    text = fmt(s.median * scale, kind)
    sub = ""
    if spread and s.n > 1 and s.hi > s.lo:
        sub = f"{fmt_num(s.lo * scale, kind)}\u2013{fmt_num(s.hi * scale, kind)}, n={s.n}"
    elif spread and s.n > 1:
        sub = f"n={s.n}"
    return Cell(text, sub, "ours", s.median * scale)


def ref(value: Optional[float], kind: str, scale: float = 1.0, missing: str = "n/a") -> Cell:
    """A paper figure (``None``: the paper gives none)."""
    if value is None:
        return Cell(missing, "", "paper")
    return Cell(fmt(value * scale, kind), "", "paper", value * scale)


def ratio_cell(num: float, den: float, source: str, kind: str = "ratio") -> Cell:
    if num is None or den is None or pd.isna(num) or pd.isna(den) or den == 0:
        return Cell("n/a", "", source)
    return Cell(fmt(num / den, kind), "", source, num / den)


def speedup_cell(rows: pd.DataFrame, base: pd.DataFrame, time_col: str) -> Cell:
    """``base``'s time over ``rows``' (above 1: ``rows`` faster) as :func:`core.speedup.speedup` gives it: the
    median over repeats of each repeat's pair, the figure ``footprint bench ratios`` prints."""
    value = speedup(rows, base, time_col)
    return Cell("n/a", "", "ours") if value != value else Cell(fmt(value, "ratio"), "", "ours", value)


def _rows(df: pd.DataFrame, variant: Optional[str], kind: Optional[str] = None) -> pd.DataFrame:
    if variant is None:
        return df.iloc[0:0]
    g = df[df["variant"] == variant]
    return on(g, kind) if kind else g


def _stat(df: pd.DataFrame, col: str) -> Stat:
    return stat(df[col]) if len(df) else MISSING


def _dataset_line(df: pd.DataFrame) -> str:
    t = trained(df)
    src = t if len(t) else df
    n = stat(src["n_utts"]).median
    hours = stat(src["audio_s"]).median / 3600.0
    ds = ", ".join(sorted(src["dataset"].dropna().unique())) or "unknown dataset"
    return (f"Ours: {fmt_num(n, 'int')} utterances, {hours:.2f} h of audio per timed pass ({ds}); paper: LibriSpeech "
            f"dev-clean, "
            f"{paper.DEV_CLEAN_UTTERANCES} utterances, {paper.DEV_CLEAN_HOURS} h.")


def _layers(df: pd.DataFrame, variant: Optional[str]) -> Optional[int]:
    s = _stat(_rows(df, variant), "transformer_layers")
    return int(s.median) if s.ok else None


def _size_cell(rows: pd.DataFrame) -> Cell:
    """Size in memory; size on disk underneath when it differs (sparse storage of a pruned model)."""
    c = ours(_stat(rows, "size_mb"), "size", spread=False)
    disk = _stat(rows, "size_on_disk_mb")
    if c.value and disk.ok and abs(disk.median - c.value) > 0.02 * c.value:
        return Cell(c.text, f"on disk {fmt(disk.median, 'size')}", "ours", c.value)
    return c


def _memory_cell(rows: pd.DataFrame) -> Cell:
    """variant_peak_mb on the CPU (GPU underneath when measured); 'not measured' for runs from before it."""
    if "variant_peak_mb" not in rows:
        return Cell("n/a", NOT_MEASURED, "ours")
    cpu, gpu = _stat(on(rows, "CPU"), "variant_peak_mb"), _stat(on(rows, "GPU"), "variant_peak_mb")
    main = cpu if cpu.ok else gpu
    if not main.ok:
        return Cell("n/a", NOT_MEASURED, "ours")
    sub = f"GPU {fmt(gpu.median, 'size')}" if cpu.ok and gpu.ok else ("GPU" if not cpu.ok else "")
    return Cell(fmt(main.median, "size"), sub, "ours", main.median)


def energy_kind(df: pd.DataFrame) -> str:
    """Where Table 1's energy comes from: the GPU as in the paper, when we have GPU energy; else the CPU."""
    g = on(trained(df), "GPU")
    return "GPU" if len(g) and g["energy_kwh"].notna().any() else "CPU"


# --- Table 1 -------------------------------------------------------------------------------------------------
Table1Row = tuple[Optional[paper.PaperModel], str, Optional[str]]


def _table1_variants(df: pd.DataFrame, distilled: Optional[str]) -> list[Table1Row]:
    """(paper row or None, recipe, our variant) for Table 1's rows, the paper's three first."""
    by = paper.table1_by_recipe()
    rows: list[Table1Row] = []
    for recipe, p in (("baseline", by["baseline"]), (distilled or "distill-L4", by["distill-L4"]),
                      ("int8-dynamic", by["int8-dynamic"])):
        rows.append((p, recipe, variant_for_recipe(df, recipe)))
    # Our other compressions (not in the paper's Table 1): pruning, fp16/bf16, static int8, combinations...
    # Plain students belong to Table 2, max-pool ones to Table 3.
    taken = {"baseline", distilled, "int8-dynamic"}
    extras = sorted((r for r in trained(df)["recipe"].dropna().unique()
                     if r not in taken and not re.fullmatch(r"distill-L\d+", r) and not r.startswith("maxpool")
                     and not r.startswith("arch-")),
                    key=lambda r: ("+" in r, r))
    for r in extras:
        rows.append((None, r, variant_for_recipe(df, r)))
    return rows


def table1(df: pd.DataFrame, time_col: str = "e2e_s", distilled: Optional[str] = None) -> Table:
    df = select_scenario(df)
    time_col = time_column(df, time_col)
    distilled = distilled or distilled_recipe(df)
    ek = energy_kind(df)
    cols = [("", "Model (paper / ours)")]
    for g in ("Params", "Size", "CPU time", "GPU time", "WER", f"CO\u2082 ({ek})", f"Energy ({ek})"):
        cols += [(g, "paper"), (g, "ours")]
    cols += [(MEMORY_GROUP, "ours")]  # the paper reports no memory
    t = Table("table1", "Table 1",
              "Original, distilled and quantized models: the paper's figures beside ours. "
              f"Times: {TIME_LABELS[time_col]}"
              f" over the whole test set; CO\u2082 (g) and energy (Wh) per run on the {ek} (the paper's: GPU; "
              "its 0.0032 kg = 3.2 g, 0.0087 kWh = 8.7 Wh). "
              f"{deploy.times_note(choose_scenario(df))[:-1]}; our energies over the same repeats. "
              + _dataset_line(df), cols)
    data = trained(df)
    for p, recipe, variant in _table1_variants(df, distilled):
        rows = _rows(data, variant)
        cpu, gpu = on(rows, "CPU"), on(rows, "GPU")
        erows = gpu if ek == "GPU" else cpu
        layers = _layers(data, variant)
        name = f"{variant} ({layers} layers)" if variant and layers else (variant or f"{recipe}: not in this run")
        gpu_missing = NOT_MEASURED if len(on(data, "GPU")) else "no GPU in this run"
        t.add([
            Cell(p.name if p else "(not in the paper)", f"ours: {name}"),
            ref(p.params_m * 1e6 if p else None, "params", missing=EM if not p else "n/a"),
            ours(_stat(rows, "params"), "params", spread=False),
            ref(p.size_mb if p else None, "size", missing=EM if not p else "n/a"),
            _size_cell(rows),
            ref(p.cpu_s if p else None, "time", missing=EM if not p else "n/a"), ours(_stat(cpu, time_col), "time"),
            ref(p.gpu_s if p else None, "time", missing=EM if not p else "n/a"),
            ours(_stat(gpu, time_col), "time", missing=gpu_missing),
            ref(p.wer_pct if p else None, "pct", missing=EM if not p else "n/a"),
            ours(_stat(rows, "wer"), "pct", scale=100.0, spread=False),
            # grams and watt-hours: our runs are small, and kg would print as 9.9e-05
            ref(p.co2_kg if p else None, "g", scale=1000.0, missing=EM if not p else "n/a"),
            ours(_stat(erows, "co2_kg"), "g", scale=1000.0),
            ref(p.energy_kwh if p else None, "wh", scale=1000.0, missing=EM if not p else "n/a"),
            ours(_stat(erows, "energy_kwh"), "wh", scale=1000.0),
            _memory_cell(rows),
        ])
    includes = energy_includes(on(data, ek))
    t.notes += [
        f"{MEMORY_GROUP}: the memory the variant's own pass needs, weights + activations of its heaviest batch "
        "(longest padded audio x batch size), measured once per variant and device with only that variant loaded "
        "(CPU: resident-set high-water mark over the process before the load; GPU: CUDA max allocated; "
        "variant_peak_method in the results says which). Size is the weights alone; memory is what a deployment "
        "pays for. The paper reports no memory.",
        "Absolute times and energies are over different test sets (see above) and hardware; compare ratios "
        "(Table 1b) and per-hour figures (Table 4).",
        f"Paper energy: {paper.PAPER_ENERGY_METHOD}. Ours ({ek}): "
        + (f"the total of {includes}" if includes else "see the method section")
        + "; the method section says how each figure was obtained.",
        f"Paper, pruning (no Table 1 row): {paper.PRUNING_NOTE}.",
    ]
    if distilled != "distill-L4":
        t.notes.append(f"No distill-L4 in this run: the distilled row uses {distilled}.")
    return t


def table1_ratios(df: pd.DataFrame, time_col: str = "e2e_s", distilled: Optional[str] = None,
                  raw: Optional[pd.DataFrame] = None) -> Table:
    """Each compressed model relative to the original: the comparison that survives different test sets; with
    ``raw`` (every scenario's rows) also the unseen-lengths speed-up, one-time cost and break-even (reports.deploy)."""
    w = deploy.word(choose_scenario(df))
    df = select_scenario(df)
    time_col = time_column(df, time_col)
    distilled = distilled or distilled_recipe(df)
    data = trained(df)
    base_variant = variant_for_recipe(df, "baseline")
    base = _rows(data, base_variant)
    pbase = paper.table1_by_recipe()["baseline"]
    ek = energy_kind(df)
    cols = [("", "Model (paper / ours)")]
    for g in ("Smaller by", f"CPU speed-up ({w})", f"GPU speed-up ({w})", "WER change", f"Energy saved ({ek})"):
        cols += [(g, "paper"), (g, "ours")]
    cols += deploy.COLUMNS if raw is not None else []
    t = Table("table1b", "Table 1b",
              "Relative to the original model (size and times: original / compressed; WER: compressed - original, "
              "in points; energy: original / compressed per hour of audio). Ours from the same run: speed-ups are the "
              "median over repeats of each repeat's ratio (the variants ran interleaved, on the same audio), the "
              "rest ratios of medians. "
              f"Speed-ups {w}: {deploy.METHOD_ROWS[0 if w == 'warm' else 1][1]}.", cols)
    be = _stat(on(base, ek).assign(_e=kwh_per_hour(on(base, ek))), "_e")
    for p, recipe, variant in _table1_variants(df, distilled)[1:]:
        rows = _rows(data, variant)
        layers = _layers(data, variant)
        name = f"{variant} ({layers} layers)" if variant and layers else (variant or f"{recipe}: not in this run")
        e = on(rows, ek)
        ve = _stat(e.assign(_e=kwh_per_hour(e)), "_e")
        wer_o, wer_b = _stat(rows, "wer"), _stat(base, "wer")
        t.add([
            Cell(p.name if p else "(not in the paper)", f"ours: {name}"),
            ratio_cell(pbase.size_mb, p.size_mb, "paper") if p else Cell(EM, "", "paper"),
            ratio_cell(_stat(base, "size_mb").median, _stat(rows, "size_mb").median, "ours"),
            ratio_cell(pbase.cpu_s, p.cpu_s, "paper") if p else Cell(EM, "", "paper"),
            speedup_cell(on(rows, "CPU"), on(base, "CPU"), time_col),
            ratio_cell(pbase.gpu_s, p.gpu_s, "paper") if p and p.gpu_s else Cell("n/a" if p else EM, "", "paper"),
            speedup_cell(on(rows, "GPU"), on(base, "GPU"), time_col),
            (Cell(fmt(p.wer_pct - pbase.wer_pct, "points"), "", "paper", p.wer_pct - pbase.wer_pct) if p
             else Cell(EM, "", "paper")),
            (Cell(fmt((wer_o.median - wer_b.median) * 100, "points"), "", "ours", (wer_o.median - wer_b.median) * 100)
             if wer_o.ok and wer_b.ok else Cell("n/a", NOT_MEASURED, "ours")),
            ratio_cell(pbase.energy_kwh, p.energy_kwh, "paper") if p and p.energy_kwh else
            Cell("n/a" if p else EM, "", "paper"),
            ratio_cell(be.median, ve.median, "ours"),
            *(deploy.cells(on(raw, "CPU"), base_variant, variant, time_col) if raw is not None else []),
        ])
    return t


# --- Table 2 -------------------------------------------------------------------------------------------------
def _frac_label(f: Fraction) -> str:
    return "all" if f == 1 else f"{f.numerator}/{f.denominator}"


def depth_sweep(df: pd.DataFrame) -> list[tuple[int, str]]:
    """(layers, variant) of the teacher and its plain students (no int8, 7 conv layers), deepest first."""
    data = trained(df)
    out: dict[int, str] = {}
    recipes = ["baseline"] + sorted(r for r in data["recipe"].dropna().unique() if re.fullmatch(r"distill-L\d+", r))
    for r in recipes:
        v = variant_for_recipe(df, r)
        n = _layers(data, v)
        if v is None or n is None:
            continue
        conv = _stat(_rows(data, v), "conv_layers")
        if conv.ok and conv.median != 7 and r != "baseline":  # a max-pool student belongs in Table 3
            continue
        out.setdefault(n, v)
    return sorted(out.items(), reverse=True)


def budgets_note(names: list[str], train_logs: Optional[list] = None) -> Optional[str]:
    """The distillation budget of each named student with a train log, and whether they differ (then a comparison
    of these rows compares budgets too)."""
    by_name = {t.name: t for t in train_logs or ()}
    found = [(n, by_name[n].budget) for n in names if n in by_name]
    if not found:
        return None
    text = "Distillation budgets: " + "; ".join(f"{n} {b}" for n, b in found) + "."
    if len({(by_name[n].trained_for or (None,))[:2] for n, _ in found}) > 1:
        text += " They differ, so these rows compare training budgets as well as depths."
    return text


def table2(df: pd.DataFrame, time_col: str = "e2e_s", train_logs: Optional[list] = None) -> Table:
    """The depth sweep, rows matched by the kept fraction of the teacher's layers (ours: a shallower teacher);
    ``train_logs`` (reports.load.TrainLog) add each student's distillation budget to the notes."""
    df = select_scenario(df)
    time_col = time_column(df, time_col)
    data = trained(df)
    sweep = depth_sweep(df)
    kind = "GPU" if len(on(data, "GPU")) else "CPU"
    teacher_layers = sweep[0][0] if sweep else None
    ours_by_frac = {Fraction(n, teacher_layers): (n, v) for n, v in sweep} if teacher_layers else {}
    paper_by_frac = {Fraction(p.layers, paper.TEACHER_LAYERS): p for p in paper.TABLE2}
    cols = [("", "Layers kept")]
    cols += [("Paper (GPU)", c) for c in ("Layers", "Params", "Size", "Time", "Speed-up", "WER")]
    w = deploy.word(choose_scenario(df))
    cols += [(f"Ours ({kind})", c) for c in ("Layers", "Params", "Size", f"Time ({w})", f"Speed-up ({w})", "WER")]
    t = Table("table2", "Table 2",
              f"Students with fewer transformer layers, matched by the fraction of the teacher's layers kept "
              f"(paper: 24-layer teacher, students trained 10 epochs on train-clean-100; ours: "
              f"{teacher_layers or '?'}-layer teacher). Times: {TIME_LABELS[time_col]}; speed-up vs the teacher. "
              f"{deploy.times_note(choose_scenario(df))} " + _dataset_line(df), cols)
    p0 = paper.TABLE2[0]
    base_rows = on(_rows(data, sweep[0][1]), kind) if sweep else data.iloc[0:0]
    for f in sorted(set(ours_by_frac) | set(paper_by_frac), reverse=True):
        p = paper_by_frac.get(f)
        row = [label(_frac_label(f))]
        if p:
            row += [Cell(str(p.layers), "", "paper", p.layers), ref(p.params_m * 1e6, "params"), ref(p.size_mb, "size"),
                    ref(p.gpu_s, "time"), ratio_cell(p0.gpu_s, p.gpu_s, "paper"), ref(p.wer_pct, "pct")]
        else:
            row += [Cell(EM, "", "paper")] * 6
        if f in ours_by_frac:
            n, v = ours_by_frac[f]
            rows = _rows(data, v)
            tt = _stat(on(rows, kind), time_col)
            row += [Cell(f"{n}", v if v not in ("teacher",) and not v.endswith(f"L{n}") else "", "ours", n),
                    ours(_stat(rows, "params"), "params", spread=False),
                    ours(_stat(rows, "size_mb"), "size", spread=False),
                    ours(tt, "time"), speedup_cell(on(rows, kind), base_rows, time_col),
                    ours(_stat(rows, "wer"), "pct", scale=100.0, spread=False)]
        else:
            row += [Cell(EM, "", "ours")] * 6
        t.add(row)
    if not sweep:
        t.notes.append("No trained depth sweep (baseline and distill-L<n> rows) in this run.")
    note = budgets_note([v for _, v in sweep[1:]], train_logs)
    if note:
        t.notes.append(note)
    return t


def table2_arch(df: pd.DataFrame, time_col: str = "e2e_s", arch: str = "large") -> Table:
    """Table 2's sizes and timing on random-weight models of the paper's architecture (no WER: timing only)."""
    df = select_scenario(df)
    time_col = time_column(df, time_col)
    rnd = random_weights(df)
    recipes = rnd["recipe"].fillna("")
    rnd = rnd[recipes.str.startswith(f"arch-{arch}") & ~recipes.str.contains("+", regex=False)]  # fp32 only
    by_layers: dict[int, pd.DataFrame] = {}
    for n, g in rnd.groupby("transformer_layers"):
        by_layers[int(n)] = g
    for r in rnd["recipe"].dropna().unique():  # rows without transformer_layers: take it from the recipe name
        n = layers_of(r)
        if n is not None and n not in by_layers:
            by_layers[n] = rnd[rnd["recipe"] == r]
    paper_by = {p.layers: p for p in paper.TABLE2}
    cols = [("", "Layers"), ("Paper (GPU, trained)", "Params"), ("Paper (GPU, trained)", "Size"),
            ("Paper (GPU, trained)", "Time"), ("Paper (GPU, trained)", "Speed-up"),
            (f"Ours ({arch}, random weights)", "Params"), (f"Ours ({arch}, random weights)", "Size"),
            *[(f"Ours: {k}", f"{c} (warm)") for k in ("CPU", "GPU") for c in ("Time", "Speed-up")]]
    if len(rnd):
        n_utts, hours = stat(rnd["n_utts"]).median, stat(rnd["audio_s"]).median / 3600.0
        work = f"Ours: {fmt_num(n_utts, 'int')} utterances shaped like dev-clean, {hours:.3f} h of audio."
    else:
        work = "No architecture-only rows in this run."
    t = Table("table2-arch", "Table 2 (architecture only)",
              f"The paper's depths on the {arch} configuration with random weights: parameters and size need no "
              f"training; timing only, no WER. Times: {TIME_LABELS[time_col]}; speed-up vs 24 layers. "
              "Our times and speed-ups: warm (architecture-only rows are always timed over lengths already run). "
              + work, cols)
    top = by_layers.get(max(by_layers)) if by_layers else None
    gpu_missing = NOT_MEASURED if len(on(df, "GPU")) else "no GPU in this run"
    for n in sorted(set(paper_by) | set(by_layers), reverse=True):
        p = paper_by.get(n)
        row = [label(str(n))]
        row += ([ref(p.params_m * 1e6, "params"), ref(p.size_mb, "size"), ref(p.gpu_s, "time"),
                 ratio_cell(paper.TABLE2[0].gpu_s, p.gpu_s, "paper")] if p else [Cell(EM, "", "paper")] * 4)
        g = by_layers.get(n)
        if g is None:
            row += [Cell(EM, "", "ours")] * 6
        else:
            row += [ours(_stat(g, "params"), "params", spread=False), ours(_stat(g, "size_mb"), "size", spread=False)]
            for k in ("CPU", "GPU"):
                tt = _stat(on(g, k), time_col)
                row += [ours(tt, "time", missing=gpu_missing if k == "GPU" else NOT_MEASURED),
                        speedup_cell(on(g, k), on(top, k) if top is not None else g.iloc[0:0], time_col)]
        t.add(row)
    t.notes.append("The paper's students are about 2 M parameters (8 MB) larger than the same depth of "
                   "Wav2Vec2ForCTC: the size of wav2vec 2.0's pre-training modules (quantizer, project_q, "
                   "final_proj), which the paper's code (https://git.io/JmpJM) keeps; see footprint model info.")
    return t


# --- Table 3 -------------------------------------------------------------------------------------------------
def conv_pair(df: pd.DataFrame) -> tuple[Optional[str], Optional[str]]:
    """(7-conv reference, max-pool variant): the reference has the max-pool student's transformer depth."""
    data = trained(df)
    mp = next((variant_for_recipe(df, r) for r in sorted(data["recipe"].dropna().unique())
               if r.startswith("maxpool")), None)
    if mp is None:
        return variant_for_recipe(df, "baseline"), None
    n = _layers(data, mp)
    for r in [f"distill-L{n}", "baseline"]:
        v = variant_for_recipe(df, r)
        if v is not None and _layers(data, v) == n:
            return v, mp
    return variant_for_recipe(df, "baseline"), mp


def table3(df: pd.DataFrame, time_col: str = "e2e_s") -> Table:
    df = select_scenario(df)
    time_col = time_column(df, time_col)
    data = trained(df)
    ref_v, mp_v = conv_pair(df)
    w = deploy.word(choose_scenario(df))
    cols = [("", "Conv layers"), ("GPU time", "paper"), ("GPU time", "ours"), ("CPU time", "paper"),
            ("CPU time", "ours"), ("WER", "ours"), ("Params", "ours"), ("", "Ours")]
    t = Table("table3", "Table 3",
              "7 convolution layers vs 4 (three replaced by max-pooling, same 20 ms frame rate). "
              f"Times: {TIME_LABELS[time_col]}. {deploy.times_note(choose_scenario(df))} The paper gives no WER here; "
              "its times are over a subset it does not name. " + _dataset_line(df), cols)
    gpu_missing = NOT_MEASURED if len(on(data, "GPU")) else "no GPU in this run"
    by_conv: dict[int, pd.DataFrame] = {}
    for p, v in zip(paper.TABLE3, (ref_v, mp_v)):
        rows = _rows(data, v)
        g, c = _stat(on(rows, "GPU"), time_col), _stat(on(rows, "CPU"), time_col)
        by_conv[p.conv_layers] = rows
        n = _layers(data, v)
        t.add([label(str(p.conv_layers)), ref(p.gpu_s, "time"), ours(g, "time", missing=gpu_missing),
               ref(p.cpu_s, "time"), ours(c, "time"), ours(_stat(rows, "wer"), "pct", scale=100.0, spread=False),
               ours(_stat(rows, "params"), "params", spread=False),
               label(f"{v} ({n} layers)" if v and n else (v or "not in this run"))])
    p7, p4 = paper.TABLE3
    # time of 4 over time of 7: the teacher's rows as the "faster" side of core.speedup's pairing
    time_ratio = {k: speedup_cell(on(by_conv[7], k), on(by_conv[4], k), time_col) for k in ("GPU", "CPU")}
    t.add([label(f"4 / 7 (ratio; ours {w})"), ratio_cell(p4.gpu_s, p7.gpu_s, "paper"), time_ratio["GPU"],
           ratio_cell(p4.cpu_s, p7.cpu_s, "paper"), time_ratio["CPU"], Cell("", "", "ours"), Cell("", "", "ours"),
           label("")])
    t.notes.append("A ratio below 1 means the 4-conv model is faster. The paper found the CPU slower with "
                   "max-pooling (PyTorch's CPU max-pooling).")
    return t


# --- Table 4 (ours): energy per hour of audio -------------------------------------------------------------------
def table_energy(df: pd.DataFrame) -> Table:
    """Per hour of audio, every trained variant on every device, with how the energy figure was obtained."""
    df = select_scenario(df)
    cols = [("", "Source"), ("", "Model"), ("", "Device"), ("Per hour of audio", "Energy"),
            ("Per hour of audio", "CO\u2082"), ("", "Mean power"), ("", "Energy figure"), ("", "Method")]
    cols += ledger.columns()  # making cost, break-even and the net saving (reports/ledger.py)
    t = Table("table4", "Table 4",
              "Energy and CO\u2082 per hour of audio (median over repeats, range and n underneath), with the mean "
              "power they imply and how each figure was obtained. The paper's rows are Table 1 divided by 5.4 h. "
              f"Ours: energies over {deploy.word(choose_scenario(df))} timed repeats.", cols)
    for p in paper.TABLE1:
        if p.energy_kwh is None:
            continue
        t.add([label("paper"), label(p.name), label("GPU (V100)"),
               ref(p.energy_kwh / paper.DEV_CLEAN_HOURS * 1000.0, "wh"),
               ref(p.co2_kg / paper.DEV_CLEAN_HOURS * 1000.0 if p.co2_kg else None, "g"),
               ref(p.energy_kwh * 3.6e6 / p.gpu_s if p.gpu_s else None, "w"), label("estimated"),
               label("CodeCarbon defaults"), *ledger.blank(EM)])
    data = trained(df).assign(_e=lambda d: kwh_per_hour(d) * 1000.0, _c=lambda d: co2_per_hour(d) * 1000.0,
                              _w=lambda d: d["energy_j"] / d["wall_s"])
    order = {v: i for i, v in enumerate(ordered_variants(data))} if len(data) else {}
    groups = sorted(data.groupby(["variant", "device"]), key=lambda kv: (order.get(kv[0][0], 99), is_gpu(kv[0][1])))
    book = ledger.by_key(ledger.ledger(df))
    for (variant, device), g in groups:
        measured = {bool(x) for x in g["energy_measured"].dropna()}
        how = ("measured" if measured == {True} else "estimated" if measured == {False}
               else "mixed" if measured else "unknown")
        methods = ", ".join(sorted(g["energy_method"].dropna().unique())) or "unknown"
        includes = energy_includes(g)
        methods += f"; total of {includes}" if includes else ""
        t.add([label("ours"), label(str(variant)), label(f"{'GPU' if is_gpu(device) else 'CPU'} ({device})"),
               ours(_stat(g, "_e"), "wh"), ours(_stat(g, "_c"), "g"), ours(_stat(g, "_w"), "w"), label(how),
               label(methods), *ledger.cells(book.get((str(variant), str(device))))])
    t.notes.append(ledger.NOTE)
    return t


def energy_includes(g: pd.DataFrame) -> str:
    """What a row's total covers, each component labelled: "gpu0 (measured) + cpu (estimated) + ram (estimated)"."""
    import json

    col = g["energy_components_measured"] if "energy_components_measured" in g else []
    seen: dict[str, set[bool]] = {}
    for v in col:
        try:
            comps = json.loads(v) if isinstance(v, str) else v
        except ValueError:
            continue
        for k, m in (comps or {}).items() if isinstance(comps, dict) else ():
            seen.setdefault(k, set()).add(bool(m))
    label = {frozenset({True}): "measured", frozenset({False}): "estimated"}
    return " + ".join(f"{k} ({label.get(frozenset(v), 'mixed')})" for k, v in seen.items())


# --- all of them ----------------------------------------------------------------------------------------------
def all_tables(df: pd.DataFrame, time_col: str = "e2e_s", distilled: Optional[str] = None,
               scenario: Optional[str] = None, train_logs: Optional[list] = None) -> list[Table]:
    raw, df = df, select_scenario(df, scenario)
    return [table1(df, time_col, distilled), table1_ratios(df, time_col, distilled, raw),
            table2(df, time_col, train_logs), table2_arch(df, time_col), table3(df, time_col), table_energy(df)]
