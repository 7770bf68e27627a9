"""The ``lpn`` command.

``lpn --version``
    print the version.
``lpn list``
    list the experiments with one line on what each checks.
``lpn run NAME|all [--out DIR] [--seed S] [--quick] [--no-progress]``
    run experiments, write results (needs the ``experiments`` extra).

``lpn run`` writes ``results.json`` (everything :func:`lpn.experiments.run` returns), ``results.md``
(experiment, metric, LPN, baseline, criterion, pass) and one PNG per experiment into
``--out``.  Progress bars are drawn only when stderr is a terminal.  Exit status: 0 when
every criterion passed, 1 when one failed (all files are still written), 2 for a usage error
or a missing extra (one line naming the install command).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

__all__ = ["main"]


def _fmt(x) -> str:
    if x is None:
        return "-"
    x = float(x)
    if math.isnan(x):
        return "nan"
    if x == 0:
        return "0"
    if abs(x) >= 1e4 or abs(x) < 1e-3:
        return f"{x:.3e}"
    return f"{x:.4g}"


def _table_md(results) -> str:
    lines = [
        "| experiment | metric | LPN | baseline | criterion | pass |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        crit = r["criterion"].replace("|", "\\|")
        lines.append(
            f"| {r['name']} | {r['metric']} | {_fmt(r['lpn'])} | {_fmt(r['baseline'])} | "
            f"{crit} | {'yes' if r['passed'] else '**no**'} |"
        )
    return "\n".join(lines) + "\n"


def _table_terminal(results) -> str:
    rows = [("experiment", "LPN", "baseline", "pass", "seconds")]
    for r in results:
        rows.append((r["name"], _fmt(r["lpn"]), _fmt(r["baseline"]),
                     "PASS" if r["passed"] else "FAIL", f"{r['seconds']:.1f}"))
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    out = []
    for i, row in enumerate(rows):
        out.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)


def _summary(name: str) -> str:
    """First line of an experiment module's docstring (imports nothing beyond numpy)."""
    from .experiments import module

    doc = (module(name).__doc__ or "").strip()
    first = doc.splitlines()[0].rstrip(".") if doc else ""
    # "1. regression: a local ..." -> "a local ..."; rst literals shown plain.
    return first.split(": ", 1)[-1].replace("``", "")


def _list() -> int:
    from .experiments import NAMES

    width = max(len(n) for n in NAMES)
    for name in NAMES:
        print(f"{name.ljust(width)}  {_summary(name)}")
    return 0


def _parser() -> argparse.ArgumentParser:
    from . import __version__
    from ._extras import DISTRIBUTION
    from .experiments import NAMES

    p = argparse.ArgumentParser(prog="lpn", description="Local Pheromone Network experiments")
    p.add_argument("--version", action="version",
                   version=f"lpn {__version__} ({DISTRIBUTION})")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the experiments")
    r = sub.add_parser("run", help="run one experiment or all of them")
    r.add_argument("name", choices=[*NAMES, "all"], help="experiment name or 'all'")
    r.add_argument("--out", default="results", help="output directory (default: ./results)")
    r.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    r.add_argument("--quick", action="store_true", help="small CI-sized versions")
    r.add_argument("--no-progress", action="store_true",
                   help="no progress bars (they are drawn only on a terminal anyway)")
    from .sweeps import add_cli_parser

    add_cli_parser(sub)
    return p


def main(argv=None) -> int:
    """Entry point of the ``lpn`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "sweep":
        from .sweeps import cli_main

        return cli_main(args)
    if args.command == "list":
        return _list()
    return _run(args)


def _run(args) -> int:
    from ._extras import MissingExtraError, require

    try:
        require("lpn run", "experiments", "sklearn", "matplotlib", "tqdm")
    except MissingExtraError as e:
        print(e, file=sys.stderr)
        return 2
    from . import experiments, plots

    names = list(experiments.NAMES) if args.name == "all" else [args.name]
    os.makedirs(args.out, exist_ok=True)
    results = []
    for name in names:
        res = experiments.run(name, seed=args.seed, quick=args.quick,
                              progress=not args.no_progress and sys.stderr.isatty())
        res["plot"] = os.path.basename(plots.plot_result(res, args.out))
        results.append(res)
        # Rewrite after every experiment so a long 'all' leaves usable partial results.
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump({"seed": args.seed, "quick": args.quick, "results": results}, f,
                      indent=1)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(f"# LPN experiments (seed {args.seed}{', quick' if args.quick else ''})\n\n")
        f.write(_table_md(results))
        f.write("\nPlots: " + ", ".join(f"[{r['name']}]({r['plot']})" for r in results) + "\n")
    print()
    print(_table_terminal(results))
    n_fail = sum(not r["passed"] for r in results)
    total = sum(r["seconds"] for r in results)
    print(f"\n{len(results) - n_fail}/{len(results)} criteria passed in {total:.1f}s; "
          f"results in {os.path.abspath(args.out)}")
    return 0 if n_fail == 0 else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
