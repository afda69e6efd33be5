"""check_model must fail, naming the check, on deliberately broken models (each breaks one thing of a
correct model that passes); and say clearly what is missing for a model it cannot check."""
import numpy as np
import pytest

from dopa_rl.errors import InputError
from dopa_rl.models import Param, ParamSpec, choice_model, get_model
from dopa_rl.models.rw import RWChoice
from dopa_rl.testing import ModelCheckError, check_model, parametrize_with_checks

FAST = dict(n_subjects=5, n_trials=300, restarts=2)


def rw(cls, name="rw-broken"):
    base = get_model("rw-softmax")
    return cls(name, list(base.spec), "deliberately broken")


class WrongGradient(RWChoice):
    def _loglik_grad_natural(self, x, data, lanes):
        ll, g = super()._loglik_grad_natural(x, data, lanes)
        g[:, 1] *= 1.05          # d/d beta off by 5%
        return ll, g


class IgnoresBeta(RWChoice):
    def loglik(self, x, data, lanes):
        x = np.array(x, dtype=float, ndmin=2)
        x[:, 1] = 3.0
        return super().loglik(x, data, lanes)


class IgnoresSeed(RWChoice):
    def simulate(self, params, task, rng, **kw):
        return super().simulate(params, task, np.random.default_rng(0), **kw)


class BehaviourIgnoresSeed(RWChoice):
    """Event times follow the rng, choices and rewards do not."""

    def _simulate_kernel(self, x, reward_probs, reward_sizes, resets, u_choice, u_reward):
        fixed = np.random.default_rng(0)
        return super()._simulate_kernel(x, reward_probs, reward_sizes, resets, fixed.random(len(u_choice)),
                                        fixed.random(len(u_reward)))


class SkipsFirstTrial(RWChoice):
    """Vectorised likelihood that drops each subject's first choice: consistent lanes, wrong maths."""

    def loglik(self, x, data, lanes):
        return super().loglik(x, data, lanes) - np.log(0.5)  # P(first choice) = 1/2 whatever the parameters

    def _loglik_grad_natural(self, x, data, lanes):
        ll, g = super()._loglik_grad_natural(x, data, lanes)
        return ll - np.log(0.5), g


class LaneCountLeaks(RWChoice):
    def loglik(self, x, data, lanes):
        return super().loglik(x, data, lanes) + 1e-6 * np.atleast_2d(x).shape[0]


class AcceptsBadParameters(RWChoice):
    def check_params(self, params):
        x = np.array([float(params.get(n, self.spec[n].default)) for n in self.param_names])
        return np.clip(np.nan_to_num(x, nan=0.5, posinf=1.0), [p.lower for p in self.spec], [p.upper for p in self.spec])


class SimulatesAFixedBeta(RWChoice):
    """Likelihood right, simulation ignores beta: fitted beta cannot follow the truth."""

    def _simulate_kernel(self, x, *args):
        return super()._simulate_kernel(np.array([x[0], 3.0]), *args)


class BadSpec(ParamSpec):
    def to_unconstrained(self, x):
        return super().to_unconstrained(x) * 1.001


@pytest.mark.parametrize("cls,check,words", [
    (WrongGradient, "gradient", "d loglik / d beta"),
    (IgnoresBeta, "parameters_matter", "ignores beta"),
    (IgnoresSeed, "seed_reproducibility", "ignores its rng"),
    (BehaviourIgnoresSeed, "seed_reproducibility", "same behaviour"),
    (SkipsFirstTrial, "lanes_equal_loop", "per-trial loop"),
    (LaneCountLeaks, "lanes_equal_loop", "one call per lane"),
    (AcceptsBadParameters, "bad_parameters_raise", "accepted"),
    (SimulatesAFixedBeta, "recovery", "beta"),
])
def test_a_broken_model_fails_naming_the_check(cls, check, words):
    check_model(rw(RWChoice, "rw-correct"), **FAST)         # the unbroken model passes with the same settings
    with pytest.raises(ModelCheckError) as info:
        check_model(rw(cls), **FAST)
    assert info.value.check == check
    assert f"check '{check}' failed" in str(info.value) and words in str(info.value)
    assert "rw-broken" in str(info.value)


def test_broken_transforms_fail():
    m = rw(RWChoice)
    m.spec = BadSpec(list(m.spec))
    with pytest.raises(ModelCheckError, match="check 'transforms_round_trip' failed"):
        check_model(m, **FAST)


def test_a_broken_user_rule_fails():
    """A factory model whose simulate and likelihood agree but whose rule never uses phi."""
    def no_phi(q, c, r, theta):
        q[c] += theta[0] * (r - q[c])

    m = choice_model("user-no-phi", [Param("alpha", lower=0, upper=1), Param("phi", lower=0, upper=1)], no_phi)
    with pytest.raises(ModelCheckError, match="check 'parameters_matter' failed.*ignores phi"):
        check_model(m, **FAST)


def test_a_model_without_reference_is_told_what_to_give(monkeypatch):
    import dopa_rl.testing.reference as reference

    m = rw(RWChoice)
    monkeypatch.setattr(reference, "builtin_reference", lambda model: None)   # as for a user's own Model subclass
    with pytest.raises(ModelCheckError, match="lanes_equal_loop.*reference=fn"):
        check_model(m, **FAST)
    check_model(m, reference=lambda params, trials: reference.rw_choice(m, params, trials), **FAST)


def test_arguments_are_checked():
    with pytest.raises(InputError, match="takes a model"):
        check_model("rw-softmax")
    with pytest.raises(InputError, match="unknown check"):
        check_model(get_model("rw-softmax"), skip=("nope",))
    with pytest.raises(InputError, match="not parameters"):
        check_model(get_model("rw-softmax"), weak=("gamma",))


@parametrize_with_checks([rw(RWChoice, "rw-correct")], **FAST)
def test_each_check_is_its_own_pytest_item(model, check):
    check(model)


def test_parametrize_with_checks_names_model_and_check_and_fails_only_the_broken_one():
    from dopa_rl.testing import CHECKS, model_checks

    mark = parametrize_with_checks([rw(RWChoice, "rw-correct"), rw(WrongGradient)], **FAST)
    ids = [p.id for p in mark.args[1]]
    assert ids == [f"rw-correct-{c}" for c in CHECKS] + [f"rw-broken-{c}" for c in CHECKS]
    failed = []
    for name, check in model_checks(rw(WrongGradient), **FAST, skip=("recovery",)):
        try:
            check(rw(WrongGradient))
        except ModelCheckError as exc:
            assert exc.check == name
            failed.append(name)
    assert failed == ["gradient"]
    with pytest.raises(InputError, match="unknown check"):
        list(model_checks(rw(RWChoice), skip=("nope",)))
