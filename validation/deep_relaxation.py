"""Relaxation from both sides: is the equilibrium last hidden layer of a deep ReLU network sparse or
analog-with-outliers? (THEORY §4, §5, §7; a chain-only test that needs no theory.)

Per seed, one prior-start chain of ``pre`` sweeps (step adapted by dual averaging) gives a state θ₀
and a step; from θ₀ two chains continue with that step fixed, the same moves (collapsed MALA sweep,
a | W exactly, ``moves`` last-layer pair rotations per sweep, :mod:`validation.deep_outliers`) and
the same random numbers:

* ``"prior"``: from θ₀ itself;
* ``"planted"``: from θ₀ with ``per_class`` one-class outliers per class carrying the share ``share``
  of each class's output (:func:`validation.deep_planted.plant_sparse`).

Optionally both chains (and the pre-chain, from its sweep ``pre // 2`` on, as in ``validate``) also get
``contrast_reflections`` last-layer class-contrast reflections per sweep (:mod:`validation.reflections`)
and ``layer_moves`` passes of the moves of every layer below the last at fixed next-layer preactivations
(:mod:`validation.layer_moves`: pCN, class-contrast reflections, sign flips where φ has the symmetry, and
``layer_pairs`` pair rotations per sweep, :mod:`validation.layer_pairs`), all exact for any φ.

Every ``every`` sweeps the last layer's outliers (readout norm > 4 × median) are recorded: their
number, codes and share of each correct-class output, and the top-5 % output share; every sweep the
observables f, U, K_ℓ (:mod:`validation.deep_observables`). If the planted chains decay to the
prior-start chains' composition, and the prior-start chains do not grow sparse, the equilibrium is
not the planted sparse state; if both meet at a sparse state, it is sparse; if they stay apart, the
sign of the drift of the share says which way each side moves (:func:`summarise_relaxation`).
"""
from __future__ import annotations

import time

import numpy as np

from theory.checks import check_choice, check_int
from theory.spec import ModelSpec

from .deep_chain import run_deep_chain
from .deep_network import DeepNetwork
from .deep_observables import split_vector
from .deep_outliers import LastLayerOutliers, lower_summary
from .deep_planted import plant_sparse
from .diagnostics import ess, rhat_rank
from .layer_moves import LayerMoves
from .reflections import Reflections

__all__ = ["KINDS", "RECORD_EVERY", "relaxation_pair", "relaxation_chain", "summarise_relaxation"]

KINDS = ("prior", "planted")


#: record the last layer's outliers every this many sweeps (the default of :func:`relaxation_pair`)
RECORD_EVERY = 10


def _hooks(spec, layers, moves, every, contrasts, passes, pairs, start, lower):
    """(the outlier recorder, the hook chain: layer moves → last-layer contrast reflections → recorder)."""
    record = LastLayerOutliers(moves, every=every, lower=lower)
    hook = Reflections(0, spec.nonlinearity, after=record, contrasts=contrasts, contrast_from=start) if contrasts \
        else record
    if passes or pairs:
        hook = LayerMoves(passes, layers, spec.nonlinearity, after=hook, start=start, pairs=pairs)
    return record, hook


def _move_summaries(hook) -> dict:
    """The acceptance blocks of the exact moves in the hook chain ("layer_moves", "reflections")."""
    out = {}
    while hook is not None and not isinstance(hook, LastLayerOutliers):
        out["layer_moves" if isinstance(hook, LayerMoves) else "reflections"] = hook.summary()
        hook = hook.after
    return out


def relaxation_pair(spec: ModelSpec, width: int, layers: int, seed: int, kinds=KINDS, *, sweeps: int = 3000,
                    pre: int = 300, moves: int = 20, share: float = 0.8, per_class: int = 1,
                    every: int = RECORD_EVERY, contrast_reflections: int = 0, layer_moves: int = 0,
                    layer_pairs: int = 0, lower: bool = False) -> list:
    """The chains of the module docstring for one seed, one per kind in ``kinds``, continued from one
    pre-chain; each a dict {"kind", "seed", "rows" (count, top share, share_c per record), "codes" (outlier
    code counts), "draws" (sweeps × observables), "acceptance", "pair_acceptance", "planted" (the planted
    neurons, or None), "step_size", "cpu_seconds" (its continuation plus an equal part of the pre-chain)},
    with ``lower`` also "extremes", "lower_rows" and "lower_codes" (:class:`LastLayerOutliers`), and the
    acceptance blocks "layer_moves" / "reflections" of the moves asked for."""
    kinds = tuple(check_choice("kind", k, KINDS) for k in kinds)
    check_int("pre", pre, 1)
    opts = dict(contrasts=check_int("contrast_reflections", contrast_reflections, 0),
                passes=check_int("layer_moves", layer_moves, 0), pairs=check_int("layer_pairs", layer_pairs, 0))
    t0 = time.process_time()
    pre_run = run_deep_chain(spec, width, layers, pre + 1, pre, seed=seed,
                             after_sweep=_hooks(spec, layers, moves, every, start=pre // 2, lower=False, **opts)[1])
    pre_cpu = (time.process_time() - t0) / max(len(kinds), 1)
    out = []
    for kind in kinds:
        t1 = time.process_time()
        theta, planted = pre_run["theta"], None
        if kind == "planted":
            net = DeepNetwork(spec, width, layers)
            planted = plant_sparse(np.random.default_rng([seed, width, 17]), net, theta, share, per_class)
            theta = planted.theta
        record, hook = _hooks(spec, layers, moves, every, start=0, lower=lower, **opts)
        run = run_deep_chain(spec, width, layers, sweeps, 0, seed=seed + 1, step_size=pre_run["step_size"],
                             adapt=False, theta0=theta, after_sweep=hook)
        summ = record.summary()
        extra = {k: summ[k] for k in ("extremes", "lower_rows", "lower_codes") if k in summ}
        out.append({"kind": kind, "seed": seed, "rows": np.array(summ["rows"]), "codes": summ["codes"],
                    "draws": run["draws"], "acceptance": run["acceptance"], "pair_acceptance": summ["acceptance"],
                    "planted": None if planted is None else planted.to_json(), "step_size": pre_run["step_size"],
                    "cpu_seconds": pre_cpu + time.process_time() - t1, **extra, **_move_summaries(hook)})
    return out


def relaxation_chain(spec: ModelSpec, width: int, layers: int, seed: int, kind: str, **kw) -> dict:
    """The chain of one ``kind`` of :func:`relaxation_pair` (its pre-chain run for it alone)."""
    return relaxation_pair(spec, width, layers, seed, (kind,), **kw)[0]


def _window_stats(rows: np.ndarray) -> dict:
    """Mean count, top share and share_c of records (chains, n, 2 + m)."""
    return {"count": float(rows[..., 0].mean()), "top_share": float(rows[..., 1].mean()),
            "share": rows[..., 2:].mean(axis=tuple(range(rows.ndim - 1))).tolist()}


def _rhat_groups(draws: np.ndarray, m: int, layers: int) -> dict:
    """Largest rank-normalised split-R̂ of f, U and each layer's kernel (diagonal and blocks) over ``draws``
    (chains × n × observables)."""
    r = split_vector(rhat_rank(draws), m, layers)
    out = {"f": float(np.max(r["outputs"])), "U": float(np.max(r["readout_moment"]))}
    for ell, lay in enumerate(r["layers"], start=1):
        out[f"K{ell}"] = float(max(np.max(lay["kernel_diagonal"]), np.max(lay["kernel_blocks"])))
    return out


def summarise_relaxation(chains: list, m: int, layers: int, windows: int = 4, keep: float = 0.5) -> dict:
    """Per kind: the outlier statistics per window (``windows`` equal parts of the records, each chain's
    mean too), over the last ``keep`` of the records their mean, the drift of the share and count
    (last window − first window), code fractions, f_cc and the last layer's kernel diagonal (mean over
    chains of the kept draws), R̂ and bulk ESS of the records and of the observables; and, over the
    chains of both kinds together, the R̂ of the records (≈ 1 when the two sides have met). Also the largest
    R̂ of f, U and each K_ℓ ("rhat_groups") and, for chains run with ``lower``, the lower layers' outlier
    statistics ("lower", :func:`lower_summary`)."""
    out = {}
    kept_rows = {}
    for kind in KINDS:
        cs = [c for c in chains if c["kind"] == kind]
        if not cs:
            continue
        n = min(len(c["rows"]) for c in cs)
        rows = np.array([c["rows"][:n] for c in cs])  # chains × n × (2 + m)
        parts = np.array_split(np.arange(n), windows)
        k0 = n - max(int(round(keep * n)), 4)
        kept_rows[kind] = rows[:, k0:]
        nd = min(len(c["draws"]) for c in cs)
        draws = np.array([c["draws"][nd - int(keep * nd):nd] for c in cs])
        mean = split_vector(draws.mean(axis=(0, 1)), m, layers)
        per_chain = [split_vector(d.mean(axis=0), m, layers) for d in draws]
        codes: dict = {}
        for c in cs:
            for k, v in c["codes"].items():
                codes[k] = codes.get(k, 0) + v
        tot = sum(codes.values())
        win = [_window_stats(rows[:, p]) for p in parts]
        out[kind] = {
            "chains": len(cs), "records": n,
            "windows": win,
            "windows_per_chain": [[_window_stats(r[p]) for p in parts] for r in rows],
            "kept": _window_stats(rows[:, k0:]),
            "drift": {"count": win[-1]["count"] - win[0]["count"],
                      "share": (np.array(win[-1]["share"]) - np.array(win[0]["share"])).tolist()},
            "code_fractions": {k: v / tot for k, v in sorted(codes.items())} if tot else {},
            "f_cc": np.diag(mean["outputs"]).tolist(),
            "f_cc_per_chain": [np.diag(p["outputs"]).tolist() for p in per_chain],
            "U_diag": np.diag(mean["readout_moment"]).tolist(),
            "last_kernel_diagonal": mean["layers"][-1]["kernel_diagonal"].tolist(),
            "first_kernel_diagonal": mean["layers"][0]["kernel_diagonal"].tolist(),
            "rhat_rows": rhat_rank(rows[:, k0:]).tolist() if len(cs) > 1 else None,
            "ess_rows": ess(rows[:, k0:]).tolist() if len(cs) > 1 else None,
            "rhat_observables_max": float(np.max(rhat_rank(draws))) if len(cs) > 1 else None,
            "rhat_last_kernel_max": (float(np.max(np.concatenate([
                np.ravel(split_vector(rhat_rank(draws), m, layers)["layers"][-1][k])
                for k in ("kernel_diagonal", "kernel_blocks")]))) if len(cs) > 1 else None),
            "rhat_groups": _rhat_groups(draws, m, layers) if len(cs) > 1 else None,
            **({"lower": lower_summary(cs, keep)} if all("extremes" in c for c in cs) else {}),
            "acceptance": float(np.mean([c["acceptance"] for c in cs])),
            "pair_acceptance": float(np.mean([c["pair_acceptance"] or 0.0 for c in cs])),
            "cpu_seconds": [c["cpu_seconds"] for c in cs],
            "planted": [c["planted"] for c in cs if c["planted"] is not None],
        }
    if len(kept_rows) == 2:
        n = min(r.shape[1] for r in kept_rows.values())
        both = np.concatenate([r[:, -n:] for r in kept_rows.values()], axis=0)
        out["rhat_rows_both_sides"] = rhat_rank(both).tolist()
        out["gap"] = {"count": out["planted"]["kept"]["count"] - out["prior"]["kept"]["count"],
                      "share": (np.array(out["planted"]["kept"]["share"])
                                - np.array(out["prior"]["kept"]["share"])).tolist(),
                      "top_share": out["planted"]["kept"]["top_share"] - out["prior"]["kept"]["top_share"]}
    return out
