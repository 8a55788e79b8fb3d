"""Search spaces: which TrainConfig settings `digitlab tune` varies, and over what, as plain data.

One format serves three places: OPTIMISATION below (what every model shares), each model's `search_space`
class attribute in digitlab.models (beside its definition), and the [space] table of a `--space FILE` (TOML)
that overrides them parameter by parameter. Each key is a TrainConfig field; its value is one of

    lr = { low = 1e-4, high = 1e-2, log = true }    a range: int or float by the field's type (step optional)
    batch_size = { choices = [64, 128, 256] }       a choice among values
    hidden_size = 128                               fixed: not searched, the same in every trial
    warmup = { low = 0.05, high = 0.3, when = { schedule = ["onecycle", "cosine"] } }

`when` samples a parameter only in trials where other (unconditional) parameters took one of the listed
values; elsewhere the setting keeps its default. Nothing here imports optuna: `sample` takes any object with
optuna's trial.suggest_* methods, so that digitlab.models can declare its spaces without the `tune` extra.
"""

from __future__ import annotations

import difflib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from digitlab.config import TrainConfig, field_types, flag
from digitlab.errors import ConfigError
from digitlab.recipes import check_settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

# What every model's search shares: the optimisation. A model's own space (digitlab.models) comes first and
# replaces these where it names the same setting.
OPTIMISATION: dict[str, Any] = {
    "optimizer": {"choices": ["adam", "adamw", "rmsprop"]},
    "lr": {"low": 1e-4, "high": 1e-2, "log": True},
    "weight_decay": {"low": 1e-6, "high": 1e-2, "log": True},
    "batch_size": {"choices": [64, 128, 256, 512]},
    "schedule": {"choices": ["constant", "onecycle", "cosine"]},
    "warmup": {"low": 0.05, "high": 0.3, "when": {"schedule": ["onecycle", "cosine"]}},
    "dropout": {"low": 0.0, "high": 0.3},
}

# Settings that `digitlab tune` sets itself (or that name a machine's files): a space may not vary or fix them.
RESERVED = {
    "model": "--model",
    "seed": "--seed (every trial trains with the study's seed, so trials differ only by their parameters)",
    "val_size": "--val-size (the objective's validation split)",
    "test_eval": "the study (trials never touch the test set)",
    "eval_every": "the study (it evaluates a quarter epoch at a time for the pruner)",
    "target_acc": "the study",
    "run_dir": "the study (STUDY_DIR/trials/<number>)",
    "data_dir": "--data-dir",
    "progress": "the study",
}
RANGE_KEYS, CHOICE_KEYS = {"low", "high", "log", "step", "when"}, {"choices", "when"}


@dataclass(frozen=True)
class Param:
    """One setting of the search: a range ("int" or "float"), a "choice", or "fixed" (not searched)."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple = ()
    value: Any = None  # the fixed value
    when: tuple[tuple[str, tuple], ...] = ()  # ((setting, allowed values), ...): sampled only where all hold

    def applies(self, values: dict) -> bool:
        return all(values.get(name) in allowed for name, allowed in self.when)

    def candidates(self) -> list:
        """The values that bound what a trial may get: both ends of a range, every choice, the fixed value."""
        if self.kind == "fixed":
            return [self.value]
        return list(self.choices) if self.kind == "choice" else [self.low, self.high]

    def spec(self) -> Any:
        """The plain form this was parsed from (recorded in the study, written to reports)."""
        if self.kind == "fixed":
            return self.value
        spec: dict[str, Any] = {"choices": list(self.choices)} if self.kind == "choice" else {"low": self.low}
        if self.kind != "choice":
            spec |= {"high": self.high} | ({"log": True} if self.log else {})
            spec |= {"step": self.step} if self.step is not None else {}
        return spec | ({"when": {name: list(allowed) for name, allowed in self.when}} if self.when else {})

    def describe(self) -> str:
        if self.kind == "fixed":
            return f"{self.name} = {self.value!r}"
        what = (
            "one of " + ", ".join(str(c) for c in self.choices)
            if self.kind == "choice"
            else f"{self.low:g} to {self.high:g}" + (" (log scale)" if self.log else "")
        )
        condition = " and ".join(f"{name} in {list(allowed)}" for name, allowed in self.when)
        return f"{self.name}: {what}" + (f", when {condition}" if condition else "")


Space = dict[str, Param]  # in sampling order


def parse(specs: dict, source: str) -> Space:
    """The plain form (a model's search_space, a [space] table) as Params; ConfigError naming `source` and the
    parameter for anything wrong."""
    if not isinstance(specs, dict):
        raise ConfigError(f"{source}: a search space is a table of settings, got {specs!r}")
    return {name: parse_param(name, spec, source) for name, spec in specs.items()}


def parse_param(name: str, spec: Any, source: str) -> Param:
    types = field_types()
    if name not in types:
        close = difflib.get_close_matches(name, list(types), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise ConfigError(
            f"{source}: unknown parameter {name!r}; {hint}parameters are TrainConfig settings, the long names of "
            f"'digitlab train --help' with underscores (e.g. batch_size for --batch-size)"
        )
    if name in RESERVED:
        raise ConfigError(f"{source}: {name} cannot be part of a search space: it is set by {RESERVED[name]}")
    kind = types[name]
    where = f"{source}: {name}"
    if not isinstance(spec, dict):  # a fixed value
        check_settings({name: spec}, source)
        return Param(name, "fixed", value=float(spec) if kind is float else spec)
    keys = set(spec)
    if "choices" in spec:
        if keys - CHOICE_KEYS:
            raise ConfigError(f"{where}: a choice has 'choices' (and 'when'), not {sorted(keys - CHOICE_KEYS)}")
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: choices must be a non-empty list of values, got {choices!r}")
        for choice in choices:
            check_settings({name: choice}, source)
        if len(set(map(repr, choices))) != len(choices):
            raise ConfigError(f"{where}: choices {choices} name a value twice")
        values = tuple(float(c) if kind is float else c for c in choices)
        return Param(name, "choice", choices=values, when=parse_when(spec.get("when"), where))
    if keys - RANGE_KEYS or not {"low", "high"} <= keys:
        raise ConfigError(
            f"{where}: give a range as {{ low = ..., high = ... }} (with log = true or step = ... if wanted), "
            f"a list as {{ choices = [...] }}, or a plain value to fix it; got keys {sorted(keys)}"
        )
    if kind not in (int, float):
        raise ConfigError(f"{where} is a {kind.__name__} setting: give {{ choices = [...] }} or a value, not a range")
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    for key, value in (("low", low), ("high", high)) + ((("step", step),) if step is not None else ()):
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
            raise ConfigError(f"{where}: {key} = {value!r} should be {kind.__name__} (the flag {flag(name)})")
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log = {log!r} should be true or false")
    if not low < high:
        raise ConfigError(
            f"{where}: the range low = {low} .. high = {high} is empty; low must be below high "
            f"(to fix a setting, give its value: {name} = {low})"
        )
    if log and low <= 0:
        raise ConfigError(f"{where}: a log-scale range must start above 0, got low = {low}")
    if log and step is not None:
        raise ConfigError(f"{where}: a range takes log = true or a step, not both")
    if step is not None and not step > 0:
        raise ConfigError(f"{where}: step must be positive, got {step}")
    convert = float if kind is float else int
    return Param(
        name, kind.__name__, convert(low), convert(high), log, convert(step) if step is not None else None,
        when=parse_when(spec.get("when"), where),
    )  # fmt: skip


def parse_when(when: Any, where: str) -> tuple[tuple[str, tuple], ...]:
    if when is None:
        return ()
    if not isinstance(when, dict) or not when or not all(isinstance(v, list) and v for v in when.values()):
        raise ConfigError(f"{where}: when = {when!r} should be a table of settings and value lists, e.g. "
                          f"when = {{ schedule = [\"onecycle\"] }}")  # fmt: skip
    return tuple((name, tuple(values)) for name, values in when.items())


def load_file(path: str | Path) -> Space:
    """A --space file's [space] table, parsed; ConfigError naming the file for anything wrong."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text())
    except OSError as error:
        raise ConfigError(f"cannot read the search space {path}: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"the search space {path} is not valid TOML: {error}") from None
    if set(document) != {"space"} or not isinstance(document["space"], dict):
        raise ConfigError(
            f"{path}: a search space file has one [space] table of settings (e.g. lr = {{ low = 1e-4, high = 1e-2, "
            f"log = true }}); found {sorted(document) or 'nothing'}"
        )
    return parse(document["space"], str(path))


def of_model(model: str, override: str | Path | None = None) -> Space:
    """The model's search space (its own, then OPTIMISATION), with a --space file's parameters over it."""
    from digitlab.models import MODELS

    if model not in MODELS:
        raise ConfigError(f"unknown model {model!r}; choose one of: {', '.join(MODELS)}")
    own = getattr(MODELS[model], "search_space", {})
    space = parse(own, f"the {model} model's search space (digitlab.models)")
    space |= {k: p for k, p in parse(OPTIMISATION, "digitlab.tune.space.OPTIMISATION").items() if k not in space}
    if override is not None:
        space |= load_file(override)
    return ordered(space, str(override) if override is not None else f"the {model} model's search space")


def ordered(space: Space, source: str) -> Space:
    """Unconditional parameters first, then the conditional ones (each in its given order), checking that every
    `when` names an unconditional parameter (check() checks the values it lists)."""
    for param in space.values():
        for name, _ in param.when:
            other = space.get(name)
            if other is None or other.when:
                raise ConfigError(
                    f"{source}: {param.name}'s 'when' names {name!r}, which is "
                    + ("not in the search space" if other is None else "itself conditional")
                    + "; a condition names a searched or fixed setting without a 'when'"
                )
    return {n: p for n, p in space.items() if not p.when} | {n: p for n, p in space.items() if p.when}


def check(space: Space, base: TrainConfig, source: str) -> TrainConfig:
    """Every bound of every parameter, on top of the fixed ones, is a valid config: a space that would only fail
    in its trials fails now, before any trial runs. Return the base with the fixed values applied."""
    fixed = {name: p.value for name, p in space.items() if p.kind == "fixed"}
    try:
        base = base.replace(**fixed).validate()
    except ConfigError as error:
        raise ConfigError(f"{source}: the fixed settings are not valid together: {error}") from None
    for param in space.values():
        for value in param.candidates() if param.kind != "fixed" else []:
            try:
                base.replace(**{param.name: value}).validate()
            except ConfigError as error:
                raise ConfigError(f"{source}: {param.name} = {value!r} cannot train: {error}") from None
        for name, allowed in param.when:  # a value no trial can take only means that the parameter is not sampled,
            for value in allowed:  # but one that cannot train at all is a mistake (a misspelt schedule, say)
                try:
                    check_settings({name: value}, source)
                    base.replace(**{name: value}).validate()
                except ConfigError as error:
                    raise ConfigError(f"{source}: {param.name}'s 'when' lists {name} = {value!r}: {error}") from None
    return base


def sample(space: Space, trial) -> dict:
    """One trial's settings: fixed values as they are, the others from optuna's trial.suggest_* (conditional
    parameters only where their condition holds)."""
    values: dict[str, Any] = {}
    for param in space.values():
        if not param.applies(values):
            continue
        if param.kind == "fixed":
            values[param.name] = param.value
        elif param.kind == "choice":
            values[param.name] = trial.suggest_categorical(param.name, list(param.choices))
        elif param.kind == "int":
            values[param.name] = trial.suggest_int(
                param.name, int(param.low), int(param.high), step=int(param.step or 1), log=param.log
            )
        else:
            values[param.name] = trial.suggest_float(param.name, param.low, param.high, step=param.step, log=param.log)
    return values


def specs(space: Space) -> dict:
    """The space in its plain form, as a study records it."""
    return {name: param.spec() for name, param in space.items()}
