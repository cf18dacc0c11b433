"""Speed-ups against the fp32 teacher of the same run, two ways: ratio of medians, and the median of per-repeat
ratios (teacher and variant of the same repeat, minutes apart: robust to the machine drifting during the run).

    python docs/runs/2026-11-30c-issue16-cpu/pairs.py docs/runs/2026-11-30c-issue16-cpu [results-i16c.csv]
"""
import sys

import pandas as pd

d = pd.read_csv(f"{sys.argv[1]}/{sys.argv[2] if len(sys.argv) > 2 else 'results.csv'}")
t = d[d.variant == "embedded"]
bm, be, bw = t.model_s.median(), t.e2e_s.median(), t.wer.iloc[0]
rows = []
for v, g in d.groupby("variant"):
    pairs = (t.set_index("repeat").model_s / g.set_index("repeat").model_s).median()
    per_repeat = "/".join(f"{x:.1f}" for x in g.sort_values("repeat").model_s)
    rows.append((v, g.model_s.median(), bm / g.model_s.median(), pairs, g.e2e_s.median(), be / g.e2e_s.median(),
                 100 * g.wer.iloc[0], 100 * (g.wer.iloc[0] - bw), int(g.params.iloc[0]), g.size_on_disk_mb.iloc[0],
                 g.compile_s.iloc[0], per_repeat))
print("| variant | model s | x model | x model, per-repeat pairs | e2e s | x e2e | WER % | vs teacher (pt) | params "
      "| on disk MB | compile s | model s per repeat |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in sorted(rows, key=lambda r: r[3]):
    print(f"| {r[0]} | {r[1]:.2f} | x{r[2]:.2f} | x{r[3]:.2f} | {r[4]:.2f} | x{r[5]:.2f} | {r[6]:.2f} | {r[7]:+.2f} "
          f"| {r[8]:,} | {r[9]:.2f} | {r[10]:.1f} | {r[11]} |")
print(f"contended repeats: {int(d.contended.sum())} of {len(d)}; commit {d.git_commit.iloc[0][:8]}; "
      f"threads {d.threads.iloc[0]}")
