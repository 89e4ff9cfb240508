"""Phase diagrams of coding schemes in the large-P limit, with the located boundaries (THEORY §4).

Each grid point of (temperature T, σ̄_a) at class fractions 1/2, 1/4, 1/4 (σ_1 = 1) is labelled by
the coding scheme of the large-P solution (:func:`solvers.large_p.phase_diagram.coding_scheme`: number of
readout groups, their codes, the ReLU outliers' codes), and the transitions located by bisection
are joined into boundary curves (:func:`solvers.large_p.phase_diagram.phase_diagram`), drawn by
:func:`figures.phase_diagram.plot_phase_diagram`.

* sigmoid (normcdf), quick and full mode: symmetric at high T, several groups with two-class
  codes below the symmetry-breaking line;
* ReLU, quick and full mode (condensate solves, warm-started along each row by the KKT Newton of
  the condensate system, :func:`solvers.large_p.phase_diagram.warm_point`): symmetric bulk, with
  outlier neurons (the condensate: O(√N) readouts along a few directions) whose codes change
  from one class each (sparse coding) to fewer directions at high T. Rows on which the warm-started
  row solver of :mod:`solvers.large_p.phase_diagram` fails are filled point by point with independent
  solves (:func:`solvers.large_p.solve.solve_large_p`); they carry labels but no located boundary.

The sweep files go to ``out_dir/data`` in full mode (rerunning resumes) and to a temporary folder in
quick mode.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
import tempfile

import numpy as np

from . import common
from .style import write_sidecar

__all__ = ["main", "GRIDS", "region", "caption"]

#: (x values, y values, refine, workers) per mode; x = temperature T, y = σ̄_a (at least 60 × 60 in full mode)
GRIDS = {
    True: {"normcdf": (np.geomspace(0.02, 1.0, 6), np.array([0.5, 1.0, 1.5, 2.0]), 4, 1),
           "relu": (np.geomspace(0.02, 1.0, 6), np.array([0.5, 1.0, 1.5, 2.0]), 4, 1)},
    False: {"normcdf": (np.geomspace(0.01, 1.0, 60), np.linspace(0.5, 2.0, 60), 8, 2),
            "relu": (np.geomspace(0.01, 1.0, 60), np.linspace(0.5, 2.0, 60), 6, 2)},
}
SCRIPT = "fig_phase_diagram"


def region(label) -> str:
    """The legend text of a coding-scheme label of :func:`solvers.large_p.coding.coding_scheme`:
    "symmetric: all neurons alike", "k groups, codes 110 101 011" (each distinct code once; a code is
    the set of classes on which the group is active), "+ outliers ..." for the ReLU condensate."""
    if label is None:
        return None
    text = str(label)
    if text == "symmetric":
        return "symmetric: all neurons alike"
    head, _, outliers = text.partition(" + outliers ")
    if head.startswith("broken, "):
        groups, _, codes = head[len("broken, "):].partition(": ")
        distinct = list(dict.fromkeys(codes.split()))
        head = f"{groups}, code{'s' if len(distinct) > 1 else ''} {' '.join(distinct)}"
    elif head == "symmetric":
        head = "symmetric bulk"
    return head + (f" + outliers {' '.join(dict.fromkeys(outliers.split()))}" if outliers else "")


def _fill_missing(diagram, problem, x_name, y_name):
    """Records of the diagram, with rows the row solver did not finish filled by independent solves."""
    from solvers.large_p.solve import solve_large_p
    from solvers.large_p.phase_diagram import coding_scheme

    records = diagram.records()
    for i, row in enumerate(diagram.rows):
        if row is not None:
            continue
        y = float(diagram.y[i])
        common.log(f"phase diagram {problem.nonlinearity}: row {y_name} = {y:g} by independent solves")
        for x in diagram.x:
            p = problem.with_parameter(x_name, float(x)).with_parameter(y_name, y)
            try:
                sol = solve_large_p(p)
                res = {"label": coding_scheme(sol)["label"], "converged": bool(sol.converged)}
                status = "ok" if sol.converged else "error"
            except Exception as exc:  # noqa: BLE001 - a failed point is shown blank, the reason logged
                common.log(f"  {x_name} = {x:g}: {type(exc).__name__}: {exc}")
                res, status = {}, "error"
            records.append({"point": {x_name: float(x), y_name: y}, "status": status, "result": res})
    return records


def main(out_dir, quick: bool = True) -> list:
    from figures.phase_diagram import plot_phase_diagram
    from solvers.large_p.problem import LargePProblem
    from solvers.large_p.phase_diagram import phase_diagram

    out = Path(out_dir)
    paths = []
    tmp = tempfile.TemporaryDirectory() if quick else None
    data = Path(tmp.name) if quick else out / "data"
    try:
        for nl, (xs, ys, refine, workers) in GRIDS[bool(quick)].items():
            common.log(f"phase diagram {nl}: {len(ys)} × {len(xs)} grid")
            problem = LargePProblem(nonlinearity=nl, sigma_w=1.0, sigma_a_bar=1.0, temperature=0.1,
                                    class_fractions=(0.5, 0.25, 0.25))
            d = phase_diagram(problem, "temperature", xs, "sigma_a_bar", ys, data / f"phase-{nl}.jsonl",
                              workers=workers, backend="serial" if workers == 1 else "process", refine=refine,
                              progress=False)
            records = _fill_missing(d, problem, "temperature", "sigma_a_bar")
            n_b = len(d.boundary_points)
            png = plot_phase_diagram(
                records, "temperature", "sigma_a_bar", lambda rec: region(rec.get("result", {}).get("label")),
                boundaries=d.boundary_curves(), out=out / f"fig_phase_{nl}.png", xscale="log",
                title=f"{common.DISPLAY[nl]}, large P")
            paths.append(png)
            counts = Counter(region(r["result"].get("label")) for r in records if r["result"].get("label"))
            kinds = Counter(b["kind"] for b in d.boundary_curves() if len(b["x"]) >= 2)
            write_sidecar(png, SCRIPT, quick, {
                "nonlinearity": nl, "grid": [len(ys), len(xs)], "temperature": [float(xs[0]), float(xs[-1])],
                "sigma_a_bar": [float(ys[0]), float(ys[-1])], "class_fractions": [0.5, 0.25, 0.25],
                "sigma_w": 1.0, "refine": refine, "workers": workers, "theory": "large P"},
                {"regions": dict(counts), "points": len(records),
                 "failed": sum(1 for r in records if not r["result"].get("label")),
                 "located_transitions": n_b, "curves": dict(kinds)})
            common.log(f"phase diagram {nl}: {len(counts)} schemes, {n_b} located transitions")
    finally:
        if tmp is not None:
            tmp.cleanup()
    return paths


def caption(side: dict) -> str:
    """The gallery caption of one phase-diagram sidecar."""
    st, nb = side["settings"], side["numbers"]
    regions = "; ".join(f"{k} ({v} point{'s' if v != 1 else ''})"
                        for k, v in sorted(nb["regions"].items(), key=lambda kv: -kv[1]))
    return (f"Large-P coding schemes of {common.DISPLAY[st['nonlinearity']]} networks, class fractions ½, ¼, ¼, "
            f"σ_1 = 1, on a {st['grid'][0]} × {st['grid'][1]} grid of σ̄_a ∈ [{st['sigma_a_bar'][0]:g}, "
            f"{st['sigma_a_bar'][1]:g}] and T ∈ [{st['temperature'][0]:g}, {st['temperature'][1]:g}] (log). "
            f"Regions: {regions}; {nb['failed']} points without a solution. Black curves (legend): "
            f"{', '.join(f'{k} ×{v}' for k, v in nb['curves'].items()) or 'none'}; "
            f"{nb['located_transitions']} transition points located by bisection in T between neighbouring grid points. "
            f"A code lists the classes on "
            f"which a group of neurons is active (1) or silent (0)." + _OUTLIERS.get(st["nonlinearity"], ""))


#: what the ReLU labels mean (captions)
_OUTLIERS = {"relu": (" Outliers: the condensate, a few neurons with readouts of order √N along the listed "
                      "directions, each active on the classes of its code. Crossovers mark where an outlier "
                      "direction's mass reaches zero.")}


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(main(sys.argv[1] if len(sys.argv) > 1 else "codingschemes_out/figures", "--full" not in sys.argv))
