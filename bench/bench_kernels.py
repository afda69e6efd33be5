"""The rw-softmax likelihood kernel against plain C loops doing the same work, one thread, same run.

Workload: 200 subjects x 500 trials of a two-armed bandit with a reversal (bench_fit's data), 10 lanes per
subject (alpha 0.3 + 0.001 r, beta 3).  Four loops, each timed on the same lanes:

* C value + gradient: the log-likelihood and its derivatives in alpha and beta (forward mode: dQ/dalpha
  carried per option), log P(choice) from the logit difference; ``cc -O3 -march=native``;
* C value only: the same loop without the derivatives;
* ours: ``rw_choice_loglik_variant`` (the kernel ``rw-softmax`` fits with) with and without the gradient,
  and the general six-parameter kernel it replaced, all on one numba thread.

The C programs print their sums of log-likelihoods and gradients; the script checks ours agree to 1e-9
(relative) before it reports any rate.  The five loops run in turn, ``--rounds`` times (the machine is
shared: pairing keeps the ratios meaningful when its speed drifts); medians are reported.

Usage: PYTHONPATH=src python bench/bench_kernels.py [--subjects 200] [--trials 500] [--lanes 10] [--rounds 15]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_fit import simulate  # noqa: E402

C_SOURCE = r"""
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
/* 2-option RW-softmax over S subjects x T trials, R lanes per subject (alpha 0.3 + 1e-3 r, beta 3), missed
   trials (-1) skipped, values reset at session starts; mode 1: value and gradient (alpha, beta), mode 0: value only. Best of REP timings. */
int main(int argc, char **argv) {
    int S = atoi(argv[1]), T = atoi(argv[2]), R = atoi(argv[3]), mode = atoi(argv[5]), REP = atoi(argv[6]);
    FILE *f = fopen(argv[4], "rb");
    int *ch = malloc(sizeof(int) * S * T); double *rw = malloc(sizeof(double) * S * T);
    int *nt = malloc(sizeof(int) * S); unsigned char *rs = malloc(S * T);
    if (fread(ch, sizeof(int), S * T, f) != (size_t)(S * T)) return 1;
    if (fread(rw, sizeof(double), S * T, f) != (size_t)(S * T)) return 1;
    if (fread(rs, 1, S * T, f) != (size_t)(S * T)) return 1;
    if (fread(nt, sizeof(int), S, f) != (size_t)S) return 1;
    fclose(f);
    double *ll = malloc(sizeof(double) * S * R), *ga = malloc(sizeof(double) * S * R), *gb = malloc(sizeof(double) * S * R);
    double best = 1e300;
    for (int rep = 0; rep < REP; rep++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        for (int s = 0; s < S; s++) {
            for (int r = 0; r < R; r++) {
                double alpha = 0.3 + 1e-3 * r, beta = 3.0;
                double q[2] = {0.0, 0.0}, dq[2] = {0.0, 0.0}, l = 0.0, g_a = 0.0, g_b = 0.0;
                const int *c_s = ch + (size_t)s * T; const double *r_s = rw + (size_t)s * T;
                const unsigned char *z_s = rs + (size_t)s * T;
                for (int t = 0; t < nt[s]; t++) {
                    if (z_s[t]) { q[0] = q[1] = dq[0] = dq[1] = 0.0; }   /* session start */
                    int c = c_s[t];
                    if (c < 0) continue;
                    int o = 1 - c;
                    double x = beta * (q[c] - q[o]), e, po;
                    if (x >= 0) { e = exp(-x); l -= log1p(e); po = e / (1.0 + e); }
                    else { e = exp(x); l += x - log1p(e); po = 1.0 / (1.0 + e); }
                    double delta = r_s[t] - q[c];
                    if (mode) {
                        g_a += po * beta * (dq[c] - dq[o]);
                        g_b += po * (q[c] - q[o]);
                        dq[c] = (1.0 - alpha) * dq[c] + delta;
                    }
                    q[c] += alpha * delta;
                }
                ll[s * R + r] = l; ga[s * R + r] = g_a; gb[s * R + r] = g_b;
            }
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        double sec = (b.tv_sec - a.tv_sec) + 1e-9 * (b.tv_nsec - a.tv_nsec);
        if (sec < best) best = sec;
    }
    double sl = 0, sa = 0, sb = 0;
    for (int i = 0; i < S * R; i++) { sl += ll[i]; sa += ga[i]; sb += gb[i]; }
    printf("%.9f %.12e %.12e %.12e\n", best, sl, sa, sb);
    return 0;
}
"""


def build_c(folder: str, choices, rewards, resets, n_trials) -> tuple[str, str] | None:
    """Compile the C loops (the system cc, -O3 -march=native) and write their input; None without cc."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None
    src, exe, data = (os.path.join(folder, n) for n in ("rw.c", "rw", "data.bin"))
    with open(src, "w") as f:
        f.write(C_SOURCE)
    subprocess.run([cc, "-O3", "-march=native", "-o", exe, src, "-lm"], check=True)
    with open(data, "wb") as f:
        f.write(choices.astype(np.int32).tobytes())
        f.write(rewards.astype(np.float64).tobytes())
        f.write(resets.astype(np.uint8).tobytes())
        f.write(n_trials.astype(np.int32).tobytes())
    return exe, data


def c_loops(built, shape, lanes_per_subject: int, repeat: int) -> dict:
    """{"grad": (seconds, sums), "value": (seconds, sums)}: one timing (best of ``repeat``) of each C loop."""
    exe, data = built
    S, T = shape
    out = {}
    for mode, key in ((1, "grad"), (0, "value")):
        res = subprocess.run([exe, str(S), str(T), str(lanes_per_subject), data, str(mode), str(repeat)],
                             check=True, capture_output=True, text=True).stdout.split()
        out[key] = (float(res[0]), np.array([float(v) for v in res[1:]]))
    return out


def best_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    import numba

    from dopa_rl.models import kernels

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=200)
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--lanes", type=int, default=10, help="lanes per subject")
    ap.add_argument("--rounds", type=int, default=15, help="interleaved timing rounds")
    args = ap.parse_args()

    model, df, _ = simulate(args.subjects, args.trials)
    packed = model.pack(df)
    ch, rw, nt = packed.extra["choices"], packed.rewards, packed.n_trials
    S, R = packed.n_subjects, args.lanes
    lanes = np.repeat(np.arange(S, dtype=np.int64), R)
    x = np.column_stack([0.3 + 1e-3 * np.tile(np.arange(R), S), np.full(S * R, 3.0)])
    n_trials_total = float(np.sum((ch >= 0).sum(axis=1))) * R
    a = (ch, rw, packed.resets, nt, 2)
    spec = dict(asym=False, sticky=False, lapse=False)
    numba.set_num_threads(1)
    grad = lambda: kernels.rw_choice_loglik_variant(x, lanes, *a, 0.0, grad=True, **spec)
    value = lambda: kernels.rw_choice_loglik_variant(x, lanes, *a, 0.0, grad=False, **spec)
    general = lambda: kernels.rw_choice_loglik(model._theta(x), lanes, *a)
    ll, g = grad()
    value(), general()  # compile / load
    print(f"workload: {S} subjects x {args.trials} trials x {R} lanes = {n_trials_total / 1e6:.2f} M trials, "
          f"rw-softmax, 1 thread, {args.rounds} interleaved rounds (medians; ratios paired within a round); "
          f"load average {os.getloadavg()[0]:.1f}")
    tmp = tempfile.TemporaryDirectory()
    built = build_c(tmp.name, ch, rw, packed.resets, nt)
    have_c = built is not None
    if have_c:
        C = c_loops(built, ch.shape, R, 1)
        mine = np.array([ll.sum(), g[:, 0].sum(), g[:, 1].sum()])
        assert np.allclose(C["grad"][1], mine, rtol=1e-9), (C["grad"][1], mine)
        assert np.allclose(C["value"][1][:1], mine[:1], rtol=1e-9), (C["value"][1], mine)
    times = {k: [] for k in ("c_grad", "c_value", "grad", "value", "general")}
    for _ in range(args.rounds):
        if have_c:
            C = c_loops(built, ch.shape, R, 1)
            times["c_grad"].append(C["grad"][0])
            times["c_value"].append(C["value"][0])
        for key, fn in (("grad", grad), ("value", value), ("general", general)):
            times[key].append(best_time(fn, 1))
    t = {k: np.array(v) for k, v in times.items()}
    rows = [("C loop, value + gradient (cc -O3 -march=native)", "c_grad", "c_grad"),
            ("C loop, value only (cc -O3 -march=native)", "c_value", "c_value"),
            ("ours, value + gradient (rw-softmax kernel)", "grad", "c_grad"),
            ("ours, value only (rw-softmax kernel)", "value", "c_value"),
            ("ours, general 6-parameter kernel (value + gradient)", "general", "c_grad")]
    for label, key, ref in rows:
        if not t[key].size:
            continue
        rate = n_trials_total / np.median(t[key]) / 1e6
        vs = f"  {np.median(t[key] / t[ref]):.2f}x the C loop's time (paired median)" if have_c else ""
        print(f"{label:<55} {rate:7.1f} M trials/s{vs}")
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)


if __name__ == "__main__":
    main()
