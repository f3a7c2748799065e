"""CSV tables and bare paths: `csv:FILE[#COLUMN]`, `data.csv`, `data.npz`, a folder."""

from __future__ import annotations

import numpy as np
import pytest

from xpnet.train.data import DataError, load_data, parse_spec
from xpnet.train.data.spec import absolute_spec
from assertions import assert_one_line_error, run_cli


def write(path, text):
    path.write_text(text)
    return path


def test_the_last_column_is_the_target_and_decimals_mean_regression(tmp_path):
    f = write(tmp_path / "houses.csv", "area,rooms,price\n120,3,350000.0\n80,2,2.1e5\n200,5,610000\n")
    d = load_data(f"csv:{f}")
    assert d.classes is None and d.y_train.dtype == np.float32 and d.X_train.shape == (3, 2)
    np.testing.assert_array_equal(d.y_train, [350000, 210000, 610000])
    assert d.info["target"] == "price" and d.info["features"] == ["area", "rooms"] and d.X_test is None


def test_a_named_target_column_whole_numbers_are_classes_in_numeric_order(tmp_path):
    f = write(tmp_path / "t.csv", "label,x1,x2\n10,0.5,1\n2,0.1,2\n10,0.2,3\n")
    d = load_data(f"csv:{f}#label")
    assert d.classes == ("2", "10") and d.y_train.tolist() == [1, 0, 1]
    np.testing.assert_array_equal(d.X_train, np.float32([[0.5, 1], [0.1, 2], [0.2, 3]]))


def test_text_targets_are_class_names(tmp_path):
    f = write(tmp_path / "pets.csv", "w,h,kind\n4,30,dog\n3,25,cat\n5,40,dog\n")
    d = load_data(str(f))  # a bare .csv path
    assert d.classes == ("cat", "dog") and d.y_train.tolist() == [1, 0, 1]


@pytest.mark.parametrize("text,needle", [
    ("a,b,y\n1,red,2\n", "line 2, column 'b': 'red' is not a number"),
    ("a,y\n1,2\n3\n", "line 3 has 1 cells"),
    ("a,y\n", "header row"),
    ("y\n1\n2\n", "only the target column"),
    ("a,y\n1,nan\n", "NaN"),
    ("a,y\ninf,1\n", "clean the data"),
])
def test_bad_tables_are_one_line_naming_the_place(tmp_path, text, needle):
    f = write(tmp_path / "bad.csv", text)
    with pytest.raises(DataError) as info:
        load_data(f"csv:{f}")
    assert needle in str(info.value) and "\n" not in str(info.value)


def test_a_missing_target_column_lists_the_columns(tmp_path):
    f = write(tmp_path / "t.csv", "a,b,y\n1,2,3\n")
    with pytest.raises(DataError, match="no column 'price'.*a, b, y"):
        load_data(f"csv:{f}#price")


def test_bare_paths_are_read_by_extension_or_as_a_folder(tmp_path):
    assert parse_spec("data.npz") == ("npz", "data.npz")
    assert parse_spec("some/where/t.CSV#y") == ("csv", "some/where/t.CSV#y")
    assert parse_spec(str(tmp_path)) == ("folder", str(tmp_path))
    assert absolute_spec("x.csv#price").startswith("csv:/") and absolute_spec("x.csv#price").endswith("x.csv#price")
    with pytest.raises(DataError, match="a path ending in .npz or .csv"):
        parse_spec("data.txt")


def test_train_on_a_csv_from_the_command_line_with_a_validation_split(capsys, tmp_path):
    rng = np.random.default_rng(0)
    X = rng.uniform(0, 100, (400, 3))
    y = X @ np.array([2.0, -1.0, 0.5]) + 1000
    rows = "\n".join(",".join(f"{v:.3f}" for v in (*x, t)) for x, t in zip(X, y))
    f = write(tmp_path / "data.csv", "a,b,c,target\n" + rows + "\n")
    code, out, err = run_cli(capsys, "train", "--data", str(f), "--layers", "16", "--epochs", "15",
                             "--val-fraction", "0.2", "--out", str(tmp_path / "run"), "--no-progress",
                             "--backend", "numpy")
    assert code == 0, err
    assert "regression (float targets): loss quadratic" in out and "scale: inputs standardised" in out
    assert "validation: 80 of the 400 training samples held back (20%)" in out
    history = __import__("json").loads((tmp_path / "run" / "history.json").read_text())
    assert history[-1]["val_loss"] < 0.05  # in standard units: R^2 about 0.95 or better
    # with no test set, the run ends on the held-back rows in the target's own units, and
    # evaluate scores those same rows, never the ones it trained on
    [last] = [line for line in out.splitlines() if line.startswith("validation rmse")]
    assert last.endswith("on 80 samples held back from training (no test set)")
    assert float(last.split("r2 ")[1].split()[0]) > 0.9
    code, again, err = run_cli(capsys, "evaluate", str(tmp_path / "run"), "--backend", "numpy")
    assert code == 0, err
    assert "on 80 validation samples (held back from training by --val-fraction)" in again
    assert last.split("rmse ")[1].split()[0] in again  # the same rows, the same error
    code, out, err = run_cli(capsys, "train", "--data", f"csv:{tmp_path / 'nope.csv'}", "--out", str(tmp_path / "r2"),
                             "--no-progress", "--backend", "numpy")
    assert_one_line_error(code, err, "does not exist")


def test_predict_answers_each_row_of_a_csv_or_npz_with_a_value(capsys, tmp_path):
    """A regression model served from the command line: rows in, values out (JSON with --json);
    the CSV may keep its target column, matched by the run's feature names."""
    import json

    rng = np.random.default_rng(1)
    X = rng.uniform(0, 100, (300, 2))
    y = 3 * X[:, 0] - X[:, 1] + 500
    rows = "\n".join(f"{a:.3f},{b:.3f},{t:.3f}" for (a, b), t in zip(X, y))
    f = write(tmp_path / "d.csv", "a,b,y\n" + rows + "\n")
    code, _, err = run_cli(capsys, "train", "--data", str(f), "--layers", "16", "--epochs", "20",
                           "--out", str(tmp_path / "run"), "--no-progress", "--backend", "numpy")
    assert code == 0, err
    write(tmp_path / "ask.csv", "y,b,a\n0,10,20\n0,50,50\n")  # other order, target column kept
    np.savez(tmp_path / "ask.npz", X=np.array([[20.0, 10.0], [50.0, 50.0]]))
    for ask in ("ask.csv", "ask.npz"):
        code, out, err = run_cli(capsys, "predict", str(tmp_path / "run"), "--input", str(tmp_path / ask), "--json",
                                 "--backend", "numpy")
        assert code == 0, err
        answers = [json.loads(line) for line in out.splitlines()]
        assert [a["row"] for a in answers] == [0, 1]
        np.testing.assert_allclose([a["value"] for a in answers], [550.0, 600.0], rtol=0.05)
    code, _, err = run_cli(capsys, "predict", str(tmp_path / "run"), "--input", str(tmp_path / "d.txt"),
                           "--backend", "numpy")
    assert_one_line_error(code, err, ".csv or .npz")
    write(tmp_path / "short.csv", "b,c\n10,1\n50,2\n5,3\n")  # a lacks; one column too few once b is taken
    write(tmp_path / "narrow.csv", "b\n10\n50\n")
    for short in ("short.csv", "narrow.csv"):
        code, _, err = run_cli(capsys, "predict", str(tmp_path / "run"), "--input", str(tmp_path / short),
                               "--backend", "numpy")
        assert_one_line_error(code, err, "lacks the column(s) a", "(a, b)")
    code, _, err = run_cli(capsys, "predict", str(tmp_path / "run"), "--backend", "numpy")
    assert_one_line_error(code, err, "--input")
