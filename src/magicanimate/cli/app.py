"""``magicanimate app``: serve the Gradio web page (needs the ``app`` extra: gradio)."""

from __future__ import annotations

import argparse
import socket

from magicanimate.cli.arguments import positive_int
from magicanimate.errors import InputError


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
    return value


def port_number(text: str) -> int:
    """argparse type: a TCP port 1..65535."""
    value = positive_int(text)
    if value > 65535:
        raise argparse.ArgumentTypeError(f"expected a port in 1..65535, got {value}")
    return value


def check_port_free(host: str, port: int) -> None:
    """Raise InputError when host:port cannot be listened on (in use, or not an address here)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise InputError(f"--host {host!r} is not a valid address: {err}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind(address)
        except OSError as err:
            raise InputError(f"cannot listen on {host}:{port} ({err.strerror or err}); pick another --port") from None


def add_app_parser(subparsers) -> None:
    """Register ``app``."""
    p = subparsers.add_parser(
        "app", help="serve the web app (Gradio) on this machine",
        description="Serve a web page to animate a reference image with a DensePose motion video. "
                    "Listens on 127.0.0.1 only unless --host says otherwise; one generation at a time.",
    )
    p.add_argument("--weights", help="folder in the release layout, or 'mini' for the mini model in the "
                                     "package (default: the released weights if they are here — "
                                     "./pretrained_models, $MAGICANIMATE_WEIGHTS or the Hugging Face cache — "
                                     "else the mini model; the first line says which)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1; 0.0.0.0 exposes the app, which has no login)")
    p.add_argument("--port", type=port_number, default=7860, help="port (default 7860)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1 ... (default auto)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "float16", "bfloat16"],
                   help="auto = float16 on CUDA, float32 on CPU")
    p.add_argument("--max-upload-mb", type=positive_float, default=200.0,
                   help="refuse uploads larger than this many MB (default 200)")
    p.add_argument("--max-frames", type=positive_int, default=300,
                   help="refuse motions with more frames than this (default 300)")
    p.add_argument("--densepose-weights", metavar="PKL", default=None,
                   help="DensePose checkpoint for the page's motion extraction (default: the cached download of "
                        "magicanimate download --densepose)")
    p.add_argument("--quiet", action="store_true", help="no loading or server messages")
    p.set_defaults(func=run_app)


def run_app(args: argparse.Namespace) -> int:
    """Entry point of ``magicanimate app``: load the model once, then serve until interrupted."""
    try:
        from magicanimate.app.ui import build_app, launch_app
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] != "gradio":
            raise
        raise InputError("the web app needs gradio: pip install 'magicanimate[app]'") from None
    from magicanimate.cli.loading import load_model, say, size_limit_for
    from magicanimate.options import SampleOptions

    check_port_free(args.host, args.port)  # before spending minutes on the weights
    weights = args.weights
    if weights is None:
        from magicanimate.weights.layout import default_weights

        weights, which = default_weights()
        say(args.quiet, which)
    limit = size_limit_for(weights, args.device, SampleOptions(dtype=args.dtype))  # the page's size box
    model = load_model(weights, args.device, args.dtype, quiet=args.quiet)
    demo = build_app(model, max_upload_mb=args.max_upload_mb, max_frames=args.max_frames,
                     densepose_weights=args.densepose_weights, size_limit=limit)
    launch_app(demo, host=args.host, port=args.port, max_upload_mb=args.max_upload_mb, quiet=args.quiet)
    return 0
