"""The console's static files: its own stylesheet and script (in this package) and plotly.js (in the plotly
package, never a CDN). Read once, kept in memory (with a gzip copy made on first demand), served with a content
hash as ETag; pages link them with that hash in the query string, so browsers may keep them for a year."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

HERE = Path(__file__).parent / "static"
# plotly.js adds stylesheets of its own (MapLibre's, for map traces) as inline <style> elements, which the console's
# Content-Security-Policy refuses; it skips one whose id is already on the page, so pages carry an inert element
# with each such id (found in the bundle, as the version at hand names them).
_INJECTED_STYLE = re.compile(
    rb'document\.getElementById\("([0-9a-f]{16,128})"\)\)\{var \w+=document\.createElement\("style"\)'
)
TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def plotly_js_path() -> Path:
    """plotly.min.js as the plotly Python package ships it (found without importing plotly)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("the plotly package is not installed (it is a dependency of distillguard)")
    return Path(spec.origin).parent / "package_data" / "plotly.min.js"


@dataclass
class Asset:
    body: bytes
    etag: str
    media_type: str
    gzipped: bytes | None = field(default=None, repr=False)


class StaticFiles:
    NAMES = ("console.css", "console.js", "plotly.min.js")

    def __init__(self) -> None:
        self._assets: dict[str, Asset] = {}
        self._lock = threading.Lock()
        self.plotly_style_ids: list[str] = []

    @property
    def loaded(self) -> bool:
        return len(self._assets) == len(self.NAMES)

    def load(self) -> None:
        """Read every file and hash it (blocking: a few milliseconds; run it in a thread)."""
        with self._lock:
            for name in self.NAMES:
                if name not in self._assets:
                    path = plotly_js_path() if name == "plotly.min.js" else HERE / name
                    body = path.read_bytes()
                    etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
                    self._assets[name] = Asset(body, etag, TYPES[path.suffix])
                    if name == "plotly.min.js":
                        self.plotly_style_ids = sorted({m.decode() for m in _INJECTED_STYLE.findall(body)})

    def version(self, name: str) -> str:
        """A short content hash for the file's URL (``?v=``), so a changed file is fetched anew."""
        asset = self._assets.get(name)
        return asset.etag.strip('"')[:12] if asset is not None else "0"

    async def respond(self, request: Request) -> Response:
        name = str(request.path_params["name"])
        if name not in self.NAMES:
            return Response("Not found", 404, media_type="text/plain")
        if not self.loaded:
            await run_in_threadpool(self.load)
        asset = self._assets[name]
        headers = {
            "etag": asset.etag,
            "cache-control": "public, max-age=31536000, immutable",
            "vary": "accept-encoding",
        }
        if request.headers.get("if-none-match") == asset.etag:
            return Response(status_code=304, headers=headers)
        if "gzip" not in request.headers.get("accept-encoding", ""):
            return Response(asset.body, media_type=asset.media_type, headers=headers)
        if asset.gzipped is None:
            asset.gzipped = await run_in_threadpool(gzip.compress, asset.body, 6)
        return Response(asset.gzipped, media_type=asset.media_type, headers={**headers, "content-encoding": "gzip"})
