"""Every command refuses bad input cleanly: one line, the documented exit code, nothing left behind.

The table below is the whole test: each row is a command line (after `baggan`; {name} = a file of
tests/bad_inputs_kit.py, {out} = the output path, which must not exist afterwards), the exit code and the
words the one line must hold. A new command adds its rows here (and its line to
baggan/cli/interruptions.py). The commands run in-process (click's CliRunner), from an empty folder that
must stay empty.
"""

from __future__ import annotations

import shlex

import pytest
from click.testing import CliRunner

from bad_inputs_kit import COCO_DAMAGE, build_kit
from baggan.cli import cli
from baggan.cli.interruptions import AFTER_INTERRUPTION, leaf_commands
from toygen import single_thread  # noqa: F401 - tiny networks: one thread is faster on a busy CPU

NET, SEG, HFC = "--network {net}", "--segmenter {seg}", "--hfc {hfc}"
FIT = f"oneshot fit {NET} {HFC} --out {{out}}"
ANNOTATE = f"annotate {NET} {HFC} {SEG} --outdir {{out}}"
SYNTH = f"synthesize {NET} {HFC} {SEG} --outdir {{out}}"
TRAIN = "train --data {coco} --outdir {out}"

CASES = [
    # --- the group itself
    ("no-such-command", 2, "no such command"),
    ("--no-such-option", 2, "no such option"),
    # --- generate
    ("generate --network {missing} --outdir {out}", 2, "not found"),
    ("generate --network {garbage_pt} --outdir {out}", 2, "not a readable network file"),
    ("generate --network {evil_pt} --outdir {out}", 2, "refused: it asks to import posix.system"),
    ("generate --network {evil_pkl} --outdir {out}", 2, "refused to load"),
    ("generate --network {empty_pt} --outdir {out}", 2, "not a readable network file"),
    ("generate --network {truncated_pt} --outdir {out}", 2, "not a readable torch file"),
    ("generate --network {hfc} --outdir {out}", 2, "neither a baggan network file"),
    ("generate --network {d_only} --outdir {out}", 2, "no generator"),
    ("generate --network {in} --outdir {out}", 2, "is a directory"),
    ("generate --network {net} --seeds abc --outdir {out}", 2, "--seeds"),
    ("generate --network {net} --seeds 5-1 --outdir {out}", 2, "backwards"),
    ("generate --network {net} --trunc nan --outdir {out}", 2, "'nan' is not a finite number"),
    ("generate --network {net} --trunc inf --outdir {out}", 2, "'inf' is not a finite number"),
    ("generate --network {net} --noise-mode loud --outdir {out}", 2, "--noise-mode"),
    ("generate --network {net} --net D --outdir {out}", 2, "no generator d"),
    ("generate --network {net} --outdir {nonempty}", 2, "not empty"),
    ("generate --network {net} --outdir {a_file}", 2, "a_file"),
    ("generate --network {net} --device tpu --outdir {out}", 2, "--device"),
    ("generate --outdir {out}", 2, "missing option '--network'"),
    # --- info
    ("info {missing}", 2, "not found"),
    ("info {garbage_pt}", 2, "not a readable network file"),
    ("info {evil_pt}", 2, "refused"),
    ("info {evil_pkl}", 2, "refused to load"),
    ("info {text_txt}", 2, "not a readable network file"),
    ("info {in}", 2, "is a directory"),
    ("info {hfc}", 2, "neither a baggan network file"),
    # --- coco check: every damage is found, one line each
    *((f"coco check {{coco_{problem}}}", 2, words) for problem, words in {
        "images_not_objects": "image record #0 is not an object",
        "not_an_object": "not a coco document",
        "no_annotations_list": "missing list 'annotations'",
        "malformed_json": "malformed json",
        "duplicate_image_id": "duplicate id 1",
        "duplicate_annotation_id": "duplicate id 1",
        "unknown_category": "unknown category id 999",
        "unknown_image": "unknown image id 999",
        "negative_width": "'width'",
        "string_id": "'id'",
        "image_of_another_size": "image is 8x8, its record 1 says 16x16",
        "nan_in_json": "'confidence'] is nan",
        "missing_image": "image of image 1 not found",
        "truncated_image": "does not decode",
        "image_not_png": "does not decode",
        "missing_label_map": "label map of image 1 not found",
        "rgb_label_map": "single-channel",
        "unknown_label_id": "unknown category ids [99]",
        "label_map_size": "label map is 8x8",
        "rle_of_another_size": "segmentation is not a mask of image 1",
        "nan_latents": "nan or infinite",
        "latent_row_out_of_range": "latent_row 7",
        "bad_index": "not a shard index",
        "index_names_missing_shard": "shard-00009",
    }.items()),
    ("coco check {missing_dir}", 2, "does not exist"),
    ("coco check {empty_dir}", 2, "not a data set"),
    # --- coco view, merge, split, stats
    ("coco view {coco} --n 0 --out {out}", 2, "0 is not in the range x>=1"),
    ("coco view {coco} --n -4 --out {out}", 2, "-4 is not in the range x>=1"),
    ("coco view {coco} --out {empty_dir}", 2, "is a directory"),
    ("coco view {coco_images_not_objects} --out {out}", 2, "not an object"),
    ("coco view {coco_truncated_image} --out {out}", 2, "not a readable image"),
    ("coco view {coco_rle_of_another_size} --out {out}", 2, "segmentation is not a mask"),
    ("coco view {coco_duplicate_image_id} --out {out}", 2, "duplicate id"),
    ("coco view {missing_dir} --out {out}", 2, "does not exist"),
    ("coco merge {coco} {coco_other_categories} --out {out}", 2, "differ"),
    ("coco merge {coco} --out {nonempty}", 2, "already exists"),
    ("coco merge {coco} {coco_duplicate_image_id} --out {out}", 2, "duplicate id"),
    ("coco merge {coco} {coco_missing_image} --out {out}", 2, "not found"),
    ("coco merge {coco} {missing_dir} --out {out}", 2, "does not exist"),
    ("coco merge --out {out}", 2, "missing argument"),
    ("coco merge {coco} {coco_latent_row_out_of_range} --out {out}", 2, "latent_row 7"),
    ("coco merge {coco} {coco_rgb_label_map} {coco_bad_index} --out {out}", 2, "not a shard index"),
    ("coco split {coco} --ratio 0 --out {out}", 2, "--ratio"),
    ("coco split {coco} --ratio 1.5 --out {out}", 2, "--ratio"),
    ("coco split {coco} --ratio nan --out {out}", 2, "not a finite number"),
    ("coco split {coco} --ratio 1 --out {out}", 2, "--ratio"),
    ("coco split {coco_single} --out {out}", 2, "cannot be split"),
    ("coco split {coco_images_not_objects} --out {out}", 2, "not an object"),
    ("coco split {coco_missing_image} --out {out}", 2, "not found"),
    ("coco stats {coco_malformed_json} --out {out}", 2, "malformed json"),
    ("coco stats {coco_images_not_objects} --out {out}", 2, "not an object"),
    ("coco stats {coco_unknown_category} --out {out}", 2, "unknown category id 999"),
    ("coco stats {coco_bad_index} --out {out}", 2, "not a shard index"),
    # --- simulate, prepare
    ("simulate --n 0 --outdir {out}", 2, "--n"),
    ("simulate --n 2 --size 8 --outdir {out}", 2, "--size"),
    ("simulate --n 2 --size 64 --threat-rate 2 --outdir {out}", 2, "--threat-rate"),
    ("simulate --n 2 --size 64 --threat-rate nan --outdir {out}", 2, "not a finite number"),
    ("simulate --n 2 --size 64 --workers 0 --outdir {out}", 2, "--workers"),
    ("simulate --n 2 --size 64 --config {missing} --outdir {out}", 2, "not found"),
    ("simulate --n 2 --size 64 --config {bad_yaml} --outdir {out}", 2, "bad.yaml"),
    ("simulate --n 2 --size 64 --config {unknown_key_yaml} --outdir {out}", 2, "no_such_key"),
    ("simulate --n 2 --size 64 --config {list_yaml} --outdir {out}", 2, "expected a mapping"),
    ("simulate --n 2 --size 64 --config {sim_bad_yaml} --outdir {out}", 2, "threat_rate"),
    ("simulate --n 2 --size 64 --outdir {nonempty}", 2, "not empty"),
    ("simulate --n 2 --size 64 --outdir {a_file}", 2, "a_file"),
    ("prepare pidray --root {missing_dir} --split train --outdir {out}", 2, "no-such-dir"),
    ("prepare pidray --root {empty_dir} --split train --outdir {out}", 2, "empty_dir"),
    ("prepare pidray --root {empty_dir} --split nope --outdir {out}", 2, "--split"),
    ("prepare pidray --root {empty_dir} --split train --size 4 --outdir {out}", 2, "--size"),
    ("prepare celebamask --root {missing_dir} --outdir {out}", 2, "no-such-dir"),
    ("prepare celebamask --root {empty_dir} --outdir {out}", 2, "empty_dir"),
    ("prepare celebamask --root {empty_dir} --label-set cars --outdir {out}", 2, "--label-set"),
    ("prepare pascal-part --annotations {missing_dir} --images {empty_dir} --category car --outdir {out}", 2,
     "no-such-dir"),
    ("prepare pascal-part --annotations {empty_dir} --images {empty_dir} --category car --outdir {out}", 2,
     "empty_dir"),
    ("prepare pascal-part --annotations {empty_dir} --images {empty_dir} --category dog --outdir {out}", 2,
     "--category"),
    ("prepare pascal-part --annotations {empty_dir} --images {empty_dir} --category car --margin 2 --outdir {out}",
     2, "--margin"),
    # --- train
    (TRAIN, 2, "--config is required"),
    (f"{TRAIN} --config {{train_yaml}} --total-kimg 0", 2, "--total-kimg"),
    (f"{TRAIN} --config {{train_yaml}} --total-kimg -1", 2, "--total-kimg"),
    (f"{TRAIN} --config {{train_yaml}} --total-kimg nan", 2, "not a finite number"),
    (f"{TRAIN} --config {{missing}}", 2, "not found"),
    (f"{TRAIN} --config {{bad_yaml}}", 2, "bad.yaml"),
    (f"{TRAIN} --config {{unknown_key_yaml}}", 2, "no_such_key"),
    (f"{TRAIN} --config {{list_yaml}}", 2, "expected a mapping"),
    (f"{TRAIN} --config {{train_nan_yaml}}", 2, "total_kimg"),
    (f"{TRAIN} --config {{train_res64_yaml}}", 2, "64x64"),
    (f"{TRAIN} --config {{train_yaml}} --resume {{evil_pt}}", 2, "refused"),
    (f"{TRAIN} --config {{train_yaml}} --resume {{garbage_pt}}", 2, "not a training snapshot"),
    (f"{TRAIN} --config {{train_yaml}} --resume {{net}}", 2, "not a training snapshot"),
    (f"{TRAIN} --config {{train_yaml}} --resume {{missing}}", 2, "file not found"),
    (f"{TRAIN} --config {{train_yaml}} --resume auto --init {{net}}", 2, "give one of them"),
    (f"{TRAIN} --config {{train_yaml}} --init {{missing}}", 2, "not found"),
    (f"{TRAIN} --config {{train_yaml}} --init {{evil_pt}}", 2, "refused"),
    (f"{TRAIN} --config {{train_yaml}} --device tpu", 2, "--device"),
    ("train --config {train_yaml} --data {missing_dir} --outdir {out}", 2, "no-such-dir"),
    ("train --config {train_yaml} --data {coco_truncated_image} --outdir {out}", 2, "not a readable image"),
    # --- hfc train
    ("hfc train --network {missing} --config {hfc_tiny} --outdir {out}", 2, "does not exist"),
    ("hfc train --network {garbage_pt} --config {hfc_tiny} --outdir {out}", 2, "not a readable network file"),
    ("hfc train --network {evil_pt} --config {hfc_tiny} --outdir {out}", 2, "refused"),
    ("hfc train --network {net} --config {missing} --outdir {out}", 2, "not found"),
    ("hfc train --network {net} --config {unknown_key_yaml} --outdir {out}", 2, "no_such_key"),
    ("hfc train --network {net} --config {bad_yaml} --outdir {out}", 2, "bad.yaml"),
    ("hfc train --network {net} --config {hfc_tiny} --epochs 0 --outdir {out}", 2, "--epochs"),
    ("hfc train --network {net} --config {hfc_tiny} --device tpu --outdir {out}", 2, "--device"),
    # --- oneshot fit
    (FIT, 2, "give at least one annotated sample"),
    (f"{FIT} --seed 0", 2, "one --mask per sample"),
    (f"{FIT} --seed 0 --mask {{mask_colour_png}}", 2, "mask_colour.png"),
    (f"{FIT} --seed 0 --mask {{mask_small_png}}", 2, "mask_small.png"),
    (f"{FIT} --seed 0 --mask {{mask_unknown_png}}", 2, "mask_unknown.png"),
    (f"{FIT} --seed 0 --mask {{missing}}", 2, "not found"),
    (f"{FIT} --ws {{ws_nan_npy}} --mask {{mask_png}}", 2, "nan or infinite"),
    (f"{FIT} --ws {{ws_inf_pt}} --mask {{mask_png}}", 2, "nan or infinite"),
    (f"{FIT} --ws {{ws_shape_npy}} --mask {{mask_png}}", 2, "this generator needs"),
    (f"{FIT} --ws {{ws_objects_npy}} --mask {{mask_png}}", 2, "not a readable .npy/.pt ws file"),
    (f"{FIT} --ws {{ws_two_npy}} --mask {{mask_png}}", 2, "pick one"),
    (f"{FIT} --ws {{evil_pt}} --mask {{mask_png}}", 2, "refused"),
    (f"{FIT} --ws {{missing}} --mask {{mask_png}}", 2, "not found"),
    (f"{FIT} --image {{scan_small_png}} --mask {{mask_png}}", 2, "scan_small.png"),
    (f"{FIT} --image {{missing}} --mask {{mask_png}}", 2, "not found"),
    (f"{FIT} --seed 0 --mask {{mask_png}} --psi nan", 2, "not a finite number"),
    (f"{FIT} --seed 0 --mask {{mask_png}} --lr nan", 2, "not a finite number"),
    (f"{FIT} --seed 0 --mask {{mask_png}} --epochs 0", 2, "--epochs"),
    (f"{FIT} --seed 0 --mask {{mask_png}} --hidden 0", 2, "--hidden"),
    (f"{FIT} --seed 0 --mask {{mask_png}} --label-set nope", 2, "nope"),
    (f"{FIT} --seed 0 --mask {{mask_png}} --use-d-features", 2, "holds no discriminator"),
    (f"{FIT} --seed -1 --mask {{mask_png}}", 2, "--seed"),
    ("oneshot fit --network {net} --hfc {garbage_pt} --seed 0 --mask {mask_png} --out {out}", 2,
     "--hfc"),
    ("oneshot fit --network {net} --hfc {seg} --seed 0 --mask {mask_png} --out {out}", 2, "--hfc"),
    ("oneshot fit --network {net} --seed 0 --mask {mask_png} --out {out}", 2, "--hfc is required"),
    ("oneshot fit --network {net} --method datasetgan --with-image --seed 0 --mask {mask_png} --out {out}", 2,
     "--with-image"),
    ("oneshot fit --network {garbage_pt} --hfc {hfc} --seed 0 --mask {mask_png} --out {out}", 2,
     "not a readable network file"),
    # --- annotate
    ("annotate --network {net} --hfc {hfc} --segmenter {garbage_pt} --outdir {out}", 2, "--segmenter"),
    ("annotate --network {net} --hfc {hfc} --segmenter {net} --outdir {out}", 2, "--segmenter"),
    ("annotate --network {net} --hfc {hfc} --segmenter {evil_pt} --outdir {out}", 2, "refused"),
    ("annotate --network {net} --hfc {garbage_pt} --segmenter {seg} --outdir {out}", 2, "--hfc"),
    ("annotate --network {missing} --hfc {hfc} --segmenter {seg} --outdir {out}", 2, "not found"),
    (f"{ANNOTATE} --n 0", 2, "--n"),
    (f"{ANNOTATE} --batch 0", 2, "--batch"),
    (f"{ANNOTATE} --psi nan", 2, "not a finite number"),
    (f"{ANNOTATE} --seed -3", 2, "--seed"),
    (f"{ANNOTATE} --label-set nope", 2, "nope"),
    ("annotate --network {net} --hfc {hfc} --segmenter {seg} --outdir {nonempty}", 2, "not empty"),
    # --- synthesize
    (SYNTH, 2, "missing option '--n'"),
    (f"{SYNTH} --n 0", 2, "--n"),
    (f"{SYNTH} --n 2 --psi nan", 2, "not a finite number"),
    (f"{SYNTH} --n 2 --psi -inf", 2, "not a finite number"),
    (f"{SYNTH} --n 2 --steer nan --threat Hammer", 2, "not a finite number"),
    (f"{SYNTH} --n 2 --shard-size 0", 2, "--shard-size"),
    (f"{SYNTH} --n 2 --batch 0", 2, "--batch"),
    (f"{SYNTH} --n 2 --drop-uncertain 1", 2, "--drop-uncertain"),
    (f"{SYNTH} --n 2 --min-area -1", 2, "--min-area"),
    (f"{SYNTH} --n 2 --calibration 1", 2, "--calibration"),
    (f"{SYNTH} --n 2 --steer 1", 2, "needs a threat"),
    (f"{SYNTH} --n 2 --threat Gun", 2, "does not predict"),
    (f"{SYNTH} --n 2 --threat Axe", 2, "unknown label"),
    (f"{SYNTH} --n 2 --device tpu", 2, "--device"),
    (f"{SYNTH} --n 2 --writer fibre", 2, "--writer"),
    (f"{SYNTH} --n 2 --classes Hammer", 2, "must have 3 entries"),
    (f"{SYNTH} --n 2 --class-from condition", 2, "not conditional"),
    (f"{SYNTH} --n 2 --class-from judge", 2, "--class-from"),
    ("synthesize --network {net} --hfc {hfc} --segmenter {garbage_pt} --n 2 --outdir {out}", 2, "--segmenter"),
    ("synthesize --network {net} --hfc {evil_pt} --segmenter {seg} --n 2 --outdir {out}", 2, "refused"),
    ("synthesize --network {missing} --hfc {hfc} --segmenter {seg} --n 2 --outdir {out}", 2, "does not exist"),
    ("synthesize --network {evil_pkl} --hfc {hfc} --segmenter {seg} --n 2 --outdir {out}", 2, "refused"),
    # --- evaluate
    ("evaluate downstream --config {missing} --real {coco} --synthetic {coco} --test {coco} --outdir {out}", 2,
     "not found"),
    ("evaluate downstream --config {unknown_key_yaml} --real {coco} --synthetic {coco} --test {coco} "
     "--outdir {out}", 2, "no_such_key"),
    ("evaluate downstream --config {downstream_cfg} --real {missing_dir} --synthetic {coco} --test {coco} "
     "--outdir {out}", 2, "no-such-dir"),
    ("evaluate downstream --config {downstream_cfg} --real {coco} --synthetic {coco_images_not_objects} "
     "--test {coco} --outdir {out}", 2, "not an object"),
    ("evaluate realism --sets {coco} --outdir {out}", 2, "at least two"),
    ("evaluate realism --sets {coco} {missing_dir} --outdir {out}", 2, "no-such-dir"),
    ("evaluate realism --sets {coco} {coco} --max-images 1 --outdir {out}", 2, "--max-images"),
    ("evaluate realism --sets {coco} {coco} --names a --outdir {out}", 2, "--names"),
    ("evaluate oneshot --config {missing} --outdir {out}", 2, "not found"),
    ("evaluate oneshot --config {unknown_key_yaml} --outdir {out}", 2, "no_such_key"),
    ("evaluate oneshot --config {oneshot_cfg} --parts nope --outdir {out}", 2, "nope"),
    ("evaluate oneshot --config {oneshot_cfg} --network {garbage_pt} --outdir {out}", 2, "garbage.pt"),
    ("evaluate oneshot --config {oneshot_sim_missing_yaml} --network {net} --outdir {out}", 2, "scans.sim"),
    ("evaluate oneshot --config {oneshot_sim_no_window_yaml} --network {net} --outdir {out}", 2, "no window"),
    # --- threat windows, the judge (issue 19)
    ("simulate --n 2 --size 32 --windows --classes Chainsaw --outdir {out}", 2, "chainsaw"),
    ("simulate --n 2 --size 32 --windows --threat-share 0 0.5 --outdir {out}", 2, "window.share"),
    ("simulate --n 2 --size 32 --windows --threat-share 0.5 1.5 --outdir {out}", 2, "window.share"),
    ("simulate --n 2 --size 32 --windows --negatives 1 --outdir {out}", 2, "window.negatives"),
    ("simulate --n 2 --size 32 --negatives 0.2 --outdir {out}", 2, "--windows"),
    ("simulate --n 2 --size 15 --windows --outdir {out}", 2, "--size"),
    ("evaluate train-judge --config {missing} --out {out}", 2, "not found"),
    ("evaluate train-judge --config {unknown_key_yaml} --out {out}", 2, "no_such_key"),
    ("evaluate train-judge --config {judge_inside_yaml} --out {out}", 2, "min_inside"),
    ("evaluate train-judge --config {judge_hard_yaml} --out {out}", 2, "cut_windows must be <= 1"),
    ("evaluate threats --judge {missing} --outdir {out}", 2, "not found"),
    ("evaluate threats --judge {garbage_pt} --outdir {out}", 2, "not a judge file"),
    ("evaluate threats --judge {evil_pt} --outdir {out}", 2, "not a judge file"),
    ("evaluate threats --network {missing} --outdir {out}", 2, "not found"),
    ("evaluate threats --psi nan --outdir {out}", 2, "--psi"),
    ("evaluate threats --n 0 --outdir {out}", 2, "--n"),
    # --- DEBISim (issue 23), the annotator (issue 24)
    ("prepare debisim --root {missing_dir} --view top --outdir {out}", 2, "not found"),
    ("label --network {missing} --hfc {hfc} --workdir {out}", 2, "not found"),
    # --- quickstart
    ("quickstart --outdir {out} --n 0", 2, "--n"),
    ("quickstart --outdir {out} --hfc-epochs 0", 2, "--hfc-epochs"),
    ("quickstart --outdir {out} --config {missing}", 2, "not found"),
    ("quickstart --outdir {out} --config {unknown_key_yaml}", 2, "no_such_key"),
    ("quickstart --outdir {out} --network {garbage_pt}", 2, "garbage.pt"),
    ("quickstart --outdir {out} --network {missing}", 2, "not found"),
    ("quickstart --outdir {out} --config {qs_windows_missing_yaml}", 2, "windows:"),
    ("quickstart --outdir {out} --config {qs_windows_no_window_yaml}", 2, "no window"),
    ("quickstart --outdir {out} --config {qs_fit_image_word_yaml}", 2, "fit.image"),
]


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    return build_kit(tmp_path_factory.mktemp("kit"))


def test_the_table_covers_every_command_and_enough_cases():
    covered = {" ".join(line.split()[:2]) for line, _, _ in CASES} | {line.split()[0] for line, _, _ in CASES}
    missing = [path for path in leaf_commands(cli) if path not in covered]
    assert not missing, f"commands without a bad-input case: {missing}"
    assert len(CASES) >= 120


def test_every_command_says_what_an_interruption_leaves():
    missing = sorted(set(leaf_commands(cli)) - set(AFTER_INTERRUPTION))
    assert not missing, f"add these commands to baggan/cli/interruptions.py: {missing}"


def test_every_coco_damage_has_a_case():
    assert {f"coco_{p}" for p in COCO_DAMAGE} <= {w.strip("{}") for line, _, _ in CASES for w in line.split()}


@pytest.mark.parametrize("line, code, words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_refused_in_one_line(kit, tmp_path, monkeypatch, line, code, words):
    monkeypatch.chdir(tmp_path)  # a command that wrote into the current folder would show up below
    argv = [part.format(out=tmp_path / "out", **{k: str(v) for k, v in kit.items()}) for part in shlex.split(line)]
    result = CliRunner().invoke(cli, argv)
    lines = [part for part in result.output.replace("\r", "\n").splitlines() if part.strip()]
    assert result.exit_code == code and len(lines) == 1, result.output + repr(result.exception)
    assert lines[0].startswith("error: ") and words.lower() in lines[0].lower(), lines[0]
    assert "weights_only" not in lines[0], "never advise loading an untrusted file unsafely"
    assert list(tmp_path.iterdir()) == [], "the command left files behind"
    assert not kit["mark"].exists(), "a malicious pickle ran code"
