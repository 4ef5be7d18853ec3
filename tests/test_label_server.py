"""`baggan label`'s server without a browser (Flask test client): samples, masks with sidecars, imports, the fit with
previews and Fix-and-refit, the export, uploads projected into W+; and every bad request answered with one line:
path traversal, oversize upload, unknown category, malformed JSON, a busy job, a pickle sent as a scan."""

import base64
import io
import json
import os
import pickle
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from label_fixtures import make_app, pieces  # noqa: F401 - fixture
from toygen import single_thread  # noqa: F401 - tiny tensors: one thread is faster on a busy CPU

from baggan.cli import cli
from baggan.io import read_json, read_label_png, write_image_atomic
from baggan.label.jobs import Busy, Jobs
from baggan.label.session import encode_ids
from baggan.synth.build import load_annotator

HAMMER, KNIFE = 3, 11


@pytest.fixture
def app(pieces, tmp_path):  # noqa: F811 - pytest fixture
    app, session = make_app(pieces, tmp_path / "work")
    (tmp_path / "secret.txt").write_text("TOPSECRET")
    return app


def wait(app, answer) -> dict:
    """The finished state of a job started by a request."""
    assert answer.status_code == 202, answer.json
    jobs = app.extensions["baggan.jobs"]
    jobs.wait(jobs.get(answer.json["id"]), timeout=300)
    state = app.test_client().get(f"/api/jobs/{answer.json['id']}").json
    assert state["state"] == "done", state
    return state["result"]


def hammer_mask() -> np.ndarray:
    m = np.zeros((16, 16), np.uint8)
    m[3:9, 4:10] = HAMMER
    m[12:15, 1:4] = KNIFE
    m[0, :] = 255
    return m


def test_save_fit_fix_refit_export(app, tmp_path):
    c = app.test_client()
    info = c.get("/api/info").json
    assert info["resolution"] == 16 and info["categories"][3] == {"id": 3, "name": "Hammer", "colour": [145, 30, 180]}
    assert info["categories"][-1]["id"] == 255 and info["shots"] == []
    view = c.post("/api/sample", json={"seed": 3, "psi": 0.7}).json
    assert view["name"] == "seed0003_psi0.70" and view["mask"] is None
    assert c.get(view["scan"]).status_code == 200

    saved = c.post("/api/mask", json={"sample": view["name"], "ids": encode_ids(hammer_mask())}).json
    work = tmp_path / "work"
    np.testing.assert_array_equal(read_label_png(work / saved["mask"]), hammer_mask())
    sidecar = read_json(work / saved["sidecar"])
    assert sidecar["source"] == "seed" and sidecar["seed"] == 3 and sidecar["psi"] == 0.7
    assert sidecar["categories"] == ["Hammer", "Knife"] and len(sidecar["generator_sha256"]) == 64

    first = wait(app, c.post("/api/fit", json={}))
    assert len(first["previews"]) == 16 and first["shots"] == [view["name"]]
    assert [p["seed"] for p in first["previews"]] == list(range(100, 116))
    for p in first["previews"]:
        assert c.get(p["overlay"]).status_code == 200

    fix = c.post("/api/sample", json={"name": first["previews"][0]["name"]}).json  # Fix: the prediction as start
    assert fix["mask_from"] == "prediction"
    predicted = np.frombuffer(base64.b64decode(fix["mask"]), np.uint8).reshape(16, 16)
    corrected = predicted.copy()
    corrected[5:7, 5:7] = KNIFE
    c.post("/api/mask", json={"sample": fix["name"], "ids": encode_ids(corrected)})
    second = wait(app, c.post("/api/fit", json={}))
    assert second["shots"] == ["seed0003_psi0.70", "seed0100_psi0.70"]
    assert [p["seed"] for p in second["previews"]] == list(range(101, 117))  # annotated seeds are not previewed
    session = app.extensions["baggan.session"]
    wiring = load_annotator(session.network, session.hfc, work / "fit/segmenter.pt", torch.device("cpu"))
    assert wiring.class_to_category == [0, HAMMER, KNIFE]  # as `baggan synthesize` reads the file
    assert wiring.provenance["segmenter_meta"]["samples"] == second["shots"]

    done = wait(app, c.post("/api/export", json={"n": 6, "shard_size": 4}))
    assert done["images"] == 6 and done["shards"] == 2 and done["outdir"] == "export/run-001"
    assert c.get(done["contact"]).status_code == 200 and (work / "export/run-001/index.json").is_file()


def test_upload_is_projected_and_its_ws_file_is_a_sample(app, tmp_path):
    c = app.test_client()
    scan = np.random.default_rng(0).integers(0, 255, (20, 24, 3), np.uint8)
    write_image_atomic(tmp_path / "bag.png", scan)
    answer = c.post("/api/upload", data={"scan": (open(tmp_path / "bag.png", "rb"), "bag.png")})
    view = wait(app, answer)
    assert view["name"] == "upload-bag" and view["source"]["source"] == "ws"
    assert view["source"]["note"] == "resized 24x20 → 16x16 (aspect ratio changed)"
    assert np.load(tmp_path / "work/ws/upload-bag.npy").shape[0] == 1
    labelme = {"version": "5.4.1", "flags": {}, "imagePath": "other.png", "imageData": None, "imageHeight": 20,
               "imageWidth": 24, "shapes": [{"label": "hammer", "points": [[2, 2], [9, 9]], "shape_type": "rectangle",
                                              "group_id": None, "flags": {}}]}
    r = c.post("/api/import", data={"sample": "upload-bag", "file": (io.BytesIO(json.dumps(labelme).encode()), "l.json")})
    assert r.status_code == 400 and r.json["error"] == "l.json: annotates image 'other.png', not the sample bag.png"
    labelme["imagePath"] = "bag.png"  # drawn on the uploaded scan at its own size: resized with it
    r = c.post("/api/import", data={"sample": "upload-bag", "file": (io.BytesIO(json.dumps(labelme).encode()), "l.json")})
    ids = np.frombuffer(base64.b64decode(r.json["mask"]), np.uint8)
    assert r.status_code == 200 and set(np.unique(ids)) == {0, HAMMER}


@pytest.mark.parametrize("path", ["/files/../secret.txt", "/files/..%2fsecret.txt", "/files/%2e%2e/secret.txt",
                                  "/files//etc/passwd", "/files/%2fetc/passwd", "/files/scans/../../secret.txt"])
def test_path_traversal_is_refused(app, path):
    r = app.test_client().get(path, follow_redirects=True)
    assert r.status_code in (403, 404) and b"TOPSECRET" not in r.data and b"root:" not in r.data
    assert "error" in r.json


def test_bad_requests_are_one_line_errors(app):
    c = app.test_client()
    view = c.post("/api/sample", json={"seed": 3, "psi": 0.7}).json
    cases = [
        (c.post("/api/mask", data="{bad", content_type="application/json"), 400, "malformed JSON body"),
        (c.post("/api/mask", data="[1, 2]", content_type="application/json"), 400, "malformed JSON body"),
        (c.post("/api/sample", json={"seed": "x"}), 400, "seed must be an integer"),
        (c.post("/api/sample", json={"seed": 1, "psi": float("nan")}), 400, "psi must be a number in [-2, 2]"),
        (c.post("/api/mask", json={"sample": "../../etc/passwd", "ids": ""}), 400, "bad sample name '../../etc/passwd'"),
        (c.post("/api/mask", json={"sample": "seed0009_psi0.70", "ids": ""}), 400, "unknown sample 'seed0009_psi0.70'"),
        (c.post("/api/mask", json={"sample": view["name"], "ids": encode_ids(np.full((16, 16), 40))}), 400,
         "mask of seed0003_psi0.70: ids [40] are not categories of label set pidray"),
        (c.post("/api/mask", json={"sample": view["name"], "ids": encode_ids(np.zeros((8, 8)))}), 400,
         "ids: 64 pixels, the generator makes 16x16 scans"),
        (c.post("/api/mask", json={"sample": view["name"], "ids": "***"}), 400, "ids: not base64"),
        (c.post("/api/import", data={"sample": view["name"], "file": (io.BytesIO(json.dumps(
            {"imageHeight": 16, "imageWidth": 16, "imagePath": "seed0003.png", "shapes": [
                {"label": "Banana", "points": [[1, 1], [3, 3]], "shape_type": "rectangle"}]}).encode()), "b.json")}),
         400, "b.json: shape 0: unknown category 'Banana'"),
        (c.post("/api/upload", data={"scan": (io.BytesIO(bytes(100_000)), "big.png")}), 413, "upload larger than 0.05 MiB"),
        (c.post("/api/upload", data={"scan": (io.BytesIO(pickle.dumps({"a": 1})), "x.pkl")}), 400,
         "x.pkl: not a readable image"),
        (c.post("/api/import", data={"sample": view["name"], "file": (io.BytesIO(pickle.dumps([1])), "m.pkl")}), 400,
         "m.pkl: neither a PNG mask nor a LabelMe or COCO JSON file"),
        (c.post("/api/upload", data={}), 400, "no file in the upload"),
        (c.post("/api/fit", json={}), 400, "no saved mask to fit on"),
        (c.post("/api/fit", json={"shots": "all"}), 400, "shots must be a list of sample names"),
        (c.post("/api/export", json={"n": 5}), 400, "nothing to export yet: fit a segmenter first"),
        (c.get("/api/jobs/99"), 404, "no job 99"),
        (c.post("/api/upload", data={"scan": (io.BytesIO(b"x"), "a.png")}, headers={"Origin": "http://evil.example"}),
         403, "cross-origin request from http://evil.example refused"),
        (c.get("/api/nothing"), 404, "Not Found"),
    ]
    for r, status, message in cases:
        assert r.status_code == status and message in r.json["error"] and "\n" not in r.json["error"], r.json


def test_one_job_at_a_time():
    jobs, release = Jobs(), threading.Event()
    first = jobs.start("fit", lambda report: release.wait(10))
    with pytest.raises(Busy, match="busy: a fit is running"):
        jobs.start("export", lambda report: None)
    release.set()
    assert jobs.wait(first).state == "done"
    assert jobs.wait(jobs.start("export", lambda report: report(0.5, "half") or 1 / 0)).error == \
        "ZeroDivisionError: division by zero"


def test_the_command_refuses_missing_files_in_one_line(pieces, tmp_path):  # noqa: F811 - pytest fixture
    r = CliRunner().invoke(cli, ["label", "--network", str(tmp_path / "nope.pt"), "--hfc", str(pieces[1])])
    assert r.exit_code == 2 and "--network" in r.stderr and "nope.pt: file not found" in r.stderr


def test_the_command_serves_the_page_on_localhost(pieces, tmp_path):  # noqa: F811 - pytest fixture
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    proc = subprocess.Popen([sys.executable, "-m", "baggan", "label", "--network", str(pieces[0]), "--hfc",
                             str(pieces[1]), "--workdir", str(tmp_path / "w"), "--port", "0", "--device", "cpu"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        line = proc.stdout.readline()
        assert line.startswith("annotator: http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split()[1]
        with urllib.request.urlopen(url) as r:
            assert b'<canvas id="view"' in r.read()
        with urllib.request.urlopen(url + "static/app.js") as r:
            assert b"window.baggan = S" in r.read()
        with urllib.request.urlopen(url + "api/info") as r:
            assert json.load(r)["resolution"] == 16
    finally:
        proc.terminate()
        proc.wait(10)
