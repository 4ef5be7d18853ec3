"""`baggan label`: the browser annotator (paint one scan, fit, check predictions on other seeds, export)."""

from __future__ import annotations

from pathlib import Path

import click

from baggan.cli.params import device_option
from hfc.names import SEGMENTERS


@click.command("label")
@click.option("--network", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Generator file.")
@click.option("--hfc", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="HFC encoder (encoder.pt of `baggan hfc train`).")
@click.option("--workdir", default="label-work", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Work folder: every file the annotator reads or writes lies in it.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but 127.0.0.1 / localhost lets other machines reach the annotator.")
@click.option("--port", default=8765, show_default=True, help="Port (0: any free one).")
@click.option("--label-set", default="pidray", show_default=True, help="Label set of the categories.")
@click.option("--segmenter", "seg_name", type=click.Choice(SEGMENTERS),
              default="fcn3", show_default=True, help="Segmenter fitted on the HFC codes.")
@click.option("--hidden", default=64, show_default=True,
              help="Width of the segmenter's hidden layers (the quick-start's; `oneshot fit` uses the paper's 128).")
@click.option("--epochs", default=200, show_default=True, help="Epochs of each fit.")
@click.option("--previews", default=16, show_default=True, help="Seeds the fitted segmenter is shown on.")
@click.option("--preview-seed", default=100, show_default=True, help="First preview seed (annotated ones skipped).")
@click.option("--project-steps", default=200, show_default=True, help="Projection steps of an uploaded scan.")
@click.option("--max-upload-mb", default=16.0, show_default=True, help="Largest upload accepted.")
@device_option
@click.pass_context
def label_cmd(ctx: click.Context, network: Path, hfc: Path, workdir: Path, host: str, port: int, label_set: str,
              seg_name: str, hidden: int, epochs: int, previews: int, preview_seed: int, project_steps: int,
              max_upload_mb: float, device: str) -> None:
    """Annotate a generated (or projected) scan in the browser, fit the one-shot segmenter, export a data set."""
    import threading

    from baggan.errors import UserError
    from baggan.label.app import create_app, serve
    from baggan.label.session import LabelSession, LabelSettings

    for what, path in (("--network", network), ("--hfc", hfc)):
        if not path.is_file():
            raise UserError(f"{what} {path}: file not found")
    if previews < 1 or project_steps < 1 or max_upload_mb <= 0 or not 0 <= port < 65536:
        raise UserError("--previews and --project-steps must be >= 1, --max-upload-mb > 0, --port in 0..65535")
    settings = LabelSettings(label_set=label_set, segmenter=seg_name, hidden=hidden, epochs=epochs, previews=previews,
                             preview_seed=preview_seed, project_steps=project_steps, max_upload_mb=max_upload_mb,
                             device=device)
    session = LabelSession(network, hfc, workdir, settings)
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: binding {host}: other machines can reach the annotator (it has no login)", err=True)
    try:
        server = serve(create_app(session, debug=bool(ctx.obj and ctx.obj.get("debug"))), host, port)
    except OSError as e:
        raise UserError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None
    threading.Thread(target=session.warm_up, daemon=True).start()
    click.echo(f"annotator: http://{host}:{server.server_port}/  (work folder {session.workdir}; Ctrl+C stops it)")
    server.serve_forever()


COMMANDS = (label_cmd,)  # what `baggan` gets from this module
