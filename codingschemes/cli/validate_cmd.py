"""``codingschemes validate``: sampled finite networks against the mean-field theory.

Chains of the finite-width posterior (mean-field scaling γ = 1, β = N/T, against the solver of
THEORY §2–3; or lazy scaling against the NNGP baseline) at one or more widths N; two or more
widths add a 1/N extrapolation. Every finished chain is written to a JSON Lines checkpoint, so a
rerun resumes. The report (JSON with ``--format json``) compares outputs, readout moments and
kernels with the theory; ``OUT/validate.png`` draws it. ``--layers L`` (L >= 2) validates deep
networks layer by layer (:mod:`validation.deep`, :mod:`validation.deep_theory_init`).

Exit codes: 0 passed; 1 failed (or the deep theory has no solution); 2 invalid input.
"""
from __future__ import annotations

from contextlib import nullcontext
import json
import sys
from pathlib import Path

from theory.spec import ModelSpec, SpecError, parse_class_sizes
from codingschemes.cli.args import (SAMPLING_TEMPERATURE, add_shared, check_counts, check_layers, check_shared,
                                    emit, not_applicable, settings_digest, warn)

__all__ = ["add_validate_parser", "check_validate", "run_validate", "MIN_CHAINS", "DEEP_MOVES", "resolve_deep_moves",
           "condensate_text"]

#: split-R̂ compares chains: both the one-layer and the deep comparisons need at least two
MIN_CHAINS = 2

HELP = "compare sampled finite networks with the theory"

#: sampled networks mix slowly: fewer inputs and a higher T than the theory's default task
SAMPLING_DEFAULTS = {"class_sizes": ("8,4,4", "sampled networks: fewer inputs than solve's, so chains mix "
                                              "within the default sweeps"),
                     "temperature": SAMPLING_TEMPERATURE}


#: the exact mode-changing moves of deep chains on by default (``--layers L >= 2``, nonlinear φ): per flag
#: (dest) its default count; sign flips only for φ with φ(−h) = s − φ(h), layer moves and layer pair rotations only
#: if every width N >= P, the pair rotations only for ReLU (they create, remove and move a layer's outliers)
DEEP_MOVES = {"reflections": 400, "contrast_reflections": 400, "layer_moves": 1, "layer_pairs": 400}

#: ``--layer-pairs``: the exact pair rotations of :mod:`validation.layer_pairs` in the layers below the last
LAYER_PAIRS_HELP = ("--layers >= 2: K pair rotations per sweep in every hidden layer below the last, at fixed "
                    "next-layer preactivations: two neurons' incoming weight rows rotated into each other, the pair "
                    "drawn by weight, accepted by the exact ratio (validation.layer_pairs); they create, remove and "
                    "move the first layer's ReLU outliers. Reported with --layer-moves as kind 'pair' (default: 400 "
                    "with --layers >= 2, ReLU and every width N >= P, else 0; 0 = off)")

_DEFAULT_NOTE = ("default: 400 with --layers >= 2 and a nonlinear φ (the exact moves are on by default for deep "
                 "chains), else 0; 0 = off")


def add_validate_parser(subparsers):
    """Add the ``validate`` subcommand to ``subparsers``; returns its parser."""
    v = subparsers.add_parser("validate", help=HELP, description=HELP)
    add_shared(v, "nonlinearity", "class_sizes", "temperature", "sigma_w", "sigma_a", defaults=SAMPLING_DEFAULTS,
               notes={"temperature": "T > 0"})
    v.add_argument("--widths", default="400", help="comma-separated widths N; two or more: 1/N extrapolation")
    v.add_argument("--chains", type=int, default=4, help=f"chains per width, >= {MIN_CHAINS} for R-hat (default 4)")
    v.add_argument("--sweeps", type=int, default=1500, help="Gibbs sweeps per chain (default 1500)")
    v.add_argument("--burn", type=int, default=300, help="burn-in sweeps (default 300)")
    add_shared(v, "seed")
    v.add_argument("--init", choices=("random", "theory", "both"), default="random",
                   help="chain starts: prior draws, neurons from the theory's single-neuron measure, "
                        "or both sets side by side")
    v.add_argument("--scaling", choices=("mean-field", "lazy"), default="mean-field",
                   help="mean-field (γ = 1, β = N/T; against the solver) or lazy (γ = 1/2, β = 1/T; "
                        "against the NNGP baseline)")
    v.add_argument("--workers", type=int, default=1, help="chains run in parallel (default 1)")
    v.add_argument("--sampler", choices=("collapsed", "gibbs"), default="collapsed",
                   help="collapsed: MALA on W with the readout integrated out, then a | W (default); "
                        "gibbs: a | W exact, MALA on W | a")
    v.add_argument("--checkpoint", default=None,
                   help="JSON Lines file every finished chain is written to; rerunning the same command "
                        "resumes from it (default: OUT/validate-<hash of the settings>.jsonl)")
    v.add_argument("--swaps", type=int, default=0,
                   help="Metropolis neuron swaps per sweep (mode-changing moves from a theory proposal)")
    v.add_argument("--outlier-moves", type=int, default=0,
                   help="pair-rotation moves per sweep that create, remove and move ReLU outliers (exact; "
                        "the hidden layer, or the last hidden layer with --layers >= 2; default 0)")
    v.add_argument("--tempering", type=int, default=0,
                   help="replica exchange in T for --layers >= 2: K rungs from T up to --tempering-t-max exchange "
                        "states (exact; 0 = off, the default)")
    v.add_argument("--tempering-t-max", type=float, default=0.5,
                   help="top temperature of the --tempering ladder (default 0.5)")
    v.add_argument("--reflections", type=int, default=None, metavar="K",
                   help="--layers >= 2, φ with φ(−h) = s − φ(h) (normcdf, erf, tanh): K flips W^L_i → −W^L_i of "
                        "uniformly drawn last-layer neurons per sweep in every chain, accepted by the exact "
                        "collapsed-target ratio; they exchange complementary codes (normcdf 100 ↔ 011). JSON key "
                        "reflections: acceptance per layer (default: 400 with --layers >= 2 for φ with the "
                        "symmetry, else 0; 0 = off)")
    v.add_argument("--hidden-reflections", type=int, default=0, metavar="K",
                   help="--layers >= 2, as --reflections: K joint flips (W^l_i, W^(l+1)_(:,i)) → −(...) of a neuron "
                        "of every hidden layer l < L per sweep (its incoming row and outgoing column), exact "
                        "(0 = off, the default)")
    v.add_argument("--contrast-reflections", type=int, default=None, metavar="K",
                   help="--layers >= 2, any φ: K Householder reflections W^L_i → (I − 2 u_c u_cᵀ) W^L_i of a uniformly "
                        "drawn last-layer neuron i and class c per sweep, u_c the part of class c's mean activation "
                        "of the layer below orthogonal to the other classes' means (it flips the neuron's class-c "
                        "contrast, e.g. 100 ↔ 110), accepted by the exact collapsed-target ratio (" + _DEFAULT_NOTE
                        + ")")
    v.add_argument("--layer-moves", type=int, default=None, metavar="K",
                   help="--layers >= 2: K passes per sweep over every neuron of each hidden layer below the last, "
                        "from halfway through burn-in on: a pCN proposal, a sign flip (φ with φ(−h) = s − φ(h)) and a "
                        "class-contrast reflection of its incoming weights, each accepted with the next layer's "
                        "preactivations held fixed and its weights integrated out, then the next layer's weights "
                        "drawn again from their exact conditional. JSON key layer_moves: acceptance per layer and "
                        "kind (default: 1 with --layers >= 2, a nonlinear φ and every width N >= P, else 0; 0 = off)")
    v.add_argument("--layer-pairs", type=int, default=None, metavar="K", help=LAYER_PAIRS_HELP)
    v.add_argument("--saddles", default=None, metavar="T_A,...",
                   help="--layers >= 2, prior starts: also apply the opt-in multi-saddle rule. The theory's stable "
                        "saddles are the default solve at T and, per anchor temperature T_A given here, the default "
                        "solve at T_A followed to T by warm starts; each chain is checked against its nearest saddle, "
                        "and the report says which one, its action S, which is the equilibrium and whether a chain "
                        "is metastable (JSON key saddle_rule). The default rule and its 'passed' are unchanged; the "
                        "exit code follows the multi-saddle rule (and, with --init both, the theory-start test)")
    add_shared(v, "format", "out", "no_plot", "quiet", "layers",
               notes={"out": "the PNG report and the chain checkpoints go there", "no_plot": "the PNG report",
                      "layers": "L >= 2: deep networks against the deep theory (linear closed form, or "
                                "solvers.deep.nonlinear for relu and smooth bounded φ), layer by layer"})
    return v


def _validate_deep(args, spec, widths) -> int:
    """``validate --layers L``: chains from prior starts against the deep theory
    (:func:`validation.deep.validate_deep`) and/or the stationarity test from the theory's per-layer
    measures (:func:`validation.deep_theory_init.deep_stationarity`, ``--init theory``); ``--swaps k``
    adds k last-layer independence moves per sweep to either; ``--init both`` passes only if both do.
    ``--outlier-moves K``: K pair rotations of the last layer's weights per sweep in every chain;
    ``--tempering K``: every chain is the target rung of K replicas in T (:mod:`validation.tempering`);
    ``--reflections K``: K last-layer flips W^L_i → −W^L_i per sweep in every chain, ``--hidden-reflections K``
    K joint flips per hidden layer, ``--contrast-reflections K`` K class-contrast reflections of last-layer rows
    (:mod:`validation.reflections`); ``--layer-moves K``: K passes of :mod:`validation.layer_moves` per sweep,
    ``--layer-pairs K``: K pair rotations of :mod:`validation.layer_pairs` per sweep, in every layer below the last;
    ``--saddles T_a,...``: the prior-start report adds the multi-saddle rule (:mod:`validation.deep_saddles`),
    which then decides the exit code in place of the prior-start default rule."""
    from codingschemes.cli.progress import progress_bar
    from solvers.deep.nonlinear import DeepNonlinearError
    from validation.deep import deep_theory, validate_deep
    from validation.deep_saddles import validate_deep_saddles
    from validation.deep_theory_init import deep_stationarity

    reports = {}
    with progress_bar(args, "validate") if args.tempering else nullcontext() as bar:
        tempering = (dict(tempering=args.tempering, tempering_t_max=args.tempering_t_max, progress=bar)
                     if args.tempering else {})
        moves = {"reflections": args.reflections, "hidden_reflections": args.hidden_reflections,
                 "contrast_reflections": args.contrast_reflections, "layer_moves": args.layer_moves,
                 "layer_pairs": args.layer_pairs}
        try:
            theory = deep_theory(spec, args.layers) if args.saddles is None else None  # one solve for both halves
            if args.init in ("random", "both"):
                run, saddles = ((validate_deep, {"theory": theory}) if args.saddles is None
                                else (validate_deep_saddles, {"anchors": _anchors(args.saddles)}))
                reports["random"] = run(spec, args.layers, widths=widths, chains=args.chains, sweeps=args.sweeps,
                                        burn=args.burn, seed=args.seed, outlier_moves=args.outlier_moves,
                                        swaps=args.swaps, **saddles, **tempering, **moves)
            if args.init in ("theory", "both"):
                reports["theory"] = deep_stationarity(spec, args.layers, width=widths[0], chains=args.chains,
                                                      sweeps=args.sweeps, burn=args.burn, seed=args.seed,
                                                      swaps=args.swaps, outlier_moves=args.outlier_moves,
                                                      theory=theory, **tempering, **moves)
        except DeepNonlinearError as exc:
            print(f"codingschemes validate: the deep theory has no solution here: {exc}", file=sys.stderr)
            return 1
    report = (reports[args.init] if args.init != "both"
              else {**reports, "passed": all(r["passed"] for r in reports.values())})
    verdicts = {k: (r["saddle_rule"]["passed"] if "saddle_rule" in r else r["passed"]) for k, r in reports.items()}
    text = f"L = {args.layers} ({args.init} start): passed: {report['passed']}"
    if "condensate" in reports.get("theory", {}):
        text += "\n" + condensate_text(reports["theory"]["condensate"])
    if args.saddles is not None:
        text += (f"\nmulti-saddle rule: passed: {reports['random']['saddle_rule']['passed']} "
                 f"({reports['random']['saddle_rule']['summary']})")
        if args.init == "both":
            report["saddle_rule_passed"] = all(verdicts.values())
    emit(report, args.format, text, indent=2)
    return 0 if all(verdicts.values()) else 1


def condensate_text(block: dict) -> str:
    """Lines of the ``condensate`` block of a deep ReLU stationarity report: per condensate the codes and shares the
    KKT saddle predicts and, for the layers below the last, what the chains recorded (mean over records)."""
    lines = []
    for c in block["theory"]:
        key = "kernel_diagonal_share" if c["layer"] == 1 else "output_share"
        what = "share of K_1's diagonal" if c["layer"] == 1 else "share of f_cc"
        shares = ", ".join(f"{code} {max(row):.3f}" for code, row, on in zip(c["codes"], c[key], c["placed"]) if on)
        lines.append(f"layer {c['layer']} condensate (theory, {what}): {shares or 'none placed'}")
    for lay in block["sampling"]["layers"]:
        row = lay["row"]
        lines.append(f"layer {lay['layer']} sampled: {row[0]:.2f} outliers, largest {row[1]:.3f} √N, shares of the "
                     f"class diagonals {', '.join(f'{v:.3f}' for v in row[3:])}, codes {lay['code_fractions']}")
    return "\n".join(lines)


def resolve_deep_moves(args, spec, widths) -> None:
    """Set the move flags left at their parser default (None) to their values for this run, in place: with
    ``--layers`` >= 2 and a nonlinear φ those of :data:`DEEP_MOVES` (sign flips only for φ(−h) = s − φ(h), layer
    moves only if every width N >= P, with a warning otherwise), else 0. Counts the user gave are kept."""
    from validation.reflections import reflection_offset

    deep = args.layers >= 2 and spec.nonlinearity != "linear"
    for name, count in DEEP_MOVES.items():
        if getattr(args, name) is not None:
            continue
        if deep and name == "reflections":
            try:
                reflection_offset(spec.nonlinearity)
            except SpecError:
                count = 0
        if deep and name == "layer_moves" and min(widths) < spec.P:
            warn("validate", f"the layer moves (on by default) need every width N >= P = {spec.P}; they are off "
                             f"for --widths {args.widths}")
            count = 0
        if deep and name == "layer_pairs" and (spec.nonlinearity != "relu" or min(widths) < spec.P):
            count = 0
        setattr(args, name, count if deep else 0)


def _anchors(text: str) -> list[float]:
    """The anchor temperatures of ``--saddles`` (comma-separated, > 0; may be empty)."""
    try:
        anchors = [float(a) for a in text.split(",") if a.strip()]
    except ValueError:
        raise SpecError(f"--saddles: anchor temperatures must be comma-separated numbers > 0 (got {text!r})") from None
    if any(not (a > 0 and a < float("inf")) for a in anchors):
        raise SpecError(f"--saddles: anchor temperatures must be comma-separated numbers > 0 (got {text!r})")
    return anchors


def _widths(text: str) -> list[int]:
    try:
        widths = [int(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise SpecError(f"--widths: widths must be comma-separated positive integers (got {text!r})") from None
    if not widths or min(widths) < 1:
        raise SpecError(f"--widths: widths must be comma-separated positive integers (got {text!r})")
    return widths


def _table(report) -> str:
    diag = report["diagnostics"]
    lines = [report["comparison"], f"passed: {report['passed']}  (max z {report['z_max']:.2f}, "
             f"min ESS {diag['ess_min']:.0f}, max R-hat {diag['rhat_max']:.3f})"]
    for key in ("outputs", "readout_moment"):
        lines.append(f"{key}: theory {json.dumps(report['theory'][key])}\n{'':{len(key)}}  sampled "
                     f"{json.dumps([[round(x, 4) for x in row] for row in report['sampling'][key]])}")
    return "\n".join(lines)


def check_validate(args):
    """Every argument of ``validate`` before any solve or file (SpecError naming the flag; warnings
    for flags the deep path ignores); returns (spec, widths)."""
    check_shared(args)
    if args.temperature <= 0:
        raise SpecError(f"--temperature: temperature must be > 0 for sampled networks (got {args.temperature})")
    widths = _widths(args.widths)
    spec = ModelSpec(nonlinearity=args.nonlinearity, sigma_w=args.sigma_w, sigma_a=args.sigma_a,
                     temperature=args.temperature, class_sizes=parse_class_sizes(args.class_sizes))
    check_layers(args.layers, [spec])
    resolve_deep_moves(args, spec, widths)
    check_counts(args, {"chains": (MIN_CHAINS, None), "sweeps": (1, None), "burn": (0, None), "workers": (1, None),
                        "swaps": (0, None), "outlier_moves": (0, None), "tempering": (0, None),
                        "reflections": (0, None), "hidden_reflections": (0, None),
                        "contrast_reflections": (0, None), "layer_moves": (0, None), "layer_pairs": (0, None)})
    if args.burn >= args.sweeps:
        raise SpecError(f"--burn must be smaller than --sweeps ({args.sweeps}) (got {args.burn})")
    if args.saddles is not None:
        _anchors(args.saddles)
    if args.layers == 1:
        not_applicable("validate", args, ("saddles",), "with --layers 1 (the multi-saddle rule is built for the deep "
                       "theory)", error=True)
        not_applicable("validate", args, ("tempering", "tempering_t_max"),
                       "with --layers 1 (replica exchange in T is built for the deep chains)", error=True)
        not_applicable("validate", args, [n for n in ("reflections", "hidden_reflections", "contrast_reflections")
                                          if getattr(args, n)],
                       "with --layers 1 (the flips act on the last hidden layer of deep chains)", error=True)
        not_applicable("validate", args, [n for n in ("layer_moves", "layer_pairs") if getattr(args, n)],
                       "with --layers 1 (the layer moves act on a hidden layer below the last)", error=True)
        if args.scaling == "lazy" and (args.swaps or args.init != "random"):
            raise SpecError("--scaling lazy supports --init random and --swaps 0 only (the theory-based starts and "
                            "swaps use the mean-field single-neuron measure)")
        return spec, widths
    deep = "with --layers >= 2 (the deep comparison)"
    not_applicable("validate", args, ("scaling",), deep + ": it samples the mean-field scaling only", error=True)
    not_applicable("validate", args, ("sampler", "workers", "checkpoint"), deep)
    if args.init == "theory" and len(widths) > 1:
        warn("validate", f"--widths: the deep stationarity test (--init theory) runs at the first width only "
                         f"({widths[0]})")
    if args.tempering:
        from validation.tempering import check_tempering

        try:
            check_tempering(args.tempering, spec.temperature, args.tempering_t_max)
        except SpecError as exc:
            raise SpecError(f"--tempering: {exc}") from None
    if args.reflections or args.hidden_reflections:
        from validation.reflections import check_reflections

        try:
            check_reflections(args.reflections, spec.nonlinearity, args.hidden_reflections)
        except SpecError as exc:
            raise SpecError(f"--{'reflections' if args.reflections else 'hidden-reflections'}: {exc}") from None
    if args.layer_moves or args.layer_pairs:
        from validation.layer_moves import check_layer_moves, check_layer_pairs

        for flag, check, count in (("--layer-moves", check_layer_moves, args.layer_moves),
                                   ("--layer-pairs", check_layer_pairs, args.layer_pairs)):
            try:
                check(count, args.layers, widths, spec.P)
            except SpecError as exc:
                raise SpecError(f"{flag}: {exc}") from None
    if args.swaps and spec.nonlinearity == "linear":
        raise SpecError("--swaps (last-layer independence moves) needs a nonlinear φ with --layers >= 2")
    if args.saddles is not None and spec.nonlinearity == "linear":
        raise SpecError("--saddles (the multi-saddle rule) needs a nonlinear φ (the deep linear theory has one saddle)")
    if args.saddles is not None and args.init == "theory":
        raise SpecError("--saddles applies to the prior-start chains: use it with --init random or both")
    return spec, widths


def run_validate(args) -> int:
    """Run ``codingschemes validate`` from parsed ``args``; exit code 0 or 1, SpecError on bad input."""
    from validation.report import validate

    spec, widths = check_validate(args)
    if args.layers != 1:
        return _validate_deep(args, spec, widths)
    settings = {**spec.to_dict(), "widths": widths, "chains": args.chains, "sweeps": args.sweeps,
                "burn": args.burn, "seed": args.seed, "init": args.init, "swaps": args.swaps,
                "scaling": args.scaling, "sampler": args.sampler}
    if args.outlier_moves:  # only when used: earlier checkpoints keep their name
        settings["outlier_moves"] = args.outlier_moves
    digest = settings_digest(settings)
    checkpoint = args.checkpoint or str(Path(args.out) / f"validate-{digest}.jsonl")
    if not args.quiet:
        print(f"[validate] chains are written to {checkpoint} (rerun to resume)", file=sys.stderr)
    try:
        report = validate(spec, widths=widths, chains=args.chains, sweeps=args.sweeps, burn=args.burn,
                          seed=args.seed, progress=not args.quiet, init=args.init, swaps=args.swaps,
                          scaling=args.scaling, workers=args.workers, checkpoint=checkpoint,
                          sampler=args.sampler, outlier_moves=args.outlier_moves)
    except ValueError as exc:
        raise SpecError(str(exc)) from None
    emit(report, args.format, lambda: _table(report), indent=2)
    if not args.no_plot:
        from figures.validation import plot_validation

        path = plot_validation(report, Path(args.out) / "validate.png")
        if not args.quiet:
            print(f"report: {path}", file=sys.stderr)
    return 0 if report["passed"] else 1
