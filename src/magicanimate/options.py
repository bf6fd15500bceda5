"""``SampleOptions``: the one schema of every option of an animation.

Each field carries its own help text, parser and range. From it come, without another
list anywhere: the ``animate`` command's flags (``cli/animate.py``), the fields a batch
job may set (``cli/jobs.py``), the web app's controls (``app/ui.py``) and the keyword
defaults of ``MagicAnimate.__call__``. Adding an option means adding a field here and
using it where it acts.

This module is a leaf (standard library only), so the parser can be built without torch.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from magicanimate.errors import InputError

# Shared constants of the value grammar (defined once; imported by io/ and sampling/).
FIT_MODES = ("stretch", "pad", "crop")
SCHEDULERS = ("ddim", "dpmsolver++", "unipc")
DTYPES = ("auto", "float32", "float16", "bfloat16")
NOISE_MODES = ("shared", "per-segment")
SIZE_MULTIPLE = 8
WINDOW = 16  # frames per window: the length the motion modules were trained on
MAX_STEPS = 1000  # the scheduler's training timesteps
SEED_RANGE = (-(2**63), 2**64 - 1)  # what torch.Generator.manual_seed accepts
DEFAULT_FPS = 25.0  # for motion inputs without a frame rate (frame folders, arrays)

Size = tuple[int, int]


# --------------------------------------------------------------------------
# Value grammar: text (command line, job files, form fields) or Python values -> typed values
# --------------------------------------------------------------------------


def parse_size(text: str | int | tuple[int, int] | list[int]) -> Size:
    """Parse 512 / "512" -> (512, 512), "768x512" or (768, 512) -> (768, 512) (W x H), multiples of 8."""
    if isinstance(text, bool):
        raise InputError(f"size must be N or WxH, got {text!r}")
    if isinstance(text, (tuple, list)):
        if len(text) != 2 or not all(_is_int(v) for v in text):
            raise InputError(f"size must be an int or (width, height), got {text!r}")
        size = (int(text[0]), int(text[1]))
    elif _is_int(text):
        size = (int(text), int(text))
    else:
        match = re.fullmatch(r"\s*(\d+)\s*(?:[xX×]\s*(\d+)\s*)?", str(text))
        if match is None:
            raise InputError(f"size must be N or WxH (e.g. 512 or 768x512), got {text!r}")
        width = int(match.group(1))
        size = (width, int(match.group(2)) if match.group(2) else width)
    if any(v <= 0 or v % SIZE_MULTIPLE for v in size):
        raise InputError(
            f"size {size[0]}x{size[1]} must be positive multiples of {SIZE_MULTIPLE} "
            "(the VAE works at 1/8 resolution)"
        )
    return size


def _is_int(value: Any) -> bool:
    """An integer that is not a bool (numpy integers included, without importing numpy)."""
    return not isinstance(value, bool) and hasattr(value, "__index__") and not isinstance(value, str)


def _number(value: Any, name: str) -> float:
    """A finite float from text or a number."""
    if isinstance(value, bool):
        raise InputError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    return number


def whole(*, minimum: int | None = None, maximum: int | None = None) -> Callable[[Any, str], int]:
    """A parser of whole numbers within [minimum, maximum] ("25", 25 and 25.0 are accepted)."""

    def parse(value: Any, name: str) -> int:
        if isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                raise InputError(f"{name} must be a whole number, got {value!r}") from None
        else:
            as_float = _number(value, name)
            if _is_int(value):
                number = int(value)
            elif as_float != int(as_float):
                raise InputError(f"{name} must be a whole number, got {value!r}")
            else:
                number = int(as_float)
        if minimum is not None and number < minimum:
            raise InputError(f"{name} must be at least {minimum}, got {number}")
        if maximum is not None and number > maximum:
            raise InputError(f"{name} must be at most {maximum}, got {number}")
        return number

    return parse


def real(*, above: float | None = None) -> Callable[[Any, str], float]:
    """A parser of finite numbers, optionally strictly above a bound."""

    def parse(value: Any, name: str) -> float:
        number = _number(value, name)
        if above is not None and number <= above:
            raise InputError(f"{name} must be above {above:g}, got {number:g}")
        return number

    return parse


def one_of(choices: tuple[str, ...]) -> Callable[[Any, str], str]:
    """A parser accepting one of ``choices``."""

    def parse(value: Any, name: str) -> str:
        if value not in choices:
            raise InputError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
        return value

    return parse


def flag(value: Any, name: str) -> bool:
    """A yes/no value: a bool, or true/false, yes/no, 1/0, on/off as text."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "y", "on"):
        return True
    if text in ("0", "false", "no", "n", "off", ""):
        return False
    raise InputError(f"{name} must be true or false, got {value!r}")


def size_text(value: Any, name: str) -> str | int | tuple[int, int] | None:
    """A size as given (checked): N, "N", "WxH" or (W, H); None or blank: the weights' native size."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    parse_size(value)
    return tuple(value) if isinstance(value, list) else value


# --------------------------------------------------------------------------
# The schema
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class AppControl:
    """How the web app shows an option: a slider, a number box, a text box or a dropdown."""

    kind: str  # "slider", "number", "text" or "dropdown"
    label: str
    elem_id: str
    minimum: float | None = None
    maximum: float | None = None
    step: float | None = None


@dataclass(frozen=True)
class OptionSpec:
    """What the front ends need to know of one option."""

    help: str
    group: str  # "inputs", "sampling", "lossy" or "memory" (a flag group of ``animate``)
    parse: Callable[[Any, str], Any]
    choices: tuple[str, ...] | None = None
    metavar: str | None = None
    call: bool = False  # a keyword of MagicAnimate.__call__
    app: AppControl | None = None


def option(default: Any, help: str, *, group: str, parse: Callable[[Any, str], Any],  # noqa: A002
           choices: tuple[str, ...] | None = None, metavar: str | None = None, call: bool = False,
           app: AppControl | None = None) -> Any:
    """A dataclass field with its ``OptionSpec``."""
    spec = OptionSpec(help, group, parse, choices, metavar, call, app)
    return field(default=default, metadata={"option": spec})


GROUP_TITLES = {
    "inputs": "motion frames",
    "sampling": "sampling",
    "lossy": "lossy fast modes (opt-in: they change the output; see docs/benchmarks.md)",
    "memory": "precision and memory",
}


@dataclass(frozen=True)
class SampleOptions:
    """Every option of one animation, with the release's values as defaults."""

    # motion frames
    start: int = option(0, "first motion frame to use (default 0)", group="inputs", parse=whole(minimum=0),
                       call=True)
    max_frames: int | None = option(None, "use at most this many motion frames", group="inputs",
                                    parse=whole(minimum=1), call=True)
    fps: float | None = option(None, "resample a motion video to this fps (default: keep its own); for a frame "
                                     f"folder or .npy, the rate of its frames (default {DEFAULT_FPS:g})",
                               group="inputs", parse=real(above=0), call=True)
    # sampling (faithful)
    steps: int = option(25, "DDIM steps (default 25)", group="sampling", parse=whole(minimum=1, maximum=MAX_STEPS),
                        call=True, app=AppControl("slider", "Steps", "steps", 1, 100, 1))
    guidance_scale: float = option(7.5, "classifier-free guidance (default 7.5)", group="sampling", parse=real(),
                                   call=True, app=AppControl("slider", "Guidance scale", "guidance", 1.0, 15.0, 0.5))
    seed: int = option(1, "random seed (default 1)", group="sampling",
                       parse=whole(minimum=SEED_RANGE[0], maximum=SEED_RANGE[1]), call=True,
                       app=AppControl("number", "Seed", "seed"))
    size: str | int | tuple[int, int] | None = option(
        None, "output N (square) or WxH, multiples of 8 (default: the weights' native size, 512 for the released "
              "checkpoints, 64 for the mini model); refused before loading when its estimated peak memory "
              "exceeds the device's", group="sampling", parse=size_text, call=True,
        app=AppControl("text", "Size (N or WxH)", "size"))
    fit: str = option("stretch", "how inputs of another aspect map onto the size (the output is the size in every mode): "
                                 "stretch (release), pad (letterbox), crop (default stretch)",
                      group="sampling", parse=one_of(FIT_MODES), choices=FIT_MODES, call=True,
                      app=AppControl("dropdown", "Fit", "fit"))
    # lossy fast modes
    scheduler: str = option("ddim", "ddim (release, default), or dpmsolver++ / unipc with fewer --steps (e.g. 10-15)",
                            group="lossy", parse=one_of(SCHEDULERS), choices=SCHEDULERS, call=True)
    deep_cache: int = option(1, "run the full UNet every N steps, reuse its deep features in between "
                                "(default 1: off)", group="lossy", parse=whole(minimum=1), metavar="N", call=True)
    overlap: int = option(4, f"frames shared by consecutive {WINDOW}-frame windows (release: 4)", group="lossy",
                          parse=whole(minimum=0, maximum=WINDOW - 1), call=True)
    noise: str = option("shared", f"initial noise: one {WINDOW}-frame draw repeated over the video (release) or "
                                  "per-segment (a new draw for every segment; the paper's ablation)",
                        group="lossy", parse=one_of(NOISE_MODES), choices=NOISE_MODES, call=True)
    # precision and memory (the model's settings, applied per job)
    dtype: str = option("auto", "auto = float16 on CUDA, float32 on CPU", group="memory", parse=one_of(DTYPES),
                        choices=DTYPES)
    offload: bool = option(False, "keep models in CPU memory, each on the GPU only while it runs (less GPU memory)",
                           group="memory", parse=flag)
    vae_tiling: bool = option(False, "decode large frames tile by tile (less memory; slightly changes the output)",
                              group="memory", parse=flag)
    ff_chunking: bool = option(False, "run the UNet's feed-forward layers one frame at a time (less memory, "
                                      "same output)", group="memory", parse=flag)
    decode_chunk: int | None = option(None, "frames per VAE decode call (default 8; 1 = least memory, same output)",
                                      group="memory", parse=whole(minimum=1), metavar="N", call=True)

    def __post_init__(self) -> None:
        defaults = option_defaults()
        for name, spec in option_specs().items():
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, spec.parse(value, name))
            elif defaults[name] is not None:
                raise InputError(f"{name} must be set")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, base: "SampleOptions | None" = None) -> "SampleOptions":
        """Options from text or values keyed by field name (``-`` or ``_``); unknown names are refused."""
        known = option_specs()
        items = {str(k).replace("-", "_"): v for k, v in values.items()}
        unknown = sorted(set(items) - set(known))
        if unknown:
            raise InputError(f"unknown options {unknown}; known: {sorted(known)}")
        return dataclasses.replace(base or cls(), **items)

    def replace(self, **changes: Any) -> "SampleOptions":
        """A copy with some options changed (checked as on construction)."""
        return self.from_mapping(changes, base=self)

    def call_options(self) -> dict[str, Any]:
        """The options that are keywords of ``MagicAnimate.__call__``."""
        return {n: getattr(self, n) for n, s in option_specs().items() if s.call}

    def output_size(self, native_size: int) -> Size:
        """The output size as (width, height): ``size``, or ``native_size`` squared when it is unset."""
        return parse_size(self.size if self.size is not None else native_size)


def option_specs() -> dict[str, OptionSpec]:
    """Every option's spec, keyed by field name, in declaration order."""
    return {f.name: f.metadata["option"] for f in dataclasses.fields(SampleOptions)}


def option_defaults() -> dict[str, Any]:
    """Every option's default, keyed by field name."""
    return {f.name: f.default for f in dataclasses.fields(SampleOptions)}


def iter_options(*, group: str | None = None, call: bool | None = None,
                 app: bool | None = None) -> Iterator[tuple[str, OptionSpec]]:
    """(name, spec) of the options selected by group / call / app presence."""
    for name, spec in option_specs().items():
        if group is not None and spec.group != group:
            continue
        if call is not None and spec.call != call:
            continue
        if app is not None and (spec.app is not None) != app:
            continue
        yield name, spec
