"""tests/helpers.skip_or_fail: a test that lacks a resource (../shared, Chromium) skips on a
developer's machine and fails in CI, so CI never passes by skipping (issue 22)."""

import helpers
import pytest
from helpers import required, skip_or_fail

FLAG = "METAKIT_SHARED_REQUIRED"


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("CI", FLAG):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("name,value,expected", [
    (None, None, False), ("CI", "true", True), ("CI", "1", True), ("CI", "false", False), ("CI", "", False),
    (FLAG, "1", True), (FLAG, "0", False)])
def test_required_in_ci_or_with_the_flag(clean_env, name, value, expected):
    if name is not None:
        clean_env.setenv(name, value)
    assert required(FLAG) is expected


def test_skips_locally_and_fails_in_ci(clean_env):
    with pytest.raises(pytest.skip.Exception, match="not here"):
        skip_or_fail("not here", FLAG)
    clean_env.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="may not skip"):
        skip_or_fail("not here", FLAG)


def test_the_omniglot_fixture_fails_in_ci_without_shared(clean_env):
    clean_env.setattr(helpers, "shared_omniglot_path", lambda: None)
    with pytest.raises(pytest.skip.Exception, match="Omniglot"):
        helpers.shared_omniglot()
    clean_env.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="Omniglot"):
        helpers.shared_omniglot()
