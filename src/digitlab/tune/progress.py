"""How a search goes: a study's trials counted by state (Tally), one line per trial this worker finishes
(Progress), and what became of a trial in a few words (outcome, which the report uses too)."""

from __future__ import annotations

from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from digitlab.tune.study import Opened

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
TAKEN = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


@dataclass
class Tally:
    trials: list[FrozenTrial]

    def count(self, *states: TrialState) -> int:
        return sum(t.state in states for t in self.trials)

    @property
    def finished(self) -> int:
        return self.count(*FINISHED)

    @property
    def best(self) -> FrozenTrial | None:
        complete = [t for t in self.trials if t.state == TrialState.COMPLETE and t.value is not None]
        return max(complete, key=lambda t: (t.value, -t.number)) if complete else None


def tally(study: optuna.Study) -> Tally:
    return Tally(study.get_trials(deepcopy=False))


class Progress:
    """One line per trial this worker finishes: the count, its outcome, the best so far, the pruned, the time."""

    def __init__(self, opened: Opened):
        self.opened, self.seconds = opened, []

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.user_attrs.get("failure", "").startswith("surplus"):
            return
        now = tally(study)
        seconds = trial.duration.total_seconds() if trial.duration else 0.0
        self.seconds.append(seconds)
        self.opened.ran.append(trial.number)
        best = now.best
        self.opened.log(
            f"[{now.finished}/{self.opened.search.trials}] trial {trial.number} {outcome(trial)} | best "
            + (f"{best.value:.2%} (trial {best.number})" if best else "none yet")
            + f" | {now.count(TrialState.PRUNED)} pruned | {seconds:.1f} s"
            + (f" ({sum(self.seconds) / len(self.seconds):.1f} s per trial here)" if len(self.seconds) > 1 else "")
        )

    def summary(self, now: Tally) -> None:
        best, log = now.best, self.opened.log
        words = {TrialState.COMPLETE: "complete", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed (killed "
                 "and re-run, or surplus)", TrialState.RUNNING: "running elsewhere"}  # fmt: skip
        counts = ", ".join(f"{now.count(s)} {word}" for s, word in words.items() if now.count(s) or s in FINISHED)
        spent = sum(self.seconds)
        took = f"{spent:.0f} s" if spent < 120 else f"{spent / 60:.1f} min"
        here = f"; this process ran {len(self.seconds)} of them in {took}" if self.seconds else ""
        log(f"study {self.opened.search.name!r}: {now.finished} finished trials ({counts}){here}")
        if best is not None:
            log(f"best: trial {best.number}, validation accuracy {best.value:.2%}, {describe(best.params)}")


def outcome(trial: FrozenTrial) -> str:
    """What became of a trial, in a few words."""
    attrs = trial.user_attrs
    if trial.state == TrialState.COMPLETE:
        stopped = f", stopped by {attrs['stopped']}" if "stopped" in attrs else ""
        return f"complete: {trial.value:.2%} at epoch {attrs.get('epochs', 0):g}{stopped}"
    if trial.state == TrialState.PRUNED:
        if "diverged" in attrs:
            return f"pruned: {attrs['diverged']}"
        if "invalid" in attrs:
            return f"pruned: invalid settings ({attrs['invalid']})"
        last = trial.intermediate_values[max(trial.intermediate_values)] if trial.intermediate_values else None
        return f"pruned at epoch {attrs.get('epochs', 0):g}" + (f" ({last:.2%})" if last is not None else "")
    return f"{trial.state.name.lower()}" + (f": {attrs['failure']}" if "failure" in attrs else "")


def describe(params: dict) -> str:
    return ", ".join(
        f"{name} {value:.3g}" if isinstance(value, float) else f"{name} {value}" for name, value in params.items()
    )
