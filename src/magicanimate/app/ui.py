"""The web app: a Gradio page around ``MagicAnimate`` (``magicanimate app``).

    model = MagicAnimate.from_pretrained("pretrained_models")
    demo = build_app(model, max_upload_mb=200, max_frames=300)
    launch_app(demo, host="127.0.0.1", port=7860, max_upload_mb=200)

The page takes a reference image and a DensePose motion video (any frame rate),
the options of ``SampleOptions`` that have an app control (steps, guidance,
seed, size, fit), shows a progress bar while sampling and returns the result video (at the
motion's frame rate) and the reference | motion | result grid.

Serving rules, set here once:
- one generation at a time, through Gradio's queue (concurrency limit 1);
- uploads above ``max_upload_mb`` are refused by Gradio's upload route and
  again by the handler, motions with more than ``max_frames`` frames are
  refused before any sampling, each with a message saying what to change;
- fully offline: no analytics, no share link, no web fonts (system font stacks
  only), server-side rendering off; the examples are drawn on the fly
  (`synthetic.simple_person`) into a cache folder, so nothing outside the package is read.
  This needs Gradio 6: Gradio 5's page loads scripts from CDNs, and Gradio 4
  does not import with huggingface_hub >= 1.
"""

from __future__ import annotations

import html
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

# Must be set before gradio is imported, which reads it for its analytics and version check.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from magicanimate.app.service import (  # noqa: E402
    DEFAULT_MAX_FRAMES,
    DEFAULT_MAX_UPLOAD_MB,
    MB,
    Animator,
    ExampleRow,
    ProgressBar,
    app_option_names,
    default_examples,
    read_reference_upload,
    user_message,
)
from magicanimate.errors import InputError, MagicAnimateError  # noqa: E402
from magicanimate.options import option_defaults, option_specs  # noqa: E402
from magicanimate.sampling.memory_limit import SizeLimit  # noqa: E402

log = logging.getLogger(__name__)

QUEUE_SIZE = 16  # waiting requests beyond this are told the queue is full


_SYSTEM_FONTS = ("ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue",
                 "Arial", "sans-serif")
_SYSTEM_MONO = ("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace")
_CSS = """
.gradio-container {max-width: 1280px !important; margin: auto;}
#title h1 {margin-bottom: 0;}
#info {min-height: 2em;}
"""


# ==========================================================================
# The page
# ==========================================================================


def page_error(err: BaseException, *, doing: str) -> gr.Error:
    """The ``gr.Error`` shown in the page for ``err``: a user mistake is logged as one line, anything else
    with its traceback (once, here: Gradio prints none)."""
    message = user_message(err)
    if isinstance(err, MagicAnimateError):
        log.warning("%s refused: %s", doing, message)
    else:
        log.exception("%s failed", doing)
    return gr.Error(html.escape(message, quote=False), print_exception=False)  # the page shows it as HTML


def refuse_non_images_in_our_words(image: gr.Image) -> gr.Image:
    """Make ``image``'s upload check speak our words: Gradio's own error for a file that is not an image
    names its server path and prints a traceback. (Wrapped on the instance: a subclass of a Gradio
    component would be a custom component, with generated stubs and no frontend.)"""
    gradio_preprocess = image.preprocess

    def preprocess(payload: Any) -> Any:
        try:
            return gradio_preprocess(payload)
        except Exception:  # noqa: BLE001 - PIL's many ways of saying "not an image"
            try:
                read_reference_upload(payload.path)
                err: MagicAnimateError = InputError("the reference image upload could not be read: upload it again")
            except InputError as refused:
                err = refused
            raise page_error(err, doing="animation") from None

    image.preprocess = preprocess
    return image


def make_handler(animator: Animator) -> Callable[..., tuple[str, str, str]]:
    """The click handler: (progress, reference, motion, *option values in ``app_option_names`` order) in,
    (video path, grid path, summary) out, gr.Error for failures."""
    names = app_option_names()

    # Gradio finds its progress tracker by a gr.Progress() default among the positional parameters
    # and inserts it at that position; first, so that the form values can follow as *values.
    def animate(progress=gr.Progress(), *values):  # noqa: B008
        reference, motion, *option_values = values
        try:
            progress(0.0, desc="Reading the inputs")
            result = animator(reference, motion, progress=ProgressBar(progress), **dict(zip(names, option_values)))
        except Exception as err:  # noqa: BLE001 - every failure becomes a message in the page
            raise page_error(err, doing="animation") from None
        return str(result.video), str(result.grid), result.summary

    return animate


def make_extract_handler(animator: Animator) -> Callable[..., tuple[str, str]]:
    """The "Extract motion" handler: (progress, driving video, reference) -> (motion video path, summary)."""

    def extract(progress=gr.Progress(), *values):  # noqa: B008 - see make_handler
        driving, reference = values
        try:
            progress(0.0, desc="Loading DensePose")
            result = animator.extract_motion(driving, reference,
                                             progress=lambda fraction, desc: progress(fraction, desc=desc))
        except Exception as err:  # noqa: BLE001 - every failure becomes a message in the page
            raise page_error(err, doing="motion extraction") from None
        return str(result.motion), result.summary

    return extract


def option_controls(*, values: dict[str, Any] | None = None) -> list[gr.components.Component]:
    """One form control per option shown in the app, from its ``AppControl`` (inside the current layout);
    ``values`` replace defaults (e.g. the loaded weights' native size)."""
    specs, defaults, controls = option_specs(), {**option_defaults(), **(values or {})}, []
    for name in app_option_names():
        control, default = specs[name].app, defaults[name]
        if control.kind == "slider":
            widget = gr.Slider(control.minimum, control.maximum, value=default, step=control.step,
                               label=control.label, elem_id=control.elem_id)
        elif control.kind == "number":
            widget = gr.Number(value=default, precision=0, label=control.label, elem_id=control.elem_id,
                               min_width=80)
        elif control.kind == "text":
            widget = gr.Textbox(value="" if default is None else str(default), label=control.label, max_lines=1, elem_id=control.elem_id,
                                min_width=120)
        elif control.kind == "dropdown":
            widget = gr.Dropdown(list(specs[name].choices or ()), value=default, label=control.label,
                                 elem_id=control.elem_id, min_width=100)
        else:
            raise ValueError(f"unknown app control kind {control.kind!r} for option {name}")
        controls.append(widget)
    return controls


def _theme() -> gr.themes.ThemeClass:
    """The Soft theme with system fonts only (Gradio's defaults may load web fonts)."""
    return gr.themes.Soft(primary_hue="indigo", font=list(_SYSTEM_FONTS), font_mono=list(_SYSTEM_MONO))


def build_app(
    model: Any,
    *,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    max_frames: int = DEFAULT_MAX_FRAMES,
    examples: Sequence[ExampleRow] | None = None,
    output_dir: str | os.PathLike | None = None,
    title: str = "MagicAnimate",
    densepose_weights: str | os.PathLike | None = None,
    size_limit: SizeLimit | None = None,
) -> gr.Blocks:
    """The Gradio page around a loaded model; ``examples=None`` draws the built-in ones, ``()`` shows none.

    ``size_limit`` (``magicanimate.sampling.memory_limit``): refuse sizes the device cannot hold.
    """
    animator = Animator(model, max_upload_mb=max_upload_mb, max_frames=max_frames, output_dir=output_dir,
                        densepose_weights=densepose_weights, size_limit=size_limit)
    rows = default_examples() if examples is None else [tuple(map(str, row)) for row in examples]
    animate = make_handler(animator)
    extract = make_extract_handler(animator)

    # delete_cache: Gradio's copies of uploads and results, checked hourly, removed after an hour.
    with gr.Blocks(title=title, analytics_enabled=False, delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            f"# {html.escape(title)}\n"
            "Animate a reference image with a DensePose motion video of any frame rate. "
            f"Uploads up to {max_upload_mb:g} MB and {max_frames} frames; one generation at a time.",
            elem_id="title")
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                with gr.Row():
                    reference = refuse_non_images_in_our_words(gr.Image(
                        label="Reference image", type="filepath", elem_id="reference", height=220,
                        sources=["upload", "clipboard"]))
                    motion = gr.Video(label="Motion (DensePose)", elem_id="motion", height=220,
                                      sources=["upload"])
                with gr.Accordion("No DensePose video? Extract the motion from an ordinary video", open=False):
                    driving = gr.Video(label="Driving video (a person moving)", elem_id="driving", height=180,
                                       sources=["upload"])
                    extract_button = gr.Button("Extract motion (aligned to the reference)", elem_id="extract")
                with gr.Row():
                    native = getattr(model, "native_size", None)  # the size box shows the weights' own size
                    controls = option_controls(values={"size": native} if native else None)
                button = gr.Button("Animate", variant="primary", elem_id="animate")
                if rows:
                    gr.Examples(examples=[list(r) for r in rows], inputs=[reference, motion], label="Examples")
            with gr.Column(scale=1):
                video = gr.Video(label="Result", elem_id="result", height=300, interactive=False, autoplay=True,
                                 loop=True)
                grid = gr.Video(label="Reference | motion | result", elem_id="grid", height=200, interactive=False,
                                autoplay=True, loop=True)
                info = gr.Markdown(elem_id="info")
        extract_button.click(extract, inputs=[driving, reference], outputs=[motion, info], api_name="extract_motion",
                             concurrency_limit=1, concurrency_id="generate")
        button.click(animate, inputs=[reference, motion, *controls],
                     outputs=[video, grid, info], api_name="animate", concurrency_limit=1,
                     concurrency_id="generate")
    demo.queue(default_concurrency_limit=1, max_size=QUEUE_SIZE)
    return demo


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    return host in ("localhost", "::1") or host.startswith("127.")


def launch_app(
    demo: gr.Blocks,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB,
    block: bool = True,
    quiet: bool = False,
) -> str:
    """Serve the page on host:port (never a share link); returns its local URL.

    Gradio's own start-up lines (with their advice to set ``share=True``) are not printed:
    one line of ours says where the page is, unless ``quiet``. ``block``: serve until Ctrl+C.
    """
    if not is_loopback(host):
        log.warning("serving on %s: anyone who can reach this address can use the app (no login)", host)
    if not quiet:  # said first: the server answers before Gradio's launch() returns
        print(f"serving on http://{host}:{port}/ (Ctrl+C to stop)", file=sys.stderr, flush=True)
    try:
        _, url, _ = demo.launch(
            server_name=host, server_port=port, share=False, inbrowser=False, quiet=True, show_error=True,
            prevent_thread_lock=True,
            max_file_size=int(max_upload_mb * MB),  # refused by Gradio's upload route itself
            ssr_mode=False,  # no Node server
            theme=_theme(), css=_CSS,
        )
    except OSError as err:
        raise InputError(f"cannot listen on {host}:{port} ({err}); pick another --port") from None
    if block:
        try:
            while demo.is_running:
                time.sleep(0.1)
        except KeyboardInterrupt:
            pass
        finally:
            demo.close()
    return str(url)
