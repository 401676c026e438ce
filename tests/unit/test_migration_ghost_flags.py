"""Pure pieces of issue 16's gh-ost flags."""

from __future__ import annotations

import pytest

from console.engine.migration.triggers import check_trigger_options, new_trigger_name
from console.errors import UserError


def test_trigger_names_take_the_suffix_or_lose_it():
    assert new_trigger_name("t_ai", "_v2", False) == "t_ai_v2"
    assert new_trigger_name("t_ai_v2", "_v2", False) == "t_ai_v2_v2"
    assert new_trigger_name("t_ai_v2", "_v2", True) == "t_ai"
    assert new_trigger_name("_v2", "_v2", True) == "_v2_v2"      # nothing would be left


@pytest.mark.parametrize("include, suffix, remove, says", [
    (False, "_v2", False, "--trigger-suffix needs --include-triggers"),
    (True, "", True, "--remove-trigger-suffix-if-exists needs"),
    (True, "-x", False, "letters, digits"),
])
def test_trigger_options_refused(include, suffix, remove, says):
    with pytest.raises(UserError, match=says):
        check_trigger_options(include, suffix, remove)
