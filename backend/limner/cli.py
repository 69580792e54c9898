"""Limner's command line: serve, stop, status, run, batch, ops, models, users, studio, demo.

`run`, `batch` and `demo` go through the real protocol: they connect to the running backend
named by the discovery file, or start a private one for the duration of the command. What
they write carries IPTC provenance in XMP, and C2PA Content Credentials when a certificate
is given.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime
import hashlib
import json
import os
import re
import signal
import sys
from pathlib import Path

import numpy as np

from . import __version__, cache, imaging, protocol, provenance, schema, studio, threads
from .client import BackendError, Client
from .picture_files import FORMATS

#: a served backend lets its models go after this many seconds without a job
UNLOAD_AFTER = 300.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="limner", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"limner {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the backend server (127.0.0.1 only; --studio: "
                                      "shared over TLS)")
    p.add_argument("--port", type=int, default=protocol.DEFAULT_PORT,
                   help="port to listen on (0: any free port); if it is taken, a free one is "
                        "used and written to the discovery file")
    p.add_argument("--max-message-mb", type=float, default=protocol.DEFAULT_MAX_MESSAGE_BYTES / 2**20)
    p.add_argument("--max-buffer-mb", type=float, default=protocol.DEFAULT_MAX_BUFFER_BYTES / 2**20)
    p.add_argument("--cache-mb", type=float, default=cache.DEFAULT_LIMIT_BYTES / 2**20,
                   help="memory for what is worked out about layers (relight's geometry), "
                        "so a second run on the same layer is quick; 0 keeps nothing")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--threads", type=int, default=threads.default(),
                   help="cores the compute may use (default: all but one, so the editor "
                        "keeps one while a job runs)")
    p.add_argument("--unload-after", type=float, default=UNLOAD_AFTER, metavar="SECONDS",
                   help="release the models and caches after this long without a job "
                   f"(default {UNLOAD_AFTER:.0f}; 0: never); the next job loads them again")

    p.add_argument("--studio", action="store_true",
                   help="studio mode: share this backend with the studio's retouchers over "
                        "TLS, each with their own token (limner users add)")
    p.add_argument("--host", default=None,
                   help="studio mode: the address to listen on (default 127.0.0.1; 0.0.0.0 "
                        "for every network)")
    p.add_argument("--cert", type=Path, help="studio mode: the TLS certificate (PEM; default: "
                                             "a self-signed one made on first run)")
    p.add_argument("--key", type=Path, help="studio mode: the certificate's private key (PEM)")
    p.add_argument("--jobs-per-user", type=int, default=studio.DEFAULT_JOBS_PER_USER,
                   help="studio mode: jobs each user may have queued or running")
    p.add_argument("--mb-per-user", type=float, default=studio.DEFAULT_BYTES_PER_USER / 2**20,
                   help="studio mode: MB of layers held for each user's jobs")
    p.add_argument("--ray", metavar="ADDRESS",
                   help="studio mode: run the jobs on engine replicas on this Ray cluster "
                        "(ray start's address, or 'local' to start one here); needs "
                        "Limner's studio extra")
    p.add_argument("--replicas", type=int, help="with --ray: engine replicas (default: one "
                                                "per GPU in the cluster, else one)")
    p.add_argument("--replica-cpus", type=float, default=1.0,
                   help="with --ray: CPU cores each replica takes (its compute threads)")

    p = sub.add_parser("users", help="studio mode: the retouchers who may use this backend")
    p.add_argument("action", choices=("add", "list", "remove"))
    p.add_argument("name", nargs="?", help="the user (add, remove)")
    p.add_argument("--admin", action="store_true",
                   help="add: may also download models on the studio server")

    p = sub.add_parser("studio", help="the plug-ins' studio server setting: use a shared "
                                      "backend instead of a local one")
    p.add_argument("action", choices=("use", "local", "show"))
    p.add_argument("url", nargs="?", help="use: the studio server, wss://HOST:PORT")
    p.add_argument("--fingerprint", default="",
                   help="use: the server certificate's SHA-256 fingerprint, as `limner serve "
                        "--studio` prints it (needed for a self-signed certificate)")

    sub.add_parser("stop", help="stop the running backend (the discovery file's)")
    sub.add_parser("status", help="what the running backend holds: models, cache, memory")

    p = sub.add_parser("run", help="run an operation on an image file; writes PNGs and an .ora")
    p.add_argument("image", type=Path)
    p.add_argument("--op", required=True, help="operation id, e.g. background.remove "
                                               "(see `limner ops`)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--mask", type=Path, help="selection mask: a greyscale image, same size")
    p.add_argument("--out", type=Path, required=True, help="folder for the results")
    _output_arguments(p)
    _signing_arguments(p)

    p = sub.add_parser("batch", help="run one operation (or mood) over a folder of pictures")
    p.add_argument("inputs", help="a folder, or a glob such as 'shoot/*.jpg'")
    p.add_argument("--op", required=True, help="operation id (see `limner ops`)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--out", type=Path, required=True, help="folder for the results")
    _output_arguments(p)
    _signing_arguments(p)

    p = sub.add_parser("ops", help="list operations and their parameters")
    p.add_argument("--json", action="store_true", help="print the full capabilities as JSON")

    p = sub.add_parser("models", help="the high-quality engines' checkpoints: list, pull, "
                                      "verify, remove")
    p.add_argument("action", choices=("list", "pull", "verify", "remove"))
    p.add_argument("names", nargs="*", help="model names (see `limner models list`)")

    p = sub.add_parser("demo", help="run every operation on two real portraits")
    p.add_argument("--out", type=Path, default=Path("limner-demo"))

    args, stray = parser.parse_known_args(argv)
    if stray:           # say it in the words of the command that was given, with a hint
        command = sub.choices[args.command]
        hint = "; --param takes NAME=VALUE, e.g. --param setup=rembrandt" \
            if getattr(args, "param", None) is not None else ""
        command.error(f"unrecognized arguments: {' '.join(stray)}{hint}")
    try:
        return {"serve": _serve, "stop": _stop, "status": _status, "run": _run,
                "batch": _batch, "ops": _ops, "models": _models, "users": _users,
                "studio": _studio_setting, "demo": _demo}[args.command](args)
    except (protocol.ProtocolError, ValueError, OSError) as exc:
        print(f"limner: {exc}", file=sys.stderr)
        return 2


# ----------------------------------------------------------------------------- commands

def _serve(args) -> int:
    from . import logs
    from .server import AlreadyRunning, Server

    logs.configure(args.log_level)
    if args.threads < 1:
        raise ValueError("--threads must be at least 1")
    threads.apply(args.threads)
    cache.LAYERS.limit_bytes = int(args.cache_mb * 2**20)
    shared = _studio(args) if args.studio else None
    if not args.studio and (args.host or args.cert or args.key or args.ray):
        raise ValueError("--host, --cert, --key and --ray are for studio mode (--studio): "
                         "the local backend listens on 127.0.0.1 only")
    server = Server(args.port, max_message_bytes=int(args.max_message_mb * 2**20),
                    max_buffer_bytes=int(args.max_buffer_mb * 2**20),
                    unload_after=args.unload_after, studio=shared,
                    host=args.host or protocol.DEFAULT_HOST)

    async def main_loop():
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # Windows: Ctrl+C still raises
                asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        await server.serve_forever(stop)

    try:
        asyncio.run(main_loop())
    except (AlreadyRunning, PermissionError) as exc:
        print(f"limner serve: {exc}", file=sys.stderr)
        return 1
    finally:
        if shared is not None and shared.engines is not None:
            shared.engines.close()
    return 0


def _studio(args) -> studio.Studio:
    """TLS, the users and the limits of `serve --studio`; the fingerprint printed."""
    if bool(args.cert) != bool(args.key):
        raise ValueError("give both --cert and --key, or neither (a self-signed pair)")
    if args.jobs_per_user < 1 or args.mb_per_user <= 0:
        raise ValueError("--jobs-per-user and --mb-per-user must be above 0")
    host = args.host or protocol.DEFAULT_HOST
    cert, key = (args.cert, args.key) if args.cert else studio.certificate(None, [host])
    tls, fingerprint = studio.tls_context(cert, key)
    users = studio.Users()
    if not users.listed():
        print("limner serve: no studio users yet; add them with `limner users add NAME`",
              file=sys.stderr)
    print(f"studio certificate {cert}\nSHA-256 fingerprint {fingerprint}", flush=True)
    engines = None
    if args.ray:
        try:
            from .replicas import RayEngines
        except ImportError as exc:
            raise ValueError(f"--ray needs Ray Serve ({exc}): install Limner's studio extra, "
                             "python install/setup.py --studio") from None
        engines = RayEngines(args.ray, args.replicas, args.replica_cpus,
                             int(args.cache_mb * 2**20))
    return studio.Studio(tls, fingerprint, users, args.jobs_per_user,
                         int(args.mb_per_user * 2**20), engines=engines)


def _users(args) -> int:
    users = studio.Users()
    if args.action == "list":
        for user in users.listed():
            print(f"{user['name']}\t{'admin' if user['admin'] else 'user'}\t{user['created']}")
        return 0
    if not args.name:
        raise ValueError(f"users {args.action} needs a user name")
    if args.action == "add":
        token = users.add(args.name, args.admin)
        print(f"{args.name}'s token (shown once; give it to them for the plug-ins' studio "
              f"server setting):\n{token}")
        return 0
    if not users.remove(args.name):
        raise ValueError(f"there is no user {args.name!r}")
    print(f"removed {args.name}: their token no longer connects")
    return 0


def _studio_setting(args) -> int:
    """The plug-ins' studio server setting; the token is asked for, not given on the
    command line (where other users' `ps` would see it)."""
    from . import discovery

    if args.action == "use":
        if not args.url:
            raise ValueError("studio use needs the server's address, wss://HOST:PORT")
        import getpass

        token = getpass.getpass("your studio token: ") if sys.stdin.isatty() \
            else sys.stdin.readline()
        path = discovery.set_studio_setting(args.url, token, args.fingerprint)
        print(f"the plug-ins now use the studio server at {args.url} (setting: {path})")
    elif args.action == "local":
        discovery.set_studio_setting("", "")
        print("the plug-ins now use the local backend")
    else:
        setting = discovery.studio_setting()
        print("the local backend" if setting is None else
              f"the studio server at {setting['url']} (fingerprint "
              f"{setting['fingerprint'] or 'not pinned: the system trusts its certificate'})")
    return 0


def _stop(args) -> int:
    from . import launcher

    info = launcher.stop()
    print(f"stopped the Limner backend (pid {info['pid']}, port {info['port']})" if info
          else "no Limner backend is running")
    return 0


def _status(args) -> int:
    """The running backend's state, from a fresh welcome (its capabilities say what is in
    memory)."""
    try:
        client = Client.discover(name="limner-status")
    except BackendError as exc:
        print(f"limner status: {exc.message}", file=sys.stderr)
        return 1
    with client:
        described = client.described
    loaded = described.get("loaded", [])
    print(f"{client.server}: {described.get('memory_mb', 0):.0f} MB resident, layer cache "
          f"{described.get('cache_mb', 0):.0f} MB")
    print("models loaded: " + (", ".join(loaded) if loaded else "none"))
    return 0


def _ops(args) -> int:
    from .server import Server

    caps = Server(write_discovery=False).capabilities()
    if args.json:
        print(json.dumps(caps, indent=2))
        return 0
    offered = schema.Capabilities.from_json(caps)

    def shown(value) -> str:          # a choice with a comma in it is quoted in the list
        return f'"{value}"' if "," in str(value) else str(value)

    width = max(len(p.name) for op in offered.offered for p in op.params)
    for op in offered.offered:
        print(f"{op.id}: {op.description}")
        defaults = min(24, max(len(repr(p.default)) for p in op.params))   # a prompt runs on
        for param in op.params:
            detail = (f"one of {', '.join(map(shown, param.choices))}" if param.choices
                      else f"{param.min}..{param.max}" if param.min is not None
                      else param.kind.value)
            print(f"    {param.name:<{width}}  default {param.default!r:<{defaults}}  {detail}")
    engine_width = max(len(e.name) for engines in offered.engines.values() for e in engines)
    for kind, engines in offered.engines.items():
        print(f"{kind} engines:")
        for e in engines:
            state = "installed" if e.available else "not installed"
            print(f"    {e.name:<{engine_width}}  {state:<13}  {e.label} (licence: {e.licence})")
            if e.setup:
                print(f"    {'':<{engine_width}}  {'':<13}  needs the diffusion engines: "
                      f"{e.setup}")
    return 0


def _models(args) -> int:
    from . import engines, models

    unknown = [n for n in args.names if n not in models.MODELS]
    if unknown:
        raise ValueError(f"unknown model {', '.join(unknown)}; known: "
                         f"{', '.join(models.MODELS)}")
    if args.action == "list":
        print(f"{'model':<20} {'size':>8}  {'licence':<22} {'state':<12} engines / what for")
        for info in models.MODELS.values():
            path = models.local_path(info.name)
            print(f"{info.name:<20} {info.size_mb:>5} MB  {info.licence:<22} "
                  f"{'present' if path else 'not present':<12} "
                  f"{', '.join(engines.using(info.name))}: {info.description}")
        return 0
    names = args.names or (list(models.MODELS) if args.action == "verify" else [])
    if not names:
        raise ValueError(f"name the models to {args.action}")
    status = 0
    for name in names:
        info = models.MODELS[name]
        if args.action == "pull":
            print(f"pulling {name}: {info.repo}, {info.size_mb} MB, licence {info.licence}, "
                  f"for {', '.join(engines.using(info.name))}")
            print(f"{name}: {models.pull(name)}")
        elif args.action == "verify":
            problems = models.verify(name)
            print(f"{name}: {'ok' if not problems else '; '.join(problems)}")
            status = status or (1 if problems else 0)
        else:
            shared = [n for n in models.sharing_repository(name) if models.local_path(n)]
            print(f"{name}: removed, {models.remove(name) / 2**20:.0f} MB freed" +
                  (f" (with {', '.join(shared)}, from the same repository)" if shared else ""))
    return status


def _run(args) -> int:
    from .ora import read_picture
    from .picture_files import read_source

    if args.image.is_dir():
        raise ValueError(f"{args.image} is a folder: to run {args.op} on every picture in "
                         f"it, use `limner batch {args.image} --op {args.op} --out …`")
    if not args.image.exists():
        raise ValueError(f"{args.image} does not exist")
    source = read_source(args.image, "image", args.to_srgb)
    image = source.pixels
    mask = None
    if args.mask:
        mask = imaging.from_float(imaging.to_float(read_picture(args.mask, "mask"))[:, :, :3]
                                  .mean(axis=2), "u8")
        if mask.shape != image.shape[:2]:
            raise ValueError(f"the mask is {mask.shape[1]}x{mask.shape[0]}, the image "
                             f"{image.shape[1]}x{image.shape[0]}: they must match")
    signing = _signing(args)
    with _connect() as client:
        params = _parse_params(client, args.op, args.param)
        paths = run_and_save(client, args.op, params, source, mask, args.out, args.image.stem,
                             signing, args.format, args.quality)
    for path in paths:
        print(path)
    return 0


#: what `batch` takes from a folder
PICTURES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp")


def _batch(args) -> int:
    """One operation over many pictures through one backend (models load once). A picture
    that cannot be read gets a line and is skipped; one whose results are already written
    is skipped too, so an interrupted batch resumes where it stopped."""
    import glob

    from tqdm import tqdm

    from .picture_files import read_source

    folder = Path(args.inputs)
    inputs = sorted(p for p in folder.iterdir() if p.suffix.lower() in PICTURES) \
        if folder.is_dir() else sorted(Path(p) for p in glob.glob(args.inputs))
    if not inputs:
        raise ValueError(f"no pictures in {args.inputs}")
    out = args.out.resolve()
    if any(path.resolve().parent == out for path in inputs):
        raise ValueError(f"the output folder {args.out} holds pictures the batch reads: "
                         "its results would be read as pictures by the next run; "
                         "choose another --out")
    signing = _signing(args)
    done = skipped = failed = 0
    stems = collections.Counter(path.stem for path in inputs)   # a.png and a.jpg: a-png
    stem_of = {path: f"{path.stem}-{path.suffix.lstrip('.').lower()}"      # and a-jpg
               if stems[path.stem] > 1 else path.stem for path in inputs}

    def summary(how: str) -> None:
        print(f"limner batch: {how}{done} done, {skipped} already done, {failed} skipped "
              "(unreadable or refused)", file=sys.stderr)

    # Ctrl-C: stop after the picture in hand (its files whole); again: stop at once. A flag,
    # not an exception: one raised wherever the interpreter happens to be (a progress
    # bar's __del__) can be swallowed there, and the batch would run on
    interrupted: list[bool] = []

    def interrupt(signum, frame):
        if interrupted:
            raise KeyboardInterrupt
        interrupted.append(True)

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        with _connect() as client:
            params = _parse_params(client, args.op, args.param)
            op = client.operation(args.op)
            if op is None:
                raise ValueError(f"unknown operation {args.op!r} (see `limner ops`)")
            for path in tqdm(inputs, desc=f"limner batch {args.op}", unit="picture"):
                if interrupted:
                    raise KeyboardInterrupt
                if _already_done(args.out, output_base(stem_of[path], op, params), args.op,
                                 params):
                    skipped += 1
                    continue
                if signing:     # stop before a picture its certificate would not cover
                    provenance.check_valid(signing, datetime.timedelta(minutes=5))
                try:
                    source = read_source(path, "batch", args.to_srgb)
                    written = run_and_save(client, args.op, params, source, None, args.out,
                                           stem_of[path], signing, args.format, args.quality)
                except (protocol.ProtocolError, OSError, ValueError) as exc:
                    if getattr(exc, "code", None) in GONE or \
                            isinstance(exc, provenance.SigningError):  # nothing more runs
                        raise
                    tqdm.write(f"limner batch: skipped {path}: "
                               f"{getattr(exc, 'message', exc)}", file=sys.stderr)
                    failed += 1
                    continue
                for name in written:
                    tqdm.write(str(name))
                done += 1
    except KeyboardInterrupt:
        summary("interrupted: ")
        return 130
    except provenance.SigningError as exc:
        print(f"limner batch: {exc}", file=sys.stderr)
        summary("stopped: ")
        return 2
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted:                      # the last picture was done when it came
        summary("interrupted: ")
        return 130
    summary("")
    return 1 if failed else 0


#: the backend is gone: a batch stops instead of skipping every picture after
GONE = (protocol.E_CLOSED, protocol.E_UNREACHABLE, protocol.E_NOT_RUNNING, protocol.E_TIMEOUT)


def _demo(args) -> int:
    """Every operation on two portraits that ship in packages."""
    from matplotlib import cbook
    from skimage import data

    from .ora import read_image

    portraits = {"astronaut": data.astronaut(),
                 "grace_hopper": read_image(cbook.get_sample_data("grace_hopper.jpg",
                                                                  asfileobj=False))}
    from .picture_files import Metadata, SourcePicture

    jobs = [("background.remove", {}), ("background.replace", {"color": "#2f6fb0"}),
            ("background.blur", {"radius": 12}),
            ("relight", {"azimuth": -60, "elevation": 20, "temperature": 3800}),
            ("relight", {"setup": "rembrandt", "softness": 0.25}),
            ("style", {"preset": "oil painting"}), ("style", {"preset": "pencil sketch"}),
            ("grade", {"look": "teal and orange"}), ("mood", {"mood": "golden hour"})]
    with _connect() as client:
        for name, image in portraits.items():
            for op, params in jobs:
                for path in run_and_save(client, op, params, SourcePicture(image, Metadata()),
                                         None, args.out, name):
                    print(path)
    return 0


# ----------------------------------------------------------------------------- helpers

@contextlib.contextmanager
def _connect():
    """The running backend, or a private one for this command."""
    try:
        client = Client.discover(name="limner-cli")
    except BackendError as exc:
        if exc.code not in (protocol.E_NOT_RUNNING, protocol.E_UNREACHABLE):
            raise
        from .server import ServerThread

        print("limner: no backend running; starting one for this command", file=sys.stderr)
        with ServerThread(port=0, write_discovery=False) as server:
            with Client(server.uri, server.server.token, name="limner-cli") as client:
                yield client
        return
    with client:
        yield client


def _parse_params(client: Client, op_id: str, pairs: list[str]) -> dict:
    op = client.operation(op_id)
    if op is None:
        return {}  # the backend names the operations it has
    params = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep:
            raise ValueError(f"--param {pair!r}: expected NAME=VALUE")
        param = op.param(name)
        if param is None:
            raise ValueError(f"{op_id} has no parameter {name!r}; it takes "
                             f"{', '.join(op.names)}")
        params[name] = param.parse_text(text)
    return params


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


def layer_file_stem(base: str, layer_name: str) -> str:
    """A layer's file name: the run's base and the layer's name, less the words the
    layer's name repeats from the base's end ("a-mood-film-noir" and "Mood film noir:
    grade noir" make "a-mood-film-noir-grade-noir", not "…-film-noir-mood-film-noir-…")."""
    head, tail = base.split("-"), _slug(layer_name).split("-")
    overlap = max((k for k in range(1, min(len(head), len(tail)) + 1)
                   if head[-k:] == tail[:k] and k < len(tail)), default=0)
    return "-".join(head + tail[overlap:])


#: an output name's parameters longer than this are shortened, with a hash of them all
NAME_PARAMS = 48


def output_base(stem: str, op, params: dict) -> str:
    """The start of every file a run writes: the picture's stem, the operation and each
    parameter given that differs from its default (a choice by its value, anything else
    as name=value, a file by its name), so two runs with different settings never share
    a name; a hash of the parameters stands in for the end of a long list."""
    def said(param, value) -> str:
        if param.choices:
            return _slug(str(value))
        if isinstance(value, bool):
            return f"{param.name}={'on' if value else 'off'}"
        if isinstance(value, (int, float)):
            return f"{param.name}={value:g}"
        if param.kind in (schema.Kind.FILE, schema.Kind.IMAGE):      # a file by its name
            value = str(value).replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
        return f"{param.name}={_slug(str(value))}"

    given = [(op.param(name), value) for name, value in sorted(params.items())
             if op.param(name) is not None and value != op.param(name).default]
    parts = [said(param, value) for param, value in  # the choices first: the variant
             sorted(given, key=lambda pair: not pair[0].choices)]
    changed = "-".join(part for part in parts if part)
    if len(changed) > NAME_PARAMS:
        digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:8]
        changed = f"{changed[:NAME_PARAMS - 9].rstrip('-')}-{digest}"
    return "-".join(part for part in (stem, _slug(op.id), changed) if part)


def _already_done(out: Path, base: str, op: str, params: dict) -> bool:
    """Its stack is written (the last file a run writes) by the same operation with the
    same parameters (its provenance record says which)."""
    stack, record = out / f"{base}.ora", out / f"{base}.provenance.json"
    if not stack.exists() or not record.exists():
        return False
    try:
        made = json.loads(record.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(made, dict) and made.get("operation") == op and \
        made.get("params") == json.loads(json.dumps(params))


def _output_arguments(parser) -> None:
    parser.add_argument("--format", choices=tuple(FORMATS), default="png",
                        help="the layers' files: png (default), tiff (16-bit for a deep "
                             "picture) or jpeg (a layer with transparency stays PNG)")
    parser.add_argument("--quality", type=int, default=95, choices=range(1, 101),
                        metavar="1-100", help="JPEG quality (default 95)")
    parser.add_argument("--to-srgb", action="store_true",
                        help="convert the picture from its colour profile to sRGB first "
                             "(8-bit pictures); by default the results keep its profile")


def _signing_arguments(parser) -> None:
    parser.add_argument("--sign-cert", type=Path, help="sign the PNGs with C2PA Content "
                        "Credentials: a PEM certificate chain (ES256), signing cert first")
    parser.add_argument("--sign-key", type=Path, help="the signing certificate's PEM key")
    parser.add_argument("--tsa-url", help="an RFC 3161 timestamp authority for the "
                        "signatures (without one they read as invalid once the "
                        "certificate expires)")


def _signing(args) -> provenance.Signing | None:
    """What to sign with: the options, else the config file ($LIMNER_CONFIG, or
    limner/config.json in the user's config folder: {"sign_cert": …, "sign_key": …,
    "tsa_url": …}); None: exports carry the XMP only. A config that is not a file, not
    JSON or holds the wrong things is an error, never silently no signing."""
    cert, key, tsa_url = args.sign_cert, args.sign_key, args.tsa_url
    if cert is None and key is None:
        config = Path(os.environ.get("LIMNER_CONFIG") or
                      Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
                      / "limner" / "config.json")
        if config.exists():
            settings = _config(config)
            cert, key = settings.get("sign_cert"), settings.get("sign_key")
            tsa_url = tsa_url or settings.get("tsa_url")
    if (cert is None) != (key is None):
        raise ValueError("signing needs both a certificate (--sign-cert) and its key "
                         "(--sign-key)")
    if cert is None:
        return None
    for path in (cert, key):
        if not Path(path).is_file():
            raise ValueError(f"cannot read {path} for signing")
    signing = provenance.Signing(Path(cert), Path(key), tsa_url)
    provenance.check_signer(signing)
    return signing


#: what the config file may hold, and of which type
CONFIG_KEYS = {"sign_cert": str, "sign_key": str, "tsa_url": str}


def _config(path: Path) -> dict:
    """The config file's settings, or a ValueError that says what is wrong with it."""
    if not path.is_file():
        raise ValueError(f"the config {path} is not a file")
    try:
        settings = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the config {path}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"the config {path} is not JSON ({exc.msg}, line {exc.lineno})") \
            from None
    if not isinstance(settings, dict):
        raise ValueError(f"the config {path} must be a JSON object, like "
                         '{"sign_cert": "chain.pem", "sign_key": "key.pem"}')
    for name, value in settings.items():
        if name in CONFIG_KEYS and not isinstance(value, CONFIG_KEYS[name]):
            raise ValueError(f"the config {path}: {name} must be a string (a path or URL)")
    return settings


def run_and_save(client: Client, op: str, params: dict, source, mask: np.ndarray | None,
                 out: Path, stem: str, signing: provenance.Signing | None = None,
                 fmt: str = "png", quality: int = 95) -> list[Path]:
    """Send one picture (picture_files.SourcePicture) through the backend and write each
    result layer in `fmt` with the picture's colour profile, EXIF, IPTC and XMP rights and
    Limner's provenance, an .ora stack (the source at the bottom, hidden, the new layers
    above) and the provenance record (the operation and parameters that made them). With
    `signing` (certificate, key) each PNG is also signed with C2PA Content Credentials,
    the source as its parent. Every name starts with output_base: nothing overwrites the
    files of a run with other settings."""
    from tqdm import tqdm

    from .ora import StackLayer, png_bytes, write_ora
    from .picture_files import encode, format_for

    spec = client.operation(op)
    if spec is None:
        raise ValueError(f"unknown operation {op!r} (see `limner ops`)")
    if signing and fmt != "png":
        raise ValueError("C2PA signing writes PNGs: use --format png to sign")
    image, metadata = source.pixels, source.metadata
    base = output_base(stem, spec, params)
    with tqdm(total=100, desc=f"{stem} {op}", unit="%", leave=False,
              bar_format="{desc}: {percentage:3.0f}% {bar} {postfix}") as bar:
        def progress(job, fraction, stage):
            bar.n = round(fraction * 100)
            bar.set_postfix_str(stage)

        layers = client.run(op, params, imaging.to_pixels(image),
                            mask=None if mask is None else mask.tobytes(), on_progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    written, stack = [], []
    source_png = png_bytes(image) if signing else b""
    for layer, received in layers:
        pixels = imaging.from_pixels(received)
        kind = format_for(pixels, fmt)
        path = out / f"{layer_file_stem(base, layer.name)}{FORMATS[kind]}"
        with _replacing(path) as partial:
            partial.write_bytes(encode(pixels, kind, metadata,
                                       provenance.xmp_fields([layer.provenance]), quality))
            if signing:
                provenance.sign_png(partial, source_png, [layer.provenance], signing,
                                    title=path.name)
        written.append(path)
        stack.append(StackLayer(layer.name, pixels, *layer.offset,
                                visible=layer.visible and layer.role != "mask",
                                blend=layer.blend, attributes={"role": layer.role,
                                                               "provenance": layer.provenance}))
    # the source stays visible only where the new layers need it beneath them (light layers)
    covered = any(s.visible and s.blend == "normal" for s in stack)
    stack.append(StackLayer(stem, image, visible=not covered))
    ora_path = out / f"{base}.ora"
    record = out / f"{base}.provenance.json"
    with _replacing(record) as partial:
        partial.write_text(json.dumps(
            {"operation": op, "params": params, "source": stem, "kept": metadata.kept,
             "layers": [{"name": l.name, "role": l.role, "offset": l.offset,
                         "provenance": l.provenance} for l, _ in layers]}, indent=2))
    with _replacing(ora_path) as partial:         # last: its presence means the run finished
        write_ora(partial, stack, image.shape[1], image.shape[0],
                  provenance.xmp_fields([layer.provenance for layer, _ in layers]))
    return [*written, ora_path, record]


@contextlib.contextmanager
def _replacing(path: Path):
    """A temporary name beside `path` to write to; it becomes `path` only when the writing
    is done, and is removed if it fails or is interrupted: a stopped run never leaves a
    half-written file under a finished one's name."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        yield partial
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
