"""The one Registry every pluggable kind uses."""

import pytest

from mtbench.registry import Registry, RegistryError


def test_register_get_list_and_meta():
    reg = Registry("widget")

    @reg.register("alpha", description="first")
    def alpha():
        return 1

    reg.register("beta", object())
    assert reg.get("alpha") is alpha
    assert reg.names() == ["alpha", "beta"]
    assert "alpha" in reg and "gamma" not in reg
    assert reg.meta("alpha") == {"description": "first"}


def test_duplicate_refused_unless_replace():
    reg = Registry("widget")
    reg.register("a", 1)
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("a", 2)
    reg.register("a", 3, replace=True)
    assert reg.get("a") == 3


def test_unknown_name_suggests_close_matches():
    reg = Registry("backbone")
    reg.register("convnet", 1)
    reg.register("densenet121_3d", 2)
    with pytest.raises(RegistryError, match=r"Unknown backbone 'convnt'\. Did you mean 'convnet'\?") as err:
        reg.get("convnt")
    assert "Available: convnet, densenet121_3d" in str(err.value)
    # user-facing getters (get_metric, create_head, get_experiment ...) raise the same text as a ValueError
    with pytest.raises(ValueError, match=r"Unknown backbone 'convnt'\. Did you mean 'convnet'\?") as err:
        reg.lookup("convnt")
    assert not isinstance(err.value, KeyError) and reg.lookup("convnet") == 1


def test_lazy_entries_import_on_first_use():
    reg = Registry("module")
    reg.register("json_dumps", "json:dumps")
    reg.register("json", "json")
    import json

    assert reg.get("json_dumps") is json.dumps
    assert reg.get("json") is json
