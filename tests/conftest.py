import pytest
from helpers import shared_omniglot

import metakit


@pytest.fixture(scope="session")
def glyphs_background():
    return metakit.load_glyphs("background")


@pytest.fixture(scope="session")
def glyphs_evaluation():
    return metakit.load_glyphs("evaluation")


@pytest.fixture(scope="session")
def omniglot():
    return shared_omniglot()
