"""run_all.py: the quick study end to end on generated data (MNIST and EMNIST in separate folders), its plan and
estimates, its up-front data check, and Ctrl-C."""

import csv
import json
import re
from pathlib import Path

import pytest

import run_all
import synthetic
from emnist_study import run_folder, study_plan
from helpers import (ROOT, python_not_activated, python_on_path, quick_args, run_script, study_args,
                     write_study_data)

STUDY_RUNS = {"mnist_mlp-quick", "mnist_cnn-quick", "emnist_cnn-quick", "emnist_mlp-quick", "exp_sgd_tta-quick",
              "exp_case_aware_resplit-quick", "exp_ensemble_tta-quick", "nielsen_dropout-quick"}


@pytest.fixture(scope="module")
def quick_study(tmp_path_factory):
    """One quick study, run from its own folder, shared by the tests that read what it leaves: its MNIST steps two
    side by side, each in a process of its own; then the whole study one at a time, in run_all's own process (the
    MNIST runs complete, the letters trained); then again, training nothing."""
    root = tmp_path_factory.mktemp("study")
    write_study_data(root)
    with pytest.MonkeyPatch.context() as mp:  # module-scoped: conftest's offline_home does not reach it
        mp.setenv("HOME", str(root / "home"))
        mp.setenv("EMNIST_STUDY_NO_DOWNLOAD", "1")
        mp.delenv("EMNIST_STUDY_DATA_DIR", raising=False)
        mp.chdir(root)
        side_by_side = run_in_process(study_args("--jobs", "2", "--only", "mnist"))
        whole = run_in_process(study_args("--jobs", "1"))
        again = run_in_process(study_args("--jobs", "1"))
    return root, side_by_side, whole, again


def run_in_process(argv):
    """run_all's main as its __main__ runs it; (exit code, stdout) captured by redirecting sys.stdout."""
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run_script(run_all, *argv)
    return code, out.getvalue()


def test_quick_study_runs_every_step_and_writes_the_report(quick_study):
    root, (code, side_by_side), (code_whole, out), _ = quick_study
    assert code == 0, side_by_side[-3000:]
    assert code_whole == 0, out[-3000:]
    results = root / "results"
    rows = {r["run"]: r for r in csv.DictReader(open(results / "test_results.csv"))}
    assert set(rows) == STUDY_RUNS
    # --quick judges on a stratified subset of each test set (600 generated digits, 624 letters)
    assert {r["test_images"] for r in rows.values()} == {"520"}
    # run from its own folder, each step named by a path that works from there
    assert re.search(rf"^=== \[3/3\] \S*python \S*{re.escape(str(ROOT / 'nielsen_cnn.py'))}", side_by_side, re.M)
    assert re.search(rf"^=== \S*python \S*{re.escape(str(ROOT / 'emnist_experiments.py'))} --exp sgd_tta", out, re.M)
    assert "Report:" in side_by_side and "Report:" in out
    assert re.search(r"^\[2/3\] Training the ", side_by_side, re.M)  # side by side, a step's lines carry its number
    assert re.search(r"^Training the VGG-style CNN", out, re.M)
    assert "Model: " not in side_by_side + out  # no layer tables under --quick
    versions = json.loads((root / "runs" / "mnist_cnn-quick" / "config.json").read_text())["versions"]
    assert versions["tensorflow_threads"] == str(max(1, study_plan.cores() // 2))  # side by side: threads shared out
    for png in ("history_mnist_mlp-quick_vs_mnist_cnn-quick.png", "mnist_cnn-quick_validation_misclassified.png",
                "emnist_cnn-quick_validation_confusion.png", "exp_case_aware_resplit-quick_subunits.png",
                "history_nielsen_dropout-quick.png", "test_accuracy.png"):
        assert (results / png).stat().st_size > 5000, png


def test_a_second_run_trains_nothing(quick_study):
    _, _, _, (code, out) = quick_study
    assert code == 0
    assert out.count("is already complete") == len(STUDY_RUNS)
    assert "Training " not in out


def test_the_report_answers_the_assignments_questions(quick_study):
    root = quick_study[0]
    text = (root / "results" / "RESULTS.md").read_text()
    answers = text.split("## Answers", 1)[1].split("\n## ", 1)[0]
    numbered = re.findall(r"^(\d)\. \*\*(.+?)\*\* (.+)$", answers, re.M)
    assert [n for n, *_ in numbered] == list("1234567")
    by_number = {n: answer for n, _, answer in numbered}
    assert "`mnist_cnn-quick`, one seed" in by_number["1"] and "the claimed 99.25%" in by_number["1"]
    assert f"{ROOT / 'run_all.py'} --full" in by_number["1"]  # the 2015 network is not in the quick study
    assert "`nielsen_dropout-quick`" in by_number["2"] and "--ensemble 5" in by_number["2"]
    assert "`emnist_cnn-quick`" in by_number["3"] and "`mnist_cnn-quick`" in by_number["3"]
    assert "exact McNemar" in by_number["4"]
    assert "Chosen on validation among 3 experiment runs" in by_number["5"] and "90.00%" in by_number["5"]
    assert "`exp_case_aware_resplit-quick` (emnist-letters)" in by_number["6"]
    assert "standard errors" in by_number["7"] or "sampling error" in by_number["7"]
    assert "Not measured yet" not in answers  # every question the quick study covers is answered from its runs
    assert "smoke test, not results" in text
    assert "Per-class test accuracy of `emnist_cnn-quick`" in text and "Per-class test accuracy of `mnist_cnn-quick`" in text


def test_runs_record_absolute_data_folders_and_work_from_anywhere(quick_study, tmp_path, monkeypatch):
    import show_misclassified

    root = quick_study[0]
    config = json.loads((root / "runs" / "emnist_cnn-quick" / "config.json").read_text())["config"]
    assert config["data_dir"] == [str(root / "mnist_data"), str(root / "letters_data")]
    monkeypatch.chdir(tmp_path)  # elsewhere, naming no --data-dir: the run's own folders are used
    assert run_script(show_misclassified, str(root / "runs" / "emnist_cnn-quick"), "--no-show") == 0
    assert (tmp_path / "results" / "emnist_cnn-quick_validation_confusion.png").is_file()


@pytest.fixture
def measured_machine(monkeypatch):
    """This machine taken to be the first one epoch_seconds.json records, with no GPU, so the plan prints alike
    anywhere."""
    first = json.loads(study_plan.EPOCH_SECONDS_FILE.read_text())["machines"][0]["machine"]
    monkeypatch.setattr(study_plan, "this_machine", lambda: first)
    monkeypatch.setattr(study_plan, "default_jobs", lambda: 2)


def test_dry_run_needs_no_data_and_prints_every_estimate(tmp_path, capsys, monkeypatch, measured_machine):
    monkeypatch.chdir(tmp_path)
    assert run_script(run_all, "--dry-run") == 0
    out = capsys.readouterr().out
    assert "8 training steps" in out and "not measured" not in out
    assert re.search(r"Total: about \d+\.\d hours of training", out)
    assert "by the entry for the CPU detected here: AMD EPYC, " in out and "On x86-64 (model not recorded), " in out
    # from another folder, each script by a path that works from there
    assert f"{ROOT / 'emnist_baseline.py'} --model cnn --resume" in out and f"{ROOT / 'evaluate_test.py'}\n" in out
    assert not (tmp_path / "runs").exists()


def test_the_plan_takes_the_entry_nearest_this_cpu_by_its_features_and_the_faster_way_to_run(capsys, monkeypatch):
    """An AVX-512 + bfloat16 CPU of a model none of the entries names: the plan says what it detected and uses the
    entry with those features, not the first; and where one step at a time ends sooner by that entry's speeds
    (its side-by-side speeds unmeasured, so taken as no faster), the study runs one at a time."""
    monkeypatch.setattr(study_plan, "this_machine", lambda: {"cpu": "AMD EPYC 9R14", "cpu_count": 2, "avx2": True,
                                                        "avx512": True, "bfloat16": True})
    monkeypatch.setattr(study_plan, "default_jobs", lambda: 2)
    assert run_script(run_all, "--dry-run") == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    # one at a time, and the first line says why: two side by side are not measured on this CPU, and how to
    assert first.startswith("8 training steps, one at a time: 2 side by side are not measured on AMD EPYC 9R14, "
                            "2 cores, AVX2, AVX-512, native bfloat16, and are taken as no faster")
    assert "benchmark.py --epoch-seconds --jobs 2 measures them" in first
    assert run_script(run_all, "--dry-run", "--jobs", "1") == 0  # asked for: nothing to explain
    assert capsys.readouterr().out.startswith("8 training steps; ")
    assert ("nearest by its features to the CPU detected here (AMD EPYC 9R14, 2 cores, AVX2, AVX-512, native "
            "bfloat16): x86-64 (model not recorded), 2 cores, AVX2, AVX-512, native bfloat16") in first
    assert "On AMD EPYC, 2 cores, AVX2, no AVX-512" in out


def test_a_quick_plan_prints_no_full_size_minutes(capsys, measured_machine):
    assert run_script(run_all, "--dry-run", "--quick") == 0
    plan = capsys.readouterr().out.split("Commands, in order:")[0]
    assert "each 1 epoch on a few hundred images: seconds each" in plan
    assert not re.search(r"\d+ min|hours", plan)


def test_a_plan_longer_than_an_evening_says_how_to_split_it(capsys, monkeypatch, measured_machine):
    for evening, said in ((10**6, False), (60, True)):
        monkeypatch.setattr(run_all, "EVENING_MINUTES", evening)
        assert run_script(run_all, "--dry-run") == 0
        out = capsys.readouterr().out
        assert ("Ctrl-C stops the study at any point, and the same command continues it" in out) is said


def test_distribute_reaches_every_training_step_and_nothing_else(capsys):
    assert run_script(run_all, "--dry-run", "--distribute", "mirrored") == 0
    commands = capsys.readouterr().out.split("Commands, in order:\n", 1)[1].splitlines()
    training = [c for c in commands if c.split()[1] in {f"{step.script}.py" for step in study_plan.training_steps(
        False, ("mnist", "emnist-letters"))}]
    assert len(training) == 8 and all(c.endswith("--distribute mirrored") for c in training)
    assert not any("--distribute" in c for c in commands if c not in training)
    assert run_script(run_all, "--dry-run", "--distribute", "mirrored", "--jobs", "2") == 2  # all GPUs: one at a time
    assert "use it with --jobs 1" in capsys.readouterr().err


def test_the_study_fits_an_evening_and_shows_letters_in_the_first_hour():
    """The committed plan, by the recorded speeds, with two steps side by side as run_all runs them on a 2-core
    CPU: the first letters run finished inside the first hour on every machine recorded, and the whole study
    inside 4 hours on every machine whose side-by-side speeds are measured, and on the x86-64 with AVX-512 and
    bfloat16 (its speeds are compiled from timed runs; taken as no faster side by side). A plan, not
    a timing: the speeds are benchmark.py's and the earlier runs'; docs/speed.md has the figures."""
    steps = study_plan.training_steps(False, ("mnist", "emnist-letters"))
    machines = study_plan.all_epoch_seconds()
    assert len(machines) >= 2
    assert any(study_plan.side_by_side_measured(measured, 2) for measured in machines)
    for measured in machines:
        minutes = [study_plan.step_minutes(step, measured, 2) for step in steps]
        assert None not in minutes
        ends = [end for _, end in study_plan.schedule(minutes, 2)]
        first_letters = next(i for i, step in enumerate(steps) if step.dataset == "emnist-letters")
        assert ends[first_letters] <= 60
        if study_plan.side_by_side_measured(measured, 2) or (measured["machine"]["avx512"]
                                                        and measured["machine"]["bfloat16"]):
            assert max(ends) <= 240


def test_the_plan_runs_each_step_on_the_first_lane_to_come_free():
    assert study_plan.schedule([10, 30, 5, None, 20], 2) == [(0, 10), (1, 30), (0, 15), (0, None), (0, 35)]
    assert study_plan.schedule([10, 30, 5], 1) == [(0, 10), (0, 40), (0, 45)]


def test_full_runs_everything_and_renames_what_the_study_shortened(capsys):
    assert run_script(run_all, "--full", "--dry-run") == 0
    out = capsys.readouterr().out
    assert "python warmup_mnist_cnn.py --variant keras2015 --seed 3 --run-name mnist_cnn_keras2015-seed3" in out
    assert "python warmup_mnist_cnn.py --epsilon 1e-06 --run-name mnist_cnn-eps1e-06 --resume" in out
    assert "python nielsen_cnn.py --batch-size 50 --ensemble 5 --resume" in out
    assert ("python emnist_experiments.py --exp case_aware_resplit --run-name exp_case_aware_resplit-full --resume"
            in out)
    for name in ("mixed_ensemble", "elastic"):
        assert f"python emnist_experiments.py --exp {name} --dataset mnist --resume" in out


def test_missing_data_is_named_all_at_once_and_leaves_nothing_behind(tmp_path, capsys, offline_home):
    (tmp_path / "empty").mkdir()
    assert run_script(run_all, "--quick", "--data-dir", str(tmp_path / "empty"),
                      "--runs-dir", str(tmp_path / "runs")) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "missing data (2 of 2 datasets)" in err and "MNIST was not found" in err
    assert "EMNIST Letters was not found" in err and str(tmp_path / "empty") in err
    assert not (tmp_path / "runs").exists()
    assert list(offline_home.iterdir()) == []  # no empty ~/.keras/datasets or ~/.cache/emnist

    synthetic.write_mnist_npz(tmp_path / "empty")
    assert run_script(run_all, "--quick", "--data-dir", str(tmp_path / "empty"),
                      "--runs-dir", str(tmp_path / "runs")) == 1
    err = capsys.readouterr().err
    assert "missing data (1 of 2 datasets)" in err and "add --only mnist" in err


def test_resume_is_accepted():
    assert run_all.build_parser().parse_args(["--resume"]).resume


@pytest.mark.parametrize("argv, expected", [
    (["--seed", "2", "--run-name", "mnist_cnn-seed2"], ["--seed", "2", "--run-name", "mnist_cnn-seed2-quick"]),
    (["--model", "mlp"], ["--model", "mlp"]),
    (["--exp", "case_aware_resplit", "--epochs", "5"], ["--exp", "case_aware_resplit"]),
])
def test_quick_run_names(argv, expected):
    assert run_all.quick_run_names(argv) == expected


def test_skip_training_reports_the_runs_there_are(tmp_path, capsys):
    synthetic.write_mnist_npz(tmp_path / "data", per_class_train=60, per_class_test=10)
    run = synthetic.write_finished_run(tmp_path / "runs", "mnist_cnn-quick", "mnist", synthetic.template_model(10),
                                       "warmup_mnist_cnn.py")
    record = json.loads((run / "config.json").read_text())
    record["config"].update(script="warmup_mnist_cnn.py", run_name="mnist_cnn-quick", batch_size=128, quick=True,
                            limit_images=600, seed=1)
    (run / "config.json").write_text(json.dumps(record))
    argv = ["--quick", "--only", "mnist", "--skip-training", "--data-dir", str(tmp_path / "data"),
            "--runs-dir", str(tmp_path / "runs"), "--results-dir", str(tmp_path / "results")]
    assert run_script(run_all, *argv) == 0
    out = capsys.readouterr().out
    assert "=== python warmup" not in out and "=== python nielsen" not in out  # nothing trained
    assert "Skipping plot_history mnist_mlp-quick mnist_cnn-quick: not complete yet (mnist_mlp-quick)" in out
    rows = list(csv.DictReader(open(tmp_path / "results" / "test_results.csv")))
    assert [(r["run"], r["test_errors"]) for r in rows] == [("mnist_cnn-quick", "0")]


def test_the_readme_shows_what_the_dry_run_prints(capsys, measured_machine, monkeypatch, tmp_path):
    """The README's plan of the study is `.venv/bin/python run_all.py --dry-run`'s output, verbatim, as the
    Quickstart leaves a student (the environment not activated): a step, an estimate or a command changed in one
    place only fails here; and each command names the Python that ran the plan."""
    python_not_activated(monkeypatch, tmp_path)
    readme = (ROOT / "README.md").read_text()
    shown = re.search(r"<!-- run_all --dry-run -->\n```text\n(.*?)```", readme, re.S).group(1)
    assert run_script(run_all, "--dry-run") == 0
    assert capsys.readouterr().out == shown


# --- TensorBoard's HParams and Images tabs, and the notebook, on the quick study's runs ----------------------


def hparams_session_groups(logs_dir: Path, sort_by: str) -> list[dict]:
    """The HPARAMS tab's table of `tensorboard --logdir logs_dir`, sorted by the metric `sort_by`, best first:
    TensorBoard's own HParams plugin, asked as its web page asks it (no server needed)."""
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import hparams_plugin
    from werkzeug import Response, test

    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logs_dir))
    multiplexer.Reload()
    context = base_plugin.TBContext(logdir=str(logs_dir), multiplexer=multiplexer,
                                    data_provider=data_provider.MultiplexerDataProvider(multiplexer, str(logs_dir)))
    apps = hparams_plugin.HParamsPlugin(context).get_plugin_apps()
    request = {"experimentName": "", "startIndex": 0, "sliceSize": 100,
               "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
               "colParams": [{"metric": {"group": "", "tag": sort_by}, "order": "ORDER_DESC"}]}
    response = test.Client(apps["/session_groups"], Response).post(
        "/session_groups", data=json.dumps(request), content_type="application/json")
    assert response.status_code == 200, response.get_data()[:500]
    return json.loads(response.get_data())["sessionGroups"]


def test_tensorboard_lists_every_run_in_its_hparams_tab_best_first(quick_study):
    """Every run of the quick study is a row of `tensorboard --logdir logs`'s HPARAMS tab, with its settings from
    config.json and its final metrics, and the rows sort by validation accuracy."""
    root = quick_study[0]
    groups = hparams_session_groups(root / "logs", sort_by="best_val_accuracy")
    by_name = {group["name"]: group for group in groups}
    assert STUDY_RUNS <= set(by_name)  # and each ensemble member, as a session of its own
    assert "exp_ensemble_tta-quick/members/member1" in by_name

    def metric(group, tag):
        return next(m["value"] for m in group["metricValues"] if m["name"] == {"group": "", "tag": tag})

    accuracies = [metric(group, "best_val_accuracy") for group in groups]
    assert accuracies == sorted(accuracies, reverse=True)
    cnn = by_name["emnist_cnn-quick"]
    summary = json.loads((root / "runs" / "emnist_cnn-quick" / "summary.json").read_text())
    assert metric(cnn, "best_val_accuracy") == pytest.approx(summary["best_val_accuracy"])
    config = json.loads((root / "runs" / "emnist_cnn-quick" / "config.json").read_text())["config"]
    assert cnn["hparams"]["optimizer.learning_rate"] == config["optimizer"]["learning_rate"] == 1.0
    assert (cnn["hparams"]["model"], cnn["hparams"]["dataset"], cnn["hparams"]["batch_size"]) == (
        "mnist_cnn", "emnist-letters", 128)
    ensemble = by_name["exp_ensemble_tta-quick"]  # --quick trains an ensemble's first two members
    assert ensemble["hparams"]["ensemble"] == 2 and metric(ensemble, "best_val_accuracy") > 0


def test_show_misclassified_puts_its_figures_in_the_runs_images_tab(quick_study):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    root = quick_study[0]
    for run in ("mnist_cnn-quick", "emnist_cnn-quick", "exp_case_aware_resplit-quick"):
        events = EventAccumulator(str(root / "logs" / run), size_guidance={"tensors": 0})
        events.Reload()
        assert {"validation/misclassified", "validation/confusion"} <= set(events.Tags()["tensors"]), run
        (image,) = events.Tensors("validation/confusion")[-1:]
        assert image.step == 0  # beside the run's last (and only) epoch's scalars: Keras counts epochs from 0
        assert events.SummaryMetadata("validation/confusion").plugin_data.plugin_name == "images"


def notebook_steps(notebook) -> list[str]:
    return [command for cell in notebook.cells if cell.cell_type == "code"
            for command in re.findall(r'^(?:history = )?step\("(.+)"\)$', cell.source, re.M)]


def test_the_notebook_is_the_studys_plan_one_step_a_cell_without_outputs(capsys, monkeypatch, tmp_path):
    import nbformat

    python_on_path(monkeypatch, tmp_path)  # the plan's commands as `python run_all.py --dry-run` prints them
    notebook = nbformat.read(ROOT / "study.ipynb", as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert not any(cell.outputs or cell.execution_count for cell in code)  # committed clean
    assert run_script(run_all, "--dry-run") == 0
    planned = capsys.readouterr().out.split("Commands, in order:\n", 1)[1].splitlines()
    assert notebook_steps(notebook) == planned
    assert all(len(notebook_steps(nbformat.v4.new_notebook(cells=[cell]))) <= 1 for cell in code)
    first_step = next(i for i, cell in enumerate(code) if notebook_steps(nbformat.v4.new_notebook(cells=[cell])))
    tensorboard = next(i for i, cell in enumerate(code) if "%tensorboard --logdir" in cell.source)
    assert "%load_ext tensorboard" in code[tensorboard].source and tensorboard < first_step
    assert "parameters" in code[0].metadata.get("tags", []) and "QUICK = " in code[0].source


def test_the_notebook_runs_in_quick_mode(quick_study, tmp_path):
    """study.ipynb executed as CI executes it (nbclient, a fresh kernel), in quick mode, its folders set by a cell
    injected after its parameters cell (as papermill does). Its training cells run the quick study's commands with
    the same flags, so they find the runs above complete and skip them: the training itself is exercised by the
    quick study. Its data check, figure and report cells do their work again, into a results folder of their own
    (given the study's cached test predictions: evaluate_test.py's own cache, tested elsewhere). TensorBoard's
    server is not started (TENSORBOARD = False): seconds, and nothing of the study's."""
    import shutil

    import nbformat
    from nbclient import NotebookClient

    root = quick_study[0]
    notebook = nbformat.read(ROOT / "study.ipynb", as_version=4)
    parameters = next(i for i, cell in enumerate(notebook.cells) if "parameters" in cell.metadata.get("tags", []))
    results = tmp_path / "results"
    shutil.copytree(root / "results" / "cache", results / "cache")
    notebook.cells.insert(parameters + 1, nbformat.v4.new_code_cell("\n".join([
        f"DATA_DIRS = {[str(root / 'mnist_data'), str(root / 'letters_data')]!r}",
        f"RUNS_DIR, LOGS_DIR, RESULTS_DIR = {str(root / 'runs')!r}, {str(root / 'logs')!r}, {str(results)!r}",
        "QUICK, TENSORBOARD = True, False"])))
    NotebookClient(notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()

    text = "".join(output.get("text", "") for cell in notebook.cells for output in cell.get("outputs", []))
    assert text.count("is already complete") == len(STUDY_RUNS)
    assert "Training " not in text
    shown = [output for cell in notebook.cells for output in cell.get("outputs", [])
             if "image/png" in output.get("data", {})]
    assert len(shown) >= 8  # 3 training-curve figures, 2 x 2 mistakes and confusion, sub-units, test accuracy
    assert (results / "RESULTS.md").is_file()
    report = notebook.cells[-1].outputs
    assert any("## Answers" in output.get("data", {}).get("text/markdown", "") for output in report)


def notebook_cell(notebook, text: str):
    return next(cell for cell in notebook.cells if cell.cell_type == "code" and text in cell.source)


def test_the_notebooks_tensorboard_and_data_cells_work_from_an_environment_not_activated(tmp_path, monkeypatch):
    """The kernel's environment not activated (its bin folder not on PATH, as `.venv/bin/jupyter execute` leaves
    it): the TensorBoard cell still finds the tensorboard command and shows TensorBoard; with no data, the first
    cell after the install stops the notebook with one line naming the notebook's own DATA_DIRS, not a --data-dir
    flag a notebook user cannot pass, and no traceback."""
    import os
    import sys

    import nbformat
    from nbclient import NotebookClient
    from tensorboard import manager

    venv_bin = os.path.dirname(sys.executable)
    monkeypatch.setenv("PATH", os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin))
    (tmp_path / "empty").mkdir()
    study = nbformat.read(ROOT / "study.ipynb", as_version=4)
    code = [cell for cell in study.cells if cell.cell_type == "code"]
    assert "google.colab" in code[1].source and "ensure_available" in code[2].source  # the data checked first
    cells = [code[0], nbformat.v4.new_code_cell(
        f"DATA_DIRS = [{str(tmp_path / 'empty')!r}]\nLOGS_DIR = {str(tmp_path / 'logs')!r}"),
        code[2], notebook_cell(study, "%tensorboard --logdir")]
    notebook = nbformat.v4.new_notebook(cells=cells)
    try:
        NotebookClient(notebook, timeout=120, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        for server in manager.get_all():  # the TensorBoard the cell started
            if str(tmp_path) in server.logdir:
                os.kill(server.pid, 15)
    checked, tensorboard = notebook.cells[2].outputs, notebook.cells[3].outputs
    assert not any(o.get("output_type") == "error" for o in tensorboard), tensorboard
    assert "Could not find tensorboard" not in str(tensorboard) and "ERROR" not in str(tensorboard)
    assert any("text/html" in o.get("data", {}) or "application/javascript" in o.get("data", {})
               for o in tensorboard), tensorboard
    [error] = [o for o in checked if o.get("output_type") == "error"]
    # what is missing, a line a dataset, and no traceback: IPython shows none for a SystemExit
    assert error["ename"] == "SystemExit" and "---->" not in "".join(error["traceback"])
    assert error["evalue"].startswith("missing data (2 of 2 datasets):\n")
    assert "DATA_DIRS (the parameters cell)" in error["evalue"] and "--data-dir" not in error["evalue"]


def test_the_notebook_takes_its_parameters_from_the_environment_and_runs_one_dataset_alone(tmp_path, monkeypatch):
    """`jupyter execute` cannot set parameters: EMNIST_STUDY_QUICK and EMNIST_STUDY_ONLY set them; with ONLY, the
    other dataset's steps say they are skipped, and the data check asks only for the dataset chosen."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("EMNIST_STUDY_QUICK", "0")
    monkeypatch.setenv("EMNIST_STUDY_ONLY", "mnist")
    monkeypatch.setenv("EMNIST_STUDY_TENSORBOARD", "off")
    synthetic.write_mnist_npz(tmp_path / "mnist", per_class_train=6, per_class_test=2)
    study = nbformat.read(ROOT / "study.ipynb", as_version=4)
    code = [cell for cell in study.cells if cell.cell_type == "code"]
    cells = [code[0], nbformat.v4.new_code_cell(f"DATA_DIRS = [{str(tmp_path / 'mnist')!r}]"), code[2],
             notebook_cell(study, "def step(command)"), notebook_cell(study, "--exp sgd_tta"),
             nbformat.v4.new_code_cell("print(QUICK, ONLY, TENSORBOARD, FLAGS[:2])")]
    notebook = nbformat.v4.new_notebook(cells=cells)
    NotebookClient(notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    text = ["".join(o.get("text", "") for o in cell.outputs) for cell in notebook.cells]
    assert "mnist: " in text[2] and "emnist-letters" not in text[2]
    assert text[4] == "Skipped: not a step of ONLY = 'mnist'\n"
    assert text[5] == "False mnist False ['--only', 'mnist']\n"


def test_the_notebooks_colab_install_leaves_out_the_jupyter_packages_the_tests_pin(tmp_path):
    """On Colab the install cell installs the pins less Jupyter's own packages (Colab's kernel keeps its own): the
    filter it runs keeps TensorFlow with its NVIDIA extra and drops every package requirements.txt pins for
    executing the notebook."""
    import re as regex
    import subprocess

    import nbformat

    install = notebook_cell(nbformat.read(ROOT / "study.ipynb", as_version=4), "google.colab").source
    command = regex.search(r"!(grep .*?) > /tmp/colab-requirements.txt", install).group(1)
    kept = subprocess.run(command, shell=True, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    pinned = [line.split("==")[0] for line in kept.splitlines() if "==" in line]
    assert "tensorflow[and-cuda]" in pinned and "tensorflow" in pinned and "keras" in pinned
    notebook_section = (ROOT / "requirements.txt").read_text().split("# study.ipynb", 1)[1]
    for package in regex.findall(r"^([A-Za-z0-9_.-]+)==", notebook_section, regex.M):
        assert package not in pinned, package


def test_a_step_run_in_process_hands_back_fits_history(tmp_path, mnist_dir):
    """run_all.run_step (the notebook's and run_all's way of running a step) returns what the script's main returned:
    a training step's fit History, whose .history holds the columns history.csv holds; None once the run is
    complete and nothing trains."""
    argv = quick_args(tmp_path, mnist_dir, "--epochs", "2")
    history = run_all.run_step("warmup_mnist_mlp", [*argv, "--resume"])
    assert set(history.history) >= {"loss", "accuracy", "val_loss", "val_accuracy"} and history.epoch == [0, 1]
    rows = run_folder.read_history(tmp_path / "runs" / "mnist_mlp-quick")
    assert [row["val_accuracy"] for row in rows] == pytest.approx(history.history["val_accuracy"])
    assert run_all.run_step("warmup_mnist_mlp", [*argv, "--resume"]) is None
