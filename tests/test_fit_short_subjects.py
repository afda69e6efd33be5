"""A subject with fewer than 2 usable trials is refused by every fitting method with one message naming it
(the check is written once, fit.space.require_usable_trials)."""
import pandas as pd
import pytest

from dopa_rl.errors import InputError
from dopa_rl.fit import fit
from dopa_rl.models import get_model


@pytest.mark.parametrize("method", ["mle", "map", "hier"])
def test_a_subject_with_one_trial_is_refused_by_name(method):
    df = pd.DataFrame({"subject": ["a", "a", "a", "b", "c", "c"], "trial": [0, 1, 2, 0, 0, 1],
                       "choice": [0, 1, 0, 1, 0, 1], "reward": [1, 0, 1, 0, 1, 1]})
    with pytest.raises(InputError, match=r"^subject\(s\) b have fewer than 2 usable trials; a fit needs at least 2"):
        fit(get_model("rw-softmax"), df, method=method)
