"""`baggan train` end to end through click: outputs, resume auto, one-line errors."""

import dataclasses
import json
from pathlib import Path

from click.testing import CliRunner

from baggan.cli import cli
from baggan.config import load_config, save_config
from baggan.stylegan2.checkpoint import load_network
from baggan.stylegan2.training_config import TrainConfig
from baggan.stylegan2.training_loop import FINAL_NAME
from train_fixtures import load_script, one_thread, tiny_config, write_tiny_data  # noqa: F401 (autouse fixture)


def test_train_writes_everything_and_resumes(tmp_path):
    data = write_tiny_data(tmp_path / "data")
    # 2 steps (ticks after each), mirrored data, conditioned on the 2 categories present in each scan
    cfg = tiny_config(schedule={"batch": 4, "batch_gpu": 2, "total_kimg": 0.008, "kimg_per_tick": 0.004,
                                "snapshot_ticks": 1, "image_snapshot_ticks": 1},
                      data={"xflip": True, "labels": True}, network={"c_dim": 2})
    out = tmp_path / "run"
    save_config(tmp_path / "cfg.yaml", cfg)
    runner = CliRunner()
    args = ["train", "--config", str(tmp_path / "cfg.yaml"), "--data", str(data), "--outdir", str(out)]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"writing to {out}" in result.output
    records = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert [r["tick"] for r in records] == [0, 1]
    for key in ("G/loss", "D/loss", "augment_p", "ada_rt", "sec_per_kimg", "peak_mem_gb", "diversity", "diversity_real"):
        assert key in records[0], key
    assert records[0]["diversity"] > 0 and records[0]["diversity_real"] > 0  # distinct samples, distinct scans
    for name in ("config.yaml", "reals.png", "curves.png", "fakes-0000000008.png", "snapshot-0000000008.pt", FINAL_NAME):
        assert (out / name).is_file(), name
    nets = load_network(out / FINAL_NAME)
    assert set(nets) == {"G", "D", "G_ema"} and nets["G_ema"].c_dim == 2

    again = runner.invoke(cli, args)  # outdir already has snapshots
    assert again.exit_code == 2 and again.output.count("\n") == 1 and "--resume auto" in again.output  # one line

    more = runner.invoke(cli, ["train", "--data", str(data), "--outdir", str(out), "--resume", "auto",
                               "--total-kimg", "0.012"])
    assert more.exit_code == 0, more.output
    assert "resuming from" in more.output and (out / "snapshot-0000000012.pt").is_file()
    assert [json.loads(line)["tick"] for line in (out / "stats.jsonl").read_text().splitlines()] == [0, 1, 2]


def test_train_errors_are_one_line(tmp_path):
    data = write_tiny_data(tmp_path / "data", size=8)
    save_config(tmp_path / "cfg.yaml", tiny_config())
    runner = CliRunner()
    base = ["train", "--data", str(data), "--outdir", str(tmp_path / "run")]
    cases = {
        "--config is required": base,
        "the network needs 16x16": base + ["--config", str(tmp_path / "cfg.yaml")],
        "file not found": base + ["--config", str(tmp_path / "cfg.yaml"), "--resume", str(tmp_path / "nope.pt")],
    }
    for expected, args in cases.items():
        result = runner.invoke(cli, args)
        errors = [part for part in result.output.replace("\r", "\n").splitlines() if part.startswith("error:")]
        assert result.exit_code == 2 and len(errors) == 1 and expected in errors[0], result.output


def test_crosscheck_script_trains_and_logs(tmp_path):
    """scripts/crosscheck_training.py (the separate loop in the official order) runs on the tiny preset."""
    script = load_script("crosscheck_training")
    data = write_tiny_data(tmp_path / "data")
    save_config(tmp_path / "cfg.yaml", tiny_config(schedule={"batch": 4, "batch_gpu": 2}))
    script.main(["--config", str(tmp_path / "cfg.yaml"), "--data", str(data), "--outdir", str(tmp_path / "cc"),
                 "--kimg", "0.016"])  # 4 steps: every phase of the official order runs at step 0
    records = [json.loads(line) for line in (tmp_path / "cc" / "log.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in records] == [0.004, 0.016]
    for key in ("G/loss", "D/score_real", "D/score_fake", "D/r1_penalty", "diversity_G", "diversity_G_ema"):
        assert key in records[0], key
    assert records[-1]["diversity_G"] > 0 and (tmp_path / "cc" / "fakes-0000016.png").is_file()
    assert (tmp_path / "cc" / "config.yaml").is_file()


def test_init_starts_a_new_run_from_a_network_file(tmp_path):
    """--init: the new run's G, D and G_ema start as the file's, with counters at zero; misuse is one line."""
    import torch

    from baggan.stylegan2.distributed import Processes
    from baggan.stylegan2.training_loop import Trainer

    data = write_tiny_data(tmp_path / "data")
    cfg = tiny_config(schedule={"batch": 4, "batch_gpu": 2, "total_kimg": 0.004, "kimg_per_tick": 0.004,
                                "snapshot_ticks": 1, "image_snapshot_ticks": 1})
    save_config(tmp_path / "cfg.yaml", cfg)
    runner = CliRunner()
    base = ["train", "--config", str(tmp_path / "cfg.yaml"), "--data", str(data)]
    assert runner.invoke(cli, base + ["--outdir", str(tmp_path / "a")]).exit_code == 0
    final = tmp_path / "a" / FINAL_NAME
    source = load_network(final)

    t = Trainer(cfg, data, tmp_path / "b", Processes(0, 1, torch.device("cpu")), progress=False, init=final)
    assert t.step == 0 and t.nimg == 0
    for name in ("G", "D", "G_ema"):
        mine, theirs = getattr(t, name).state_dict(), source[name].state_dict()
        assert mine.keys() == theirs.keys() and all(torch.equal(mine[k], theirs[k]) for k in mine), name
    fresh = Trainer(cfg, data, tmp_path / "c", Processes(0, 1, torch.device("cpu")), progress=False)
    assert not torch.equal(next(fresh.G.parameters()), next(t.G.parameters()))  # the file's weights, not the seed's

    result = runner.invoke(cli, base + ["--outdir", str(tmp_path / "d"), "--init", str(final)])
    assert result.exit_code == 0 and f"new run from {final}" in result.output, result.output

    # network.use_noise false: a network trained with noise inputs continues without them (what it drew
    # with noise_mode 'none')
    quiet = tiny_config(network={"use_noise": False})
    t = Trainer(quiet, data, tmp_path / "q", Processes(0, 1, torch.device("cpu")), progress=False, init=final)
    assert not any("noise" in k for k in t.G.state_dict())
    z = torch.randn(2, t.G.z_dim)
    c = torch.zeros(2, t.G.c_dim) if t.G.c_dim else None
    with torch.no_grad():
        assert torch.equal(t.G_ema(z, c), source["G_ema"](z, c, noise_mode="none"))

    save_config(tmp_path / "wide.yaml", tiny_config(network={"channel_base": 512}))
    cases = {
        "give one of them": base + ["--outdir", str(tmp_path / "e"), "--init", str(final), "--resume", "auto"],
        "network file not found": base + ["--outdir", str(tmp_path / "e"), "--init", str(tmp_path / "nope.pt")],
        "its G does not fit": ["train", "--config", str(tmp_path / "wide.yaml"), "--data", str(data),
                               "--outdir", str(tmp_path / "e"), "--init", str(final)],
    }
    for expected, args in cases.items():
        result = runner.invoke(cli, args)
        errors = [part for part in result.output.replace("\r", "\n").splitlines() if part.startswith("error:")]
        assert result.exit_code == 2 and len(errors) == 1 and expected in errors[0], result.output


def test_shipped_training_presets_load():
    """Every generator preset in configs/ (not the quick-start files) loads; stage 5 is stage 4 but for the repeat,
    stage 6 is stage 4 but for R1 gamma."""
    presets = [p for p in sorted((Path(__file__).parents[1] / "configs").glob("*.yaml")) if "quickstart" not in p.name]
    assert len(presets) >= 9
    loaded = {p.stem: load_config(p, TrainConfig) for p in presets}
    stage4, stage5 = loaded["xraysim-threats-64-clean-hammer"], loaded["xraysim-threats-64-clean-hammer6"]
    assert stage4.data.repeat == {"Hammer": 3} and stage5.data.repeat == {"Hammer": 6}
    assert dataclasses.replace(stage5, data=stage4.data) == stage4
    stage6 = loaded["xraysim-threats-64-clean-r1g3"]
    assert stage6.loss.r1_gamma == 3.0 and stage4.loss.r1_gamma == 10.0
    assert dataclasses.replace(stage6, loss=stage4.loss) == stage4
