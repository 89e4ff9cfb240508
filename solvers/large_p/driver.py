"""The driver of the large-P continuation (THEORY §4): follows branches and acts on their special points.

Special points of a followed branch (located by :mod:`solvers.special_points`) are acted on:

* ``"branch-point"`` on a global branch: switch branches there
  (:func:`~solvers.continuation.switch_branch`), probe both directions, recognise symmetry images
  (:func:`~solvers.large_p.symmetry.symmetry_group`) and follow the new branches that are global;
  a degenerate branch point (null space of [F_x F_p] larger than 2) is re-solved instead;
* ``"stability-change"`` or ``"fold"`` where the branch stops being global: re-solve with
  :func:`~solvers.large_p.solve.solve_large_p` just past the point (offset δ, growing ×4 up to 4
  times) and continue with the new n; a fold (a merge) is then located on the re-solved
  solution continued back.
"""
from __future__ import annotations

from dataclasses import replace
import math

import numpy as np

from solvers.progress import report
from solvers.continuation import SymmetryGroup, branches_equivalent, continue_branch, switch_branch
from solvers.large_p.solve import LargePSolution, solve_large_p
from solvers.large_p.branches import branch_system
from solvers.large_p.problem import parameter_range
from solvers.large_p.records import LargePBranchTrace, LargePSpecialPoint
from solvers.large_p.report import describe
from solvers.large_p.records import trace_from_branch
from solvers.large_p.stability import BranchEvaluator, count_occupied
from solvers.large_p.symmetry import symmetry_group

__all__ = ["Driver"]

class Driver:
    def __init__(self, problem, parameter, p_from, p_to, method, options, progress, follow_constrained,
                 resolve_offset, max_traces, probe_steps, global_check):
        self.problem, self.parameter, self.p_from, self.p_to = problem, parameter, p_from, p_to
        self.method, self.options, self.user_progress = method, options, progress
        self.follow = follow_constrained
        self.sign = 1.0 if p_to > p_from else -1.0
        self.resolve_offset = resolve_offset if resolve_offset is not None else 1e-3 * abs(p_to - p_from)
        self.max_traces, self.probe_steps, self.global_check = max_traces, probe_steps, global_check
        self.traces, self.specials, self.notes = [], [], []
        self.evaluators, self.groups = {}, {}
        self.n_points = 0
        self.stopped = False

    # -- per-n machinery
    def evaluator(self, n) -> BranchEvaluator:
        if n not in self.evaluators:
            self.evaluators[n] = BranchEvaluator(branch_system(self.problem, n, self.parameter),
                                            global_check=self.global_check)
        return self.evaluators[n]

    def group(self, n) -> SymmetryGroup:
        if n not in self.groups:
            self.groups[n] = symmetry_group(self.problem, n, self.parameter)
        return self.groups[n]

    def callback(self, label, n):
        state = {"p_prev": None, "reason": None}

        def cb(event):
            self.n_points += 1
            info = event.values
            p, st = info["parameter"], int(info["stability"])
            if self.user_progress is not None:
                extra = {**info, "branch": label, "n_branches": n, "kind": "global" if st == 0 else "constrained",
                         "special_points": len(self.specials)}
                if not report(self.user_progress, "continuation", self.n_points, None, **extra):
                    state["reason"] = "stopped by the progress callback"
                    self.stopped = True
                    return False
            if not self.follow:
                if st > 0:
                    state["reason"] = f"stopped: the branch is no longer the global solution (stability {st})"
                    return False
                if state["p_prev"] is not None and (p - state["p_prev"]) * self.sign < 0:
                    state["reason"] = "stopped: the branch turned back in the parameter"
                    return False
            state["p_prev"] = p
            return True

        return cb, state

    def add(self, trace: LargePBranchTrace) -> int:
        self.traces.append(trace)
        return len(self.traces) - 1

    def wrap(self, ev, br, label, origin, state) -> LargePBranchTrace:
        status, message = br.status, br.message
        if br.status == "stopped" and state["reason"]:
            status, message = ("stopped" if self.stopped else "left-global"), state["reason"] + f" at p = {br.p[-1]:.10g}"
        return trace_from_branch(ev, br, label, origin, status, message)

    # -- tracing
    def follow_from(self, sol: LargePSolution, p0: float, label: str, origin: dict):
        n = sol.n_branches
        ev = self.evaluator(n)
        x0 = ev.system.pack(sol.t, np.array([b.a for b in sol.branches]), [b.occupation for b in sol.branches])
        cb, state = self.callback(label, n)
        try:
            br = continue_branch(ev.residual, x0, p0, self.p_to, method=self.method,
                                 jacobian=ev.jacobian, stability=ev.stability, progress=cb, label=label,
                                 options=self.options)
        except (ValueError, np.linalg.LinAlgError) as exc:
            self.notes.append(f"could not continue the {n}-branch solution from {self.parameter} = {p0:.10g}: {exc}")
            return None
        return self.add(self.wrap(ev, br, label, origin, state))

    def switch(self, parent_idx, sp, direction, probe):
        parent = self.traces[parent_idx]
        ev = self.evaluator(parent.n_branches)
        label = f"{parent.label}>bp@{sp.p:.6g}{'+' if direction > 0 else '-'}"
        cb, state = self.callback(label, parent.n_branches)
        point = replace(sp, tangent=parent.raw.tangent[max(sp.index, 0)])  # regular tangent just before the point
        opts = replace(self.options, max_steps=self.probe_steps) if probe else self.options
        window = (min(self.p_from, self.p_to), max(self.p_from, self.p_to))
        br = switch_branch(ev.residual, parent.raw, point, directions=(direction,),
                           jacobian=ev.jacobian, stability=ev.stability, progress=cb, p_range=window,
                           options=opts)[0]
        origin = {"kind": "switched", "parent": parent.label, "parent_index": parent_idx, "parameter": sp.p,
                  "direction": direction, "sigma_min": br.origin.get("sigma_min")}
        tr = self.wrap(ev, br, label, origin, state)
        if probe and br.status == "max-steps":
            tr = replace(tr, status="probe", message=f"probe of {self.probe_steps} steps (a symmetry image or not global)")
        return tr

    def duplicate_of(self, tr: LargePBranchTrace):
        group = self.group(tr.n_branches)
        for j, other in enumerate(self.traces):
            if other.n_branches != tr.n_branches or other.raw is None or other.duplicate_of is not None:
                continue
            g = branches_equivalent(other.raw, tr.raw, group, tol=1e-6)
            if g is not None:
                return j, g
        return None

    def forward_global(self, tr: LargePBranchTrace) -> bool:
        """The trace leaves its start as the global solution, moving towards p_to."""
        raw = tr.raw
        return (len(raw.p) > 1 and int(raw.stability[1]) == 0 and (raw.p[1] - raw.p[0]) * self.sign > 0)

    def resolve(self, p_star, t_guess):
        notes = []
        for k in range(5):
            p = p_star + self.sign * self.resolve_offset * 4.0**k
            if (p - self.p_to) * self.sign >= 0:
                notes.append(f"{self.parameter} = {p:.6g} is past the end {self.p_to:g}")
                break
            sol = solve_large_p(self.problem.with_parameter(self.parameter, p), t0=t_guess)
            if sol.converged and sol.kind == "global":
                return p, sol, notes
            notes.append(f"solve_large_p at {self.parameter} = {p:.8g}: {sol.message[:160]}")
        return None, None, notes

    def simple_branch_point(self, ev, sp) -> bool:
        Fx, Fp = ev.system.jacobian(sp.x, sp.p)
        s = np.linalg.svd(np.column_stack([Fx, Fp]), compute_uv=False)
        return bool(s[-2] > 1e-6 * s[0] and s[-2] > 30.0 * s[-1])

    # -- special points
    def handle(self, idx):
        tr = self.traces[idx]
        ev = self.evaluator(tr.n_branches)
        queue = []
        for sp in tr.raw.special_points:
            info = describe(ev, sp, tr.raw, self.parameter, self.problem)
            rec = LargePSpecialPoint(
                kind=sp.kind, parameter=float(sp.p), bracket=tuple(sorted(map(float, sp.bracket_p))),
                bracket_arclength=tuple(map(float, sp.bracket)), width=float(sp.width), converged=bool(sp.converged),
                residual=float(sp.residual_norm), branch=tr.label, branch_index=idx, description=info["description"],
                n_occupied_before=info["n_occupied_before"], n_occupied_after=info["n_occupied_after"],
                n_branches_before=tr.n_branches, n_branches_after=tr.n_branches,
                stability_before=int(sp.stability_before), stability_after=int(sp.stability_after),
                unstable_directions=info["unstable_directions"], classes=info["classes"], formula=info["formula"],
                state=info["state"], point=sp)
            self.specials.append(rec)
            leaves = sp.stability_before == 0 and (sp.stability_after > 0 or sp.kind == "fold")
            if not leaves or self.stopped:
                rec.note = ("the branch was already constrained" if sp.stability_before > 0 else
                            "the continued branch stays the global solution")
                continue
            if len(self.traces) >= self.max_traces:
                rec.action, rec.note = "failed", f"max_traces = {self.max_traces} reached"
                continue
            followed = []
            if sp.kind == "branch-point":
                if self.simple_branch_point(ev, sp):
                    followed = self.switch_at(idx, sp, rec, queue)
                else:
                    rec.note = "degenerate branch point (null space of [F_x F_p] larger than 2): not switched; "
            if followed:
                continue
            self.resolve_at(tr, sp, rec, queue)
        return queue

    def switch_at(self, idx, sp, rec, queue):
        followed = []
        for direction in (1, -1):
            try:
                probe = self.switch(idx, sp, direction, probe=True)
            except (ValueError, np.linalg.LinAlgError) as exc:
                rec.note += f"switching ({direction:+d}) failed: {exc}; "
                continue
            dup = self.duplicate_of(probe)
            if dup is None and self.forward_global(probe):
                full = self.switch(idx, sp, direction, probe=False)
                j = self.add(full)
                rec.children.append(full.label)
                followed.append(j)
                queue.append(j)
                continue
            if dup is not None:
                probe = replace(probe, duplicate_of=dup[0], symmetry_action=dup[1], message=(
                    f"symmetry image of trace {dup[0]} ({self.traces[dup[0]].label}) under action "
                    f"{dup[1]} of the group ({self.group(probe.n_branches).order_note})"))
            self.add(probe)
            rec.children.append(probe.label)
        if followed:
            first = self.traces[followed[0]]
            rec.action = "switched"
            rec.n_occupied_after = int(first.n_occupied[1])
            rec.n_branches_after = first.n_branches
            dups = [t for t in self.traces if t.label in rec.children and t.duplicate_of is not None]
            rec.note += (f"followed {len(followed)} new branch(es)"
                         + (f"; {len(dups)} switched branch(es) recognised as symmetry images" if dups else ""))
            if len(followed) > 1:
                a, b = self.traces[followed[0]], self.traces[followed[1]]
                k = min(len(a), len(b)) - 1
                same_t = k > 0 and np.max(np.abs(a.t[1:k + 1] - b.t[1:k + 1])) < 1e-6 * (1 + np.max(np.abs(a.t)))
                rec.note += ("; the followed branches have the same field t (and f) but different readouts/"
                             "occupations: the global solution is degenerate (occupations of the sign codes are "
                             "not unique, as for m >= 4)" if same_t else
                             "; the followed branches are distinct solutions not related by the known symmetries")
        return followed

    def resolve_at(self, tr, sp, rec, queue):
        t_guess = self.evaluator(tr.n_branches).system.unpack(sp.x)[0]
        p, sol, notes = self.resolve(float(sp.p), t_guess)
        if sol is None:
            rec.action = "failed"
            rec.note += "re-solve past the point failed: " + "; ".join(notes)
            return
        if sp.kind == "fold":
            self.refine_merge(tr, sp, rec, sol, p)
        label = f"{tr.label}>re@{p:.6g}"
        j = self.follow_from(sol, p, label, {"kind": "re-solved", "parent": tr.label, "parameter": p,
                                             "special_point": float(sp.p), "message": sol.message})
        rec.action, rec.resolved_at = "re-solved", float(p)
        rec.n_branches_after = sol.n_branches
        rec.n_occupied_after = count_occupied(np.array([b.a for b in sol.branches]),
                                           np.array([b.occupation for b in sol.branches]), self.problem.phi.odd)
        rec.note += (f"the {tr.n_branches}-branch system no longer describes the global solution: re-solved with "
                     f"solve_large_p at {self.parameter} = {p:.8g} (offset {abs(p - sp.p):.2e} past the point), "
                     f"continued with n = {sol.n_branches}")
        if notes:
            rec.note += " (" + "; ".join(notes) + ")"
        if j is None:
            rec.action = "failed"
        else:
            rec.children.append(label)
            queue.append(j)

    def refine_merge(self, tr, sp, rec, sol, p_past):
        """Locate a merge (fold of the followed n-branch solution) as the split point of the re-solved
        n'-branch solution: continue it back from ``p_past`` until it stops being global; the traced part is
        kept (it is the global solution between the merge and ``p_past``)."""
        n = sol.n_branches
        ev = self.evaluator(n)
        x0 = ev.system.pack(sol.t, np.array([b.a for b in sol.branches]), [b.occupation for b in sol.branches])
        i0 = max(0, min(sp.index, len(tr.raw.p) - 1))
        p_back = float(tr.raw.p[i0]) - self.sign * 4.0 * abs(p_past - float(sp.p))
        lo_b, hi_b, _ = parameter_range(self.parameter, self.problem.m)
        p_back = min(max(p_back, lo_b + 1e-12 * max(1.0, abs(p_past))), hi_b - 1e-12 if math.isfinite(hi_b) else p_back)
        label = f"{tr.label}>merge@{p_past:.6g}"

        def cb(event):
            self.n_points += 1
            return int(event.values["stability"]) == 0

        try:
            br = continue_branch(ev.residual, x0, p_past, p_back, method="arclength", jacobian=ev.jacobian,
                                 stability=ev.stability, progress=cb, label=label, options=self.options)
        except (ValueError, np.linalg.LinAlgError) as exc:
            rec.note += f"merge not refined ({exc}); "
            return
        hits = [q for q in br.special_points if q.stability_before == 0 and q.stability_after > 0]
        back = trace_from_branch(ev, br, label, {"kind": "merge-refinement", "parent": tr.label,
                                                  "parameter": p_past}, "left-global" if hits else br.status,
                                  "continued back from the re-solve point to locate the merge")
        self.add(back)
        if not hits:
            rec.note += "merge not refined (no stability change of the re-solved solution found); "
            return
        q = hits[0]
        rec.state["detected"] = {"parameter": rec.parameter, "bracket": rec.bracket, "converged": rec.converged}
        rec.parameter, rec.bracket = float(q.p), tuple(sorted(map(float, q.bracket_p)))
        rec.bracket_arclength, rec.width = tuple(map(float, q.bracket)), float(q.width)
        rec.converged, rec.residual, rec.point = bool(q.converged), float(q.residual_norm), q
        info = describe(ev, q, br, self.parameter, self.problem)
        rec.formula = rec.formula or info["formula"]
        rec.classes = rec.classes or info["classes"]
        rec.unstable_directions = rec.unstable_directions or info["unstable_directions"]
        rec.description += (f"; located as the point where the re-solved {n}-branch solution, continued back, "
                            f"stops being global ({info['description']})")
        rec.note += f"merge located on the re-solved {n}-branch solution (trace {label}); "

    def run(self, start: LargePSolution):
        first = self.follow_from(start, self.p_from, "start", {"kind": "start", "parameter": self.p_from,
                                                                "message": start.message})
        queue = [] if first is None else [first]
        while queue:
            queue += self.handle(queue.pop(0))
