import pytest
import torch

from metakit.metadata.columns import generate_column
from metakit.metadata.encoder import ColumnEncoder, ColumnPrototypes
from metakit.metadata.library import TypeLibrary


@pytest.fixture(scope="module")
def library():
    torch.manual_seed(0)
    return TypeLibrary(ColumnPrototypes(ColumnEncoder(dim=16)), ["email", "ipv4", "year"], k_shot=3)


def test_radius_is_calibrated_on_fresh_columns(library):
    assert library.calibration.shape == (9,) and (library.calibration >= 0).all()
    assert library.radius == pytest.approx(float(library.calibration.quantile(0.95)))
    assert TypeLibrary(library.model).radius == float("inf")


def test_prototypes_are_the_mean_embeddings_of_the_example_columns(library):
    examples = [generate_column("email", 10**6 + i) for i in range(3)]
    assert library.names == ["email", "ipv4", "year"]
    assert torch.allclose(library.prototypes[0], library.embed(examples).mean(0), atol=1e-6)


def test_predict_ranks_every_type_and_adding_a_type_replaces_by_name(library):
    lib = TypeLibrary(library.model, ["email", "ipv4"], k_shot=2, calibration_columns=0)
    ranking, nearest = lib.predict(generate_column("ipv4", 7))
    assert sorted(n for n, _ in ranking) == ["email", "ipv4"] and nearest >= 0
    assert sum(p for _, p in ranking) == pytest.approx(1.0, abs=1e-5)
    lib.add_type("ipv4", [["1.2.3.4", "5.6.7.8"], ["9.9.9.9", "10.0.0.1"]])
    assert lib.names == ["email", "ipv4"] and lib.spread[1] == lib.spread[1]
    lib.add_type("one", [["a", "b"]])  # one example column: no spread
    assert lib.spread[2] != lib.spread[2]
    assert lib.radius == pytest.approx(4.0 * float(torch.tensor(lib.spread[:2]).median()))
    for name, columns, match in [("", [["a", "b"]], "name"), ("x", [], "not enough values")]:
        with pytest.raises(ValueError, match=match):
            lib.add_type(name, columns)
