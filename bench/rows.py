"""One results row (``core.schema.Row``) from the ranks' measurements of a timed repeat."""
from __future__ import annotations

from typing import Any

from bench.making import making_fields
from bench.scenarios import PassResult
from core.device import Device
from core.schema import Row


def build_row(e: Any, dev: str, rep: int, parts: list[dict[str, Any]], run: Any) -> Row:
    """The repeat's row: slowest rank's times, summed audio/energy/RSS (ARCHITECTURE.md "Results schema").

    ``e`` is the runner's loaded variant, ``run`` the run's state (ids, provenance, carbon intensity, overhead)."""
    from core.provenance import now_iso

    rs = [PassResult(**p["res"]) for p in parts]
    prov, acc = run.prov, e.acc
    return Row(
        run_id=run.run_id, variant=e.job.variant, recipe=e.recipe, model_path=e.model_path,
        weights="random" if e.info.get("trained") is False else e.job.weights,
        device=dev, device_name=Device.parse(dev).name(), threads=_threads(), batch_size=e.tr.batch_size,
        repeat=rep, n_skipped=getattr(e.wl_full, "n_skipped", 0),
        wer=acc.get("wer", float("nan")), cer=acc.get("cer", float("nan")),
        peak_rss_mb=sum(p["peak"] for p in parts), cuda_max_alloc_mb=max(p["cuda_mb"] for p in parts),
        manifest_hash=getattr(e.wl_full, "manifest_hash", ""), dataset=getattr(e.wl_full, "dataset", ""),
        git_commit=prov.git_commit, torch_version=prov.torch_version,
        transformers_version=prov.transformers_version, python_version=prov.python_version,
        cpu_model=prov.cpu_model, gpu_name=prov.gpu_name, hostname=prov.hostname, timestamp=now_iso(),
        scenario=e.job.scenario.name, config_hash=run.chash,
        rss_before_mb=sum(p["rss_before"] for p in parts), world_size=run.ctx.world_size,
        tracker_overhead_frac=run.overhead.get(dev, float("nan")),
        accuracy_batch_size=acc.get("batch_size"), git_dirty=prov.git_dirty,
        **_timing_fields(rs, e.job.scenario.workload_fraction(e.wl_full), extrapolate=not e.job.scenario.uses_data),
        **_model_fields(e.info), load_s=getattr(e, "load_s", float("nan")), onednn_cache=run.onednn_cache,
        shapes_reused=sum(p.get("reused", 0) for p in parts),
        **_energy_fields(parts, run.intensity, sum(r.audio_s for r in rs), run.idle_w.get(dev),
                         run.idle_s.get(dev, 0.0)),
        **_memory_fields(getattr(e, "memory", None) or {}),
        **_contention_fields([p.get("contention") for p in parts]),
        **making_fields(run, e.job.spec, run.local_device(dev)),
    )


def _memory_fields(mem: dict[str, Any]) -> dict[str, Any]:
    """Measured once per variant x device (bench.memory), copied to each of its rows."""
    v = mem.get("variant_peak_mb")
    return {"variant_peak_mb": float("nan") if v is None else v,
            "variant_peak_method": mem.get("variant_peak_method") or "not measured"}


def _contention_fields(cs: list[dict[str, Any] | None]) -> dict[str, Any]:
    """Others' CPU time over the repeat.  Ranks on one host: the host's busy time minus every rank's own."""
    from bench.trackers import Contention

    cs = [c for c in cs if c]
    if not cs:
        return {}
    freqs = [c["cpu_freq_mhz"] for c in cs if c["cpu_freq_mhz"] == c["cpu_freq_mhz"]]
    host = Contention(max(c["window_s"] for c in cs), max(c["system_busy_s"] for c in cs),
                      sum(c["own_cpu_s"] for c in cs), cs[0]["n_cpus"],
                      sum(freqs) / len(freqs) if freqs else float("nan"))
    return {k: v for k, v in host.as_dict().items()
            if k in ("others_cpu_s", "others_cpu_share", "cpu_freq_mhz", "contended")}


def _timing_fields(rs: list[PassResult], fraction: float, extrapolate: bool) -> dict[str, Any]:
    """Multi-rank: the slowest rank's times, the ranks' audio and utterances summed.  ``extrapolate``: a
    generated workload, whose model time is also scaled to the full workload (a labelled estimate)."""
    audio_s = sum(r.audio_s for r in rs)
    model_s = max(r.model_s for r in rs)
    return {
        "n_utts": sum(r.n_utts for r in rs), "audio_s": audio_s, "wall_s": max(r.wall_s for r in rs),
        "model_s": model_s, "decode_s": max(r.decode_s for r in rs), "e2e_s": max(r.e2e_s for r in rs),
        "rtf": model_s / audio_s if audio_s else float("nan"), "rtfx": audio_s / model_s if model_s else float("nan"),
        "inputs_s": max(r.inputs_s for r in rs), "text_s": max(r.text_s for r in rs),
        "model_s_cuda_events": max(r.model_s_cuda_events for r in rs), "rank_wall_s": [r.wall_s for r in rs],
        "workload_fraction": fraction,
        "model_s_full_est": model_s / fraction if extrapolate and fraction else float("nan"),
    }


def _model_fields(info: dict[str, Any]) -> dict[str, Any]:
    keys = ("params", "size_mb", "size_on_disk_mb", "sparsity", "conv_layers", "transformer_layers", "compute_dtype",
            "quantized_engine")
    nan = float("nan")
    return {**{k: info.get(k) for k in keys}, "runtime": info.get("runtime") or "torch",
            "compile_s": info.get("compile_s", 0.0),
            # one-time costs and build facts the variant's builder records (compress side), absent: NaN / ""
            "calibration_s": _num(info.get("calibration_s", nan)), "export_s": _num(info.get("export_s", nan)),
            **{k: str(info.get(k) or "") for k in ("compile_cache", "calibration_data", "length_buckets")}}


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def unseen_fields(row: Row, parts: list[dict[str, Any]]) -> None:
    """An ``unseen`` repeat's row: its scenario, and WER/CER over the held-out utterances it timed (the accuracy
    pass runs them only after every unseen repeat, so its whole-set WER is not known yet)."""
    from core.scoring import score

    refs = [r for p in parts for r in p["refs"] or []]
    hyps = [h for p in parts for h in p["res"]["hyps"] or []]
    row.scenario = "unseen"
    if refs and len(refs) == len(hyps):
        sc = score(refs, hyps)
        row.wer, row.cer = sc.wer, sc.cer
    else:
        row.wer = row.cer = float("nan")


def _energy_fields(parts: list[dict[str, Any]], intensity: Any, audio_s: float,
                   idle: dict[str, float] | None, idle_s: float = 0.0) -> dict[str, Any]:
    """Joules per component summed over ranks (machine-wide components once per host), kWh, CO2, per audio hour.

    ``energy_j`` is the gross total; ``energy_j_net`` the same minus the idle baseline, when one was taken."""
    comps: dict[str, float] = {}
    net_comps: dict[str, float] = {}
    measured: dict[str, bool] = {}
    for p in parts:
        g, n = p["gross"], p["net"]
        for k, v in g.joules_by_component.items():
            if g.scope_by_component.get(k, p["scope"]) == "machine" and p["local_rank"] != 0:
                continue  # another rank on this host already counted the whole machine
            comps[k] = comps.get(k, 0.0) + v
            net_comps[k] = net_comps.get(k, 0.0) + n.joules_by_component.get(k, v)
            measured[k] = measured.get(k, True) and g.measured_by_component.get(k, g.measured)
    meas = parts[0]["gross"]
    has_energy = bool(comps)
    energy_j = sum(comps.values()) if has_energy else float("nan")
    kwh = energy_j / 3.6e6
    co2 = kwh * intensity.g_per_kwh / 1000.0
    hours = audio_s / 3600.0
    return {
        "energy_j": energy_j, "energy_kwh": kwh, "energy_method": meas.method,
        "energy_measured": all(measured.values()) if has_energy else bool(meas.measured),
        "energy_source_detail": meas.detail + (f"; idle baseline {sum(idle.values()):.2f} W over {idle_s:g} s "
                                               "(measured components only), net in energy_j_net"
                                               if has_energy and idle else ""), "co2_kg": co2,
        "carbon_intensity_g_per_kwh": intensity.g_per_kwh, "carbon_intensity_source": intensity.source,
        "kwh_per_audio_hour": kwh / hours if hours else float("nan"),
        "co2_kg_per_audio_hour": co2 / hours if hours else float("nan"),
        "energy_j_gross": energy_j,
        "idle_w": sum(idle.values()) if idle else float("nan"),
        "energy_components_j": comps if has_energy else None,
        "energy_components_measured": measured if has_energy else None,
        "energy_j_net": sum(net_comps.values()) if has_energy and idle else float("nan"),
        "idle_baseline_s": idle_s if idle else 0.0,
    }


def _threads() -> int:
    import torch

    return torch.get_num_threads()
