"""What ``pinnopt solve`` shows and leaves at the end of a run: the summary table, the problem's
own summary in summary.json, the figures."""
from __future__ import annotations

from pinnopt.io.plots import plot_run
from pinnopt.io.rundir import RunDir
from pinnopt.training.certify import format_certificates

# The order of the final table: metrics with these prefixes, in this order.
ORDER = ("loss", "objective", "constraint_loss", "raw/", "violation/", "heldout_violation/",
         "heldout_max_violation/", "lam/", "mu/", "sigma/", "causal/", "eval/", "heldout_raw/")


def add_problem_summary(run_dir: str, problem, params) -> dict:
    """summary.json gains "problem": the problem's ``summary(params)`` (fitted physics), if it has one."""
    rd = RunDir(run_dir)
    summary = rd.read_json("summary.json")
    if hasattr(problem, "summary"):
        summary["problem"] = problem.summary(params)
        rd.write_json("summary.json", summary)
    return summary


def plot_all(run_dir: str, problem=None, params=None) -> list:
    """The generic figures from metrics.jsonl, then the problem's own (``problem.plot(params, run_dir)``)."""
    paths = plot_run(run_dir)
    if problem is not None and hasattr(problem, "plot"):
        paths += list(problem.plot(params, run_dir))
    return paths


def format_summary(summary: dict) -> str:
    """The final table of a run: one metric a line."""
    final = summary.get("final", {})
    lines = [f"{'metric':<36} value", "-" * 52]
    lines.append(f"{'steps':<36} {summary['steps']}")
    if summary.get("steps_per_second"):
        lines.append(f"{'steps per second':<36} {summary['steps_per_second']:.1f}")
    if summary.get("best_loss") is not None:
        lines.append(f"{'best loss':<36} {summary['best_loss']:.6g}")
    shown = set()
    for prefix in ORDER:
        for key in sorted(final):
            if key.startswith(prefix) and key not in shown and isinstance(final[key], (int, float)):
                shown.add(key)
                lines.append(f"{key:<36} {final[key]:.6g}")
    for key, val in sorted((summary.get("problem") or {}).items()):
        if isinstance(val, (int, float)) and not isinstance(val, bool):
            lines.append(f"{'problem/' + key:<36} {val:.6g}")
        elif isinstance(val, bool):
            lines.append(f"{'problem/' + key:<36} {val}")
    if summary.get("known_minimum"):
        lines.append(f"{'known minimum':<36} {summary['known_minimum']['value']:.6g}")
    lines.append(f"{'non-finite steps skipped':<36} {summary.get('nonfinite_total', 0)}")
    for phase in summary.get("phases") or []:
        if len(summary["phases"]) > 1 or phase["ended"] != "completed its steps":
            lines.append(f"{'phase ' + str(phase['phase']) + ' (' + str(phase['optimizer']) + ')':<36} "
                         f"steps {phase['start']}-{phase['end']}: {phase['ended']}")
    lines.extend(format_certificates(summary.get("certificates") or {}))
    return "\n".join(lines)


__all__ = ["add_problem_summary", "format_summary", "plot_all"]
