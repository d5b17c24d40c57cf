"""hub/z2jh/config.yaml, the class on Kubernetes (Zero to JupyterHub), checked without Kubernetes:
it parses, keeps the one-machine hub's choices, names the image this version builds, and its
first-start hook gives instructors and learners their own versions of the notebooks."""
import re
import subprocess
from pathlib import Path

import pytest
import yaml

import metakit

ROOT = Path(__file__).resolve().parents[2]
PATH = ROOT / "hub" / "z2jh" / "config.yaml"
CONFIG = yaml.safe_load(PATH.read_text())
USER = CONFIG["singleuser"]


def test_limits_culling_and_threads_match_the_one_machine_hub():
    assert USER["cpu"]["limit"] == 1 and USER["memory"]["limit"] == "2G"  # as mem_limit/cpu_limit there
    assert USER["extraEnv"]["OMP_NUM_THREADS"] == "1"
    assert CONFIG["cull"] == {"enabled": True, "timeout": 3600, "every": 600}
    assert USER["startTimeout"] == 300
    hub = (ROOT / "hub" / "jupyterhub_config.py").read_text()
    assert re.search(r"METAKIT_HUB_CULL_S., .3600", hub) and re.search(r"METAKIT_HUB_THREADS., .1", hub)
    assert re.search(r"mem_limit = .2G", hub) and re.search(r"cpu_limit = 1\b", hub)


def test_sign_up_needs_an_instructor_and_instructors_are_named_twice_alike():
    config = CONFIG["hub"]["config"]
    assert config["JupyterHub"]["authenticator_class"] == "nativeauthenticator.NativeAuthenticator"
    assert config["NativeAuthenticator"]["open_signup"] is False and config["Authenticator"]["allow_all"] is False
    assert config["Authenticator"]["admin_users"] == USER["extraEnv"]["METAKIT_INSTRUCTORS"].split()


def test_the_image_is_this_version_built_by_repo2docker_into_srv():
    assert USER["image"]["tag"] == metakit.__version__
    text = PATH.read_text()
    assert "--target-repo-dir /srv/metakit" in text
    assert re.search(rf"--image-name {USER['image']['name']}:{metakit.__version__}\b", text)


@pytest.mark.parametrize("user, expected", [("grace", "solution"), ("ada", "stub")])
def test_first_start_copies_the_right_version_once(tmp_path, user, expected):
    command = USER["lifecycleHooks"]["postStart"]["exec"]["command"]
    assert command[:2] == ["sh", "-c"]
    script = command[2].replace("/srv/metakit", str(tmp_path / "srv"))
    for folder, content in [("notebooks", "solution"), ("student", "stub")]:
        (tmp_path / "srv" / folder).mkdir(parents=True)
        (tmp_path / "srv" / folder / "01.ipynb").write_text(content)
    home = tmp_path / "home"
    home.mkdir()
    env = {"PATH": "/usr/bin:/bin", "METAKIT_INSTRUCTORS": USER["extraEnv"]["METAKIT_INSTRUCTORS"],
           "JUPYTERHUB_USER": user}
    for _ in range(2):  # the second start leaves the learner's copy alone
        subprocess.run(["sh", "-c", script], cwd=home, env=env, check=True)
        assert (home / "metakit" / "01.ipynb").read_text() == expected
        (home / "metakit" / "01.ipynb").write_text(expected)
    assert sorted(p.name for p in (home / "metakit").iterdir()) == ["01.ipynb"]
