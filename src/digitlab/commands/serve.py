"""`digitlab serve [MODEL]`: a REST API (POST /predict, /read) and a page to draw a number on, for one model, until
Ctrl-C: the port is bound first (a port in use fails at once), then the model loads once, then uvicorn answers."""

from __future__ import annotations

import argparse

from digitlab.commands.options import WEIGHTS

HELP = "a REST API (POST /predict, /read) and a page to draw a number on, for one model (needs 'digitlab[serve]')"


def register(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("serve", help=HELP, parents=[WEIGHTS])
    parser.add_argument(
        "model", nargs="?", help="a finished run directory or an .onnx file (default: the model shipped with digitlab)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)"
    )
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--device", default="cpu", help="device the model runs on (default cpu)")
    parser.add_argument(
        "--samples", metavar="DIR", help="keep corrections made on the page in this samples folder (for digitlab adapt)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from digitlab import serve as serving

    serving.require()  # fastapi and uvicorn are an optional extra: one line says what to install
    import uvicorn

    from digitlab.inference.classifier import open_classifier
    from digitlab.serve.app import create_app
    from digitlab.store.samples import open_samples

    samples = open_samples(args.samples, create=True) if args.samples else None  # a bad folder fails before binding
    sock = serving.listen(args.host, args.port)
    try:
        classifier = open_classifier(args.model, device=args.device, weights=args.weights)
        app = create_app(classifier, samples=samples)
        kept = f"; corrections kept in {samples.path}" if samples else ""
        print(f"serving {classifier.source} at {serving.url(sock)} (Ctrl-C stops){kept}", flush=True)
        uvicorn.Server(uvicorn.Config(app, log_level="info")).run(sockets=[sock])
    finally:
        sock.close()
