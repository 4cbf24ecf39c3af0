"""The ``woodlot`` command line, driven as a script would: each command in a process of its
own, stdout parsed as JSON, exit codes and stderr checked.

Importing woodlot (scikit-learn) costs 0.5 to 3 s a process on this machine, so most commands
run in a child forked from the test fork server (``tests/reliability/_zygote.py``, which
imported woodlot once): a real process with its own exit code, stdout and stderr, running the
console script's ``main``. The entry points themselves (``python -m woodlot``,
``python -m woodlot._cli``, the ``woodlot`` script), colour on a terminal and the install
without pandas run as fresh ``python`` processes. One store is built per module (two wine
forests, v1 active) and copied for the tests that change it.
"""

from __future__ import annotations

import csv
import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split

import woodlot
from woodlot import RandomForestClassifier, VersionStore
from woodlot._cli import _exit

from ._cli_worker import run_cli

ROOT = Path(__file__).resolve().parents[2]


_SERVER = {}


@pytest.fixture(scope="module", autouse=True)
def _fork_server(zygote, tmp_path_factory):
    _SERVER["zygote"] = zygote
    _SERVER["dir"] = tmp_path_factory.mktemp("out")
    yield
    _SERVER.clear()


def python_m_woodlot(*args: str, env=None, check_code=None):
    """``python -m woodlot ARGS`` as a fresh interpreter; returns the CompletedProcess."""
    full_env = {k: v for k, v in os.environ.items() if k not in ("WOODLOT_STORE", "NO_COLOR")}
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "woodlot", *args], capture_output=True, text=True,
                          env=full_env, timeout=120, cwd=ROOT)
    if check_code is not None:
        assert proc.returncode == check_code, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def run(*args: str, store=None, env=None, check_code=None):
    """``woodlot ARGS [--store STORE]`` in a forked process; returns a CompletedProcess."""
    argv = list(args) + (["--store", str(store)] if store is not None else [])
    out = _SERVER["dir"] / "stdout"
    err = _SERVER["dir"] / "stderr"
    result = _SERVER["zygote"].run(run_cli, argv, dict(env or {}), str(out), str(err), timeout=120)
    assert "code" in result, result
    proc = subprocess.CompletedProcess(argv, result["code"], out.read_text(), err.read_text())
    if check_code is not None:
        assert proc.returncode == check_code, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def run_json(*args: str, store=None, env=None, code=0):
    proc = run(*args, "--json", store=store, env=env, check_code=code)
    return json.loads(proc.stdout)


def one_line_error(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "error:" in lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The tutorial split of the wine data, and its test rows as a CSV with a ``label`` column."""
    frame = load_wine(as_frame=True)
    X_train, X_test, y_train, y_test = train_test_split(
        frame.data, frame.target, test_size=0.3, random_state=42, stratify=frame.target
    )
    path = tmp_path_factory.mktemp("data") / "holdout.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(list(X_test.columns) + ["label"])
        for row, label in zip(X_test.itertuples(index=False), y_test):
            w.writerow(list(row) + [int(label)])
    return X_train, X_test, y_train, y_test, path


@pytest.fixture(scope="module")
def base_store(tmp_path_factory, data):
    """v1 (10 trees, depth 2, active, alias ``stable``) and v2 (30 trees, depth 5)."""
    X_train, _, y_train, _, _ = data
    root = tmp_path_factory.mktemp("store") / "models"
    store = VersionStore(root)
    m1 = RandomForestClassifier(n_estimators=10, max_depth=2, random_state=0).fit(X_train, y_train)
    m2 = RandomForestClassifier(n_estimators=30, max_depth=5, random_state=0).fit(X_train, y_train)
    v1 = store.save(m1, description="small", tags={"stage": "baseline"}, metrics={"cv": 0.9})
    store.promote(v1, reason="first deployment")
    store.save(m2, description="bigger")
    store.set_alias("stable", v1)
    return root


@pytest.fixture()
def store(base_store, tmp_path):
    """A private copy of the module's store, for tests that change it."""
    dst = tmp_path / "models"
    shutil.copytree(base_store, dst)
    return dst


# -- reading ------------------------------------------------------------------------------------


def test_list_json_has_the_documented_keys_and_markers(base_store):
    doc = run_json("list", store=base_store)
    assert doc["active"] == "v1"
    assert doc["aliases"] == {"stable": "v1"}
    assert [v["name"] for v in doc["versions"]] == ["v1", "v2"]
    v1, v2 = doc["versions"]
    assert set(v1) == {
        "version", "name", "created", "user", "host", "parent", "kind", "n_trees", "n_features",
        "n_classes", "n_samples", "digest", "size", "description", "tags", "metrics", "active", "aliases",
    }
    assert (v1["active"], v1["aliases"], v1["n_trees"], v1["tags"], v1["metrics"]) == (
        True, ["stable"], 10, {"stage": "baseline"}, {"cv": 0.9})
    assert (v2["active"], v2["aliases"], v2["parent"], v2["n_trees"]) == (False, [], "v1", 30)


def test_list_table_marks_the_active_version_and_aliases(base_store):
    out = run("list", store=base_store, check_code=0).stdout
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["VERSION", "CREATED"]
    v1 = next(line for line in lines if line.startswith("v1 "))
    assert "active, alias:stable" in v1 and "small" in v1
    assert "\x1b[" not in out  # not a terminal: no colour


def test_store_comes_from_the_environment(base_store):
    doc = run_json("list", env={"WOODLOT_STORE": str(base_store)})
    assert doc["active"] == "v1"


def test_store_given_before_the_command_name_works_and_the_one_after_wins(base_store, tmp_path):
    # `woodlot --store models list`, as git -C / kubectl --context are used.
    doc = run_json("--store", str(base_store), "list")
    assert doc["active"] == "v1" and [v["name"] for v in doc["versions"]] == ["v1", "v2"]
    # It beats $WOODLOT_STORE, and a --store after the command beats it.
    doc = run_json("--store", str(base_store), "list", env={"WOODLOT_STORE": str(tmp_path / "nothing")})
    assert doc["active"] == "v1"
    proc = run("--store", str(base_store), "list", store=tmp_path / "typo")
    assert proc.returncode == _exit.NOT_FOUND and "typo" in one_line_error(proc)
    # Storage options before the command reach it too: a malformed one is refused by name.
    proc = run("--store", str(base_store), "--storage-option", "novalue", "list")
    assert proc.returncode == _exit.USAGE and "KEY=VALUE" in one_line_error(proc)


def test_show_json_carries_the_manifest(base_store):
    doc = run_json("show", "stable", store=base_store)
    assert doc["name"] == "v1"
    assert doc["manifest"]["version"] == 1
    assert doc["manifest"]["blob"]["digest"] == doc["digest"]


def test_show_human(base_store):
    out = run("show", "v2", store=base_store, check_code=0).stdout
    assert out.splitlines()[0] == "v2"
    assert "30 trees" in out and "parent" in out and "bigger" in out


def test_history_json_and_last(base_store):
    doc = run_json("history", store=base_store)
    kinds = [e["kind"] for e in doc["events"]]
    assert kinds[:2] == ["save", "promote"] and kinds[-1] == "alias_set"
    assert doc["events"][1]["reason"] == "first deployment"
    assert doc["events"][1]["active"] == "v1"
    assert set(doc["events"][0]) == {
        "seq", "kind", "time", "user", "host", "pid", "version", "reason", "active", "aliases", "details"}
    last = run_json("history", "--last", "1", store=base_store)
    assert [e["seq"] for e in last["events"]] == [doc["events"][-1]["seq"]]
    out = run("history", store=base_store, check_code=0).stdout
    assert "first deployment" in out and "promote" in out


def test_verify_ok(base_store):
    doc = run_json("verify", store=base_store)
    assert doc["ok"] is True and doc["versions_checked"] == 2 and doc["problems"] == []
    assert run("verify", store=base_store, check_code=0).stdout.startswith("OK: 2 versions")


def test_compare_csv_json(base_store, data):
    path = data[-1]
    doc = run_json("compare", "--data", str(path), "--target", "label", "--no-record", store=base_store)
    assert doc["versions"] == ["v1", "v2"] and doc["n_rows"] == 54
    assert doc["best"] in ("v1", "v2") and doc["active"] == "v1"
    assert set(doc["metrics"]["v1"]) == {
        "accuracy", "balanced_accuracy", "macro_f1", "log_loss", "per_class_recall", "confusion_matrix"}
    assert sum(map(sum, doc["metrics"]["v2"]["confusion_matrix"])) == 54
    (pair,) = doc["pairwise"]
    assert (pair["a"], pair["b"], pair["n_bootstrap"]) == ("v1", "v2", 2000)
    assert pair["ci_low"] <= pair["accuracy_diff"] <= pair["ci_high"]


def test_compare_matches_the_python_api(base_store, data):
    _, X_test, _, y_test, path = data
    expected = VersionStore(base_store).compare(X_test, y_test, record=False)
    doc = run_json("compare", "--data", str(path), "--target", "label", "--no-record", store=base_store)
    for name in ("v1", "v2"):
        assert doc["metrics"][name]["accuracy"] == expected.metrics[name]["accuracy"]
        assert doc["metrics"][name]["log_loss"] == pytest.approx(expected.metrics[name]["log_loss"], rel=1e-12)


def test_compare_parquet_and_human_table(base_store, data, tmp_path):
    _, X_test, _, y_test, _ = data
    frame = X_test.copy()
    frame["label"] = y_test.to_numpy()
    path = tmp_path / "holdout.parquet"
    frame.to_parquet(path)
    out = run("compare", "--data", str(path), "--target", "label", "--versions", "v2", "active",
              "--no-record", store=base_store, check_code=0).stdout
    assert "2 versions on 54 rows" in out
    assert "McNemar" in out and "ACCURACY" in out


def test_compare_without_pandas_reads_csv_with_the_stdlib(base_store, data, tmp_path):
    """The core install has no pandas: CSV still works (read by the csv module)."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "pandas.py").write_text("raise ImportError('pandas is blocked for this test')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])}
    path = data[-1]
    proc = python_m_woodlot("compare", "--data", str(path), "--target", "label", "--no-record", "--json",
                            "--store", str(base_store), env=env, check_code=0)
    doc = json.loads(proc.stdout)
    with_pandas = run_json("compare", "--data", str(path), "--target", "label", "--no-record", store=base_store)
    assert doc["metrics"] == with_pandas["metrics"]
    # And Parquet then says which extra to install.
    pq = tmp_path / "x.parquet"
    pq.write_bytes(b"PAR1")
    proc = python_m_woodlot("compare", "--data", str(pq), "--target", "label", "--store", str(base_store), env=env)
    assert proc.returncode == _exit.FAILURE
    assert 'pip install "woodlot[parquet]"' in one_line_error(proc)


def test_compare_names_a_missing_target_column(base_store, data):
    proc = run("compare", "--data", str(data[-1]), "--target", "nope", store=base_store)
    assert proc.returncode == _exit.USAGE
    assert "no column 'nope'" in one_line_error(proc)


def test_compare_missing_data_file_is_not_found(base_store, tmp_path):
    proc = run("compare", "--data", str(tmp_path / "none.csv"), "--target", "label", store=base_store)
    assert proc.returncode == _exit.NOT_FOUND
    assert "no data file" in one_line_error(proc)


# -- changing ------------------------------------------------------------------------------------


def test_promote_and_rollback(store):
    doc = run_json("promote", "v2", "--reason", "bigger is better", store=store)
    assert doc == {"promoted": True, "version": "v2", "active_before": "v1", "active_after": "v2"}
    assert VersionStore(store).history()[-1].reason == "bigger is better"
    doc = run_json("rollback", "--reason", "not really", store=store)
    assert doc == {"active_before": "v2", "active_after": "v1"}
    out = run("promote", "v2", store=store, check_code=0).stdout
    assert out.startswith("v2 is active (was v1)")
    out = run("rollback", "--to", "v1", store=store, check_code=0).stdout
    assert "v1 is active" in out


def test_promote_expect_active_conflict(store):
    proc = run("promote", "v2", "--expect-active", "v2", store=store)
    assert proc.returncode == _exit.CONFLICT
    one_line_error(proc)
    assert VersionStore(store).active.name == "v1"
    assert run_json("promote", "v2", "--expect-active", "v1", store=store)["active_after"] == "v2"


def test_promote_if_better_refused_gate(store, data):
    path = str(data[-1])
    proc = run("promote", "v2", "--if-better", "--data", path, "--target", "label", "--min-delta", "2",
               "--json", store=store)
    assert proc.returncode == _exit.REFUSED
    doc = json.loads(proc.stdout)
    assert doc["promoted"] is False and doc["active_after"] == "v1" and doc["min_delta"] == 2.0
    assert VersionStore(store).active.name == "v1"
    doc = run_json("promote", "v2", "--if-better", "--data", path, "--target", "label", "--min-delta", "-1",
                   store=store)
    assert doc["promoted"] is True and doc["active_after"] == "v2"


def test_promote_if_better_needs_data(store):
    proc = run("promote", "v2", "--if-better", store=store)
    assert proc.returncode == _exit.USAGE
    assert "--data" in one_line_error(proc)


def test_rollback_with_nothing_to_return_to_is_refused(tmp_path, data):
    X_train, _, y_train, _, _ = data
    root = tmp_path / "fresh"
    s = VersionStore(root)
    s.promote(s.save(RandomForestClassifier(n_estimators=2, max_depth=1, random_state=0).fit(X_train, y_train)))
    proc = run("rollback", store=root)
    assert proc.returncode == _exit.REFUSED
    one_line_error(proc)


def test_alias_set_and_rm(store):
    assert run_json("alias", "set", "champion", "v2", store=store) == {"alias": "champion", "version": "v2"}
    assert VersionStore(store).aliases == {"champion": "v2", "stable": "v1"}
    assert run_json("alias", "rm", "champion", store=store) == {"alias": "champion", "removed": True}
    proc = run("alias", "rm", "champion", store=store)
    assert proc.returncode == _exit.NOT_FOUND
    one_line_error(proc)
    proc = run("alias", "set", "../evil", "v2", store=store)
    assert proc.returncode == _exit.USAGE
    one_line_error(proc)


def test_delete_refuses_the_active_version_without_force(store):
    proc = run("delete", "v1", store=store)
    assert proc.returncode == _exit.REFUSED
    assert "force" in one_line_error(proc)
    doc = run_json("delete", "v2", "--reason", "never used", store=store)
    assert doc["deleted"] == "v2" and doc["event"]["kind"] == "delete"
    assert [v.name for v in VersionStore(store).versions()] == ["v1"]
    doc = run_json("delete", "v1", "--force", store=store)
    assert doc["deleted"] == "v1"
    assert VersionStore(store).active is None


def test_gc_dry_run_then_gc(store):
    run_json("delete", "v2", store=store)
    dry = run_json("gc", "--dry-run", "--grace-seconds", "0", store=store)
    assert dry["dry_run"] is True and dry["removed"] and dry["bytes_freed"] > 0
    real = run_json("gc", "--grace-seconds", "0", store=store)
    assert real["dry_run"] is False
    assert {r["path"] for r in real["removed"]} == {r["path"] for r in dry["removed"]}
    assert run_json("gc", "--grace-seconds", "0", store=store)["removed"] == []
    out = run("gc", "--dry-run", store=store, check_code=0).stdout
    assert "would remove 0 files" in out


# -- failures scripts must tell apart --------------------------------------------------------------


def test_not_found_version(base_store):
    proc = run("show", "v99", store=base_store)
    assert proc.returncode == _exit.NOT_FOUND
    line = one_line_error(proc)
    assert line.startswith("woodlot show: error:") and "v99" in line and "'" != line[-1]


def test_missing_store_directory_is_not_found_and_not_created(tmp_path):
    proc = run("list", store=tmp_path / "typo")
    assert proc.returncode == _exit.NOT_FOUND
    assert "no store at" in one_line_error(proc)
    assert not (tmp_path / "typo").exists()


def test_no_store_is_a_usage_error():
    proc = run("list")
    assert proc.returncode == _exit.USAGE
    assert "WOODLOT_STORE" in one_line_error(proc)


def test_bad_arguments_are_one_line_usage_errors(base_store):
    proc = run("history", "--last", "many", store=base_store)
    assert proc.returncode == _exit.USAGE
    assert "invalid int value" in one_line_error(proc)
    proc = run("frobnicate")
    assert proc.returncode == _exit.USAGE
    one_line_error(proc)
    proc = run()
    assert proc.returncode == _exit.USAGE


def test_corrupt_blob_fails_verify_and_rollback(store):
    doc = run_json("promote", "v2", store=store)
    assert doc["active_after"] == "v2"
    digest = VersionStore(store).get("v1").digest
    blob = store / "blobs" / digest
    raw = bytearray(blob.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    os.chmod(blob, 0o644)
    blob.write_bytes(bytes(raw))
    proc = run("verify", "--json", store=store)
    assert proc.returncode == _exit.CORRUPT
    doc = json.loads(proc.stdout)
    assert doc["ok"] is False and any("v1" in p["subject"] for p in doc["problems"])
    proc = run("rollback", store=store)
    assert proc.returncode == _exit.CORRUPT
    one_line_error(proc)
    assert VersionStore(store).active.name == "v2"


# -- help, version, colour -----------------------------------------------------------------------

COMMAND_NAMES = ["list", "show", "history", "compare", "promote", "rollback", "alias", "delete", "verify", "gc",
                 "import"]


def test_every_command_has_help_with_an_example_and_exit_codes():
    top = run("--help", check_code=0).stdout
    assert "exit codes:" in top and "3  not found" in top and "6  refused" in top
    for name in COMMAND_NAMES:
        assert name in top
    helps = {name: run(*name.split(), "--help", check_code=0).stdout
             for name in COMMAND_NAMES + ["alias set", "alias rm"]}
    for name, text in helps.items():
        assert "example" in text, name
        assert f"woodlot {name.split()[0]}" in text.split("example", 1)[1], name
        if " " not in name:
            assert "exit codes:" in text and "--json" in text, name


def test_version():
    proc = python_m_woodlot("--version", check_code=0)
    assert proc.stdout.strip() == f"woodlot {woodlot.__version__}"
    proc = subprocess.run([sys.executable, "-m", "woodlot._cli", "--version"], capture_output=True, text=True,
                          timeout=120, check=True)
    assert proc.stdout.strip() == f"woodlot {woodlot.__version__}"


def test_console_script_is_installed():
    script = shutil.which("woodlot", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    assert script, "the woodlot console script is not on PATH (pip install the package)"
    proc = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("woodlot ")


def _run_on_a_terminal(args, env_extra):
    """Run ``python -m woodlot ARGS`` with stdout on a pseudo-terminal; returns what it printed."""
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "WOODLOT_STORE")}
    env["TERM"] = "xterm"
    env.update(env_extra)
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "woodlot", *args], stdout=follower, stderr=subprocess.PIPE,
                            env=env, cwd=ROOT)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=120) == 0, proc.stderr.read()
    proc.stderr.close()
    return b"".join(chunks).decode()


def test_colour_only_on_a_terminal_and_never_with_no_color(base_store):
    args = ["list", "--store", str(base_store)]
    coloured = _run_on_a_terminal(args, {})
    assert "\x1b[32m" in coloured  # the active version in green
    plain = _run_on_a_terminal(args, {"NO_COLOR": ""})
    assert "\x1b[" not in plain and "active, alias:stable" in plain
    piped = run(*args, check_code=0).stdout
    assert "\x1b[" not in piped


# -- import ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sklearn_pickle(tmp_path_factory, data):
    """The joblib tutorial's ``model_v1.pkl``: a scikit-learn forest in a joblib file."""
    import joblib
    from sklearn.ensemble import RandomForestClassifier as SkForest

    X_train, _, y_train, _, _ = data
    path = tmp_path_factory.mktemp("pickles") / "model_v1.pkl"
    sk = SkForest(n_estimators=12, max_depth=4, random_state=42).fit(X_train, y_train)
    joblib.dump(sk, path)
    return path, sk


def test_import_without_trust_is_refused_and_never_unpickles(tmp_path):
    # A file that runs code when unpickled: without --trust it must not be opened at all.
    import pickle

    marker = tmp_path / "ran"
    evil = tmp_path / "evil.pkl"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil.write_bytes(pickle.dumps(Evil()))
    proc = run("import", str(evil), store=tmp_path / "models", check_code=_exit.REFUSED)
    assert "--trust" in proc.stderr and "run code" in proc.stderr
    assert not marker.exists()
    assert not (tmp_path / "models").exists()


def test_import_trusted_pickle_becomes_a_version_with_its_lineage(tmp_path, sklearn_pickle, data):
    path, sk = sklearn_pickle
    _, X_test, _, _, _ = data
    root = tmp_path / "models"
    doc = run_json("import", str(path), "--trust", "--promote", "--reason", "what production ran",
                   "--tag", "team=ml", store=root)
    assert (doc["name"], doc["active"], doc["promoted"]) == ("v1", True, True)
    assert doc["tags"]["source_file"] == "model_v1.pkl"
    assert doc["tags"]["source_class"].endswith("RandomForestClassifier")
    assert doc["tags"]["team"] == "ml"
    assert len(doc["tags"]["source_sha256"]) == 64
    model = VersionStore(root).load("active", verify=True)
    assert (model.predict(X_test) == sk.predict(X_test)).all()
    history = run_json("history", store=root)
    last = history["events"][-1]
    assert last["kind"] == "promote" and last["reason"] == "what production ran"


def test_import_of_a_pickle_that_is_not_a_forest_fails_clearly(tmp_path):
    import pickle

    path = tmp_path / "not_a_forest.pkl"
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    proc = run("import", str(path), "--trust", store=tmp_path / "models", check_code=_exit.FAILURE)
    assert "RandomForestClassifier" in one_line_error(proc)


def test_import_missing_file_is_not_found(tmp_path):
    proc = run("import", str(tmp_path / "nope.pkl"), "--trust", store=tmp_path / "models",
               check_code=_exit.NOT_FOUND)
    assert "nope.pkl" in one_line_error(proc)
