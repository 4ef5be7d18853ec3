"""The annotator's web app (Flask): the page and its assets from the package, work-folder files, a JSON API.

Every error is a JSON object {"error": "one line"} with a 4xx status for what a page sent (400 bad request,
403 a path outside the work folder or a POST from another site, 404 nothing there, 409 busy, 413 upload too large) and 500 otherwise.
Uploads are decoded as images or read as JSON / PNG masks; nothing a page sends is ever unpickled.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from flask import Flask, jsonify, request, send_file
from werkzeug.exceptions import HTTPException

from baggan.errors import UserError
from baggan.label.jobs import Busy, Jobs
from baggan.label.session import LabelSession

STATIC = Path(__file__).parent / "static"


class Outside(UserError):
    """A path outside the work folder (403)."""


def _body() -> dict:
    """The request's JSON object; UserError for a malformed or non-object body."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise UserError("malformed JSON body: send a JSON object with Content-Type: application/json")
    return body


def _upload(field: str) -> tuple[str, bytes]:
    """(file name, bytes) of a multipart upload field; UserError if it is missing."""
    f = request.files.get(field)
    if f is None:
        raise UserError(f"no file in the upload (form field {field!r})")
    return f.filename or "", f.read()


def create_app(session: LabelSession, debug: bool = False) -> Flask:
    """The Flask app serving `session` (its work folder) at /, /static/*, /files/* and /api/*."""
    app = Flask(__name__, static_folder=str(STATIC), static_url_path="/static")
    app.config["MAX_CONTENT_LENGTH"] = int(session.settings.max_upload_mb * 2**20)
    jobs = Jobs(debug)
    app.extensions["baggan.jobs"], app.extensions["baggan.session"] = jobs, session

    @app.before_request
    def same_origin():
        """Refuse a POST another site's page makes (a form posted to 127.0.0.1 from elsewhere)."""
        origin = request.headers.get("Origin")
        if request.method == "POST" and origin and urlsplit(origin).netloc != request.host:
            raise Outside(f"cross-origin request from {origin} refused")

    @app.errorhandler(UserError)
    def user_error(e: UserError):
        status = 409 if isinstance(e, Busy) else 403 if isinstance(e, Outside) else 400
        return jsonify(error=str(e).splitlines()[0] if str(e) else "bad request"), status

    @app.errorhandler(HTTPException)
    def http_error(e: HTTPException):
        if e.code == 413:
            return jsonify(error=f"upload larger than {session.settings.max_upload_mb:g} MiB"), 413
        return jsonify(error=f"{e.name}: {e.description}".splitlines()[0]), e.code

    @app.errorhandler(Exception)
    def server_error(e: Exception):
        if debug:
            app.logger.exception("request failed")
        return jsonify(error=f"{type(e).__name__}: {e}".splitlines()[0]), 500

    @app.get("/")
    def index():
        return send_file(STATIC / "index.html")

    @app.get("/files/<path:relative>")
    def files(relative: str):
        try:
            path = session.inside(relative)
        except UserError as e:
            raise Outside(str(e)) from None
        if not path.is_file():
            return jsonify(error=f"{relative}: no such file"), 404
        return send_file(path, max_age=0)

    @app.get("/api/info")
    def info():
        return jsonify(session.info())

    @app.post("/api/sample")
    def sample():
        body = _body()
        if "name" in body:
            return jsonify(session.sample_view(body["name"]))
        return jsonify(session.seed_sample(body.get("seed"), body.get("psi", 0.7)))

    @app.post("/api/mask")
    def save_mask():
        body = _body()
        return jsonify(session.save_mask(body.get("sample"), body.get("ids")))

    @app.post("/api/import")
    def import_mask():
        name, data = _upload("file")
        return jsonify(session.import_mask(request.form.get("sample"), name, data))

    @app.post("/api/upload")
    def upload():
        name, data = _upload("scan")
        job = jobs.start("projection", session.upload_job(name, data))
        return jsonify(job.view()), 202

    @app.post("/api/fit")
    def fit():
        body = _body()
        shots = body.get("shots")
        if shots is not None and not (isinstance(shots, list) and all(isinstance(s, str) for s in shots)):
            raise UserError("shots must be a list of sample names")
        job = jobs.start("fit", session.fit_job(shots))
        return jsonify(job.view()), 202

    @app.post("/api/export")
    def export():
        body = _body()
        n, shard = body.get("n"), body.get("shard_size", 1000)
        job = jobs.start("export", session.export_job(n, shard))
        return jsonify(job.view()), 202

    @app.get("/api/jobs/<int:job_id>")
    def job_state(job_id: int):
        try:
            return jsonify(jobs.get(job_id).view())
        except UserError as e:
            return jsonify(error=str(e)), 404

    return app


def serve(app: Flask, host: str, port: int):
    """A threaded WSGI server (werkzeug's) for the app, bound to host:port (port 0: any free one); not started."""
    from werkzeug.serving import make_server

    return make_server(host, port, app, threaded=True)
