"""``dopa-rl demo``: a simulated rig session to NWB, RW and TD fitted to its licks, a report with figures.

Everything printed is measured in this run: the session's counts against the simulated device's own tally,
the online model, the fits, the host's decision time.  The same numbers go to ``report/summary.json`` (and
``summary.txt``), with the simulated animal's true parameters.

By default (``--speed virtual``) the session runs in virtual time (:mod:`dopa_rl.session.virtual`): the
session machine and the simulated device stepped together on the device's clock, no thread, so the same
``--seed`` gives the same session, licks, fits and report on every run and every machine (only the wall
time and the host's compute time vary).  ``--speed max`` or a factor runs the same session through the
threaded device client against the simulated rig's real-time clock, as ``dopa-rl run --device sim`` does:
its numbers then depend on thread scheduling (a host late by more than an ITI lengthens that ITI).
"""
from __future__ import annotations

import argparse

NAME = "demo"

DEMO_CONFIG = """
[session]
subject = "sim-mouse"
session_id = "demo"
description = "demo: classical conditioning on the simulated rig (CS+ light, 90 % reward; CS- tone, none)"
n_trials = {trials}
seed = {seed}

[[trial_types]]
name = "CS+"
cue = "light"
cue_s = 1.0
trace_s = 0.5
post_s = 1.0
reward_probability = 0.9
reward_ul = 4.0
frequency = 3

[[trial_types]]
name = "CS-"
cue = "tone"
tone_hz = 8000
cue_s = 1.0
trace_s = 0.5
post_s = 0.5
reward_probability = 0.0
frequency = 1

[iti]
distribution = "uniform"
min_s = 0.5
max_s = 1.5

[model]
name = "rw-pavlovian"
alpha = 0.2
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = "Example: dopa-rl demo --out demo_out --trials 200"
    p.add_argument("--out", default="demo_out", metavar="DIR", help="folder for the demo's files (default demo_out)")
    p.add_argument("--trials", type=int, default=200, metavar="T", help="trials in the session (default 200)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--speed", default="virtual", metavar="virtual|max|X",
                   help="virtual (default): virtual time, the same numbers for the same --seed; max (50x) or a "
                        "factor: the simulated rig on a real-time clock through the threaded client")
    p.add_argument("--restarts", type=int, default=5, help="fit restarts (default 5)")


def _measure(args, out):
    import dataclasses
    import json
    import time

    import numpy as np

    from dopa_rl.session import parse_config

    cfg, rig = parse_config(DEMO_CONFIG.format(trials=args.trials, seed=args.seed), source="demo config")
    (out / "demo_config.toml").write_text(cfg.text)
    nwb_path = out / "session.nwb"
    for p in (nwb_path, out / "session.nwb.journal", out / "session.nwb.raw"):
        p.unlink(missing_ok=True)
    virtual = str(args.speed).strip().lower() == "virtual"
    t = time.monotonic()
    if virtual:
        from dopa_rl.session.virtual import run_virtual_session
        from dopa_rl.sim.device import device_from_options

        print(f"1/4 simulated rig session: {args.trials} trials in virtual time -> {nwb_path}", flush=True)
        # the simulated rig of `dopa-rl run --device sim` (its animal seeded with the session's seed)
        dut, _ = device_from_options({"seed": str(cfg.seed), "animal": "rw"})
        result, path = run_virtual_session(cfg, rig, dut, nwb_path)
        close = lambda: None  # noqa: E731
    else:
        from dopa_rl.session import open_device, run_session
        from dopa_rl.session.runner import parse_speed, sim_retransmit_ms, sim_ring
        from dopa_rl.sim.animal import SimulatedAnimal
        from dopa_rl.testing import SimulatedDUT

        speed = parse_speed(args.speed)
        print(f"1/4 simulated rig session: {args.trials} trials at {speed:g}x real time -> {nwb_path}", flush=True)
        dut = SimulatedDUT(speed=speed, animal=SimulatedAnimal(np.random.default_rng(cfg.seed)),
                           ring_size=sim_ring(speed), retransmit_ms=sim_retransmit_ms(speed))
        close = dut.close
        try:
            result, path = run_session(cfg, rig, open_device(dut.url), nwb_path, speed=speed)
        except BaseException:
            close()
            raise
    wall = time.monotonic() - t
    try:
        if result.reason == "interrupted":   # Ctrl-C: stop here, before any fit or report is written
            raise KeyboardInterrupt
        if result.reason != "complete" or path is None:
            from dopa_rl.errors import DeviceError

            raise DeviceError(f"the simulated session ended early ({result.reason}"
                              f"{': ' + result.error if result.error else ''}); journal {result.journal}")
        if not virtual:
            time.sleep(0.05)   # (the device's last pin edges, in real time)
        evs = [line for line in result.journal.read_text().splitlines() if '"kind":"ev"' in line]
        t0, t1 = json.loads(evs[0])["t_us"], json.loads(evs[-1])["t_us"] - cfg.lick_debounce_us
        tally = {"valve_openings": sum(1 for t_, lv in dut.pin_edges("valve") if lv and t_ >= t0),
                 "lick_contacts": sum(1 for t_, lv in dut.pin_edges("lick") if lv and t0 <= t_ < t1)}
        animal = dataclasses.asdict(dut.animal.params)
    finally:
        close()
    return cfg, result, path, wall, tally, t1 - t0, {"virtual_time": virtual, "animal": animal}


def run(args) -> int:
    import json

    import numpy as np

    from dopa_rl.errors import InputError
    from dopa_rl.fit import fit
    from dopa_rl.io import nwb
    from dopa_rl.io.atomic import atomic_write_text
    from dopa_rl.models import get_model
    from dopa_rl.report.session import session_figures
    from dopa_rl.results import jsonable

    if args.trials < 20:
        raise InputError("demo: use at least --trials 20")
    from dopa_rl.commands.common import check_output_paths, make_output_folder

    check_output_paths({}, folders={"--out": args.out})   # before the session runs: one line, exit 2
    out = make_output_folder(args.out)
    cfg, result, path, wall, tally, span_us, run_info = _measure(args, out)
    with nwb.NWBSession(path) as s:
        trials, events = s.behavior(), s.events()
    n_lick_in_span = int((events["lick"] < span_us / 1e6).sum())
    rewards = int((trials["reward"] > 0).sum())
    lat = np.array(result.latencies_s) * 1e3
    print(f"    {len(trials)} trials in {wall:.1f} s; NWB: {rewards} rewards, {len(events.get('valve', []))} valve events, "
          f"{n_lick_in_span} licks; device tally: {tally['valve_openings']} valve openings, "
          f"{tally['lick_contacts']} lick contacts")
    what = ("host decision time (virtual time: TRIAL_ENDED handed to the session -> next program out, the "
            "host's computing only)" if run_info["virtual_time"] else
            "host event-to-decision latency (TRIAL_ENDED in -> next program out)")
    print(f"    {what}: p50 {np.percentile(lat, 50):.2f} ms, p99 {np.percentile(lat, 99):.2f} ms")
    cs, cm = trials[trials["trial_type"] == "CS+"], trials[trials["trial_type"] == "CS-"]
    n = max(min(len(cs) // 5, 20), 3)
    summary = {
        "trials": int(len(trials)), "wall_s": wall, "rewards": rewards, "valve_events": int(len(events.get("valve", []))),
        "licks": n_lick_in_span, "device_tally": tally, "seed": cfg.seed, "virtual_time": run_info["virtual_time"],
        # what generated the licks: the simulated animal (dopa_rl.sim.animal.AnimalParams; times in us); its
        # alpha is the learning rate the RW fit below estimates
        "simulated_animal": {"model": "rw (dopa_rl.sim.animal)", "true_parameters": run_info["animal"]},
        "latency_ms": {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99))},
        "cs_plus": {"n": int(len(cs)), f"licks_first_{n}": float(cs["licks"].iloc[:n].mean()),
                    f"licks_last_{n}": float(cs["licks"].iloc[-n:].mean()), "value_final": float(cs["value"].iloc[-1]),
                    f"rpe_outcome_rewarded_first_{n}": float(cs["rpe_outcome"][cs["reward"] > 0].iloc[:n].mean()),
                    f"rpe_outcome_rewarded_last_{n}": float(cs["rpe_outcome"][cs["reward"] > 0].iloc[-n:].mean())},
        "cs_minus": {"n": int(len(cm)), "licks_mean": float(cm["licks"].mean()) if len(cm) else None},
        "fits": {}}
    c = summary["cs_plus"]
    print(f"2/4 online RW model: CS+ value {c['value_final']:.3f} at the end; RPE at rewarded outcomes "
          f"{c[f'rpe_outcome_rewarded_first_{n}']:+.3f} (first {n}) -> {c[f'rpe_outcome_rewarded_last_{n}']:+.3f} (last {n}); "
          f"CS+ anticipatory licks {c[f'licks_first_{n}']:.2f} -> {c[f'licks_last_{n}']:.2f} per trial")
    print(f"    simulated animal: RW, alpha {run_info['animal']['alpha']:g} (true parameters in summary.json)")
    print(f"3/4 fitting RW and TD to the anticipatory licks in {path.name} ({args.restarts} restarts)")
    for name in ("rw-pavlovian", "td"):
        r = fit(get_model(name), trials, restarts=args.restarts, progress=False)
        params = {k: float(v) for k, v in r.params.iloc[0].items()}
        summary["fits"][name] = {"params": params, "loglik": float(r.loglik.iloc[0]), "aic": float(r.aic.iloc[0])}
        print(f"    {name:13s} loglik {r.loglik.iloc[0]:9.2f}  AIC {r.aic.iloc[0]:8.2f}  "
              + ", ".join(f"{k}={v:.3g}" for k, v in params.items()))
    report = out / "report"
    print(f"4/4 report in {report}/")
    data = session_figures(path, report)
    atomic_write_text(report / "figure_data.json", json.dumps(jsonable(data), allow_nan=False))
    atomic_write_text(report / "summary.json", json.dumps(jsonable(summary), indent=1, allow_nan=False))
    lines = [f"{k}: {json.dumps(v)}" for k, v in summary.items()]
    atomic_write_text(report / "summary.txt", "dopa_rl demo: measured in this run\n" + "\n".join(lines) + "\n")
    for f in ("licks_value.png", "rpe.png", "lick_raster.png", "summary.txt"):
        print(f"    {report / f}")
    return 0
