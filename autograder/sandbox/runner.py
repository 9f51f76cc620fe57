"""The untrusted side: the only process that imports a submission.

Started by the judge (``python runner.py --submission DIR --scratch DIR``), inside the bwrap
jail when there is one. It reads framed requests on stdin and writes framed replies on a
private copy of stdout; the submission's own prints go to stderr. It never decides anything:
it calls what the judge asks for and sends back plain data (see ``wire``). Objects that cannot
cross stay here as handles; probes (``probes.py``) describe them as data or save them as
safetensors in the scratch folder, where the judge reads them itself.

This file imports nothing from the ``autograder`` package (which is not mounted in the jail).
"""

from __future__ import annotations

import argparse
import errno
import importlib.util
import os
import sys
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import probes  # noqa: E402  (sibling modules, loaded without the package)
import wire  # noqa: E402

MESSAGE_CAP = 400  # characters of an exception message sent back
LIMIT_ERRNOS = {errno.EAGAIN: "processes", errno.EMFILE: "open files", errno.ENFILE: "open files",
                errno.EFBIG: "file size", errno.ENOMEM: "memory", errno.ENOSPC: "disk", errno.EDQUOT: "disk"}


class Keep:
    """A result to keep in the runner as a handle even when it could cross as data."""

    def __init__(self, value):
        self.value = value


class Server:
    def __init__(self, submission: Path, scratch: Path, out_fd: int):
        self.submission, self.scratch, self.out_fd = submission, scratch, out_fd
        self.modules: dict[str, object] = {}
        self.handles: dict[int, object] = {}
        self.codec = wire.Codec(on_object=lambda v: self._store(v.value if isinstance(v, Keep) else v),
                                on_tag=self._resolve)
        self.probes = probes
        self.recipes = probes.Recipes(self)

    # ------------------------------------------------------------------ handles
    def _store(self, value) -> dict:
        hid = len(self.handles) + 1
        self.handles[hid] = value
        try:
            shown = repr(value)
        except Exception:  # noqa: BLE001 - a broken __repr__ is the submission's problem
            shown = f"<{type(value).__name__}>"
        return {"__handle__": hid, "type": type(value).__name__, "mro": wire.mro_names(value),
                "repr": shown[:120], "callable": callable(value)}

    def _resolve(self, tag: str, obj: dict):
        if tag == "__handle__":
            hid = obj["__handle__"]
            if hid not in self.handles:
                raise wire.WireError(f"unknown handle {hid}")
            return self.handles[hid]
        return self.recipes.build(obj)

    # ------------------------------------------------------------------ ops
    def op_import(self, req: dict):
        name = str(req["module"])
        if not name.isidentifier():
            raise wire.WireError(f"bad module name {name!r}")
        if name not in self.modules:
            path = self.submission / f"{name}.py"
            if not path.is_file():
                return {"missing": True}
            spec = importlib.util.spec_from_file_location(f"submission_{name}", path)
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
            except SyntaxError as exc:
                return {"syntax_error": {"line": exc.lineno, "msg": str(exc.msg)[:MESSAGE_CAP]}}
            self.modules[name] = module
        return {"names": sorted(n for n in vars(self.modules[name]) if not n.startswith("_"))[:500]}

    def _target(self, req: dict):
        if "module" in req:
            module = self.modules.get(req["module"])
            if module is None:
                raise wire.WireError(f"module {req['module']!r} was not imported")
            return getattr(module, str(req["name"])) if req.get("name") else module
        obj = self._resolve("__handle__", {"__handle__": req["handle"]})
        return getattr(obj, str(req["name"])) if req.get("name") else obj

    def op_describe(self, req: dict):
        try:
            obj = self._target(req)
        except AttributeError:
            return {"exists": False}
        return {"exists": True, "callable": callable(obj), "is_class": isinstance(obj, type),
                "type": type(obj).__name__, "mro": wire.mro_names(obj)}

    def op_getattr(self, req: dict):
        return self._target(req)

    def op_build(self, req: dict):
        return Keep(self.codec.decode(req["recipe"]))

    def op_call(self, req: dict):
        fn = self._target(req)
        args = [self.codec.decode(a) for a in req.get("args", [])]
        kwargs = {str(k): self.codec.decode(v) for k, v in req.get("kwargs", {}).items()}
        options = req.get("options", {})
        value, trace = self.probes.call_with_options(self, fn, args, kwargs, options)
        return {"value": Keep(value) if options.get("keep") else value, "trace": trace}

    def op_probe(self, req: dict):
        obj = self._resolve("__handle__", {"__handle__": req["handle"]})
        return getattr(self.probes, f"probe_{req['kind']}")(self, obj)

    def op_release(self, req: dict):
        for hid in req.get("handles", []):
            self.handles.pop(hid, None)
        return None

    # ------------------------------------------------------------------ loop
    def error_reply(self, exc: BaseException) -> dict:
        frames = []
        root = str(self.submission)
        for frame in traceback.extract_tb(exc.__traceback__):
            if frame.filename.startswith(root):
                frames.append([Path(frame.filename).name, frame.lineno, frame.name])
        limit = None
        if isinstance(exc, MemoryError):
            limit = "memory"
        elif isinstance(exc, OSError) and exc.errno in LIMIT_ERRNOS:
            limit = LIMIT_ERRNOS[exc.errno]
        try:
            message = str(exc)
        except Exception:  # noqa: BLE001
            message = "<the exception's message could not be shown>"
        return {"ok": False, "error": {"type": type(exc).__name__, "mro": wire.mro_names(exc),
                                       "message": message[:MESSAGE_CAP], "frames": frames[-3:], "limit": limit}}

    def serve(self) -> None:
        while True:
            try:
                req = wire.receive(0)
            except EOFError:
                return
            op = getattr(self, f"op_{req.get('op')}", None)
            try:
                if op is None:
                    raise wire.WireError(f"unknown op {req.get('op')!r}")
                reply = {"ok": True, "value": self.codec.encode(op(req))}
                wire.send(self.out_fd, {**reply, "id": req.get("id")})
            except BaseException as exc:  # noqa: BLE001 - everything goes back as data
                if isinstance(exc, KeyboardInterrupt):
                    raise
                try:
                    wire.send(self.out_fd, {**self.error_reply(exc), "id": req.get("id")})
                except Exception as inner:  # noqa: BLE001 - e.g. an unencodable result
                    wire.send(self.out_fd, {**self.error_reply(inner), "id": req.get("id")})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--submission")
    parser.add_argument("--scratch")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--zygote", type=int, default=None, help="serve forks on this control socket (zygote.py)")
    args = parser.parse_args(argv)
    if args.zygote is not None:
        import zygote

        return zygote.serve(args.zygote, main)
    out_fd = os.dup(1)  # replies only; the submission's prints go to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    os.makedirs(args.scratch, exist_ok=True)  # a forked runner's own folder under the job's scratch
    os.chdir(args.scratch)
    submission = Path(args.submission).resolve()
    sys.path.insert(0, str(submission))  # a stage module may import another one
    try:
        import torch

        torch.set_num_threads(max(1, args.threads))
    except ImportError:  # pragma: no cover
        pass
    Server(submission, Path(args.scratch).resolve(), out_fd).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
