"""The large-P problem of THEORY §4: the action S(a; t) and its derivatives.

Setting (THEORY §4; van Meegen & Sompolinsky, Nat. Commun. 16, 3354 (2025)):
the readout prior is scaled with the data, σ_a² = σ̄_a²/P, the class
fractions ρ_c = P_c/P are fixed and P → ∞. At finite P the single-neuron
measure of THEORY §3 is exactly

    p_t(a) ∝ N(a; 0, σ̄_a²/P · I_m) Π_c Z(t_c·a)^{P_c} ∝ exp(P · S(a; t)),
    S(a; t) = −||a||² / (2σ̄_a²) + Σ_c ρ_c ψ(t_c·a),                    (4.1)

with ψ(g) = log E_{h~N(0,σ_1²)} e^{gφ(h)}. So the readout a of a neuron is
O(1) (not O(P^{-1/2})) under the tilted measure, Φ(t)/P → max_a S(a; t), and
the finite-P observables f = E_t[a ψ'], U = E_t[a aᵀ], the kernel, and the
field t itself are directly comparable with their P → ∞ limits in the same
units (no rescaling). The finite-P dual value G(t*) (``SolveResult.free_energy``)
divided by P tends to G∞(t*) = max_a S − Σ_c ρ_c t_cc + (T/2) Σ_c ρ_c ||t_c||².

Derivatives used throughout (g_c = t_c·a, ψ_k = ψ^{(k)}(g_c)):

    ∇_a S   = −a/σ̄_a² + Σ_c ρ_c ψ'(g_c) t_c
    ∇_a² S  = −I/σ̄_a² + Σ_c ρ_c ψ''(g_c) t_c t_cᵀ
    ∂S/∂t_cs = ρ_c ψ'(g_c) a_s                 (envelope: d max S/dt)
    ∂²S/∂t_cs ∂t_c's' = δ_cc' ρ_c ψ''(g_c) a_s a_s'
    ∂²S/∂a_r ∂t_cs = ρ_c [ψ'(g_c) δ_rs + ψ''(g_c) t_cr a_s]

:class:`LargePProblem` validates the parameters and evaluates these
vectorised over many points a at once.
"""
from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np

from theory.checks import check_float
from theory.nonlinearities import Nonlinearity, get_nonlinearity
from theory.psi import PsiTable, psi_table
from theory.spec import ModelSpec, SpecError, positive_float

__all__ = ["LargePProblem", "PARAMETERS", "parameter_name", "canonical_parameter", "parameter_range",
           "check_parameter_value", "phi_second_moment", "critical_temperatures"]

#: Continuation parameters of the branch equations (``"rho_r"`` is the fraction of class r, 0-based).
PARAMETERS = ("temperature", "sigma_a_bar", "sigma_w", "rho_r")


def parameter_name(parameter: str, m: int) -> tuple[str, int | None]:
    """Normalise a parameter name: ("temperature" | "sigma_a_bar" | "sigma_w" | "rho", class index)."""
    if not isinstance(parameter, str):
        raise SpecError(f"parameter must be a string, one of {PARAMETERS} (got {parameter!r})")
    p = parameter.strip()
    aliases = {"T": "temperature", "temperature": "temperature", "sigma_a_bar": "sigma_a_bar",
               "sigma_a": "sigma_a_bar", "sigma_w": "sigma_w", "sigma_1": "sigma_w"}
    if p in aliases:
        return aliases[p], None
    if p.startswith("rho_"):
        try:
            r = int(p[4:])
        except ValueError:
            r = -1
        if 0 <= r < m:
            return "rho", r
        raise SpecError(f"parameter {parameter!r}: the class index of rho_r must be an integer in 0..{m - 1}")
    raise SpecError(f"parameter must be one of 'temperature', 'sigma_a_bar', 'sigma_w' (σ_1) or "
                    f"'rho_r' with r in 0..{m - 1} (got {parameter!r})")



def canonical_parameter(parameter: str, m: int) -> str:
    """"temperature", "sigma_a_bar", "sigma_w" or "rho_r" (aliases T, sigma_a, sigma_1 accepted)."""
    kind, r = parameter_name(parameter, m)
    return f"rho_{r}" if kind == "rho" else kind


def parameter_range(parameter: str, m: int) -> tuple:
    """(lo, hi, text) of the valid values of ``parameter`` along a continuation."""
    kind, r = parameter_name(parameter, m)
    if kind == "temperature":
        return 0.0, math.inf, "[0, inf)"
    if kind == "rho":
        return 0.0, 1.0, "(0, 1)"
    return 0.0, math.inf, "(0, inf)"


def check_parameter_value(parameter, name, value, m):
    lo, hi, text = parameter_range(parameter, m)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise SpecError(f"{name} value of parameter {parameter!r} must be a number in {text} (got {value!r})") from None
    closed_lo = text.startswith("[")
    if not math.isfinite(v) or v > hi or v < lo or (v == lo and not closed_lo) or (v == hi and hi < math.inf):
        raise SpecError(f"{name} value of parameter {parameter!r} must be in {text} (got {value!r})")
    return v


@dataclass(frozen=True, eq=False)
class LargePProblem:
    """Parameters of the P → ∞ limit (THEORY §4).

    Parameters
    ----------
    nonlinearity : str
        As in :class:`theory.spec.ModelSpec` (linear, relu, erf, normcdf, tanh, sympy string).
    sigma_w : float
        σ_1 > 0, first-layer prior standard deviation.
    sigma_a_bar : float
        σ̄_a > 0 with σ_a² = σ̄_a²/P.
    temperature : float
        T ≥ 0.
    class_fractions : sequence of float
        ρ_c > 0 for m ≥ 2 classes, Σ_c ρ_c = 1 (to 1e-9; renormalised exactly).
    """

    nonlinearity: str = "erf"
    sigma_w: float = 1.0
    sigma_a_bar: float = 1.0
    temperature: float = 0.1
    class_fractions: tuple = (0.5, 0.25, 0.25)

    def __post_init__(self):
        nl = get_nonlinearity(self.nonlinearity)  # validates the string
        object.__setattr__(self, "nonlinearity", nl.name)
        object.__setattr__(self, "sigma_w", positive_float("sigma_w (σ_1)", self.sigma_w))
        object.__setattr__(self, "sigma_a_bar", positive_float("sigma_a_bar (σ̄_a, with σ_a² = σ̄_a²/P)",
                                                          self.sigma_a_bar))
        object.__setattr__(self, "temperature", check_float("temperature", self.temperature, 0.0))
        try:
            rho = np.array(self.class_fractions, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise SpecError("class_fractions must be a sequence of numbers in (0, 1) summing to 1 "
                            f"(got {self.class_fractions!r})") from None
        if rho.size < 2:
            raise SpecError(f"class_fractions must list at least 2 classes (got {self.class_fractions!r})")
        if not np.all(np.isfinite(rho)) or np.any(rho <= 0.0):
            raise SpecError(f"class_fractions must all be finite and > 0 (got {self.class_fractions!r})")
        if abs(rho.sum() - 1.0) > 1e-9:
            raise SpecError(f"class_fractions must sum to 1 (got sum {rho.sum():.12g} for {self.class_fractions!r})")
        object.__setattr__(self, "class_fractions", tuple(float(x) for x in rho / rho.sum()))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_spec(cls, spec: ModelSpec) -> "LargePProblem":
        """The P → ∞ problem with σ̄_a = σ_a √P and ρ_c = P_c/P of a finite-P spec."""
        if spec.data_kind != "orthogonal":
            raise SpecError("the large-P limit is implemented for orthogonal class-structured data (inputs=None)")
        return cls(nonlinearity=spec.nonlinearity, sigma_w=spec.sigma_w,
                   sigma_a_bar=spec.sigma_a * math.sqrt(spec.P), temperature=spec.temperature,
                   class_fractions=tuple(spec.class_fractions))

    def to_spec(self, P: int) -> ModelSpec:
        """The finite-P spec with σ_a = σ̄_a/√P and class sizes round(ρ_c P) (THEORY §3)."""
        sizes = tuple(max(1, int(round(r * P))) for r in self.class_fractions)
        return ModelSpec(nonlinearity=self.nonlinearity, sigma_w=self.sigma_w,
                         sigma_a=self.sigma_a_bar / math.sqrt(sum(sizes)), temperature=self.temperature,
                         class_sizes=sizes)

    def replace(self, **changes) -> "LargePProblem":
        kw = dict(nonlinearity=self.nonlinearity, sigma_w=self.sigma_w, sigma_a_bar=self.sigma_a_bar,
                  temperature=self.temperature, class_fractions=self.class_fractions)
        kw.update(changes)
        return LargePProblem(**kw)

    def with_parameter(self, parameter: str, value: float) -> "LargePProblem":
        """This problem with one continuation parameter set to ``value``.

        ``rho_r`` sets ρ_r = value and rescales the other fractions
        proportionally, ρ_c → ρ_c (1 − value)/(1 − ρ_r), so that Σ_c ρ_c = 1.
        """
        kind, r = parameter_name(parameter, self.m)
        if kind == "rho":
            v = float(value)
            if not 0.0 < v < 1.0:
                raise SpecError(f"parameter {parameter!r} (class fraction ρ_{r}) must be in (0, 1) (got {value!r})")
            rho = np.array(self.class_fractions)
            others = np.arange(self.m) != r
            rho[others] *= (1.0 - v) / (1.0 - rho[r])
            rho[r] = v
            return self.replace(class_fractions=tuple(rho))
        return self.replace(**{kind: value})

    def parameter_value(self, parameter: str) -> float:
        kind, r = parameter_name(parameter, self.m)
        return float(self.class_fractions[r]) if kind == "rho" else float(getattr(self, kind))

    # ------------------------------------------------------------------ derived
    @property
    def m(self) -> int:
        return len(self.class_fractions)

    @property
    def rho(self) -> np.ndarray:
        return np.asarray(self.class_fractions)

    @property
    def phi(self) -> Nonlinearity:
        return get_nonlinearity(self.nonlinearity)

    def table(self) -> PsiTable:
        """ψ table for (φ, σ_1) (cached by :func:`theory.psi.psi_table`)."""
        return psi_table(self.nonlinearity, self.sigma_w)

    def psi(self, g):
        """(ψ, ψ', ψ'') at the array ``g``."""
        return self.table()(g)

    def to_dict(self) -> dict:
        return {"nonlinearity": self.nonlinearity, "sigma_w": self.sigma_w, "sigma_a_bar": self.sigma_a_bar,
                "temperature": self.temperature, "class_fractions": list(self.class_fractions)}

    # ------------------------------------------------------------------ the action (4.1)
    def action(self, A, t, order: int = 2):
        """S(a; t) of (4.1) and its a-derivatives at the rows of ``A`` (k, m).

        Returns S (k,), and for ``order`` ≥ 1 the gradient (k, m), for
        ``order`` ≥ 2 the Hessian (k, m, m).
        """
        A = np.atleast_2d(np.asarray(A, dtype=np.float64))
        t = np.asarray(t, dtype=np.float64)
        rho = self.rho
        G = A @ t.T  # g[k, c] = t_c·a_k
        p0, p1, p2 = self.psi(G)
        S = -0.5 * np.sum(A * A, axis=1) / self.sigma_a_bar**2 + p0 @ rho
        if order < 1:
            return S
        grad = -A / self.sigma_a_bar**2 + (p1 * rho) @ t
        if order < 2:
            return S, grad
        hess = np.einsum("kc,cr,cs->krs", p2 * rho, t, t) - np.eye(self.m) / self.sigma_a_bar**2
        return S, grad, hess

    def free_energy(self, t, s_max: float) -> float:
        """G∞(t) = max_a S − Σ_c ρ_c t_cc + (T/2) Σ_c ρ_c ||t_c||² (THEORY §4), given max_a S."""
        t = np.asarray(t, dtype=np.float64)
        rho = self.rho
        return float(s_max - rho @ np.diag(t) + 0.5 * self.temperature * rho @ np.sum(t * t, axis=1))

    def start_radius(self, t) -> float:
        """Scale of the maximisers of S: a = σ̄_a² Σ_c ρ_c ψ'(t_c·a) t_c, with |ψ'| at |g| ~ the same scale."""
        t = np.asarray(t, dtype=np.float64)
        rho = self.rho
        norms = np.linalg.norm(t, axis=1)
        s2 = self.sigma_a_bar**2
        # bounded φ: |ψ'| <= sup|φ|; growing φ: ψ' ~ σ_1² g, fixed point of r = s2 Σρ|t| ψ'(|t| r)
        r = s2 * float(rho @ norms) * max(1.0, float(np.max(np.abs(self.psi(np.array([-1.0, 1.0]) / self.sigma_w)[1]))))
        for _ in range(3):
            g = np.concatenate([norms * r, -norms * r])
            r = max(r, s2 * float(rho @ norms) * float(np.max(np.abs(self.psi(g)[1]))))
        return max(r, 1e-3 * self.sigma_a_bar)

    # ------------------------------------------------------------------ σ_1-derivatives of ψ
    def psi_sigma_derivatives(self, g):
        """(∂ψ/∂σ_1, ∂ψ'/∂σ_1) at ``g`` by quadrature of the tilted law.

        With ψ = log ∫ N(h; 0, σ²) e^{gφ(h)} dh and ∂_σ log N = h²/σ³ − 1/σ,

            ∂ψ/∂σ  = (E_g[h²] − σ²)/σ³,     ∂ψ'/∂σ = Cov_g(φ(h), h²)/σ³,

        E_g the tilted law ∝ N(h; 0, σ²) e^{gφ(h)}. Composite Gauss–Legendre
        over a window that holds the tilted mass (used only at the n·m
        points of the branch equations).
        """
        g = np.atleast_1d(np.asarray(g, dtype=np.float64))
        nl = self.phi
        s = self.sigma_w
        probe = np.linspace(-60.0 * s, 60.0 * s, 4001)
        dmax = float(np.max(np.abs(nl.eval(probe)[1])))
        out0 = np.empty(g.shape)
        out1 = np.empty(g.shape)
        x, w = np.polynomial.legendre.leggauss(16)
        for i, gi in np.ndenumerate(g):
            half = 14.0 * s + 1.5 * s * s * abs(gi) * dmax
            lo, hi = -half, half
            n_pan = int(np.ceil((hi - lo) / (s / 6.0)))
            edges = np.linspace(lo, hi, n_pan + 1)
            if nl.kinks:
                edges = np.unique(np.concatenate([edges, [k for k in nl.kinks if lo < k < hi]]))
            a, b = edges[:-1, None], edges[1:, None]
            hs = (0.5 * (a + b) + 0.5 * (b - a) * x[None, :]).ravel()
            ws = (0.5 * (b - a) * w[None, :]).ravel()
            ell = -0.5 * (hs / s) ** 2 + gi * nl(hs)
            q = ws * np.exp(ell - ell.max())
            q /= q.sum()
            phi = nl(hs)
            h2 = hs * hs
            m_h2 = q @ h2
            out0[i] = (m_h2 - s * s) / s**3
            out1[i] = (q @ (phi * h2) - (q @ phi) * m_h2) / s**3
        return out0, out1


def phi_second_moment(nonlinearity: str, sigma_w: float) -> float:
    """E[φ(h)²], h ~ N(0, σ_1²): closed forms for linear (σ_1²) and erf, quadrature otherwise.

    For φ = erf(√π h/2) the arcsine formula E[erf(u)erf(v)] =
    (2/π) arcsin(2Σ_uv/√((1 + 2Σ_uu)(1 + 2Σ_vv))) with u = v = √π h/2,
    Σ_uu = π σ_1²/4, gives E[φ²] = (2/π) arcsin((π/2)σ_1² / (1 + (π/2)σ_1²)).
    """
    s = positive_float("sigma_w (σ_1)", sigma_w)
    nl = get_nonlinearity(nonlinearity)
    if nl.name == "linear":
        return s * s
    if nl.name == "erf":
        x = 0.5 * math.pi * s * s
        return 2.0 / math.pi * math.asin(x / (1.0 + x))
    z, w = np.polynomial.hermite_e.hermegauss(200)
    return float(w @ nl(s * z) ** 2 / math.sqrt(2.0 * math.pi))


def critical_temperatures(problem: LargePProblem) -> np.ndarray:
    """T_c,r = σ̄_a (ρ_r E[φ(h)²])^{1/2} for odd φ (THEORY §4), one per class r.

    For odd φ the branch a = 0, t = Y/T, f = 0 solves the equations at every
    T > 0; the Hessian of S at a = 0 there is diag(−1/σ̄_a² + ρ_r ψ''(0)/T²)
    with ψ''(0) = Var φ = E[φ²], so direction r turns unstable below T_c,r
    (a pitchfork for sigmoids; for linear φ the onset of an O(1) Gaussian
    population along e_r instead, see :mod:`solvers.large_p.solve`).
    """
    nl = problem.phi
    if not nl.odd:
        raise SpecError(f"critical_temperatures: the a = 0 branch exists only for odd φ (got {nl.name!r}); "
                        "use an odd nonlinearity such as 'erf', 'tanh' or 'linear'")
    e2 = phi_second_moment(problem.nonlinearity, problem.sigma_w)
    return problem.sigma_a_bar * np.sqrt(problem.rho * e2)
