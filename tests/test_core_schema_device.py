"""core.schema.Row is the schema (columns derived from its fields, in order); core.device.Device parses
``--device`` once; core.results.parse_bool reads every stored form of a boolean."""
from __future__ import annotations

import math
from dataclasses import fields

import pandas as pd
import pytest

from core import results, schema
from core.device import Device, check_devices
from core.errors import FootprintError


def test_row_fields_are_the_columns_in_order() -> None:
    names = [f.metadata.get("column", f.name) for f in fields(schema.Row)]
    assert tuple(names) == results.ALL_COLUMNS == results.SCHEMA_COLUMNS + results.EXTRA_COLUMNS
    assert results.SCHEMA_COLUMNS[:3] == ("schema_version", "run_id", "variant")
    assert results.SCHEMA_COLUMNS[-1] == "timestamp" and results.EXTRA_COLUMNS[:2] == ("scenario", "pass")


def test_row_as_dict_uses_column_names() -> None:
    kw = {c: None for c in results.SCHEMA_COLUMNS}
    row = schema.Row(**kw, scenario="batched", config_hash="h", inputs_s=0.1, text_s=0.2, model_s_cuda_events=math.nan,
                     rss_before_mb=1.0)
    d = row.as_dict()
    assert list(d) == list(results.ALL_COLUMNS) and d["pass"] == "perf" and d["world_size"] == 1
    with pytest.raises(TypeError):
        schema.Row(**kw, scenario="batched", not_a_column=1)


def test_device_parse() -> None:
    assert Device.parse("cpu") == Device("cpu") and not Device.parse("cpu").is_cuda
    d = Device.parse("cuda:1")
    assert (d.kind, d.index, d.is_cuda, str(d)) == ("cuda", 1, True, "cuda:1")
    assert str(Device.parse("cuda")) == "cuda" and Device.parse(d) is d
    assert Device.parse("cuda").for_local_rank(2, distributed=True) == Device("cuda", 2)
    assert Device.parse("cuda").for_local_rank(2, distributed=False) == Device("cuda")
    assert Device.parse("cuda:0").for_local_rank(2, distributed=True) == Device("cuda", 0)
    assert Device.parse("cpu").torch().type == "cpu" and Device.parse("cpu").name()
    for bad, msg in (("tpu", "--device tpu: expected cpu or cuda"), ("cuda:x", "--device cuda:x: expected cuda")):
        with pytest.raises(FootprintError, match=msg):
            Device.parse(bad)


def test_device_resolve_auto(monkeypatch) -> None:  # noqa: ANN001
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert Device.resolve("auto") == Device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert Device.resolve("auto") == Device("cuda") and Device.resolve("cuda:1") == Device("cuda", 1)
    with pytest.raises(FootprintError, match="expected cpu or cuda"):
        Device.resolve("tpu")


def test_check_devices_on_a_cpu_only_machine(monkeypatch) -> None:  # noqa: ANN001
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert check_devices(["cpu"]) == [Device("cpu")]
    with pytest.raises(FootprintError, match="--device cuda:1: no CUDA GPU visible") as exc:
        check_devices(["cpu", "cuda:1"])
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("raw, want", [(1, True), (0, False), ("True", True), ("false", False), (" 1 ", True),
                                       ("measured", True), ("estimated", False), (None, pd.NA),
                                       (float("nan"), pd.NA), ("maybe", pd.NA)])
def test_parse_bool(raw, want) -> None:  # noqa: ANN001
    assert results.parse_bool(raw) is want


def test_load_results_reads_a_hand_made_csv_like_reports(tmp_path) -> None:  # noqa: ANN001
    pd.DataFrame([{"variant": "v", "recipe": "r", "device": "cpu", "repeat": 0, "energy_measured": "measured"}]) \
        .to_csv(tmp_path / "results.csv", index=False)
    df = results.load_results(tmp_path / "results.csv")  # a results file's folder is accepted too
    assert list(df.columns[: len(results.ALL_COLUMNS)]) == list(results.ALL_COLUMNS)
    assert df["energy_measured"].dtype == "boolean" and bool(df["energy_measured"].iloc[0]) is True
