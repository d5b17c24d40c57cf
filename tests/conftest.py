import pytest

import metakit


@pytest.fixture(scope="session")
def glyphs_background():
    return metakit.load_glyphs("background")


@pytest.fixture(scope="session")
def glyphs_evaluation():
    return metakit.load_glyphs("evaluation")


@pytest.fixture(scope="session")
def omniglot():
    path = metakit.shared_omniglot_path()
    if path is None:
        pytest.skip("the real Omniglot subset (../shared/data/omniglot/images_background_small1.zip) is not here")
    return metakit.load_image_folder(path)
