import pytest

from mtbench.profiles import by_profile, current_profile, data_root, environment_report


def test_profile_from_environment(monkeypatch):
    monkeypatch.setenv("MTBENCH_PROFILE", "full")
    assert current_profile() == "full" and by_profile(1, 2) == 2
    monkeypatch.setenv("MTBENCH_PROFILE", "smoke")
    assert by_profile(1, 2) == 1
    monkeypatch.setenv("MTBENCH_PROFILE", "fast")
    with pytest.raises(ValueError, match="MTBENCH_PROFILE='fast' is not a profile"):
        current_profile()


def test_data_root_env_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("MTBENCH_DATA_ROOT", str(tmp_path))
    assert data_root() == tmp_path.resolve()


def test_environment_report_names_device_and_versions():
    rep = environment_report()
    assert {"profile", "device", "torch", "mtbench"} <= set(rep)
