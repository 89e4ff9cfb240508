"""``codingschemes generalize``: generalization on real data, theory against GP and sampling.

Example::

    codingschemes generalize --dataset digits --classes 0,1,2 --train-per-class 30 \\
        --nonlinearity relu --format json

Runs the general-input mean-field theory (:func:`solvers.data.solve.solve_general`,
THEORY §2), the NNGP baseline (:func:`theory.general.gp_generalization`, THEORY §6) and,
unless ``--no-sampling``, sampled mean-field networks of width ``--width``
(:func:`validation.generalization.sample_generalization`). The JSON object has entries
``"theory"``, ``"gp"`` and ``"sampling"`` (null with ``--no-sampling``), each with per-class
``"mean_predictor_error"``, ``"bayes_error"`` and ``"accuracy"`` lists and
``"mean_predictor"`` (test inputs × classes); plus ``"dataset"`` and ``"spec"``. Errors are
per test input, ||f̄(x*) − y*||² summed over the m outputs (not divided by m); the Bayes
error adds Σ_r Var f_r(x*) (zero for the N = ∞ mean-field theory). The PNG (Fig. 6
analogue) goes to ``OUT/generalize.png`` unless ``--no-plot``.

Exit codes: 0 success; 1 the theory did not converge; 2 invalid input (SpecError).
"""
from __future__ import annotations

from pathlib import Path
import sys

from theory.spec import SpecError
from codingschemes.cli.args import (SAMPLING_TEMPERATURE, add_shared, check_counts, check_shared, emit,
                                    not_applicable)
from codingschemes.cli.progress import progress_bar

__all__ = ["add_generalize_parser", "check_generalize", "run_generalize", "load_dataset_from_args"]


def add_generalize_parser(subparsers) -> None:
    p = subparsers.add_parser("generalize", help="generalization on real data: theory vs GP vs sampled networks")
    p.add_argument("--dataset", default="digits", choices=("digits", "clusters", "file"),
                   help="digits (scikit-learn), clusters (synthetic Gaussian) or file (needs --data)")
    p.add_argument("--data", default=None, help="a .npz (x/y, X/Y or x_train,y_train,x_test,y_test), an idx images "
                                                "file or a folder with the MNIST idx files; implies --dataset file")
    p.add_argument("--classes", default=None, help="comma-separated class labels (default 0,1,2 for digits, all "
                                                   "for files)")
    p.add_argument("--train-per-class", type=int, default=30, help="training inputs per class (default 30)")
    p.add_argument("--test-per-class", type=int, default=None, help="test inputs per class (default: the rest; "
                                                                    "100 for clusters)")
    p.add_argument("--standardize", default="pixel", choices=("pixel", "global", "none"),
                   help="per-pixel z-score fitted on train (default), global, or none")
    p.add_argument("--overlap", type=float, default=0.7, help="cluster overlap s in [0, 1] (--dataset clusters)")
    add_shared(p, "nonlinearity", "temperature", "sigma_w", "sigma_a", defaults={"temperature": SAMPLING_TEMPERATURE},
               notes={"temperature": "T > 0"})
    p.add_argument("--width", type=int, default=200, help="width N of the sampled networks (default 200)")
    p.add_argument("--sweeps", type=int, default=300, help="collapsed sweeps per sampling chain (default 300)")
    p.add_argument("--chains", type=int, default=2, help="sampling chains (default 2)")
    p.add_argument("--theory-chains", type=int, default=256, help="parallel MCMC chains of the theory (default 256)")
    p.add_argument("--theory-rounds", type=int, default=25, help="outer Newton rounds of the theory (default 25)")
    p.add_argument("--theory", choices=("finite-p", "branches"), default="finite-p",
                   help="finite-p: the exact N → ∞ theory at this P (Monte Carlo, solvers.data.solve); branches: "
                        "its large-P branch form with σ̄_a = σ_a√P (solvers.data.branches; linear and bounded φ, "
                        "meant for σ_a² ~ 1/P)")
    p.add_argument("--theory-sampler", choices=("auto", "mcmc", "smc"), default="auto",
                   help="finite-p theory: parallel elliptical-slice chains (mcmc) or tempered SMC from the prior "
                        "in every round (smc: all code modes with their weights); auto (default): the exact closed form "
                        "for linear φ (mcmc or smc then run the Monte Carlo solver on it as a check), "
                        "smc otherwise (the chains do not balance code modes: wrong erf and unconverged ReLU "
                        "on digits)")
    add_shared(p, "seed")
    p.add_argument("--no-sampling", action="store_true", help="theory and GP only")
    add_shared(p, "format", "out", "no_plot", "quiet", notes={"out": "the PNG goes there"})


def load_dataset_from_args(args):
    from theory.datasets import gaussian_clusters, load_array_dataset, load_digits_dataset, parse_classes

    dataset = "file" if args.data else args.dataset
    if dataset == "file":
        if not args.data:
            raise SpecError("--dataset file needs --data PATH (.npz, idx file or MNIST folder)")
        return load_array_dataset(args.data, classes=parse_classes(args.classes), train_per_class=args.train_per_class,
                                  test_per_class=args.test_per_class, standardize=args.standardize, seed=args.seed)
    if dataset == "clusters":
        m = len(parse_classes(args.classes)) if args.classes else 3
        return gaussian_clusters(m=m, train_per_class=args.train_per_class,
                                 test_per_class=args.test_per_class or 100, overlap=args.overlap, seed=args.seed)
    return load_digits_dataset(parse_classes(args.classes or "0,1,2"), train_per_class=args.train_per_class,
                               test_per_class=args.test_per_class, standardize=args.standardize, seed=args.seed)


def _table(report, ds, spec) -> str:
    lines = [f"{ds.description}; φ = {spec.nonlinearity}, T = {spec.temperature:g}",
             f"{'':10s} " + " ".join(f"{'class ' + str(c):>22s}" for c in ds.classes)]
    for k in ("theory", "gp", "sampling"):
        e = report[k]
        if e is not None:
            lines.append(f"{k:10s} " + " ".join(f"{a:10.4f} / {b:9.4f}" for a, b in zip(e["mean_predictor_error"],
                                                                                     e["bayes_error"])))
    lines += ["(mean-predictor error / Bayes error per class)", f"theory: {report['theory']['message']}"]
    return "\n".join(lines)


def check_generalize(args) -> None:
    """Every argument of ``generalize`` before the data are loaded (SpecError naming the flag;
    warnings for flags the chosen dataset or theory ignores)."""
    from theory.checks import check_float
    from theory.datasets import parse_classes

    check_shared(args)
    if args.temperature <= 0:
        raise SpecError(f"--temperature: temperature must be > 0 for generalize (got {args.temperature})")
    check_counts(args, {name: (1, None) for name in ("width", "sweeps", "chains", "theory_chains", "theory_rounds",
                                                     "train_per_class", "test_per_class")})
    if args.theory_chains % 16:
        raise SpecError(f"--theory-chains must be a multiple of 16 (got {args.theory_chains})")
    try:
        check_float("overlap", args.overlap, 0.0, 1.0)
        parse_classes(args.classes)
    except SpecError as exc:
        raise SpecError(f"--{'overlap' if 'overlap' in str(exc) else 'classes'}: {exc}") from None
    dataset = "file" if args.data else args.dataset
    if dataset == "file" and not args.data:
        raise SpecError("--dataset file needs --data PATH (.npz, idx file or MNIST folder)")
    if dataset != "clusters":
        not_applicable("generalize", args, ("overlap",), f"to --dataset {dataset}")
    else:
        not_applicable("generalize", args, ("standardize",), "to --dataset clusters")
    if args.theory == "branches":
        not_applicable("generalize", args, ("theory_sampler", "theory_chains"), "to --theory branches")
    if args.no_sampling:
        not_applicable("generalize", args, ("width", "sweeps", "chains"), "with --no-sampling")


def run_generalize(args) -> int:
    from validation.generalization import generalization_report

    check_generalize(args)
    ds = load_dataset_from_args(args)
    spec = ds.spec(args.nonlinearity, args.sigma_w, args.sigma_a, args.temperature)
    say = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    say(f"[generalize] {ds.description}: P = {ds.P}, {ds.n_test} test inputs")
    with progress_bar(args, "theory") as bar:
        report = generalization_report(
            ds, spec, theory_chains=args.theory_chains, theory_rounds=args.theory_rounds, width=args.width,
            chains=args.chains, sweeps=args.sweeps, sampling=not args.no_sampling, seed=args.seed, say=say,
            theory_progress=bar, theory_method=args.theory, theory_sampler=args.theory_sampler)
    emit(report, args.format, lambda: _table(report, ds, spec))
    theory = report["theory"]
    if not args.no_plot:
        from figures.generalization import plot_generalization

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        png = plot_generalization(report, out / "generalize.png", kernel=theory["test_kernel"],
                                  activations=theory["activations"], test_labels=ds.test_labels)
        say(f"figure: {png}")
    return 0 if theory["converged"] else 1
