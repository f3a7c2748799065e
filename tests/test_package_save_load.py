"""xpnet.save and xpnet.load: a model keeps its class names, its dtype and its backend's place,
and a file that is not a model, or class names that do not fit, is one clear error."""

from __future__ import annotations

import numpy as np
import pytest

import xpnet


def test_save_and_load_keep_the_model_and_its_classes(tmp_path, backend):
    X = np.random.default_rng(1).random((8, 3))
    model = xpnet.Network.from_sizes([3, 5, 4], backend, activation="relu", output="identity",
                                     loss="cross_entropy", seed=2)
    path = xpnet.save(model, tmp_path / "m.safetensors", classes=["a", "b", "c", "d"])
    again = xpnet.load(path, backend)
    assert again.classes == ("a", "b", "c", "d") and again.sizes == model.sizes
    np.testing.assert_array_equal(model.predict(X), again.predict(X))
    on_numpy = xpnet.load(path, "numpy")  # by name, in the dtype it was saved in
    assert on_numpy.backend.name == "numpy" and on_numpy.backend.dtype_name == backend.dtype_name


def test_load_takes_a_run_folder_and_save_keeps_a_loaded_models_classes(tmp_path, reference):
    model = xpnet.Network.from_sizes([2, 2], reference, seed=0)
    model.classes = ("no", "yes")
    (tmp_path / "run").mkdir()
    xpnet.save(model, tmp_path / "run")  # a folder: its model.safetensors
    assert (tmp_path / "run" / "model.safetensors").is_file()
    assert xpnet.load(tmp_path / "run", reference).classes == ("no", "yes")


def test_loading_a_file_that_is_not_a_model_is_one_clear_error(tmp_path):
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a model")
    with pytest.raises(xpnet.XpnetError, match="is not a checkpoint"):
        xpnet.load(junk, "numpy")


def test_a_copy_on_another_backend_keeps_the_class_names(reference):
    model = xpnet.Network.from_sizes([2, 2], reference, seed=0)
    model.classes = ("no", "yes")
    assert model.to(reference.with_dtype("float32")).classes == ("no", "yes")


def test_save_refuses_class_names_that_do_not_match_the_outputs(tmp_path, reference):
    model = xpnet.Network.from_sizes([2, 2], reference, seed=0)
    with pytest.raises(xpnet.XpnetError, match="3 class names for a network of 2 outputs"):
        xpnet.save(model, tmp_path / "m.safetensors", classes=["a", "b", "c"])
    assert not (tmp_path / "m.safetensors").exists()


def test_load_onto_a_backend_takes_a_dtype_and_refuses_another_device(tmp_path, reference):
    path = xpnet.save(xpnet.Network.from_sizes([2, 2], reference, seed=0), tmp_path / "m.safetensors")
    assert xpnet.load(path, reference, dtype="float32").backend.dtype_name == "float32"
    with pytest.raises(xpnet.XpnetError, match="device 'cuda' given with a Backend"):
        xpnet.load(path, reference, device="cuda")
