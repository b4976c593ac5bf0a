"""benchmark.py (its measurements in emnist_study/speed_measurements.py): the FLOP count it divides by, and a --quick run
end to end on generated MNIST."""

import json

import keras

import benchmark
import synthetic
from emnist_study import speed_measurements
from helpers import run_script


def test_forward_flops_counts_convolutions_and_dense_layers():
    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(),
                              keras.layers.Dense(10)])
    conv = 2 * 26 * 26 * (3 * 3 * 1 * 4)  # 2 flops per multiply-add, at each of the 26x26 output positions
    dense = 2 * (26 * 26 * 4) * 10
    assert speed_measurements.forward_flops(model) == conv + dense


def test_first_time_at_reads_the_first_point_over_the_bar():
    points = [{"seconds": 1.0, "val_accuracy": 0.98}, {"seconds": 2.0, "val_accuracy": 0.991},
              {"seconds": 3.0, "val_accuracy": 0.985}, {"seconds": 4.0, "val_accuracy": 0.995}]
    assert benchmark.first_time_at(points, 0.99) == 2.0
    assert benchmark.first_time_at(points, 0.995) == 4.0
    assert benchmark.first_time_at(points, 0.999) is None


def test_quick_benchmark_writes_its_report(tmp_path, capsys):
    synthetic.write_mnist_npz(tmp_path / "data", per_class_train=60)
    out = tmp_path / "bench" / "benchmark.json"
    # one throughput variant (each is a child process that starts TensorFlow): the Keras example's own feed
    argv = ["--quick", "--variants", "reference", "--data-dir", str(tmp_path / "data"),
            "--results-dir", str(out.parent)]
    assert run_script(benchmark, *argv) == 0
    report = json.loads(out.read_text())
    assert set(report["throughput"]) == {"reference"}
    row = report["throughput"]["reference"]
    assert row["train_images_per_s"] > 0 and row["inference_images_per_s"] > 0 and row["peak_memory_mb"] > 0
    assert row["train_gflop_per_s"] > 0 and row["params"] == 1_199_882  # mnist_cnn, 10 classes
    assert row["train_speedup"] == 1.0
    assert report["emnist_shaped"]["train_images_per_s"] > 0
    for recipe in ("reference", "fast"):
        points = report["time_to_accuracy"][recipe]["points"]
        assert points and all(0 <= p["val_accuracy"] <= 1 for p in points)
        assert [p["seconds"] for p in points] == sorted(p["seconds"] for p in points)
    out = capsys.readouterr().out
    assert "fast / reference" in out
    assert "[2] [time to accuracy] fast recipe" in out  # --quick measures two at a time


def test_missing_data_is_one_line_before_any_measurement(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("EMNIST_STUDY_NO_DOWNLOAD", "1")
    assert run_script(benchmark, "--quick", "--data-dir", str(tmp_path / "empty")) == 1
    err = capsys.readouterr().err
    assert err.startswith("benchmark.py: error:") or "error:" in err
    assert not (tmp_path / "results").exists()


def test_epoch_seconds_keeps_other_machines_and_this_ones_other_way_of_training(tmp_path, capsys):
    """Side by side (--jobs 2), then one at a time: each measurement replaces its own figures for this machine and
    keeps the rest (another machine's entry; this machine's figures for the other way of training)."""
    from emnist_study import study_plan

    out = tmp_path / "epoch_seconds.json"
    other = {"machine": {"cpu": "elsewhere", "cpu_count": 4, "avx512": True, "bfloat16": True},
             "seconds_per_image": {"mnist_mlp-batch128": 1e-5}}
    earlier = {"seconds_per_image": 2e-5, "training_images": 124_800}  # this machine's one-at-a-time figure
    mine = {"machine": study_plan.this_machine(), "seconds_per_image": {"mnist_mlp-batch128": 2e-5},
            "epochs": {"mnist_mlp-batch128": earlier}}
    out.write_text(json.dumps({"machines": [other, mine]}))
    argv = ["--epoch-seconds", "--quick", "--keys", "mnist_mlp-batch128", "--out", str(out)]
    assert run_script(benchmark, "--epoch-seconds", "--keys", "no-such-speed", "--out", str(out)) == 1
    assert "no recipe trains at speed no-such-speed" in capsys.readouterr().err

    assert run_script(benchmark, *argv, "--jobs", "2") == 0
    machines = json.loads(out.read_text())["machines"]
    assert machines[0]["machine"] == study_plan.this_machine() and machines[1] == other
    assert machines[0]["epochs"]["mnist_mlp-batch128"] == earlier
    side_by_side = machines[0][study_plan.SIDE_BY_SIDE]
    assert side_by_side["jobs"] == 2 and side_by_side["threads"] == study_plan.side_by_side_env(2)
    assert len(side_by_side["epochs"]["mnist_mlp-batch128"]["each_seconds_per_image"]) == 2
    assert study_plan.seconds_per_image(machines[0], 2) == side_by_side["seconds_per_image"]

    assert run_script(benchmark, *argv) == 0
    machines = json.loads(out.read_text())["machines"]
    assert machines[0][study_plan.SIDE_BY_SIDE] == side_by_side and machines[1] == other
    measured = machines[0]["epochs"]["mnist_mlp-batch128"]
    assert measured["training_images"] == 2_340 and measured["seconds_per_image"] > 0
