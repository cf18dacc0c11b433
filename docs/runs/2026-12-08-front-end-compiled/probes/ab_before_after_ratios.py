import pandas as pd
rows = []
for tag in ("before", "after", "before2", "after2"):
    d = pd.read_csv(f"/work/runs/s42/ab/run-{tag}/results.csv")
    t = d[d.variant == "embedded"].set_index(["scenario", "repeat"]).model_s
    for v, g in d[d.variant != "embedded"].groupby("variant"):
        for sc, gg in g.groupby("scenario"):
            r = (t.loc[sc].reindex(gg.repeat.values).values / gg.model_s.values)
            rows.append({"run": tag, "variant": v, "scenario": sc, "ratio": pd.Series(r).median()})
    acc = d[d.scenario == "batched"].groupby("variant").wer.first()
    for v, w in acc.items():
        rows.append({"run": tag, "variant": v, "scenario": "WER %", "ratio": 100 * w})
x = pd.DataFrame(rows).pivot_table(index=["variant", "scenario"], columns="run", values="ratio")[["before", "after", "before2", "after2"]]
print(x.round(2).to_string())
med = []
for tag in ("before", "after", "before2", "after2"):
    d = pd.read_csv(f"/work/runs/s42/ab/run-{tag}/results.csv")
    for (v, sc), g in d.groupby(["variant", "scenario"]):
        med.append({"run": tag, "variant": v, "scenario": sc, "model_s": g.model_s.median()})
m = pd.DataFrame(med).pivot_table(index=["variant", "scenario"], columns="run", values="model_s")[["before", "after", "before2", "after2"]]
print("median model seconds per repeat"); print(m.round(3).to_string())
