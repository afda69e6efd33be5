"""Session configuration (TOML) and the rig file, validated with every problem collected at once.

A session config names its subject, its trial types, how they are scheduled (frequencies or blocks with
reversals), the ITI, the length of the session, the safety limits, the online model and the closed-loop
policy (docs/sessions.md is the reference).  :func:`load_config` raises one :class:`ConfigError` whose
``problems`` list has one line per problem, each naming the key and what is allowed.

A rig file (one per physical rig, written by ``dopa-rl calibrate``) holds the port or USB serial number and
the valve calibration in ms per uL.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dopa_rl.errors import InputError
from dopa_rl.protocol.messages import LIMITS

P_DEBOUNCE = LIMITS["debounce_us"]      # what the device accepts (CONFIGURE)

__all__ = ["FIRMWARE_MAX_VALVE_MS", "CUES", "ITI_DISTRIBUTIONS", "POLICIES", "ConfigError", "TrialType",
           "Block", "Iti", "Safety", "ModelConfig", "PolicyConfig", "Rig", "SessionConfig", "parse_config",
           "load_config", "parse_rig", "load_rig", "rig_toml"]

FIRMWARE_MAX_VALVE_MS = 5000          # hard bound of the firmware (docs/rig.md)
CUES = ("light", "tone", "light+tone", "none")
ITI_DISTRIBUTIONS = ("fixed", "uniform", "exponential")
POLICIES = ("fixed", "rpe-target", "stim-on-rpe", "on-signal", "user")


class ConfigError(InputError):
    """Invalid session config or rig file: ``problems`` holds one line per problem."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = [f"{source}: {p}" for p in problems]
        super().__init__("\n".join(self.problems))


@dataclass(frozen=True)
class TrialType:
    """One kind of trial of a session config (``[[trial_types]]``): its cue, timing, reward and frequency."""

    name: str
    cue: str = "light"
    tone_hz: int = 4000
    cue_s: float = 1.0
    trace_s: float = 0.5
    reward_probability: float = 1.0
    reward_ul: float = 4.0
    frequency: float = 1.0
    post_s: float = 1.5            # after the outcome: consumption time before the ITI


@dataclass(frozen=True)
class Block:
    """A block of ``trials`` trials with its own reward probabilities and frequencies per trial type (``[[blocks]]``)."""

    trials: int
    reward_probability: dict[str, float] = field(default_factory=dict)
    frequency: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Iti:
    """The inter-trial interval (``[iti]``): its distribution and bounds in seconds."""

    distribution: str = "exponential"
    mean_s: float = 2.0
    min_s: float = 1.0
    max_s: float = 6.0


@dataclass(frozen=True)
class Safety:
    """The device's safety limits (``[safety]``): valve time per opening, gap, budget and host timeout."""

    max_valve_ms: int = 200
    min_valve_gap_ms: int = 50
    budget_valve_ms: int = 30000
    host_timeout_ms: int = 1000


@dataclass(frozen=True)
class SyncConfig:
    """Random-interval sync pulses on the TTL output (SYNC_START), for aligning other recording systems."""
    enabled: bool = False
    min_s: float = 1.0
    max_s: float = 5.0
    pulse_ms: int = 10


@dataclass(frozen=True)
class ModelConfig:
    """The online learner: a model by name (registered, an entry point, ``FILE.py:NAME`` relative to the
    config, ``package.module:NAME``), its parameters (the others at the model's defaults) and its options
    (``get_model(name, **options)``)."""

    name: str = "rw-pavlovian"
    params: dict[str, float] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PolicyConfig:
    """The closed-loop policy of a session (``[policy]``): its kind and that kind's settings."""

    kind: str = "fixed"
    target_rpe: float = 0.0              # rpe-target
    min_ul: float = 0.5                  # rpe-target: smallest reward it may give
    threshold: float = 0.5               # stim-on-rpe: |RPE| >= threshold (or RPE >= threshold, see direction)
    direction: str = "above"             # stim-on-rpe: above | below | both
    ttl_ms: int = 10
    analog_rate_hz: int = 100            # on-signal
    baseline_s: float = 5.0              # on-signal: F0 = running mean over this window
    dff_threshold: float = 0.2
    refractory_s: float = 1.0
    action: str = "ttl"                  # on-signal: ttl | reward
    function: str = ""                   # user: module:function or file.py:function
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Rig:
    """A rig file: the rig's name, port or serial number and valve calibration."""

    name: str = "simulated rig"
    port: str | None = None
    serial_number: str | None = None
    ms_per_ul: float = 10.0
    calibrated: str = "default (uncalibrated)"
    path: str | None = None
    text: str = ""


@dataclass(frozen=True)
class SessionConfig:
    """A live session's TOML config, parsed and checked: subject, trial types, schedule, model and policy."""

    subject: str
    session_id: str
    trial_types: tuple[TrialType, ...]
    n_trials: int | None = 100
    duration_s: float | None = None
    seed: int = 0
    description: str = "classical conditioning session"
    experimenter: tuple[str, ...] = ()
    institution: str = "unspecified institution"
    rig_file: str | None = None
    blocks: tuple[Block, ...] = ()
    repeat_blocks: bool = True
    iti: Iti = Iti()
    safety: Safety = Safety()
    model: ModelConfig = ModelConfig()
    policy: PolicyConfig = PolicyConfig()
    sync: SyncConfig = SyncConfig()
    lick_debounce_us: int = 1000
    path: str | None = None
    text: str = ""

    def type_named(self, name: str) -> TrialType:
        return next(t for t in self.trial_types if t.name == name)

    @property
    def max_reward_ul(self) -> float:
        return max([t.reward_ul for t in self.trial_types] + [1e-9])


# ---------------------------------------------------------------------------------------------- checks
class _Checker:
    """Reads values out of a TOML table, recording a problem (and returning the default) when one is bad."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def unknown(self, table: dict, allowed, where: str) -> None:
        for k in table:
            if k not in allowed:
                self.problems.append(f"{where}{k}: unknown key; allowed keys: {', '.join(sorted(allowed))}")

    def num(self, table: dict, key: str, where: str, default, *, lo=None, hi=None, integer=False, lo_open=False):
        if key not in table:
            return default
        v = table[key]
        name = f"{where}{key}"
        kind = "an integer" if integer else "a number"
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
            self.problems.append(f"{name} = {v!r}: must be {kind}")
            return default
        rng = f"{'>' if lo_open else '>='} {lo}" if lo is not None else ""
        if hi is not None:
            rng = f"in {'(' if lo_open else '['}{lo}, {hi}]" if lo is not None else f"<= {hi}"
        if (lo is not None and (v <= lo if lo_open else v < lo)) or (hi is not None and v > hi):
            self.problems.append(f"{name} = {v!r}: must be {rng}")
            return default
        return v

    def text(self, table: dict, key: str, where: str, default, choices=None):
        if key not in table:
            return default
        v = table[key]
        if not isinstance(v, str):
            self.problems.append(f"{where}{key} = {v!r}: must be a string" +
                                 (f", one of: {', '.join(choices)}" if choices else ""))
            return default
        if choices is not None and v not in choices:
            self.problems.append(f"{where}{key} = {v!r}: must be one of: {', '.join(choices)}")
            return default
        return v

    def flag(self, table: dict, key: str, where: str, default: bool) -> bool:
        if key not in table:
            return default
        v = table[key]
        if not isinstance(v, bool):
            self.problems.append(f"{where}{key} = {v!r}: must be true or false")
            return default
        return v

    def texts(self, table: dict, key: str, where: str) -> tuple[str, ...]:
        v = table.get(key, [])
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            self.problems.append(f"{where}{key} = {v!r}: must be a list of strings, e.g. [\"Last, First\"]")
            return ()
        return tuple(v)

    def table(self, doc: dict, key: str, where: str = "") -> dict:
        v = doc.get(key, {})
        if not isinstance(v, dict):
            self.problems.append(f"{where}{key}: must be a table ([{key}])")
            return {}
        return v


_TOP = {"session", "trial_types", "blocks", "iti", "safety", "model", "policy", "sync"}
_SESSION = {"subject", "session_id", "n_trials", "duration_s", "seed", "description", "experimenter",
            "institution", "rig_file", "repeat_blocks", "lick_debounce_us"}
_TYPE = {"name", "cue", "tone_hz", "cue_s", "trace_s", "reward_probability", "reward_ul", "frequency", "post_s"}


def parse_config(text: str, *, source: str = "config", base_dir: Path | None = None, rig: Rig | None = None,
                 check_rig_file: bool = True) -> tuple[SessionConfig, Rig]:
    """Parse and validate a session config; raises :class:`ConfigError` listing every problem."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML ({exc})"]) from None
    c = _Checker()
    c.unknown(doc, _TOP, "")
    s = c.table(doc, "session")
    c.unknown(s, _SESSION, "session.")
    subject = c.text(s, "subject", "session.", None)
    if subject is None and "subject" not in s:
        c.problems.append("session.subject: missing; give the animal's id, e.g. subject = \"m7\"")
    n_trials = c.num(s, "n_trials", "session.", 100 if "duration_s" not in s else None, lo=1, hi=100000, integer=True)
    duration = c.num(s, "duration_s", "session.", None, lo=0, lo_open=True)
    types = []
    raw_types = doc.get("trial_types", [])
    if not isinstance(raw_types, list) or not raw_types:
        c.problems.append("trial_types: need at least one [[trial_types]] table")
        raw_types = []
    for i, t in enumerate(raw_types):
        w = f"trial_types[{i}]."
        if not isinstance(t, dict):
            c.problems.append(f"trial_types[{i}]: must be a table")
            continue
        c.unknown(t, _TYPE, w)
        name = c.text(t, "name", w, f"T{i}")
        d = TrialType(name)
        types.append(TrialType(
            name=name, cue=c.text(t, "cue", w, d.cue, CUES),
            tone_hz=c.num(t, "tone_hz", w, d.tone_hz, lo=31, hi=20000, integer=True),
            cue_s=c.num(t, "cue_s", w, d.cue_s, lo=0, hi=60), trace_s=c.num(t, "trace_s", w, d.trace_s, lo=0, hi=60),
            reward_probability=c.num(t, "reward_probability", w, d.reward_probability, lo=0, hi=1),
            reward_ul=c.num(t, "reward_ul", w, d.reward_ul, lo=0, hi=1000),
            frequency=c.num(t, "frequency", w, d.frequency, lo=0), post_s=c.num(t, "post_s", w, d.post_s, lo=0, hi=60)))
    names = [t.name for t in types]
    if len(set(names)) != len(names):
        c.problems.append(f"trial_types.name: names must be unique (got {names})")
    if types and sum(t.frequency for t in types) <= 0:
        c.problems.append("trial_types.frequency: at least one trial type needs frequency > 0")
    blocks = []
    raw_blocks = doc.get("blocks", [])
    if not isinstance(raw_blocks, list):
        c.problems.append("blocks: must be an array of tables ([[blocks]])")
        raw_blocks = []
    for i, b in enumerate(raw_blocks):
        w = f"blocks[{i}]."
        if not isinstance(b, dict):
            c.problems.append(f"blocks[{i}]: must be a table")
            continue
        c.unknown(b, {"trials", "reward_probability", "frequency"}, w)
        if "trials" not in b:
            c.problems.append(f"{w}trials: missing; the number of trials in the block")
        n = c.num(b, "trials", w, 1, lo=1, integer=True)
        maps = {}
        for key, hi in (("reward_probability", 1), ("frequency", None)):
            m = b.get(key, {})
            if not isinstance(m, dict):
                c.problems.append(f"{w}{key}: must be a table of trial type name = value")
                m = {}
            for tn in m:
                if tn not in names:
                    c.problems.append(f"{w}{key}.{tn}: unknown trial type; known: {', '.join(names)}")
            maps[key] = {tn: c.num(m, tn, f"{w}{key}.", 0.0, lo=0, hi=hi) for tn in m if tn in names}
        blocks.append(Block(n, maps["reward_probability"], maps["frequency"]))
    it = c.table(doc, "iti")
    c.unknown(it, {"distribution", "mean_s", "min_s", "max_s"}, "iti.")
    iti = Iti(c.text(it, "distribution", "iti.", Iti.distribution, ITI_DISTRIBUTIONS),
              c.num(it, "mean_s", "iti.", Iti.mean_s, lo=0), c.num(it, "min_s", "iti.", Iti.min_s, lo=0),
              c.num(it, "max_s", "iti.", Iti.max_s, lo=0))
    if iti.min_s > iti.max_s:
        c.problems.append(f"iti.min_s = {iti.min_s} is above iti.max_s = {iti.max_s}: need min_s <= max_s")
    elif not iti.min_s <= iti.mean_s <= iti.max_s and iti.distribution == "exponential":
        c.problems.append(f"iti.mean_s = {iti.mean_s}: must lie in [iti.min_s, iti.max_s] = [{iti.min_s}, {iti.max_s}]")
    sf = c.table(doc, "safety")
    c.unknown(sf, set(Safety.__dataclass_fields__), "safety.")
    safety = Safety(c.num(sf, "max_valve_ms", "safety.", Safety.max_valve_ms, lo=1, hi=FIRMWARE_MAX_VALVE_MS, integer=True),
                    c.num(sf, "min_valve_gap_ms", "safety.", Safety.min_valve_gap_ms, lo=10, hi=60000, integer=True),
                    c.num(sf, "budget_valve_ms", "safety.", Safety.budget_valve_ms, lo=1, hi=10**7, integer=True),
                    c.num(sf, "host_timeout_ms", "safety.", Safety.host_timeout_ms, lo=100, hi=10000, integer=True))
    model = _model(c, c.table(doc, "model"), base_dir)
    pol = _policy(c, c.table(doc, "policy"), base_dir)
    sy = c.table(doc, "sync")
    c.unknown(sy, set(SyncConfig.__dataclass_fields__), "sync.")
    sync = SyncConfig(bool(sy.get("enabled", bool(sy))), c.num(sy, "min_s", "sync.", SyncConfig.min_s, lo=0.1, hi=60),
                      c.num(sy, "max_s", "sync.", SyncConfig.max_s, lo=0.1, hi=60),
                      c.num(sy, "pulse_ms", "sync.", SyncConfig.pulse_ms, lo=1, hi=1000, integer=True))
    if sync.min_s > sync.max_s:
        c.problems.append(f"sync.min_s = {sync.min_s} is above sync.max_s = {sync.max_s}: need min_s <= max_s")
    elif sync.pulse_ms >= sync.min_s * 1000:
        c.problems.append(f"sync.pulse_ms = {sync.pulse_ms}: must be shorter than sync.min_s")
    d = SessionConfig
    seed = c.num(s, "seed", "session.", d.seed, lo=0, integer=True)
    debounce = c.num(s, "lick_debounce_us", "session.", d.lick_debounce_us, lo=P_DEBOUNCE.min, hi=P_DEBOUNCE.max,
                     integer=True)
    repeat = c.flag(s, "repeat_blocks", "session.", d.repeat_blocks)
    session_id = c.text(s, "session_id", "session.", "session")
    description = c.text(s, "description", "session.", d.description)
    institution = c.text(s, "institution", "session.", d.institution)
    experimenter = c.texts(s, "experimenter", "session.")
    rig_file = c.text(s, "rig_file", "session.", None)
    if rig_file is not None and base_dir is not None and not Path(rig_file).is_absolute():
        rig_file = str(base_dir / rig_file)
    if rig is None and rig_file is not None and check_rig_file:
        if not Path(rig_file).is_file():
            c.problems.append(f"session.rig_file = {s['rig_file']!r}: file {rig_file} does not exist; "
                              "write it with dopa-rl calibrate --rig-file PATH")
        else:
            try:
                rig = load_rig(rig_file)
            except ConfigError as exc:
                c.problems += [f"session.rig_file: {p}" for p in exc.problems]
    rig = rig or Rig()
    for t in types:
        ms = t.reward_ul * rig.ms_per_ul
        if ms > safety.max_valve_ms:
            i = names.index(t.name)
            c.problems.append(f"trial_types[{i}].reward_ul = {t.reward_ul}: valve time {ms:.0f} ms "
                              f"({rig.ms_per_ul} ms/uL) is above safety.max_valve_ms = {safety.max_valve_ms}; "
                              f"allowed reward_ul <= {safety.max_valve_ms / rig.ms_per_ul:g}")
    if c.problems:
        raise ConfigError(source, c.problems)
    return SessionConfig(
        subject=subject, session_id=session_id, trial_types=tuple(types), n_trials=n_trials, duration_s=duration,
        seed=seed, description=description, experimenter=experimenter, institution=institution, rig_file=rig_file,
        blocks=tuple(blocks), repeat_blocks=repeat, iti=iti, safety=safety, model=model, policy=pol, sync=sync,
        lick_debounce_us=debounce, path=source, text=text), rig


def _model(c: _Checker, md: dict, base_dir: Path | None) -> ModelConfig:
    """``[model]``: ``name``, parameters by name, ``[model.options]``; the model is loaded, the parameters
    checked against it and its learner built now, so a bad name, value or rule is reported before anything
    is sent."""
    from dopa_rl.models import get_model

    if "kind" in md:
        c.problems.append(f"model.kind = {md['kind']!r}: [model] names its model: name = \"rw-pavlovian\", \"td\", "
                          "any dopa-rl model or \"FILE.py:NAME\" (parameters as keys, e.g. alpha = 0.2)")
        return ModelConfig()
    name = c.text(md, "name", "model.", ModelConfig.name)
    options = c.table(md, "options", "model.")
    where, sep, attr = name.rpartition(":")
    if sep and where.endswith(".py") and base_dir is not None and not Path(where).is_absolute():
        name = f"{base_dir / where}:{attr}"
    params = {}
    for k in md:
        if k in ("name", "options"):
            continue
        v = c.num(md, k, "model.", None)
        if v is not None:
            params[k] = float(v)
    try:
        model = get_model(name, **options)
        model.check_params(params)
        if model.kind != "pavlovian":
            raise InputError(f"model {model.name} is a {model.kind} model; a session's online learner is Pavlovian "
                             "(cue, then outcome)")
        # built once now: a rule that does not compile is reported here, and the compiled kernels are loaded
        # before a device link opens (a live session cannot wait seconds for them)
        model.online(params)
    except InputError as exc:
        c.problems.append(f"model.name = {md.get('name', name)!r}: {exc}")
    return ModelConfig(name, params, dict(options))


def _policy(c: _Checker, p: dict, base_dir: Path | None) -> PolicyConfig:
    w = "policy."
    c.unknown(p, set(PolicyConfig.__dataclass_fields__), w)
    d = PolicyConfig()
    kind = c.text(p, "kind", w, d.kind, POLICIES)
    fn = c.text(p, "function", w, "")
    if kind == "user":
        if not fn:
            c.problems.append("policy.function: missing; policy kind user needs function = \"module:function\" "
                              "or \"file.py:function\"")
        else:
            from dopa_rl.models.user_code import load_user_function

            try:
                load_user_function(fn, base_dir)
            except InputError as exc:
                c.problems.append(f"policy.function = {fn!r}: {exc}")
    params = p.get("params", {})
    if not isinstance(params, dict):
        c.problems.append("policy.params: must be a table")
        params = {}
    return PolicyConfig(
        kind=kind, target_rpe=c.num(p, "target_rpe", w, d.target_rpe, lo=-10, hi=10),
        min_ul=c.num(p, "min_ul", w, d.min_ul, lo=0), threshold=c.num(p, "threshold", w, d.threshold, lo=-10, hi=10),
        direction=c.text(p, "direction", w, d.direction, ("above", "below", "both")),
        ttl_ms=c.num(p, "ttl_ms", w, d.ttl_ms, lo=1, hi=1000, integer=True),
        analog_rate_hz=c.num(p, "analog_rate_hz", w, d.analog_rate_hz, lo=1, hi=1000, integer=True),
        baseline_s=c.num(p, "baseline_s", w, d.baseline_s, lo=0, lo_open=True),
        dff_threshold=c.num(p, "dff_threshold", w, d.dff_threshold),
        refractory_s=c.num(p, "refractory_s", w, d.refractory_s, lo=0),
        action=c.text(p, "action", w, d.action, ("ttl", "reward")), function=fn,
        params=dict(params))


def load_config(path: str | Path, *, rig: Rig | None = None, check_rig_file: bool = True) -> tuple[SessionConfig, Rig]:
    """Read and validate ``path``; returns ``(config, rig)`` (the default simulated rig if it names none)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(str(path), ["file does not exist"])
    return parse_config(p.read_text(encoding="utf-8"), source=str(path), base_dir=p.parent.resolve(), rig=rig,
                        check_rig_file=check_rig_file)


# ---------------------------------------------------------------------------------------------- rig file
def parse_rig(text: str, source: str = "rig file") -> Rig:
    """The :class:`Rig` of a rig file's TOML text (``source`` names it in errors)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(source, [f"not valid TOML ({exc})"]) from None
    c = _Checker()
    c.unknown(doc, {"rig", "valve"}, "")
    r, v = c.table(doc, "rig"), c.table(doc, "valve")
    c.unknown(r, {"name", "port", "serial_number"}, "rig.")
    c.unknown(v, {"ms_per_ul", "calibrated"}, "valve.")
    if "ms_per_ul" not in v:
        c.problems.append("valve.ms_per_ul: missing; measure it with dopa-rl calibrate")
    ms = c.num(v, "ms_per_ul", "valve.", 10.0, lo=0, lo_open=True, hi=1000)
    port, sn = c.text(r, "port", "rig.", None), c.text(r, "serial_number", "rig.", None)
    if c.problems:
        raise ConfigError(source, c.problems)
    return Rig(name=str(r.get("name", "rig")), port=port, serial_number=sn, ms_per_ul=float(ms),
               calibrated=str(v.get("calibrated", "unknown")), path=source, text=text)


def load_rig(path: str | Path) -> Rig:
    """The :class:`Rig` of the rig file at ``path``."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(str(path), ["rig file does not exist; write it with dopa-rl calibrate --rig-file PATH"])
    return parse_rig(p.read_text(encoding="utf-8"), str(path))


def rig_toml(rig: Rig) -> str:
    """The TOML text of a rig file."""
    lines = ["# dopa_rl rig file: one per physical rig (written by dopa-rl calibrate)", "[rig]",
             f"name = {rig.name!r}".replace("'", '"')]
    if rig.port:
        lines.append(f'port = "{rig.port}"')
    if rig.serial_number:
        lines.append(f'serial_number = "{rig.serial_number}"')
    lines += ["", "[valve]", f"ms_per_ul = {rig.ms_per_ul:.6g}", f'calibrated = "{rig.calibrated}"', ""]
    return "\n".join(lines)
